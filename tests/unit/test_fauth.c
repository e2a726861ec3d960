/* The forward-auth listener's pure part (src/fauth.h): which original request
 * a check request names under each dialect, and every refusal of a call that
 * names none, half of one or more than one. Headers are "Name: value" lines
 * split at the first ':' with leading blanks dropped, as the listener gets
 * them; values are NUL-terminated there. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "fauth.h"
#include "testutil.h"

#define MAXH 16

typedef struct call_buf {
    gate_header h[MAXH];
    gate_header out[MAXH];
    fa_call call;
    fa_original o;
} call_buf;

static void add(call_buf *b, const char *line)
{
    const char *colon = strchr(line, ':');
    ck_assert_ptr_nonnull(colon);
    ck_assert_uint_lt(b->call.nheaders, MAXH);
    const char *v = colon + 1;
    while (*v == ' ')
        v++;
    b->h[b->call.nheaders++] = (gate_header){line, (size_t)(colon - line), v, strlen(v)};
}

static cfg_forward_auth cfg_of(unsigned dialects, const char *prefix)
{
    cfg_forward_auth c;
    memset(&c, 0, sizeof(c));
    c.dialects = dialects;
    c.envoy_path_prefix = (char *)ag_unconst(prefix);
    return c;
}

/* Runs the call: method and target of the check request, then header lines
 * up to a NULL. */
static void run(call_buf *b, const cfg_forward_auth *c, const char *method, const char *target,
                const char *const *lines)
{
    memset(b, 0, sizeof(*b));
    b->call.method = method;
    b->call.target = target;
    b->call.target_len = strlen(target);
    b->call.headers = b->h;
    for (size_t i = 0; lines[i]; i++)
        add(b, lines[i]);
    fa_original_of(c, &b->call, b->out, &b->o);
}

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

static void expect_ok(const call_buf *b, unsigned dialect, const char *method, const char *target)
{
    ck_assert_int_eq(b->o.code, AR_OK);
    ck_assert_uint_eq(b->o.dialect, dialect);
    ck_assert_str_eq(b->o.method, method);
    ck_assert_uint_eq(b->o.target_len, strlen(target));
    ck_assert_int_eq(memcmp(b->o.target, target, b->o.target_len), 0);
}

START_TEST(test_zero_value_refuses)
{
    fa_original o;
    memset(&o, 0, sizeof(o));
    ck_assert_int_ne(o.code, AR_OK);
    ck_assert_int_eq(reason_status(o.code), 500);
}
END_TEST

START_TEST(test_original_dialect)
{
    call_buf b;
    cfg_forward_auth c = cfg_of(CFG_FA_ORIGINAL | CFG_FA_FORWARDED, NULL);
    run(&b, &c, "GET", "/auth",
        L("Host: ag", "X-Original-Method: DELETE", "x-original-uri: /api/org/o1?x=1",
          "Authorization: Bearer t"));
    expect_ok(&b, CFG_FA_ORIGINAL, "DELETE", "/api/org/o1?x=1");
    /* The dialect's headers are not the original request's. */
    ck_assert_uint_eq(b.o.nheaders, 2);
    ck_assert_str_eq(b.out[0].name, "Host: ag");
    ck_assert_uint_eq(b.out[1].name_len, strlen("Authorization"));
}
END_TEST

START_TEST(test_forwarded_dialect)
{
    call_buf b;
    cfg_forward_auth c = cfg_of(CFG_FA_ORIGINAL | CFG_FA_FORWARDED, NULL);
    run(&b, &c, "GET", "/",
        L("X-Forwarded-Method: POST", "X-Forwarded-Uri: /a/%2F/b", "X-Forwarded-Proto: https",
          "X-Forwarded-Host: app"));
    expect_ok(&b, CFG_FA_FORWARDED, "POST", "/a/%2F/b");
    /* Proto and Host are ordinary headers to the decision. */
    ck_assert_uint_eq(b.o.nheaders, 2);
}
END_TEST

START_TEST(test_disabled_dialect_is_not_read)
{
    call_buf b;
    cfg_forward_auth c = cfg_of(CFG_FA_FORWARDED, NULL);
    run(&b, &c, "GET", "/", L("X-Original-Method: GET", "X-Original-URI: /public/x"));
    ck_assert_int_eq(b.o.code, AR_FA_URI_MISSING);
    c = cfg_of(CFG_FA_ORIGINAL, NULL);
    run(&b, &c, "GET", "/",
        L("X-Original-Method: GET", "X-Original-URI: /admin", "X-Forwarded-Method: GET",
          "X-Forwarded-Uri: /public/x"));
    expect_ok(&b, CFG_FA_ORIGINAL, "GET", "/admin");
}
END_TEST

START_TEST(test_two_dialects_are_ambiguous)
{
    call_buf b;
    cfg_forward_auth c = cfg_of(CFG_FA_ORIGINAL | CFG_FA_FORWARDED, NULL);
    /* A client's forged X-Original-URI next to Traefik's own headers. */
    run(&b, &c, "GET", "/",
        L("X-Forwarded-Method: GET", "X-Forwarded-Uri: /admin", "X-Original-URI: /public/x"));
    ck_assert_int_eq(b.o.code, AR_FA_AMBIGUOUS);
}
END_TEST

START_TEST(test_repeated_header_is_ambiguous)
{
    call_buf b;
    cfg_forward_auth c = cfg_of(CFG_FA_ORIGINAL, NULL);
    run(&b, &c, "GET", "/",
        L("X-Original-Method: GET", "X-Original-URI: /public/x", "X-ORIGINAL-URI: /admin"));
    ck_assert_int_eq(b.o.code, AR_FA_AMBIGUOUS);
    run(&b, &c, "GET", "/",
        L("X-Original-Method: GET", "X-Original-Method: DELETE", "X-Original-URI: /a"));
    ck_assert_int_eq(b.o.code, AR_FA_AMBIGUOUS);
}
END_TEST

START_TEST(test_half_a_pair)
{
    call_buf b;
    cfg_forward_auth c = cfg_of(CFG_FA_ORIGINAL | CFG_FA_FORWARDED, NULL);
    run(&b, &c, "GET", "/", L("X-Original-URI: /api/me"));
    ck_assert_int_eq(b.o.code, AR_FA_METHOD_MISSING);
    run(&b, &c, "GET", "/", L("X-Forwarded-Method: GET"));
    ck_assert_int_eq(b.o.code, AR_FA_URI_MISSING);
    run(&b, &c, "GET", "/", L("X-Original-Method: GET", "X-Original-URI:"));
    ck_assert_int_eq(b.o.code, AR_FA_URI_MISSING);
    run(&b, &c, "GET", "/", L("Host: x"));
    ck_assert_int_eq(b.o.code, AR_FA_URI_MISSING);
    ck_assert_int_eq(reason_status(AR_FA_METHOD_MISSING), 400);
}
END_TEST

START_TEST(test_method_must_be_a_token)
{
    call_buf b;
    cfg_forward_auth c = cfg_of(CFG_FA_ORIGINAL, NULL);
    run(&b, &c, "GET", "/", L("X-Original-Method: GE T", "X-Original-URI: /a"));
    ck_assert_int_eq(b.o.code, AR_FA_METHOD_MISSING);
    run(&b, &c, "GET", "/", L("X-Original-Method:", "X-Original-URI: /a"));
    ck_assert_int_eq(b.o.code, AR_FA_METHOD_MISSING);
    run(&b, &c, "GET", "/",
        L("X-Original-Method: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "X-Original-URI: /a"));
    ck_assert_int_eq(b.o.code, AR_FA_METHOD_MISSING);
    run(&b, &c, "GET", "/", L("X-Original-Method: PROPFIND", "X-Original-URI: /a"));
    expect_ok(&b, CFG_FA_ORIGINAL, "PROPFIND", "/a");
}
END_TEST

START_TEST(test_target_passed_raw)
{
    /* The canonicaliser in gate sees the target byte for byte: dot segments,
     * encoded slashes and a second '?' are its to judge. */
    call_buf b;
    cfg_forward_auth c = cfg_of(CFG_FA_ORIGINAL, NULL);
    run(&b, &c, "GET", "/", L("X-Original-Method: GET", "X-Original-URI: /a/../b?x=1?y=2"));
    expect_ok(&b, CFG_FA_ORIGINAL, "GET", "/a/../b?x=1?y=2");
}
END_TEST

START_TEST(test_envoy_dialect)
{
    call_buf b;
    cfg_forward_auth c = cfg_of(CFG_FA_ENVOY | CFG_FA_ORIGINAL, "/ext-authz");
    run(&b, &c, "PATCH", "/ext-authz/api/org/o1?q=1", L("Host: app", "Authorization: Bearer t"));
    expect_ok(&b, CFG_FA_ENVOY, "PATCH", "/api/org/o1?q=1");
    ck_assert_uint_eq(b.o.nheaders, 2);
    /* The prefix alone, or a longer first segment, is not a check request. */
    run(&b, &c, "GET", "/ext-authz", L("Host: app"));
    ck_assert_int_eq(b.o.code, AR_FA_URI_MISSING);
    run(&b, &c, "GET", "/ext-authzX/api", L("Host: app"));
    ck_assert_int_eq(b.o.code, AR_FA_URI_MISSING);
    /* Another dialect's headers on an Envoy path: refused, not chosen. */
    run(&b, &c, "GET", "/ext-authz/public/x",
        L("X-Original-Method: GET", "X-Original-URI: /admin"));
    ck_assert_int_eq(b.o.code, AR_FA_AMBIGUOUS);
    /* "/": the whole path is the original one. */
    c = cfg_of(CFG_FA_ENVOY, "/");
    run(&b, &c, "DELETE", "/api/x", L("Host: app"));
    expect_ok(&b, CFG_FA_ENVOY, "DELETE", "/api/x");
}
END_TEST

START_TEST(test_cidr)
{
    na_cidr v[3];
    ck_assert_int_eq(na_cidr_parse("127.0.0.1/32", &v[0]), 0);
    ck_assert_int_eq(na_cidr_parse("10.0.0.0/8", &v[1]), 0);
    ck_assert_int_eq(na_cidr_parse("fd00::/8", &v[2]), 0);
    na_cidr bad;
    ck_assert_int_eq(na_cidr_parse("10.1.0.0/8", &bad), -1); /* host bits */
    ck_assert_int_eq(na_cidr_parse("10.0.0.0/33", &bad), -1);
    ck_assert_int_eq(na_cidr_parse("10.0.0.0/", &bad), -1);
    ck_assert_int_eq(na_cidr_parse("10.0.0.0/08", &bad), -1);
    ck_assert_int_eq(na_cidr_parse("localhost", &bad), -1);
    ck_assert_int_eq(na_cidr_parse("", &bad), -1);
    ck_assert_int_eq(bad.family, 0);
    struct sockaddr_in a4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.9.8.7", &a4.sin_addr);
    ck_assert(na_cidr_match(v, 3, (struct sockaddr *)&a4));
    inet_pton(AF_INET, "127.0.0.2", &a4.sin_addr);
    ck_assert(!na_cidr_match(v, 3, (struct sockaddr *)&a4));
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &a6.sin6_addr);
    ck_assert(na_cidr_match(v, 3, (struct sockaddr *)&a6));
    inet_pton(AF_INET6, "fd12::1", &a6.sin6_addr);
    ck_assert(na_cidr_match(v, 3, (struct sockaddr *)&a6));
    inet_pton(AF_INET6, "fe80::1", &a6.sin6_addr);
    ck_assert(!na_cidr_match(v, 3, (struct sockaddr *)&a6));
    ck_assert(!na_cidr_match(v, 0, (struct sockaddr *)&a6));
    ck_assert(!na_cidr_match(v, 3, NULL));
    na_cidr zero;
    memset(&zero, 0, sizeof(zero));
    inet_pton(AF_INET, "0.0.0.0", &a4.sin_addr);
    ck_assert(!na_cidr_match(&zero, 1, (struct sockaddr *)&a4));
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("fauth");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_zero_value_refuses);
    tcase_add_test(tc, test_original_dialect);
    tcase_add_test(tc, test_forwarded_dialect);
    tcase_add_test(tc, test_disabled_dialect_is_not_read);
    tcase_add_test(tc, test_two_dialects_are_ambiguous);
    tcase_add_test(tc, test_repeated_header_is_ambiguous);
    tcase_add_test(tc, test_half_a_pair);
    tcase_add_test(tc, test_method_must_be_a_token);
    tcase_add_test(tc, test_target_passed_raw);
    tcase_add_test(tc, test_envoy_dialect);
    tcase_add_test(tc, test_cidr);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
