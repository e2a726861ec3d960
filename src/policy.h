/* policy: the PropelAuth authorization functions and the 401/403 decision table
 * (docs/semantics.md section 3). Pure: no I/O, no clock. */
#ifndef AG_POLICY_H
#define AG_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "reason.h"

struct id_user;
struct id_org;

typedef enum pol_kind {
    POL_PUBLIC = 0,
    POL_OPTIONAL_USER,
    POL_REQUIRE_USER,
    POL_ORG_MEMBER,
    POL_ORG_MIN_ROLE,
    POL_ORG_EXACT_ROLE,
    POL_ORG_PERMISSION,
    POL_ORG_ALL_PERMISSIONS,
    POL__COUNT
} pol_kind;

typedef struct pol_spec {
    pol_kind kind;
    char *role;         /* MIN_ROLE, EXACT_ROLE */
    char *permission;   /* PERMISSION */
    char **permissions; /* ALL_PERMISSIONS */
    size_t npermissions;
} pol_spec;

/* "require_org_member_with_minimum_role" etc. -> kind; returns -1 if unknown. */
int pol_kind_from_name(const char *name, pol_kind *out);
const char *pol_kind_name(pol_kind k);
bool pol_needs_token(pol_kind k); /* require_user and all org kinds */
bool pol_needs_org(pol_kind k);
void pol_spec_free(pol_spec *s);

/* What the request brought, already established by earlier steps. */
typedef enum pol_token_state {
    POL_TOKEN_NONE = 0,   /* no Authorization header */
    POL_TOKEN_INVALID,    /* header or token rejected; reason in pol_input.token_reason */
    POL_TOKEN_VALID,      /* verified; pol_input.user set */
    POL_KEYS_UNAVAILABLE, /* a token would be needed but no verifier key is loaded */
} pol_token_state;

typedef struct pol_input {
    pol_token_state token;
    ag_reason token_reason;     /* why, when INVALID (a 401 row, e.g. AR_TOKEN_EXPIRED) */
    const struct id_user *user; /* when VALID */
    const char *org_id;         /* percent-decoded org id, NULL when absent */
    size_t org_id_len;
} pol_input;

/* The zero value denies: a result nobody filled in never forwards. */
typedef enum pol_outcome {
    POL_DENY = 0,
    POL_ALLOW,
} pol_outcome;

typedef struct pol_result {
    pol_outcome outcome;
    ag_reason code;           /* AR_OK on allow; a 401, 403 or 503 row on deny */
    bool inject_user;         /* forward X-User */
    const struct id_org *org; /* forward X-Org (org policies on allow) */
    /* The org whose role or permissions were judged, on allow and on deny
     * (for `authgate explain`); NULL when the lookup did not happen or failed. */
    const struct id_org *judged;
    /* The individual checks, for `authgate explain`. */
    const char *checks[6];
    bool check_ok[6];
    size_t nchecks;
} pol_result;

void pol_decide(const pol_spec *spec, const pol_input *in, pol_result *out);

#endif
