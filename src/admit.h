/* admit: may this request head be decided at all? The checks the daemon makes
 * on a request head before any policy (header count and size, header grammar,
 * Host, body framing, declared body size), as one pure function so the daemon
 * and `authgate explain` cannot disagree about them. No I/O, no allocation;
 * the result's strings are static.
 *
 * Order is part of the contract (the first failing check names the refusal):
 *   431 limit_headers               more than limits.max_headers (or
 *                                   ADM_MAX_HEADERS_HARD) headers, or their
 *                                   bytes (name + value + 4 each) over
 *                                   limits.max_header_bytes
 *   400 bad_header_name             a name that is not an RFC 9110 token
 *   400 bad_header_value            a control byte other than HTAB in a value
 *   400 bad_host                    HTTP/1.1 without exactly one Host, more than
 *                                   one Host, or a Host that is not
 *                                   uri-host[:port]
 *   400 framing_te_and_cl           Transfer-Encoding together with
 *                                   Content-Length
 *   400/501 framing_bad_te          Transfer-Encoding other than one "chunked"
 *                                   header (501 when other codings precede a
 *                                   final chunked), or on HTTP/1.0
 *   400 framing_bad_content_length  Content-Length repeated, empty, not all
 *                                   digits, or beyond 64 bits
 *   413 limit_body                  declared length over limits.max_body_bytes
 *                                   (a chunked body is counted as it arrives)
 * Every refusal closes the connection. */
#ifndef AG_ADMIT_H
#define AG_ADMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "gate.h"

/* Beyond any configured max_headers: a head with more is refused regardless. */
#define ADM_MAX_HEADERS_HARD 1000

typedef enum adm_version {
    ADM_HTTP_11 = 0, /* what explain assumes unless told otherwise */
    ADM_HTTP_10,     /* anything the front end did not read as HTTP/1.1 */
} adm_version;

typedef enum adm_outcome {
    ADM_REFUSED = 0,
    ADM_ADMITTED,
} adm_outcome;

typedef enum adm_framing {
    ADM_BODY_NONE = 0, /* neither header: no body */
    ADM_BODY_LENGTH,   /* Content-Length: body_length bytes (may be 0) */
    ADM_BODY_CHUNKED,  /* Transfer-Encoding: chunked, length unknown */
} adm_framing;

typedef struct adm_request {
    const char *method; /* no check depends on it today */
    adm_version version;
    const gate_header *headers; /* as received, in order, duplicates kept */
    size_t nheaders;
} adm_request;

typedef struct adm_result {
    adm_outcome outcome;
    int status;           /* refused: 400, 413, 431 or 501; admitted: 0 */
    const char *error;    /* refused: error class of the JSON body */
    const char *reason;   /* refused: stable reason code */
    bool close;           /* the connection must close after the answer */
    adm_framing framing;  /* admitted only */
    uint64_t body_length; /* ADM_BODY_LENGTH only, else 0 */
} adm_result;

adm_result adm_check(const adm_request *req, const cfg_limits *lim);

/* The pieces, exposed for tests: uri-host[:port] (RFC 9112 3.2, RFC 3986
 * 3.2.2); a Transfer-Encoding verdict (0 usable, 400 or 501); a Content-Length
 * (0 with *out, -1 when not a plain decimal that fits 64 bits). */
bool adm_host_ok(const char *v, size_t len);
int adm_te_verdict(const char *v, size_t len);
int adm_content_length(const char *v, size_t len, uint64_t *out);

#endif
