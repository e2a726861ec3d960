/* gate: the decision engine shared by the daemon and `authgate explain`.
 * A gate is the compiled form of one loaded configuration (routes in a trie,
 * folded header names); it is immutable and reference counted so a reload can
 * swap it while requests in flight finish under the one they started with.
 * gate_decide is pure apart from the clock value it is given. */
#ifndef AG_GATE_H
#define AG_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "identity.h"
#include "keys.h"
#include "policy.h"
#include "reason.h"
#include "routes.h"
#include "util.h"

struct tc_cache;

typedef struct gate gate;

/* Takes ownership of cfg. */
int gate_new(cfg_config *cfg, gate **out, char *err, size_t errlen);
gate *gate_ref(gate *g);
void gate_unref(gate *g);
const cfg_config *gate_config(const gate *g);
const rt_table *gate_routes(const gate *g);

/* One request header as the front end saw it. */
typedef struct gate_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} gate_header;

typedef struct gate_request {
    const char *method;
    const char *target; /* raw request-target */
    size_t target_len;
    const gate_header *headers;
    size_t nheaders;
} gate_request;

/* The canonical path is at most three times the target (raw non-ASCII bytes
 * become %XX), and the target at most limits.max_uri_bytes (<= 64 KiB). The
 * daemon allocates each exchange with just the room its limit needs
 * (path_cap); a decision declared on the stack has the full size. */
#define GATE_PATH_MAX (3 * 65536 + 1)
#define GATE_PATH_CAP(max_uri) (3 * (size_t)(max_uri) + 1)
#define GATE_ORG_MAX 256

/* The zero value refuses: a decision nobody completed never forwards. */
typedef enum gate_outcome {
    GATE_REFUSE = 0,
    GATE_FORWARD, /* every check passed; route and its upstream are set */
} gate_outcome;

typedef struct gate_decision {
    gate_outcome outcome;
    ag_reason code;         /* why (reason.h); AR_INTERNAL until decided */
    int status;             /* on refusal the HTTP status to answer (the code's row) */
    const char *error;      /* error class for the JSON body (the code's row) */
    const char *reason;     /* reason string (the code's row) */
    bool token_sent;        /* for WWW-Authenticate error="invalid_token" */
    unsigned allow;         /* 405: HX_M_* mask for Allow */
    const cfg_route *route; /* NULL when no route matched */
    size_t path_len;
    const char *query; /* raw query, points into the request target */
    size_t query_len;
    size_t org_id_len;
    bool has_org_id;
    id_user *user;            /* reference held when the token verified */
    ag_reason token_code;     /* why a sent token was not accepted ... */
    const char *token_reason; /* ... and its string; NULL when none was refused */
    struct jwt_facts *facts;  /* when set (explain): what the verifier compared */
    bool cache_hit;
    bool cache_used; /* a cache lookup happened (hit or miss) */
    /* CORS (cors.h): the route's policy, the one Origin value (NULL for
     * none or several: nothing is reflected), and for a preflight the
     * method and headers it asked for. Point into the request's headers. */
    const struct cors_policy *cors;
    const char *origin;
    size_t origin_len;
    const char *cors_method, *cors_headers;
    size_t cors_method_len, cors_headers_len;
    pol_result pol;
    const char *x_user; /* header values to inject (NULL = none) */
    const char *x_org;
    ag_buf scratch; /* backing store for x_user when not precomputed */
    char *path;     /* canonical path (forwarded), path_cap bytes */
    size_t path_cap;
    bool path_owned;
    /* Large buffer last: gate_decision_init clears only what precedes it. */
    char org_id[GATE_ORG_MAX]; /* decoded org id, when the route has a source */
} gate_decision;

/* Initialise with a path buffer of GATE_PATH_MAX bytes owned by the decision
 * (NULL path on allocation failure: gate_decide then answers 500). */
void gate_decision_init(gate_decision *d);
/* Initialise with the caller's path buffer (the daemon puts it after the
 * exchange, sized for the configured URI limit). */
void gate_decision_init_buf(gate_decision *d, char *path, size_t cap);
void gate_decision_clear(gate_decision *d); /* drops the user reference, frees scratch */
/* A refusal for code, every field from the reason table (a code that answers
 * nothing of its own, such as AR_OK, is a programming error: asserted). */
void gate_refuse(gate_decision *d, ag_reason code);

/* Decide. keys may be NULL (not loaded). cache may be NULL. */
void gate_decide(const gate *g, const keys_snapshot *keys, struct tc_cache *cache,
                 const gate_request *req, int64_t now, gate_decision *d);

/* Writes the JSON error body for a decision into out. */
int gate_error_body(const gate_decision *d, ag_buf *out);

#endif
