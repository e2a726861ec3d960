/* Unit tests for upcore (src/upcore.c), what both upstream clients share: the
 * worker's active list, the inactivity deadline, the one end of an exchange
 * (a result that was never set reads as an internal failure; an end inside
 * up_start is kept for up_start to report) and the response-head check. The
 * framing rules themselves are httpx's (test_httpx.c); here only the mapping
 * to up_result. No socket is opened: the exchanges are bare structs. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "upcore.h"

static int done_calls;
static up_result done_result;
static void *done_ctx;

static void on_done(void *ctx, up_result r)
{
    done_calls++;
    done_result = r;
    done_ctx = ctx;
}

static up_exchange *new_exchange(up_worker *uw)
{
    up_exchange *ex = calloc(1, sizeof(*ex));
    ck_assert_ptr_nonnull(ex);
    ex->uw = uw;
    ex->cb.on_done = on_done;
    ag_buf_init(&ex->url);
    ag_buf_init(&ex->resp);
    return ex;
}

/* A worker with one exchange in its active list, and no on_done seen yet. */
static up_exchange *one_linked(up_worker *uw)
{
    memset(uw, 0, sizeof(*uw));
    up_exchange *ex = new_exchange(uw);
    up_link(ex);
    done_calls = 0;
    return ex;
}

START_TEST(test_link_and_unlink)
{
    up_worker uw;
    memset(&uw, 0, sizeof(uw));
    up_exchange *a = new_exchange(&uw), *b = new_exchange(&uw), *c = new_exchange(&uw);
    up_link(a);
    up_link(b);
    up_link(c);
    up_link(b); /* twice: still once in the list */
    ck_assert_uint_eq(uw.nactive, 3);
    ck_assert_ptr_eq(uw.active, c);
    ck_assert_ptr_eq(c->next, b);
    ck_assert_ptr_eq(b->next, a);
    ck_assert_ptr_null(a->next);
    ck_assert_ptr_eq(a->prev, b);

    up_unlink(b); /* the middle */
    ck_assert_uint_eq(uw.nactive, 2);
    ck_assert_ptr_eq(c->next, a);
    ck_assert_ptr_eq(a->prev, c);
    ck_assert(!b->in_active);
    ck_assert_ptr_null(b->next);
    ck_assert_ptr_null(b->prev);
    up_unlink(b); /* twice: no change */
    ck_assert_uint_eq(uw.nactive, 2);

    up_unlink(c); /* the head */
    ck_assert_ptr_eq(uw.active, a);
    ck_assert_ptr_null(a->prev);
    up_unlink(a); /* the last */
    ck_assert_ptr_null(uw.active);
    ck_assert_uint_eq(uw.nactive, 0);

    up_exchange_free(a);
    up_exchange_free(b);
    up_exchange_free(c);
}
END_TEST

START_TEST(test_finish_reports_once_and_unlinks)
{
    up_worker uw;
    int tag;
    up_exchange *keep = one_linked(&uw);
    up_exchange *ex = new_exchange(&uw);
    ex->ctx = &tag;
    ck_assert_int_eq(ag_buf_puts(&ex->url, "https://app/x"), 0);
    up_link(ex);
    up_finish(ex, UP_ERR_RESET);
    ck_assert_int_eq(done_calls, 1);
    ck_assert_int_eq(done_result, UP_ERR_RESET);
    ck_assert_ptr_eq(done_ctx, &tag);
    ck_assert_uint_eq(uw.nactive, 1);
    ck_assert_ptr_eq(uw.active, keep);
    ck_assert_ptr_null(keep->prev);
    up_unlink(keep);
    up_exchange_free(keep);
}
END_TEST

START_TEST(test_finish_unset_is_internal)
{
    up_worker uw;
    up_exchange *ex = one_linked(&uw);
    up_finish(ex, UP_UNSET);
    ck_assert_int_eq(done_calls, 1);
    ck_assert_int_eq(done_result, UP_ERR_INTERNAL);
    ck_assert_uint_eq(uw.nactive, 0);
}
END_TEST

START_TEST(test_finish_while_starting_is_kept_for_up_start)
{
    up_worker uw;
    up_exchange *ex = one_linked(&uw);
    ex->starting = true;
    up_finish(ex, UP_OK);
    ck_assert_int_eq(done_calls, 0);
    ck_assert_int_eq(ex->early, UP_OK);
    ck_assert(!ex->in_active);
    ck_assert_uint_eq(uw.nactive, 0);
    up_finish(ex, UP_UNSET);
    ck_assert_int_eq(done_calls, 0);
    ck_assert_int_eq(ex->early, UP_ERR_INTERNAL);
    up_exchange_free(ex);
}
END_TEST

START_TEST(test_touch_restarts_the_deadline)
{
    up_worker uw;
    memset(&uw, 0, sizeof(uw));
    up_exchange *ex = new_exchange(&uw);
    ex->timeout_ms = 30000;
    int64_t before = ag_now_mono_ms();
    up_touch(ex);
    int64_t after = ag_now_mono_ms();
    ck_assert_int_ge(after, before);
    ck_assert_int_ge(ex->deadline_ms, before + 30000);
    ck_assert_int_le(ex->deadline_ms, after + 30000);
    ex->timeout_ms = 5;
    up_touch(ex);
    ck_assert_int_le(ex->deadline_ms, ag_now_mono_ms() + 5);
    up_exchange_free(ex);
}
END_TEST

START_TEST(test_check_head)
{
    int64_t cl = 7;
    bool chunked = true;
    const char *h = "Content-Type: a/b\r\nContent-Length: 12\r\n";
    ck_assert_int_eq(up_check_head(h, strlen(h), &cl, &chunked), UP_OK);
    ck_assert_int_eq(cl, 12);
    ck_assert(!chunked);

    h = "Transfer-Encoding: chunked\r\n";
    ck_assert_int_eq(up_check_head(h, strlen(h), &cl, &chunked), UP_OK);
    ck_assert_int_eq(cl, -1);
    ck_assert(chunked);

    /* no header lines at all (libcurl may hand none): until close */
    cl = 7;
    chunked = true;
    ck_assert_int_eq(up_check_head(NULL, 0, &cl, &chunked), UP_OK);
    ck_assert_int_eq(cl, -1);
    ck_assert(!chunked);

    /* ambiguous framing is a protocol error, never a guess */
    h = "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n";
    ck_assert_int_eq(up_check_head(h, strlen(h), &cl, &chunked), UP_ERR_PROTOCOL);
    h = "Content-Length: 5\r\nContent-Length: 6\r\n";
    ck_assert_int_eq(up_check_head(h, strlen(h), &cl, &chunked), UP_ERR_PROTOCOL);
    h = "Transfer-Encoding: gzip\r\n";
    ck_assert_int_eq(up_check_head(h, strlen(h), &cl, &chunked), UP_ERR_PROTOCOL);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("upcore");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_link_and_unlink);
    tcase_add_test(tc, test_finish_reports_once_and_unlinks);
    tcase_add_test(tc, test_finish_unset_is_internal);
    tcase_add_test(tc, test_finish_while_starting_is_kept_for_up_start);
    tcase_add_test(tc, test_touch_restarts_the_deadline);
    tcase_add_test(tc, test_check_head);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
