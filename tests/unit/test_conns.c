/* Unit tests for conns: the process-wide connection budget. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "conns.h"
#include "testutil.h"

static struct sockaddr_in v4(const char *ip)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

#define SA(x) ((const struct sockaddr *)(const void *)&(x))

START_TEST(test_total_cap)
{
    cn_budget *b = cn_new(3, 0);
    struct sockaddr_in a = v4("127.0.0.1");
    ck_assert(cn_has_room(b));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(cn_take(b, SA(a)), CN_TAKEN);
    ck_assert(!cn_has_room(b));
    ck_assert_int_eq(cn_take(b, SA(a)), CN_FULL);
    ck_assert_uint_eq(cn_open(b), 3);
    /* the release that frees the first slot says so, later ones do not */
    ck_assert(cn_release(b, SA(a)));
    ck_assert(!cn_release(b, SA(a)));
    ck_assert(cn_has_room(b));
    ck_assert_int_eq(cn_take(b, SA(a)), CN_TAKEN);
    ck_assert_uint_eq(cn_open(b), 2);
    cn_free(b);
}
END_TEST

START_TEST(test_per_ip_cap)
{
    cn_budget *b = cn_new(100, 2);
    struct sockaddr_in a = v4("10.0.0.1"), c = v4("10.0.0.2");
    ck_assert_int_eq(cn_take(b, SA(a)), CN_TAKEN);
    ck_assert_int_eq(cn_take(b, SA(a)), CN_TAKEN);
    ck_assert_int_eq(cn_take(b, SA(a)), CN_PER_IP);
    /* another address is not affected, and a refusal holds no slot */
    ck_assert_int_eq(cn_take(b, SA(c)), CN_TAKEN);
    ck_assert_uint_eq(cn_open(b), 3);
    cn_release(b, SA(a));
    ck_assert_int_eq(cn_take(b, SA(a)), CN_TAKEN);
    ck_assert_int_eq(cn_take(b, SA(a)), CN_PER_IP);
    cn_free(b);
}
END_TEST

START_TEST(test_many_addresses_and_reuse)
{
    /* thousands of distinct addresses grow the table; released ones leave
     * tombstones that are reused without losing live counts */
    cn_budget *b = cn_new(0, 1);
    char ip[32];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 3000; i++) {
            snprintf(ip, sizeof(ip), "10.%d.%d.%d", round, i / 256, i % 256);
            struct sockaddr_in a = v4(ip);
            ck_assert_int_eq(cn_take(b, SA(a)), CN_TAKEN);
            ck_assert_int_eq(cn_take(b, SA(a)), CN_PER_IP);
        }
        for (int i = 0; i < 3000; i += 2) {
            snprintf(ip, sizeof(ip), "10.%d.%d.%d", round, i / 256, i % 256);
            struct sockaddr_in a = v4(ip);
            cn_release(b, SA(a));
        }
    }
    ck_assert_uint_eq(cn_open(b), 3 * 1500);
    /* the odd ones are still counted */
    struct sockaddr_in a = v4("10.2.0.1");
    ck_assert_int_eq(cn_take(b, SA(a)), CN_PER_IP);
    cn_free(b);
}
END_TEST

START_TEST(test_ipv6_and_unknown_family)
{
    cn_budget *b = cn_new(10, 1);
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::1", &a.sin6_addr);
    ck_assert_int_eq(cn_take(b, SA(a)), CN_TAKEN);
    ck_assert_int_eq(cn_take(b, SA(a)), CN_PER_IP);
    /* no address: counted against the total only */
    ck_assert_int_eq(cn_take(b, NULL), CN_TAKEN);
    ck_assert_int_eq(cn_take(b, NULL), CN_TAKEN);
    ck_assert_uint_eq(cn_open(b), 3);
    cn_free(b);
}
END_TEST

static cn_budget *shared;

static void *taker(void *arg)
{
    struct sockaddr_in a = v4("127.0.0.1");
    for (int i = 0; i < 20000; i++)
        if (cn_take(shared, SA(a)) == CN_TAKEN)
            cn_release(shared, SA(a));
    return arg;
}

START_TEST(test_threads_never_exceed)
{
    shared = cn_new(5, 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, taker, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_uint_eq(cn_open(shared), 0);
    cn_free(shared);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("conns");
    TCase *tc = tcase_create("budget");
    tcase_add_test(tc, test_total_cap);
    tcase_add_test(tc, test_per_ip_cap);
    tcase_add_test(tc, test_many_addresses_and_reuse);
    tcase_add_test(tc, test_ipv6_and_unknown_family);
    tcase_add_test(tc, test_threads_never_exceed);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
