/* reason: the one table of every reason code authgate emits (error bodies,
 * access log, metrics, `authgate explain`). Each row gives the HTTP status,
 * the error class of the JSON body, the reason string, the level at which the
 * error log reports it and the metric's decision label. The decision modules
 * steer by the enum; the strings exist only for output.
 *
 * The zero value is AR_INTERNAL (500): a reason left unset can only refuse. */
#ifndef AG_REASON_H
#define AG_REASON_H

#include <stdbool.h>

#include "log.h"

/* X(ENUM, "reason", status, "error class", level, "decision label")
 * status 0 and error class NULL: no answer of the gateway's own (forwarded, or
 * the connection was closed without one). */
#define AG_REASONS(X)                                                                              \
    X(INTERNAL, "internal_error", 500, "internal", LOG_ERROR, "error")                             \
    X(OUT_OF_MEMORY, "out_of_memory", 500, "internal", LOG_ERROR, "error")                         \
    /* forwarded */                                                                                \
    X(OK, "ok", 0, NULL, LOG_DEBUG, "allow")                                                       \
    X(TOKEN_INVALID_IGNORED, "token_invalid_ignored", 0, NULL, LOG_DEBUG, "allow")                 \
    /* forwarded with its Upgrade header dropped: only websocket is tunnelled */                   \
    X(UPGRADE_NOT_TUNNELLED, "upgrade_not_tunnelled", 0, NULL, LOG_DEBUG, "allow")                 \
    /* request head and framing (transport) */                                                     \
    X(CLIENT_HEADER_TIMEOUT, "client_header_timeout", 0, NULL, LOG_INFO, "aborted")                \
    /* the forward-auth listener's own head parser (rqhead.h) */                                   \
    X(BAD_REQUEST_LINE, "bad_request_line", 400, "bad_request", LOG_INFO, "reject")                \
    X(HTTP_VERSION, "http_version", 505, "http_version_not_supported", LOG_INFO, "error")          \
    X(LIMIT_HEADERS, "limit_headers", 431, "request_header_fields_too_large", LOG_INFO, "reject")  \
    X(LIMIT_BODY, "limit_body", 413, "payload_too_large", LOG_INFO, "reject")                      \
    X(BAD_HEADER_NAME, "bad_header_name", 400, "bad_request", LOG_INFO, "reject")                  \
    X(BAD_HEADER_VALUE, "bad_header_value", 400, "bad_request", LOG_INFO, "reject")                \
    X(BAD_HOST, "bad_host", 400, "bad_request", LOG_INFO, "reject")                                \
    X(FRAMING_TE_AND_CL, "framing_te_and_cl", 400, "bad_request", LOG_INFO, "reject")              \
    /* 501 not_implemented for a coding other than chunked before the final chunked */             \
    X(FRAMING_BAD_TE, "framing_bad_te", 400, "bad_request", LOG_INFO, "reject")                    \
    X(FRAMING_BAD_CONTENT_LENGTH, "framing_bad_content_length", 400, "bad_request", LOG_INFO,      \
      "reject")                                                                                    \
    /* request target */                                                                           \
    X(LIMIT_URI, "limit_uri", 414, "uri_too_long", LOG_INFO, "reject")                             \
    X(PATH_NOT_ORIGIN_FORM, "path_not_origin_form", 400, "bad_request", LOG_INFO, "reject")        \
    X(PATH_FRAGMENT, "path_fragment", 400, "bad_request", LOG_INFO, "reject")                      \
    X(PATH_BAD_ENCODING, "path_bad_encoding", 400, "bad_request", LOG_INFO, "reject")              \
    X(PATH_CONTROL_CHAR, "path_control_char", 400, "bad_request", LOG_INFO, "reject")              \
    X(PATH_BAD_UTF8, "path_bad_utf8", 400, "bad_request", LOG_INFO, "reject")                      \
    X(PATH_ENCODED_SEPARATOR, "path_encoded_separator", 400, "bad_request", LOG_INFO, "reject")    \
    X(PATH_EMPTY_SEGMENT, "path_empty_segment", 400, "bad_request", LOG_INFO, "reject")            \
    X(PATH_DOT_SEGMENT, "path_dot_segment", 400, "bad_request", LOG_INFO, "reject")                \
    X(PATH_SEMICOLON, "path_semicolon", 400, "bad_request", LOG_INFO, "reject")                    \
    X(QUERY_BAD_ENCODING, "query_bad_encoding", 400, "bad_request", LOG_INFO, "reject")            \
    X(QUERY_CONTROL_CHAR, "query_control_char", 400, "bad_request", LOG_INFO, "reject")            \
    X(ORG_ID_AMBIGUOUS, "org_id_ambiguous", 400, "bad_request", LOG_INFO, "reject")                \
    X(ORG_ID_INVALID, "org_id_invalid", 400, "bad_request", LOG_INFO, "reject")                    \
    /* routing */                                                                                  \
    X(NO_ROUTE, "no_route", 404, "not_found", LOG_DEBUG, "deny")                                   \
    X(METHOD_NOT_ALLOWED, "method_not_allowed", 405, "method_not_allowed", LOG_DEBUG, "deny")      \
    /* the forward-auth listener: who asks and what it names (fauth.h) */                          \
    X(FA_UNTRUSTED_PEER, "forward_auth_untrusted_peer", 403, "forbidden", LOG_WARN, "deny")        \
    X(FA_METHOD_MISSING, "forward_auth_method_missing", 400, "bad_request", LOG_INFO, "reject")    \
    X(FA_URI_MISSING, "forward_auth_uri_missing", 400, "bad_request", LOG_INFO, "reject")          \
    X(FA_AMBIGUOUS, "forward_auth_ambiguous", 400, "bad_request", LOG_INFO, "reject")              \
    /* cors preflights, answered by the gateway without authentication */                          \
    X(CORS_PREFLIGHT, "cors_preflight", 204, NULL, LOG_DEBUG, "allow")                             \
    X(CORS_ORIGIN_DENIED, "cors_origin_denied", 403, "forbidden", LOG_DEBUG, "deny")               \
    X(CORS_METHOD_DENIED, "cors_method_denied", 403, "forbidden", LOG_DEBUG, "deny")               \
    X(CORS_HEADERS_DENIED, "cors_headers_denied", 403, "forbidden", LOG_DEBUG, "deny")             \
    /* credentials (401) */                                                                        \
    X(TOKEN_MISSING, "token_missing", 401, "unauthorized", LOG_DEBUG, "deny")                      \
    X(AUTH_HEADER_DUPLICATE, "auth_header_duplicate", 401, "unauthorized", LOG_DEBUG, "deny")      \
    X(AUTH_HEADER_INVALID, "auth_header_invalid", 401, "unauthorized", LOG_DEBUG, "deny")          \
    X(TOKEN_MALFORMED, "token_malformed", 401, "unauthorized", LOG_DEBUG, "deny")                  \
    X(TOKEN_ALG, "token_alg", 401, "unauthorized", LOG_DEBUG, "deny")                              \
    X(TOKEN_SIGNATURE, "token_signature", 401, "unauthorized", LOG_DEBUG, "deny")                  \
    X(TOKEN_EXPIRED, "token_expired", 401, "unauthorized", LOG_DEBUG, "deny")                      \
    X(TOKEN_NOT_YET_VALID, "token_not_yet_valid", 401, "unauthorized", LOG_DEBUG, "deny")          \
    X(TOKEN_ISSUER, "token_issuer", 401, "unauthorized", LOG_DEBUG, "deny")                        \
    X(TOKEN_CLAIMS, "token_claims", 401, "unauthorized", LOG_DEBUG, "deny")                        \
    X(TOKEN_INVALID, "token_invalid", 401, "unauthorized", LOG_ERROR, "deny")                      \
    /* authorization (403) */                                                                      \
    X(ORG_ID_MISSING, "org_id_missing", 403, "forbidden", LOG_DEBUG, "deny")                       \
    X(NOT_MEMBER, "not_member", 403, "forbidden", LOG_DEBUG, "deny")                               \
    X(ROLE_BELOW_MINIMUM, "role_below_minimum", 403, "forbidden", LOG_DEBUG, "deny")               \
    X(ROLE_MISMATCH, "role_mismatch", 403, "forbidden", LOG_DEBUG, "deny")                         \
    X(MISSING_PERMISSION, "missing_permission", 403, "forbidden", LOG_DEBUG, "deny")               \
    X(POLICY_ERROR, "policy_error", 403, "forbidden", LOG_ERROR, "deny")                           \
    /* a WebSocket handshake on a route without websocket: true */                                 \
    X(WEBSOCKET_NOT_ALLOWED, "websocket_not_allowed", 403, "forbidden", LOG_DEBUG, "deny")         \
    /* the gateway itself */                                                                       \
    X(KEYS_UNAVAILABLE, "keys_unavailable", 503, "unavailable", LOG_WARN, "error")                 \
    X(TUNNEL_LIMIT, "tunnel_limit", 503, "unavailable", LOG_WARN, "error")                         \
    X(IDENTITY_TOO_LARGE, "identity_too_large", 431, "request_header_fields_too_large", LOG_WARN,  \
      "reject")                                                                                    \
    /* upstream exchange (transport) */                                                            \
    X(UPSTREAM_CONNECT, "upstream_connect", 502, "bad_gateway", LOG_WARN, "error")                 \
    X(UPSTREAM_TIMEOUT, "upstream_timeout", 504, "gateway_timeout", LOG_WARN, "error")             \
    X(UPSTREAM_RESET, "upstream_reset", 502, "bad_gateway", LOG_WARN, "error")                     \
    X(UPSTREAM_PROTOCOL, "upstream_protocol", 502, "bad_gateway", LOG_WARN, "error")               \
    X(UPSTREAM_TLS, "upstream_tls", 502, "bad_gateway", LOG_WARN, "error")                         \
    X(UPSTREAM_INTERNAL, "upstream_internal", 502, "bad_gateway", LOG_WARN, "error")               \
    X(UPSTREAM_HEADERS_TOO_LARGE, "upstream_headers_too_large", 502, "bad_gateway", LOG_WARN,      \
      "error")

typedef enum ag_reason {
#define AG_REASON_ENUM(e, name, status, error, level, label) AR_##e,
    AG_REASONS(AG_REASON_ENUM)
#undef AG_REASON_ENUM
        AR__COUNT
} ag_reason;

typedef struct reason_row {
    const char *name;  /* reason string: body "reason", access log, metric label */
    int status;        /* HTTP status of the gateway's own answer; 0: none */
    const char *error; /* body "error"; NULL when status is 0 */
    log_level level;   /* how loud the error log is about it */
    const char *label; /* metric "decision" label: allow, deny, reject, error, aborted */
} reason_row;

/* The row of r; the AR_INTERNAL row for a value outside the enum. */
const reason_row *reason_row_of(ag_reason r);
const char *reason_name(ag_reason r);
int reason_status(ag_reason r);
const char *reason_error(ag_reason r);
/* Is r one of the rows under which a request is forwarded? */
bool reason_forwards(ag_reason r);
/* Exact lookup by string; false (and *out = AR_INTERNAL) when unknown. */
bool reason_from_name(const char *name, ag_reason *out);

#endif
