/* canon: the one canonicalizer. It works from the raw request-target (before any
 * decoding by libmicrohttpd) and produces the path that is both matched and
 * forwarded (docs/security.md group C). Also the query-parameter lookup (group D).
 * Pure: no I/O, no allocation (caller-provided bounded buffers). */
#ifndef AG_CANON_H
#define AG_CANON_H

#include <stdbool.h>
#include <stddef.h>

typedef struct canon_opts {
    bool resolve_dot_segments; /* default false: "." / ".." segments are 400 */
    bool merge_slashes;        /* default false: empty segments are 400 */
} canon_opts;

/* Canonicalize an origin-form request-target `raw` (path [ "?" query ]).
 * On success returns 0 and writes the canonical path (NUL-terminated, still
 * percent-encoded, with unreserved %XX decoded and hex digits upper-cased) into
 * out (cap bytes); *query / *query_len point into raw at the raw query (after
 * '?'), or are NULL / 0 when there is none. On rejection returns -1 and sets
 * *reason to a stable code: path_dot_segment, path_encoded_separator,
 * path_control_char, path_empty_segment, path_fragment, path_bad_encoding,
 * path_not_origin_form, uri_too_long. Idempotent on its own output. */
int canon_target(const char *raw, size_t len, const canon_opts *opts, char *out, size_t cap,
                 size_t *out_len, const char **query, size_t *query_len, const char **reason);

/* Percent-decode one canonical path segment (exactly once) into out. Fails (-1)
 * on malformed escapes, NUL/control bytes after decoding, or overflow. */
int canon_decode_segment(const char *seg, size_t len, char *out, size_t cap, size_t *out_len);

typedef enum canon_qstatus {
    CANON_Q_ABSENT = 0,
    CANON_Q_FOUND,
    CANON_Q_AMBIGUOUS, /* repeated, or present in another letter case / encoding */
    CANON_Q_MALFORMED, /* bad escape or control byte in the query */
} canon_qstatus;

/* Look up parameter `name` in a raw query (split on '&', '+' is a space, keys and
 * values percent-decoded once). Exactly one occurrence whose decoded key equals
 * name byte for byte gives FOUND with the decoded value in out. */
canon_qstatus canon_query_get(const char *query, size_t qlen, const char *name, char *out,
                              size_t cap, size_t *out_len);

/* Validate a whole raw query (no control bytes, well-formed escapes). 0 ok. */
int canon_query_check(const char *query, size_t qlen, const char **reason);

#endif
