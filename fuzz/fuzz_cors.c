/* libFuzzer target: CORS origin matching and the answer built from request
 * bytes. Input: Origin, Access-Control-Request-Method and -Headers values
 * separated by '\n'. Properties: an allowed origin is an http(s) origin
 * without path, userinfo, whitespace or control bytes whose host is one the
 * policy names (exact, or under ".example.com"); every header value built is
 * a valid header value, and Access-Control-Allow-Origin is the request's
 * origin byte for byte; a foreign origin gets Vary only; an allowed
 * preflight asked for a method the policy names. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cors.h"
#include "fuzz_common.h"
#include "httpx.h"
#include "util.h"

static cors_policy *pol;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *origins[] = {"https://app.example.com", "https://*.example.com",
                                    "http://localhost:3000"};
    static const char *hdrs[] = {"Authorization", "Content-Type"};
    cors_spec s = {
        .origins = (char **)(uintptr_t)origins,
        .norigins = 3,
        .methods = HX_M_GET | HX_M_POST,
        .headers = (char **)(uintptr_t)hdrs,
        .nheaders = 2,
        .credentials = true,
        .max_age = 600,
    };
    char err[256];
    pol = cors_compile(&s, err, sizeof(err));
    FUZZ_CHECK(pol != NULL);
    return 0;
}

typedef struct seen {
    const cors_request *rq;
    int n;
    bool acao;
} seen;

static int check_header(void *ctx, const char *name, const char *value)
{
    seen *s = ctx;
    s->n++;
    FUZZ_CHECK(hx_valid_header_name(name, strlen(name)));
    FUZZ_CHECK(hx_valid_header_value(value, strlen(value)));
    if (strcmp(name, "Access-Control-Allow-Origin") == 0) {
        s->acao = true;
        FUZZ_CHECK(strlen(value) == s->rq->origin_len &&
                   memcmp(value, s->rq->origin, s->rq->origin_len) == 0);
    }
    return 0;
}

static bool ends_with_ci(const char *s, size_t n, const char *suffix)
{
    size_t l = strlen(suffix);
    return n >= l && ag_streq_ci(s + n - l, l, suffix);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *v = (const char *)data;
    const char *nl1 = memchr(v, '\n', size);
    size_t ol = nl1 ? (size_t)(nl1 - v) : size;
    const char *m = nl1 ? nl1 + 1 : NULL;
    size_t ml = 0, hl = 0;
    const char *h = NULL;
    if (m) {
        const char *nl2 = memchr(m, '\n', size - (size_t)(m - v));
        ml = nl2 ? (size_t)(nl2 - m) : size - (size_t)(m - v);
        if (nl2) {
            h = nl2 + 1;
            hl = size - (size_t)(h - v);
        }
    }

    bool ok = cors_origin_allowed(pol, v, ol);
    if (ok) {
        FUZZ_CHECK(hx_valid_header_value(v, ol));
        FUZZ_CHECK(memchr(v, ' ', ol) == NULL && memchr(v, '@', ol) == NULL);
        size_t skip = ag_streq_ci(v, ol < 8 ? ol : 8, "https://") ? 8 : 7;
        FUZZ_CHECK(ol > skip && memchr(v + skip, '/', ol - skip) == NULL);
        FUZZ_CHECK(ends_with_ci(v, ol, ".example.com") || ends_with_ci(v, ol, ".example.com:443") ||
                   ends_with_ci(v, ol, "://localhost:3000"));
    }
    cors_request rq = {.origin = v, .origin_len = ol};
    seen s = {.rq = &rq};
    FUZZ_CHECK(cors_response_headers(pol, &rq, check_header, &s) == 0);
    FUZZ_CHECK(s.acao == ok && (ok || s.n == 1));

    if (m) {
        cors_verdict vd = cors_preflight(pol, v, ol, m, ml, h, hl);
        if (vd == CORS_ALLOW) {
            FUZZ_CHECK(ok);
            FUZZ_CHECK((ml == 3 && memcmp(m, "GET", 3) == 0) ||
                       (ml == 4 && memcmp(m, "POST", 4) == 0));
            rq = (cors_request){.origin = v,
                                .origin_len = ol,
                                .preflight = true,
                                .method = m,
                                .method_len = ml,
                                .req_headers = h,
                                .req_headers_len = hl};
            s = (seen){.rq = &rq};
            FUZZ_CHECK(cors_response_headers(pol, &rq, check_header, &s) == 0 && s.acao);
        } else if (!ok) {
            FUZZ_CHECK(vd == CORS_DENY_ORIGIN);
        }
    }
    return 0;
}
