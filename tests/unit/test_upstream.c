/* Unit tests for up_target_compile (src/upstream.c): an upstream URL compiled
 * once at load (by fwd's parser) into host, port, Host value, base path and
 * libcurl prefix. The
 * clients themselves need a worker and sockets and are covered by the
 * integration tests. */
#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "upstream.h"

static void ok(const char *url, const char *host, const char *port, const char *base)
{
    up_target t;
    char err[128];
    ck_assert_msg(up_target_compile(url, &t, err, sizeof(err)) == 0, "rejected %s: %s", url, err);
    ck_assert_str_eq(t.host, host);
    ck_assert_str_eq(t.port, port);
    ck_assert_str_eq(t.base, base);
    ck_assert_uint_eq(t.base_len, strlen(base));
    ck_assert_int_eq(t.resolver_id, -1);
}

static void bad(const char *url)
{
    up_target t;
    char err[128] = "";
    ck_assert_msg(up_target_compile(url, &t, err, sizeof(err)) != 0, "accepted %s (host '%s')", url,
                  t.host);
    ck_assert_msg(err[0] != '\0', "no message for %s", url);
}

static void hostport(const char *url, const char *hp, const char *curl_url)
{
    up_target t;
    char err[128];
    ck_assert_int_eq(up_target_compile(url, &t, err, sizeof(err)), 0);
    ck_assert_str_eq(t.hostport, hp);
    ck_assert_str_eq(t.url, curl_url);
}

START_TEST(test_host_and_default_port)
{
    ok("http://example.com", "example.com", "80", "");
    ok("http://example.com/", "example.com", "80", "");
    ok("http://127.0.0.1", "127.0.0.1", "80", "");
    ok("http://backend_1.internal/api", "backend_1.internal", "80", "/api");
}
END_TEST

START_TEST(test_explicit_port_and_base)
{
    ok("http://127.0.0.1:9000", "127.0.0.1", "9000", "");
    ok("http://127.0.0.1:9000/", "127.0.0.1", "9000", "");
    ok("http://app:8080/api/v1", "app", "8080", "/api/v1");
    ok("http://app:1/x/y/", "app", "1", "/x/y");
    ok("http://app:65535", "app", "65535", "");
    /* a query or fragment has no meaning in an upstream URL: refused */
    bad("http://app:81?x=1");
    bad("http://app#frag");
    bad("http://app/b//?q");
    ok("http://app/b//", "app", "80", "/b");
}
END_TEST

START_TEST(test_ipv6_literal)
{
    ok("http://[::1]:8080", "::1", "8080", "");
    ok("http://[::1]:8080/base", "::1", "8080", "/base");
    ok("http://[::1]", "::1", "80", "");
    ok("http://[::1]/", "::1", "80", "");
    ok("http://[fe80::1:2]:9/p", "fe80::1:2", "9", "/p");
    /* the colons inside the brackets are not a port separator */
    ok("http://[2001:db8::8080]", "2001:db8::8080", "80", "");
    bad("http://[::1:8080/"); /* no closing bracket */
    bad("http://[]:8080/");   /* empty literal */
    bad("http://[]");
    bad("http://[::1]:/"); /* empty port */
    bad("http://[::1]:x/");
}
END_TEST

START_TEST(test_rejects_other_schemes)
{
    ok("https://app/", "app", "443", "");
    ok("https://app:8443/x", "app", "8443", "/x");
    bad("ftp://app/");
    bad("http:/app/");
    bad("//app/");
    bad("app:80");
    bad("");
    bad("http:");
}
END_TEST

START_TEST(test_rejects_userinfo)
{
    bad("http://user@app/");
    bad("http://user:pw@app/");
    bad("http://user:pw@app:80/");
    bad("http://app:80@evil/");
    bad("http://@app/");
    bad("http://[::1@x]/");
    /* '@' after the authority is part of the base, not userinfo */
    ok("http://app/a@b", "app", "80", "/a@b");
}
END_TEST

START_TEST(test_rejects_empty_host)
{
    bad("http://");
    bad("http:///");
    bad("http:///path");
    bad("http://:80/");
    bad("http://:80");
    bad("http://?x");
}
END_TEST

START_TEST(test_rejects_bad_port)
{
    bad("http://app:/");
    bad("http://app:");
    bad("http://app:abc/");
    bad("http://app:8o/");
    bad("http://app:-1/");
    bad("http://app:+80/");
    bad("http://app: 80/");
    bad("http://app:80 /");
    bad("http://app:8:0/");
    /* longer than the port buffer (8 bytes with the NUL) */
    bad("http://app:12345678/");
    /* outside 1..65535 */
    bad("http://app:0/");
    bad("http://app:65536/");
    bad("http://app:99999/");
    /* only ":port" may follow an IPv6 literal */
    bad("http://[::1]junk/x");
    bad("http://[::1]8080/");
}
END_TEST

START_TEST(test_host_length_limit)
{
    char url[600];
    char host[300];
    /* the host buffer is 256 bytes: 255 characters fit, 256 do not */
    memset(host, 'a', 255);
    host[255] = '\0';
    snprintf(url, sizeof(url), "http://%s:81/b", host);
    ok(url, host, "81", "/b");
    memset(host, 'a', 256);
    host[256] = '\0';
    snprintf(url, sizeof(url), "http://%s:81/b", host);
    bad(url);
    snprintf(url, sizeof(url), "http://%s", host);
    bad(url);
}
END_TEST

START_TEST(test_host_value_and_curl_prefix)
{
    /* the default port of the scheme is left out of Host, as clients do */
    hostport("http://app", "app", "http://app");
    hostport("http://app:80/api/", "app", "http://app/api");
    hostport("http://app:8080/api", "app:8080", "http://app:8080/api");
    hostport("https://app:443", "app", "https://app");
    hostport("https://app:80", "app:80", "https://app:80");
    hostport("http://[::1]:9000/x", "[::1]:9000", "http://[::1]:9000/x");
    hostport("http://[::1]", "[::1]", "http://[::1]");
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("upstream");
    TCase *tc = tcase_create("target_compile");
    tcase_add_test(tc, test_host_and_default_port);
    tcase_add_test(tc, test_explicit_port_and_base);
    tcase_add_test(tc, test_ipv6_literal);
    tcase_add_test(tc, test_rejects_other_schemes);
    tcase_add_test(tc, test_rejects_userinfo);
    tcase_add_test(tc, test_rejects_empty_host);
    tcase_add_test(tc, test_rejects_bad_port);
    tcase_add_test(tc, test_host_length_limit);
    tcase_add_test(tc, test_host_value_and_curl_prefix);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
