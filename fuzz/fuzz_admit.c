/* libFuzzer target: request-head admission (src/admit.h).
 * Input: byte 0 picks the HTTP version and a limits profile; the rest is a
 * header block, one "Name: value" per '\n'-ended line, split at the first ':'
 * with leading blanks dropped from the value (a line without ':' becomes a
 * name with a NULL value).
 * Properties: a refusal has status 400, 413, 431 or 501 with a known reason
 * that fits its status, and closes; an admitted head has exactly one framing,
 * which agrees with its headers (chunked iff one Transfer-Encoding, a length
 * iff one Content-Length, never both), respects the limits, has one Host on
 * HTTP/1.1 and only token names; the answer is deterministic; loosening every
 * limit never turns an admitted head into a refused one nor changes its
 * framing. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "admit.h"
#include "fuzz_common.h"
#include "httpx.h"
#include "util.h"

#define MAXH 1100

static gate_header hs[MAXH];

static bool same(const adm_result *a, const adm_result *b)
{
    return a->outcome == b->outcome && a->status == b->status && a->close == b->close &&
           a->framing == b->framing && a->body_length == b->body_length && a->reason == b->reason &&
           a->error == b->error;
}

static bool reason_fits(int status, const char *reason)
{
    static const char *const r400[] = {"bad_header_name", "bad_header_value",
                                       "bad_host",        "framing_te_and_cl",
                                       "framing_bad_te",  "framing_bad_content_length"};
    switch (status) {
    case 400:
        for (size_t i = 0; i < sizeof(r400) / sizeof(r400[0]); i++)
            if (strcmp(reason, r400[i]) == 0)
                return true;
        return false;
    case 413:
        return strcmp(reason, "limit_body") == 0;
    case 431:
        return strcmp(reason, "limit_headers") == 0;
    case 501:
        return strcmp(reason, "framing_bad_te") == 0;
    default:
        return false;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    size_t n = 0;
    while (p < end && n < MAXH) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon) {
            const char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            hs[n++] = (gate_header){p, (size_t)(colon - p), v, (size_t)(eol - v)};
        } else {
            hs[n++] = (gate_header){p, (size_t)(eol - p), NULL, 0};
        }
        p = eol + 1;
    }
    static const cfg_limits profiles[] = {
        {.max_header_bytes = 16384, .max_headers = 100, .max_body_bytes = 0},
        {.max_header_bytes = 256, .max_headers = 4, .max_body_bytes = 10},
        {.max_header_bytes = 1024, .max_headers = 1, .max_body_bytes = 1},
        {.max_header_bytes = 1 << 24, .max_headers = 10000, .max_body_bytes = 1000000},
    };
    cfg_limits lim = profiles[(sel >> 1) & 3];
    adm_request req = {.method = "POST",
                       .version = (sel & 1) ? ADM_HTTP_10 : ADM_HTTP_11,
                       .headers = hs,
                       .nheaders = n};
    adm_result r = adm_check(&req, &lim);
    adm_result again = adm_check(&req, &lim);
    FUZZ_CHECK(same(&r, &again));

    size_t n_te = 0, n_cl = 0, n_host = 0, bytes = 0;
    bool names_ok = true;
    for (size_t i = 0; i < n; i++) {
        n_te += ag_streq_ci(hs[i].name, hs[i].name_len, "transfer-encoding");
        n_cl += ag_streq_ci(hs[i].name, hs[i].name_len, "content-length");
        n_host += ag_streq_ci(hs[i].name, hs[i].name_len, "host");
        names_ok &= hx_valid_header_name(hs[i].name, hs[i].name_len);
        bytes += hs[i].name_len + hs[i].value_len + 4;
    }

    if (r.outcome == ADM_REFUSED) {
        FUZZ_CHECK(r.status == 400 || r.status == 413 || r.status == 431 || r.status == 501);
        FUZZ_CHECK(r.error != NULL && r.reason != NULL && r.close);
        FUZZ_CHECK(reason_fits(r.status, r.reason));
        return 0;
    }
    FUZZ_CHECK(r.outcome == ADM_ADMITTED);
    FUZZ_CHECK(r.status == 0 && r.error == NULL && r.reason == NULL);
    FUZZ_CHECK(n <= lim.max_headers && n <= ADM_MAX_HEADERS_HARD && bytes <= lim.max_header_bytes);
    FUZZ_CHECK(names_ok);
    FUZZ_CHECK(n_host <= 1 && (req.version != ADM_HTTP_11 || n_host == 1));
    /* exactly one framing, and the one the headers declare */
    FUZZ_CHECK(!(n_te > 0 && n_cl > 0));
    switch (r.framing) {
    case ADM_BODY_NONE:
        FUZZ_CHECK(n_te == 0 && n_cl == 0 && r.body_length == 0);
        break;
    case ADM_BODY_LENGTH:
        FUZZ_CHECK(n_cl == 1 && n_te == 0);
        FUZZ_CHECK(lim.max_body_bytes == 0 || r.body_length <= lim.max_body_bytes);
        break;
    case ADM_BODY_CHUNKED:
        FUZZ_CHECK(n_te == 1 && n_cl == 0 && r.body_length == 0);
        FUZZ_CHECK(req.version == ADM_HTTP_11);
        break;
    default:
        FUZZ_CHECK(!"framing out of range");
    }
    cfg_limits loose = {.max_header_bytes = SIZE_MAX, .max_headers = SIZE_MAX, .max_body_bytes = 0};
    adm_result l = adm_check(&req, &loose);
    FUZZ_CHECK(l.outcome == ADM_ADMITTED && l.framing == r.framing &&
               l.body_length == r.body_length);
    return 0;
}
