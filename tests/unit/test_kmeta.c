/* Unit tests for src/kmeta.c: docs/semantics.md section 1 (issuer and
 * request derivation, status meaning) and docs/security.md A19 (key material
 * hygiene: the API key never in clear text on a network, never in a message;
 * unusable keys refused). No network, no files but the key fixtures. */
#include "testutil.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures/tokhelp.h"
#include "kmeta.h"
#include "util.h"

#define SECRET "sk_test_5f1e0c9a2b7d4e3f"

START_TEST(test_auth_host_and_issuer)
{
    char out[512], err[256];
    static const struct {
        const char *url, *host;
    } ok[] = {
        {"https://auth.example.com", "auth.example.com"},
        {"https://auth.example.com/", "auth.example.com"},
        {"https://auth.example.com/some/path?x=1#frag", "auth.example.com"},
        {"https://auth.example.com:8443/", "auth.example.com:8443"},
        {"http://Auth.Example.com:80", "Auth.Example.com:80"}, /* netloc verbatim, as Python */
        {"https://[::1]:9000/x", "[::1]:9000"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(ok); i++) {
        ck_assert_msg(keys_auth_host(ok[i].url, out, sizeof(out), err, sizeof(err)) == 0, "%s: %s",
                      ok[i].url, err);
        ck_assert_str_eq(out, ok[i].host);
    }
    ck_assert_int_eq(
        keys_derive_issuer("http://auth.example.com:8443/a/", out, sizeof(out), err, sizeof(err)),
        0);
    ck_assert_str_eq(out, "https://auth.example.com:8443");
    ck_assert_int_eq(
        keys_derive_issuer("https://auth.example.com/", out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_str_eq(out, "https://auth.example.com");

    static const char *bad[] = {"https://",
                                "https:///path",
                                "auth.example.com",
                                "://x",
                                "https://user:pw@auth.example.com",
                                "https://a b.com",
                                "https://auth.example.com\r\nX-Evil: 1"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        ck_assert_msg(keys_auth_host(bad[i], out, sizeof(out), err, sizeof(err)) == -1, "%s",
                      bad[i]);
        ck_assert_msg(err[0] != '\0', "no message for %s", bad[i]);
        ck_assert_int_eq(keys_derive_issuer(bad[i], out, sizeof(out), err, sizeof(err)), -1);
    }
    ck_assert_int_eq(keys_auth_host(NULL, out, sizeof(out), err, sizeof(err)), -1);
    /* An output buffer too small is an error, never a truncated host. */
    ck_assert_int_eq(keys_auth_host("https://auth.example.com", out, 8, err, sizeof(err)), -1);
    ck_assert_int_eq(keys_derive_issuer("https://auth.example.com", out, 20, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_metadata_url)
{
    char out[512], err[256];
    bool tls = false;
    ck_assert_int_eq(
        keys_metadata_url("https://propelauth-api.com", out, sizeof(out), &tls, err, sizeof(err)),
        0);
    ck_assert_str_eq(out, "https://propelauth-api.com/api/v1/token_verification_metadata");
    ck_assert(tls);
    ck_assert_int_eq(
        keys_metadata_url("https://p.example//", out, sizeof(out), &tls, err, sizeof(err)), 0);
    ck_assert_str_eq(out, "https://p.example/api/v1/token_verification_metadata");
    ck_assert_int_eq(
        keys_metadata_url("https://p.example/prefix/", out, sizeof(out), &tls, err, sizeof(err)),
        0);
    ck_assert_str_eq(out, "https://p.example/prefix/api/v1/token_verification_metadata");

    static const char *loop[] = {"http://127.0.0.1:8080", "http://127.5.0.1/", "http://localhost",
                                 "http://LOCALHOST:1", "http://[::1]:9"};
    for (size_t i = 0; i < AG_ARRAY_LEN(loop); i++) {
        tls = true;
        ck_assert_msg(keys_metadata_url(loop[i], out, sizeof(out), &tls, err, sizeof(err)) == 0,
                      "%s: %s", loop[i], err);
        ck_assert(!tls);
    }
    /* docs/security.md A19: the API key never crosses a network in clear text. */
    static const char *bad[] = {"http://propelauth-api.com",
                                "http://128.0.0.1",
                                "http://localhost.evil.example",
                                "http://127.0.0.1.evil.example",
                                "http://[::2]",
                                "ftp://127.0.0.1",
                                "propelauth-api.com",
                                "https://",
                                "https://x.example/?q=1",
                                "https://u:p@x.example",
                                "https://x.example/a b"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        ck_assert_msg(keys_metadata_url(bad[i], out, sizeof(out), &tls, err, sizeof(err)) == -1,
                      "%s accepted", bad[i]);
        ck_assert(err[0] != '\0');
    }
    ck_assert_int_eq(keys_metadata_url("https://a.example", out, 20, &tls, err, sizeof(err)), -1);
}
END_TEST

/* Found by fuzz/fuzz_kmeta.c: plain http was allowed whenever the text before
 * the first ':' (or inside the brackets) was a loopback address, whatever
 * came after it, so "http://[::1]:90https00" and "http://[::1]x" passed a rule
 * that must name a loopback host. Only ":" and digits may follow it. */
START_TEST(test_metadata_url_plain_http_needs_a_clean_port)
{
    char out[KEYS_MAX_URL_BYTES + 1], err[256];
    bool tls = true;
    static const char *bad[] = {"http://[::1]:90https00/", "http://[::1]evil.example",
                                "http://[::1]]:80",        "http://localhost:80x",
                                "http://127.0.0.1:8080:1", "http://127.0.0.1:-1"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        ck_assert_msg(keys_metadata_url(bad[i], out, sizeof(out), &tls, err, sizeof(err)) == -1,
                      "%s accepted", bad[i]);
        ck_assert_msg(strstr(err, "loopback") != NULL, "%s: %s", bad[i], err);
    }
    static const char *good[] = {"http://[::1]", "http://[::1]:", "http://localhost:65535/p",
                                 "http://127.0.0.1:"};
    for (size_t i = 0; i < AG_ARRAY_LEN(good); i++) {
        tls = true;
        ck_assert_msg(keys_metadata_url(good[i], out, sizeof(out), &tls, err, sizeof(err)) == 0,
                      "%s: %s", good[i], err);
        ck_assert(!tls);
    }
}
END_TEST

START_TEST(test_header_lines)
{
    char *a = NULL, *h = NULL, err[256];
    ck_assert_int_eq(keys_header_lines(SECRET, "auth.example.com:8443", &a, &h, err, sizeof(err)),
                     0);
    ck_assert_str_eq(a, "Authorization: Bearer " SECRET);
    ck_assert_str_eq(h, "X-Propelauth-url: auth.example.com:8443");
    free(a);
    free(h);

    static const char *bad[] = {"", "key with space", "key\r\nX-Injected: 1", "k\x7f",
                                "caf\xc3\xa9"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        a = h = (char *)0x1;
        err[0] = '\0';
        ck_assert_int_eq(keys_header_lines(bad[i], "h", &a, &h, err, sizeof(err)), -1);
        ck_assert_ptr_null(a);
        ck_assert_ptr_null(h);
        ck_assert(err[0] != '\0');
        if (bad[i][0])
            ck_assert_msg(!strstr(err, bad[i]), "message leaks the key: %s", err);
    }
    char longkey[KEYS_MAX_API_KEY_BYTES + 2];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    ck_assert_int_eq(keys_header_lines(longkey, "h", &a, &h, err, sizeof(err)), -1);
    longkey[KEYS_MAX_API_KEY_BYTES] = '\0';
    ck_assert_int_eq(keys_header_lines(longkey, "h", &a, &h, err, sizeof(err)), 0);
    free(a);
    free(h);
    ck_assert_int_eq(keys_header_lines(SECRET, "", &a, &h, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_classify_status)
{
    char msg[256];
    const char *u = "https://p.example/api/v1/token_verification_metadata";
    ck_assert_int_eq(keys_classify_status(200, u, msg, sizeof(msg)), KEYS_OK);
    ck_assert_int_eq(keys_classify_status(400, u, msg, sizeof(msg)), KEYS_FATAL);
    ck_assert_str_eq(msg,
                     "bad request (400 from https://p.example/api/v1/token_verification_metadata)");
    ck_assert_int_eq(keys_classify_status(401, u, msg, sizeof(msg)), KEYS_FATAL);
    ck_assert_str_eq(msg, "API key is incorrect (401 from "
                          "https://p.example/api/v1/token_verification_metadata)");
    ck_assert_int_eq(keys_classify_status(404, u, msg, sizeof(msg)), KEYS_FATAL);
    ck_assert_str_eq(msg, "auth_url is incorrect (404 from "
                          "https://p.example/api/v1/token_verification_metadata)");
    ck_assert_int_eq(keys_classify_status(429, u, msg, sizeof(msg)), KEYS_RETRY);
    ck_assert(strstr(msg, "rate limited (429") == msg);
    static const long retry[] = {500, 502, 503, 504, 599, 0, 204, 301, 302, 403, 405, 418, 600};
    for (size_t i = 0; i < AG_ARRAY_LEN(retry); i++) {
        msg[0] = '\0';
        ck_assert_msg(keys_classify_status(retry[i], u, msg, sizeof(msg)) == KEYS_RETRY, "%ld",
                      retry[i]);
        char num[16];
        snprintf(num, sizeof(num), "%ld", retry[i]);
        ck_assert_msg(strstr(msg, num) != NULL, "%s", msg);
    }
}
END_TEST

static void expect_parse_fatal(const char *body, const char *needle)
{
    jwt_key *k = (jwt_key *)0x1;
    char msg[256] = "";
    ck_assert_int_eq(keys_parse_metadata(body, strlen(body), &k, msg, sizeof(msg)), KEYS_FATAL);
    ck_assert_ptr_null(k);
    ck_assert_msg(strstr(msg, needle) != NULL, "message %s lacks %s", msg, needle);
}

START_TEST(test_A19_parse_metadata_rejects_unusable_keys)
{
    jwt_key *k = NULL, *ref = th_key(TH_DEMO_PUB);
    char msg[256];
    char *body = th_metadata_json(TH_DEMO_PUB, true); /* other fields are ignored */
    ck_assert_int_eq(keys_parse_metadata(body, strlen(body), &k, msg, sizeof(msg)), KEYS_OK);
    ck_assert_str_eq(jwt_key_fingerprint(k), jwt_key_fingerprint(ref));
    jwt_key_unref(k);
    free(body);
    body = th_metadata_json(TH_FIX "demo-pub-pkcs1.pem", false); /* PKCS#1 works too */
    ck_assert_int_eq(keys_parse_metadata(body, strlen(body), &k, msg, sizeof(msg)), KEYS_OK);
    ck_assert_str_eq(jwt_key_fingerprint(k), jwt_key_fingerprint(ref));
    jwt_key_unref(k);
    free(body);
    jwt_key_unref(ref);

    expect_parse_fatal("", "not JSON");
    expect_parse_fatal("<html>502 Bad Gateway</html>", "not JSON");
    expect_parse_fatal("[\"-----BEGIN PUBLIC KEY-----\"]", "not a JSON object");
    expect_parse_fatal("{}", "no verifier_key_pem");
    expect_parse_fatal("{\"verifier_key_pem\":null}", "no verifier_key_pem");
    expect_parse_fatal("{\"verifier_key_pem\":42}", "no verifier_key_pem");
    expect_parse_fatal("{\"verifier_key_pem\":\"x\",\"verifier_key_pem\":\"y\"}", "not JSON");
    expect_parse_fatal("{\"verifier_key_pem\":\"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END "
                       "PUBLIC KEY-----\\n\"}",
                       "verifier key: ");

    static const char *bad_keys[] = {TH_FIX "ec-pub.pem", TH_FIX "rsa1024-pub.pem"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad_keys); i++) {
        body = th_metadata_json(bad_keys[i], false);
        expect_parse_fatal(body, "verifier key: ");
        free(body);
    }
    /* Two keys in one PEM string, and trailing junk after the block. */
    char *pem = th_read(TH_DEMO_PUB, NULL);
    char *other = th_read(TH_FIX "other-pub.pem", NULL);
    ag_buf two;
    ag_buf_init(&two);
    ck_assert_int_eq(ag_buf_printf(&two, "%s%s", pem, other), 0);
    json_t *o = json_pack("{s:s}", "verifier_key_pem", two.p);
    body = json_dumps(o, JSON_COMPACT);
    expect_parse_fatal(body, "verifier key: ");
    free(body);
    json_decref(o);
    ag_buf_reset(&two);
    ck_assert_int_eq(ag_buf_printf(&two, "%sjunk", pem), 0);
    o = json_pack("{s:s}", "verifier_key_pem", two.p);
    body = json_dumps(o, JSON_COMPACT);
    expect_parse_fatal(body, "verifier key: ");
    free(body);
    json_decref(o);
    ag_buf_free(&two);
    free(pem);
    free(other);

    /* Over the cap, even when the content would be fine. */
    size_t big = KEYS_MAX_RESPONSE_BYTES + 1;
    char *huge = malloc(big + 1);
    ck_assert_ptr_nonnull(huge);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    huge[big] = '\0';
    k = NULL;
    ck_assert_int_eq(keys_parse_metadata(huge, big, &k, msg, sizeof(msg)), KEYS_FATAL);
    ck_assert(strstr(msg, "larger than") != NULL);
    free(huge);
}
END_TEST

START_TEST(test_backoff_bounds)
{
    uint64_t prev_base = 0;
    for (unsigned a = 0; a < 40; a++) {
        uint64_t lo = keys_backoff_ms(a, 0), hi = keys_backoff_ms(a, UINT32_MAX);
        uint64_t base = lo * 2;
        ck_assert_uint_ge(base, prev_base);
        ck_assert_uint_ge(base, KEYS_BACKOFF_MIN_MS);
        ck_assert_uint_le(base, KEYS_BACKOFF_MAX_MS);
        for (uint32_t r = 0; r < 5000; r += 37) {
            uint64_t d = keys_backoff_ms(a, r * 2654435761u);
            ck_assert_uint_ge(d, base / 2);
            ck_assert_uint_le(d, base);
        }
        ck_assert_uint_le(hi, base);
        prev_base = base;
    }
    ck_assert_uint_eq(keys_backoff_ms(0, 0), 250);
    ck_assert_uint_eq(keys_backoff_ms(0, 250), 500);
    ck_assert_uint_eq(keys_backoff_ms(1, 0), 500);
    ck_assert_uint_eq(keys_backoff_ms(20, 0), KEYS_BACKOFF_MAX_MS / 2);
    ck_assert_uint_eq(keys_backoff_ms(UINT32_MAX, 30000), KEYS_BACKOFF_MAX_MS);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("kmeta");
    TCase *tc = tcase_create("pure");
    tcase_add_test(tc, test_auth_host_and_issuer);
    tcase_add_test(tc, test_metadata_url);
    tcase_add_test(tc, test_metadata_url_plain_http_needs_a_clean_port);
    tcase_add_test(tc, test_header_lines);
    tcase_add_test(tc, test_classify_status);
    tcase_add_test(tc, test_A19_parse_metadata_rejects_unusable_keys);
    tcase_add_test(tc, test_backoff_bounds);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
