/* Unit tests for cors: origin matching (exact, wildcard subdomain and the
 * look-alikes it must refuse), the preflight verdict and the header set. */
#include <string.h>
#include <stdint.h>
#include <stdio.h>

#include "../../src/cors.h"
#include "../../src/httpx.h"
#include "testutil.h"

static cors_policy *compile(const char **origins, size_t n, bool creds, char *err, size_t errlen)
{
    static const char *hdrs[] = {"Authorization", "Content-Type"};
    static const char *expose[] = {"X-Total", "ETag"};
    cors_spec s = {
        .origins = (char **)(uintptr_t)origins,
        .norigins = n,
        .methods = HX_M_GET | HX_M_POST,
        .headers = (char **)(uintptr_t)hdrs,
        .nheaders = 2,
        .expose = (char **)(uintptr_t)expose,
        .nexpose = 2,
        .credentials = creds,
        .max_age = 600,
    };
    return cors_compile(&s, err, errlen);
}

static bool allowed(const cors_policy *p, const char *o)
{
    return cors_origin_allowed(p, o, strlen(o));
}

START_TEST(test_exact_and_wildcard)
{
    const char *o[] = {"https://app.example.com", "https://*.example.com", "http://localhost:3000"};
    char err[256];
    cors_policy *p = compile(o, 3, true, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert(allowed(p, "https://app.example.com"));
    ck_assert(allowed(p, "https://a.example.com"));
    ck_assert(allowed(p, "https://a.b.example.com"));
    ck_assert(allowed(p, "HTTPS://App.Example.COM"));     /* scheme and host case-insensitive */
    ck_assert(allowed(p, "https://app.example.com:443")); /* default port is implicit */
    ck_assert(allowed(p, "http://localhost:3000"));
    /* look-alikes */
    ck_assert(!allowed(p, "https://example.com"));
    ck_assert(!allowed(p, "https://evil-example.com"));
    ck_assert(!allowed(p, "https://evilexample.com"));
    ck_assert(!allowed(p, "https://example.com.evil.net"));
    ck_assert(!allowed(p, "https://app.example.com.evil.net"));
    ck_assert(!allowed(p, "https://.example.com"));
    ck_assert(!allowed(p, "https://a..example.com"));
    ck_assert(!allowed(p, "http://app.example.com"));       /* scheme */
    ck_assert(!allowed(p, "https://app.example.com:8443")); /* port */
    ck_assert(!allowed(p, "https://a.example.com:444"));
    ck_assert(!allowed(p, "https://a.example.com:0443"));
    ck_assert(!allowed(p, "http://localhost:03000"));
    ck_assert(!allowed(p, "http://localhost"));
    ck_assert(!allowed(p, "http://localhost:30000"));
    ck_assert(!allowed(p, "http://localhost:3000/"));
    ck_assert(!allowed(p, "https://app.example.com/path"));
    ck_assert(!allowed(p, "https://user@app.example.com"));
    ck_assert(!allowed(p, "https://app.example.com."));
    ck_assert(!allowed(p, "null"));
    ck_assert(!allowed(p, ""));
    ck_assert(!allowed(p, "*"));
    ck_assert(!allowed(p, "https://*.example.com")); /* a request cannot use the wildcard */
    ck_assert(!allowed(p, "ftp://app.example.com"));
    ck_assert(!cors_origin_allowed(p, "https://app.example.com", 10));
    ck_assert(!cors_origin_allowed(NULL, "https://app.example.com", 23));
    cors_free(p);
}
END_TEST

START_TEST(test_compile_refuses)
{
    char err[256];
    const char *star[] = {"*"};
    ck_assert(compile(star, 1, true, err, sizeof(err)) == NULL);
    ck_assert_msg(strstr(err, "allow_credentials") != NULL, "%s", err);
    const char *nul[] = {"null"};
    ck_assert(compile(nul, 1, false, err, sizeof(err)) == NULL);
    ck_assert(strstr(err, "null") != NULL);
    const char *bad[] = {"https://a.*.example.com", "https://example.com/", "example.com",
                         "https://*example.com",    "https://*.",           "https://x:0",
                         "https://x:99999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_msg(compile(&bad[i], 1, false, err, sizeof(err)) == NULL, "%s", bad[i]);
        ck_assert_msg(strstr(err, "is not an origin") != NULL, "%s: %s", bad[i], err);
    }
    /* No origins: CORS off, no error. */
    ck_assert(compile(NULL, 0, false, err, sizeof(err)) == NULL);
    ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(test_star_without_credentials)
{
    const char *o[] = {"*"};
    char err[256];
    cors_policy *p = compile(o, 1, false, err, sizeof(err));
    ck_assert(p != NULL);
    ck_assert(allowed(p, "https://anything.test"));
    ck_assert(allowed(p, "null"));
    ck_assert(!allowed(p, "not an origin"));
    cors_free(p);
}
END_TEST

START_TEST(test_preflight)
{
    const char *o[] = {"https://*.example.com"};
    char err[256];
    cors_policy *p = compile(o, 1, false, err, sizeof(err));
    const char *org = "https://a.example.com";
    size_t ol = strlen(org);
    ck_assert_int_eq(cors_preflight(p, org, ol, "GET", 3, NULL, 0), CORS_ALLOW);
    ck_assert_int_eq(cors_preflight(p, org, ol, "POST", 4, "authorization, Content-Type", 27),
                     CORS_ALLOW);
    ck_assert_int_eq(cors_preflight(p, org, ol, "POST", 4, "authorization,,", 15), CORS_ALLOW);
    ck_assert_int_eq(cors_preflight(p, org, ol, "DELETE", 6, NULL, 0), CORS_DENY_METHOD);
    ck_assert_int_eq(cors_preflight(p, org, ol, "get", 3, NULL, 0), CORS_DENY_METHOD);
    ck_assert_int_eq(cors_preflight(p, org, ol, "", 0, NULL, 0), CORS_DENY_METHOD);
    ck_assert_int_eq(cors_preflight(p, org, ol, "GET\0x", 5, NULL, 0), CORS_DENY_METHOD);
    ck_assert_int_eq(cors_preflight(p, org, ol, "GET ", 4, NULL, 0), CORS_DENY_METHOD);
    ck_assert_int_eq(cors_preflight(p, org, ol, "GET", 3, "x-other", 7), CORS_DENY_HEADERS);
    ck_assert_int_eq(cors_preflight(p, org, ol, "GET", 3, "authorization x", 15),
                     CORS_DENY_HEADERS);
    ck_assert_int_eq(cors_preflight(p, "https://example.com", 19, "GET", 3, NULL, 0),
                     CORS_DENY_ORIGIN);
    ck_assert_int_eq(cors_preflight(NULL, org, ol, "GET", 3, NULL, 0), CORS_DENY_ORIGIN);
    cors_free(p);
}
END_TEST

typedef struct seen {
    char buf[1024];
} seen;

static int collect(void *ctx, const char *name, const char *value)
{
    seen *s = ctx;
    size_t l = strlen(s->buf);
    snprintf(s->buf + l, sizeof(s->buf) - l, "%s=%s|", name, value);
    return 0;
}

START_TEST(test_response_headers)
{
    const char *o[] = {"https://app.example.com"};
    char err[256];
    cors_policy *p = compile(o, 1, true, err, sizeof(err));
    seen s = {{0}};
    cors_request rq = {.origin = "https://app.example.com", .origin_len = 23};
    ck_assert_int_eq(cors_response_headers(p, &rq, collect, &s), 0);
    ck_assert_str_eq(s.buf, "Vary=Origin|Access-Control-Allow-Origin=https://app.example.com|"
                            "Access-Control-Allow-Credentials=true|"
                            "Access-Control-Expose-Headers=X-Total, ETag|");
    /* A foreign origin is never reflected: only Vary. */
    memset(&s, 0, sizeof(s));
    rq = (cors_request){.origin = "https://evil.test", .origin_len = 17};
    ck_assert_int_eq(cors_response_headers(p, &rq, collect, &s), 0);
    ck_assert_str_eq(s.buf, "Vary=Origin|");
    memset(&s, 0, sizeof(s));
    rq = (cors_request){0};
    ck_assert_int_eq(cors_response_headers(p, &rq, collect, &s), 0);
    ck_assert_str_eq(s.buf, "Vary=Origin|");
    memset(&s, 0, sizeof(s));
    rq = (cors_request){.origin = "https://app.example.com",
                        .origin_len = 23,
                        .preflight = true,
                        .method = "POST",
                        .method_len = 4,
                        .req_headers = "authorization",
                        .req_headers_len = 13};
    ck_assert_int_eq(cors_response_headers(p, &rq, collect, &s), 0);
    ck_assert_str_eq(s.buf, "Vary=Origin|Access-Control-Allow-Origin=https://app.example.com|"
                            "Access-Control-Allow-Credentials=true|"
                            "Access-Control-Allow-Methods=POST|"
                            "Access-Control-Allow-Headers=authorization|"
                            "Access-Control-Max-Age=600|");
    cors_free(p);
    const char *star[] = {"*"};
    p = compile(star, 1, false, err, sizeof(err));
    memset(&s, 0, sizeof(s));
    rq = (cors_request){.origin = "https://x.test", .origin_len = 14};
    ck_assert_int_eq(cors_response_headers(p, &rq, collect, &s), 0);
    ck_assert_str_eq(s.buf, "Access-Control-Allow-Origin=*|"
                            "Access-Control-Expose-Headers=X-Total, ETag|");
    cors_free(p);
    ck_assert(cors_header_is_ours("Access-Control-Allow-Origin", 27));
    ck_assert(!cors_header_is_ours("Access-Control-", 15));
    ck_assert(!cors_header_is_ours("X-Access-Control-Allow", 22));
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("cors");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_exact_and_wildcard);
    tcase_add_test(tc, test_compile_refuses);
    tcase_add_test(tc, test_star_without_credentials);
    tcase_add_test(tc, test_preflight);
    tcase_add_test(tc, test_response_headers);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
