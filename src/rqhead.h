/* rqhead: an HTTP/1.x request head, as an answer-only listener (the
 * forward-auth listener, hsrv.h) reads it. Pure: no I/O, no allocation.
 *
 * Two steps, so that a head arriving in pieces is scanned once and parsed
 * once: rqh_head_end finds where a complete head ends, then rqh_parse splits
 * that head in place. The grammar is the strict one of RFC 9112 that a proxy
 * in front of us actually sends: CRLF line ends only, one SP between the three
 * parts of the request line, HTTP/1.0 or HTTP/1.1, no line folding, no
 * whitespace before a header's colon. What the listener's caller judges anyway
 * (header name and value characters, Host, framing values, sizes) is left to
 * admission (admit.h), so that both listeners give the same reasons. */
#ifndef AG_RQHEAD_H
#define AG_RQHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gate.h"
#include "reason.h"

/* Length of the complete head at the start of buf (through its empty line:
 * CRLF, or a bare LF that rqh_parse refuses), or 0 while it is incomplete. *scan is where the
 * search resumes: 0 for a new head, then kept by the caller between calls as more bytes arrive.
 * Empty lines before the request line are not a head end (the caller skips them with
 * rqh_skip_empty_lines first). */
size_t rqh_head_end(const char *buf, size_t len, size_t *scan);

/* How many leading CRLF pairs (RFC 9112 2.2: an empty line before the request
 * line is ignored) buf starts with, in bytes. */
size_t rqh_skip_empty_lines(const char *buf, size_t len);

/* True once buf holds the whole request line (a LF was seen). */
bool rqh_has_request_line(const char *buf, size_t len);

typedef struct rqh_head {
    /* AR_OK when the head parsed; otherwise the refusal (the zero value,
     * AR_INTERNAL, refuses too). */
    ag_reason code;
    const char *method; /* NUL-terminated in place */
    size_t method_len;
    const char *target; /* NUL-terminated in place */
    size_t target_len;
    int minor; /* HTTP/1.<minor>: 0 or 1 */
    size_t nheaders;
    /* What the listener needs to keep the connection in step: */
    bool keep_alive;      /* by version and Connection tokens */
    bool expect_continue; /* Expect: 100-continue */
    bool has_te;          /* any Transfer-Encoding: the body cannot be skipped */
    int n_content_length;
    bool content_length_ok; /* exactly one, all digits, no overflow */
    uint64_t content_length;
} rqh_head;

/* Parse the head buf[0..len) (len from rqh_head_end) in place: names, values,
 * method and target become NUL-terminated inside buf. Header lines go to
 * hdrs[0..cap); a head with more than cap lines is AR_LIMIT_HEADERS.
 * Refusals: AR_BAD_REQUEST_LINE, AR_HTTP_VERSION, AR_BAD_HEADER_NAME (no
 * colon, empty name, whitespace before the colon), AR_BAD_HEADER_VALUE (a
 * folded line, a bare CR or a NUL), AR_LIMIT_HEADERS. */
void rqh_parse(char *buf, size_t len, gate_header *hdrs, size_t cap, rqh_head *out);

#endif
