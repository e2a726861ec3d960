/* netaddr: the listen address reading shared by run, the admin listener and
 * check. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "netaddr.h"
#include "testutil.h"

static int port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)(const void *)ss)->sin6_port);
}

START_TEST(test_literals_and_names)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char err[256];
    ck_assert_int_eq(na_listen_addr("127.0.0.1:8080", &ss, &sl, err, sizeof err), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_int_eq(port_of(&ss), 8080);
    ck_assert_int_eq(na_listen_addr("[::1]:9090", &ss, &sl, err, sizeof err), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    ck_assert_int_eq(port_of(&ss), 9090);
    /* a name is resolved; a dual-stack name prefers IPv4 */
    ck_assert_int_eq(na_listen_addr("localhost:18080", &ss, &sl, err, sizeof err), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_int_eq(((struct sockaddr_in *)(void *)&ss)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    ck_assert_int_eq(port_of(&ss), 18080);
}
END_TEST

START_TEST(test_refusals)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char err[256];
    ck_assert_int_ne(na_listen_addr("8080", &ss, &sl, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "expected HOST:PORT"));
    ck_assert_int_ne(na_listen_addr("::1:8080", &ss, &sl, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "brackets"));
    ck_assert_int_ne(na_listen_addr("127.0.0.1:http", &ss, &sl, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "bad port"));
    ck_assert_int_ne(na_listen_addr("[localhost]:80", &ss, &sl, err, sizeof err), 0);
    ck_assert_int_ne(na_listen_addr("no-such-host.invalid:80", &ss, &sl, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "cannot resolve no-such-host.invalid"));
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("netaddr");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_literals_and_names);
    tcase_add_test(tc, test_refusals);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
