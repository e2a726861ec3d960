/* httpx: HTTP grammar helpers that decide what crosses the gateway: the
 * Authorization bearer grammar, header classification (hop-by-hop, framing,
 * identity look-alikes), request ids. Pure. */
#ifndef AG_HTTPX_H
#define AG_HTTPX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parse an Authorization value: scheme "bearer" in any case, one or more spaces
 * or tabs, then exactly one non-empty token with no whitespace (surrounding
 * whitespace ignored). 0 with *tok and *tok_len pointing into v, or -1 with *reason
 * "auth_header_malformed" / "auth_scheme_not_bearer". */
int hx_parse_bearer(const char *v, size_t len, const char **tok, size_t *tok_len,
                    const char **reason);

/* An RFC 9110 token: tchar only, non-empty (header names, methods). */
bool hx_is_token(const char *s, size_t len);
/* A header name is a token. */
bool hx_valid_header_name(const char *name, size_t len);
/* No CR, LF, NUL or other controls except HTAB. */
bool hx_valid_header_value(const char *v, size_t len);

/* Framing of an upstream response head, given as "Name: value" lines. Returns 0
 * with *content_length (-1 when absent) and *chunked set, or -1 when the
 * framing is ambiguous: Transfer-Encoding repeated or anything but a single
 * "chunked", Content-Length empty, non-numeric or repeated with another value,
 * or both headers at once (case I83). Both upstream clients and the response
 * path decide framing with this one function. */
int hx_resp_framing(const char *hdrs, size_t len, int64_t *content_length, bool *chunked);

/* A client X-Request-Id is kept when 1..128 bytes of [A-Za-z0-9._:-]. */
bool hx_valid_request_id(const char *v, size_t len);

/* The request id of a request with header value v (NULL when it sent none):
 * v when hx_valid_request_id holds, else 24 new hex digits from *state (a
 * per-thread xorshift state, seeded on first use; not a secret, only
 * unlikely to repeat). out has HX_RID_CAP bytes. */
#define HX_RID_CAP 129
void hx_request_id(const char *v, size_t len, uint64_t *state, char *out);

/* Methods we accept, as a bit per method; 0 for anything else (case-sensitive). */
enum {
    HX_M_GET = 1u << 0,
    HX_M_HEAD = 1u << 1,
    HX_M_POST = 1u << 2,
    HX_M_PUT = 1u << 3,
    HX_M_DELETE = 1u << 4,
    HX_M_PATCH = 1u << 5,
    HX_M_OPTIONS = 1u << 6,
    HX_M_ALL = (1u << 7) - 1,
};
unsigned hx_method_bit(const char *m);
/* "GET, HEAD, POST" for an Allow header; writes into out (cap bytes). */
size_t hx_methods_format(unsigned mask, char *out, size_t cap);

#endif
