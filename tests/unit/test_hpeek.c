/* Unit tests for hpeek: choosing the pool from the first request head. */
#include <stdio.h>
#include <string.h>

#include "hpeek.h"
#include "testutil.h"

#define CLS(s, cap, eof) hp_classify((s), strlen(s), (cap), (eof))

START_TEST(test_complete_small_head)
{
    const char *h = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    ck_assert_int_eq(CLS(h, 1024, false), HP_SMALL);
    /* the cost is the length plus HP_LINE_COST per header line (two here) */
    ck_assert_int_eq(CLS(h, strlen(h) + 2 * HP_LINE_COST, false), HP_SMALL);
    ck_assert_int_eq(CLS(h, strlen(h) + 2 * HP_LINE_COST - 1, false), HP_BIG);
    /* a body after the head does not count */
    ck_assert_int_eq(
        CLS("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 40 + 2 * HP_LINE_COST, false),
        HP_SMALL);
    /* bare LF line endings */
    ck_assert_int_eq(CLS("GET / HTTP/1.1\nHost: a\n\n", 1024, false), HP_SMALL);
}
END_TEST

START_TEST(test_big_head)
{
    const char *h = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    /* one byte over the cap: the end is not within the cap */
    ck_assert_int_eq(CLS(h, strlen(h) - 1, false), HP_BIG);
    char buf[4096];
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "GET / HTTP/1.1\r\nAuthorization: Bearer ", 38);
    ck_assert_int_eq(hp_classify(buf, sizeof(buf), 1000, false), HP_BIG);
    ck_assert_int_eq(hp_classify(buf, 1000, 1000, false), HP_WAIT);
    ck_assert_int_eq(hp_classify(buf, 1001, 1000, false), HP_BIG);
    /* many short header lines: small in bytes, big in libmicrohttpd records */
    size_t o = 0;
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 200; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "a:b\r\n");
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\r\n");
    ck_assert_uint_lt(o, 2048);
    ck_assert_int_eq(hp_classify(buf, o, 2048, false), HP_BIG);
    ck_assert_int_eq(hp_classify(buf, o, 200 * HP_LINE_COST + 2048, false), HP_SMALL);
}
END_TEST

START_TEST(test_partial_waits)
{
    ck_assert_int_eq(CLS("", 1024, false), HP_WAIT);
    ck_assert_int_eq(CLS("GET / HTTP/1.1\r\nHost: a\r\n", 1024, false), HP_WAIT);
    ck_assert_int_eq(CLS("GET / HTTP/1.1\r\nHost: a\r\n\r", 1024, false), HP_WAIT);
    /* leading empty lines are skipped, not taken for the end of the head */
    ck_assert_int_eq(CLS("\r\n\r\nGET / HTTP/1.1\r\n", 1024, false), HP_WAIT);
    ck_assert_int_eq(CLS("\r\n\r\nGET / HTTP/1.1\r\n\r\n", 1024, false), HP_SMALL);
}
END_TEST

START_TEST(test_eof)
{
    ck_assert_int_eq(CLS("", 1024, true), HP_DROP);
    ck_assert_int_eq(CLS("GET / HT", 1024, true), HP_SMALL);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("hpeek");
    TCase *tc = tcase_create("classify");
    tcase_add_test(tc, test_complete_small_head);
    tcase_add_test(tc, test_big_head);
    tcase_add_test(tc, test_partial_waits);
    tcase_add_test(tc, test_eof);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
