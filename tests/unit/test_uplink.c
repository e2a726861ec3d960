/* Unit tests for ul_parse_url (src/uplink.c): the upstream URL split used by the
 * built-in http:// client. The rest of uplink needs a worker and sockets and is
 * covered by the integration tests. */
#include <string.h>

#include "testutil.h"
#include "uplink.h"

typedef struct parsed {
    char host[256];
    char port[8];
    const char *base;
} parsed;

static int parse(const char *url, parsed *p)
{
    memset(p, 0, sizeof(*p));
    p->base = NULL;
    return ul_parse_url(url, p->host, sizeof(p->host), p->port, sizeof(p->port), &p->base);
}

static void ok(const char *url, const char *host, const char *port, const char *base)
{
    parsed p;
    ck_assert_msg(parse(url, &p) == 0, "rejected %s", url);
    ck_assert_str_eq(p.host, host);
    ck_assert_str_eq(p.port, port);
    ck_assert_ptr_nonnull(p.base);
    ck_assert_str_eq(p.base, base);
    /* base points into the url, not into a copy */
    ck_assert(p.base >= url && p.base <= url + strlen(url));
}

static void bad(const char *url)
{
    parsed p;
    ck_assert_msg(parse(url, &p) != 0, "accepted %s (host '%s' port '%s')", url, p.host, p.port);
}

START_TEST(test_host_and_default_port)
{
    ok("http://example.com", "example.com", "80", "");
    ok("http://example.com/", "example.com", "80", "/");
    ok("http://127.0.0.1", "127.0.0.1", "80", "");
    ok("http://backend_1.internal/api", "backend_1.internal", "80", "/api");
}
END_TEST

START_TEST(test_explicit_port_and_base)
{
    ok("http://127.0.0.1:9000", "127.0.0.1", "9000", "");
    ok("http://127.0.0.1:9000/", "127.0.0.1", "9000", "/");
    ok("http://app:8080/api/v1", "app", "8080", "/api/v1");
    ok("http://app:1/x/y/", "app", "1", "/x/y/");
    ok("http://app:65535", "app", "65535", "");
    /* the base runs to the end; '?' or '#' also ends the authority */
    ok("http://app:81?x=1", "app", "81", "?x=1");
    ok("http://app#frag", "app", "80", "#frag");
}
END_TEST

START_TEST(test_ipv6_literal)
{
    ok("http://[::1]:8080", "::1", "8080", "");
    ok("http://[::1]:8080/base", "::1", "8080", "/base");
    ok("http://[::1]", "::1", "80", "");
    ok("http://[::1]/", "::1", "80", "/");
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
    bad("https://app/");
    bad("https://app:443/");
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
    /* hostcap is 256: 255 characters fit, 256 do not */
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

    /* the caller's capacities are what count, not the 256 above */
    parsed p;
    const char *base = NULL;
    ck_assert_int_eq(ul_parse_url("http://abcd/", p.host, 5, p.port, sizeof(p.port), &base), 0);
    ck_assert_str_eq(p.host, "abcd");
    ck_assert_int_ne(ul_parse_url("http://abcde/", p.host, 5, p.port, sizeof(p.port), &base), 0);
    ck_assert_int_eq(ul_parse_url("http://a:123/", p.host, 5, p.port, 4, &base), 0);
    ck_assert_str_eq(p.port, "123");
    ck_assert_int_ne(ul_parse_url("http://a:1234/", p.host, 5, p.port, 4, &base), 0);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("uplink");
    TCase *tc = tcase_create("parse_url");
    tcase_add_test(tc, test_host_and_default_port);
    tcase_add_test(tc, test_explicit_port_and_base);
    tcase_add_test(tc, test_ipv6_literal);
    tcase_add_test(tc, test_rejects_other_schemes);
    tcase_add_test(tc, test_rejects_userinfo);
    tcase_add_test(tc, test_rejects_empty_host);
    tcase_add_test(tc, test_rejects_bad_port);
    tcase_add_test(tc, test_host_length_limit);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
