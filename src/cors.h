/* cors: cross-origin resource sharing as configuration. Pure: origin
 * matching, the preflight verdict and the Access-Control-* header set of a
 * response, over a policy compiled once per loaded configuration.
 *
 * Origins are "scheme://host[:port]" (http or https only), compared with the
 * scheme and host in lower case and a default port (80, 443) made implicit,
 * as browsers serialise them. A configured host written "*.example.com"
 * matches a host with at least one more label in front of ".example.com"
 * (any depth), with the configured scheme and port only; it matches
 * never "example.com" itself, "evil-example.com" or "example.com.evil.net".
 * "*" allows every origin and is
 * answered with a literal "*", so it is refused together with credentials.
 * The "null" origin (sandboxed frames, file: pages) is never matched by a
 * configured origin, so it cannot be configured. A response never reflects
 * an origin that did not match. */
#ifndef AG_CORS_H
#define AG_CORS_H

#include <stdbool.h>
#include <stddef.h>

/* What the configuration says, before compilation (owned by the config). */
typedef struct cors_spec {
    char **origins; /* allowed_origins; none = CORS off */
    size_t norigins;
    unsigned methods; /* HX_M_* mask; 0 = every method the route takes */
    char **headers;   /* allowed_headers; "*" = any */
    size_t nheaders;
    char **expose; /* exposed_headers */
    size_t nexpose;
    bool credentials;
    long max_age; /* seconds */
} cors_spec;

typedef struct cors_policy cors_policy;

/* NULL with err set ("allowed_origins[2]: ..."), or the compiled policy.
 * A spec without origins compiles to NULL with err empty: CORS is off. */
cors_policy *cors_compile(const cors_spec *s, char *err, size_t errlen);
void cors_free(cors_policy *p);

/* Does a request's Origin value match the policy? false for NULL p. */
bool cors_origin_allowed(const cors_policy *p, const char *origin, size_t len);

/* The preflight's verdict. The zero value refuses. */
typedef enum cors_verdict {
    CORS_DENY_ORIGIN = 0,
    CORS_DENY_METHOD,
    CORS_DENY_HEADERS,
    CORS_ALLOW,
} cors_verdict;

/* origin: the one Origin value; method: Access-Control-Request-Method;
 * req_headers: Access-Control-Request-Headers (NULL = none). */
cors_verdict cors_preflight(const cors_policy *p, const char *origin, size_t olen,
                            const char *method, size_t mlen, const char *req_headers, size_t rhlen);

typedef int (*cors_emit_fn)(void *ctx, const char *name, const char *value);

typedef struct cors_request {
    const char *origin; /* NULL = none, or more than one */
    size_t origin_len;
    bool preflight;     /* an allowed preflight: the Allow-Methods/Headers/Max-Age too */
    const char *method; /* preflight: Access-Control-Request-Method */
    size_t method_len;
    const char *req_headers; /* preflight: Access-Control-Request-Headers, NULL = none */
    size_t req_headers_len;
} cors_request;

/* The Access-Control-* headers (and Vary) a response on a CORS-enabled
 * route carries: Vary: Origin always (unless the policy answers "*"), the
 * rest only for a matching origin. Returns 0, -1 on allocation failure, or
 * fn's non-zero. Nothing for NULL p. */
int cors_response_headers(const cors_policy *p, const cors_request *rq, cors_emit_fn fn, void *ctx);

/* Is this response header one the gateway sets itself on a CORS-enabled
 * route (access-control-*)? An upstream's copy is then dropped. */
bool cors_header_is_ours(const char *name, size_t len);

#endif
