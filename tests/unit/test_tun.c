/* Unit tests for tun: byte tunnels between two sockets on an epoll set, with
 * socket pairs standing in for the client and the upstream. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "tun.h"

static int64_t mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct fixture {
    int ep;
    tun_set *ts;
    int c_app, c_gw; /* the client and the gateway's client socket */
    int u_gw, u_app; /* the gateway's upstream socket and the upstream */
    int closes;
    tun_stats st;
} fixture;

static void on_close(void *ctx, const tun_stats *st)
{
    fixture *f = ctx;
    f->closes++;
    f->st = *st;
}

static void setup(fixture *f, const char *to_up, const char *to_client, int64_t idle_ms,
                  int64_t expires_ms)
{
    memset(f, 0, sizeof(*f));
    int a[2], b[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b), 0);
    f->c_app = a[0];
    f->c_gw = a[1];
    f->u_gw = b[0];
    f->u_app = b[1];
    f->ep = epoll_create1(0);
    f->ts = tun_set_new(f->ep);
    ck_assert_ptr_nonnull(f->ts);
    ck_assert(tun_reserve(10));
    tun_open_args args = {
        .client_fd = f->c_gw,
        .upstream_fd = f->u_gw,
        .to_upstream = to_up,
        .to_upstream_len = to_up ? strlen(to_up) : 0,
        .to_client = to_client,
        .to_client_len = to_client ? strlen(to_client) : 0,
        .idle_ms = idle_ms,
        .expires_ms = expires_ms,
        .on_close = on_close,
        .ctx = f,
    };
    ck_assert_int_eq(tun_open(f->ts, &args, mono()), 0);
}

static void teardown(fixture *f)
{
    tun_set_free(f->ts);
    close(f->ep);
    close(f->c_app);
    close(f->c_gw); /* never closed by tun: on_close gives it back */
    close(f->u_app);
}

/* Run the loop for ms milliseconds (or until the tunnel closed). */
static void spin(fixture *f, int ms)
{
    int64_t end = mono() + ms;
    while (mono() < end && f->closes == 0) {
        struct epoll_event evs[8];
        int n = epoll_wait(f->ep, evs, 8, 5);
        for (int i = 0; i < n; i++) {
            ck_assert(tun_owns_event(evs[i].data.u64));
            tun_event(f->ts, evs[i].data.u64, evs[i].events);
        }
        tun_sweep(f->ts, mono());
    }
}

static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n <= 0)
            return got;
        got += (size_t)n;
    }
}

START_TEST(test_both_ways_with_early_bytes)
{
    fixture f;
    setup(&f, "AB", "cd", 10000, 0);
    char buf[64];
    spin(&f, 20);
    /* bytes read before the tunnel existed go first */
    ck_assert_uint_eq(read_all(f.u_app, buf, sizeof(buf)), 2);
    ck_assert(memcmp(buf, "AB", 2) == 0);
    ck_assert_uint_eq(read_all(f.c_app, buf, sizeof(buf)), 2);
    ck_assert(memcmp(buf, "cd", 2) == 0);
    ck_assert_int_eq(write(f.c_app, "hello", 5), 5);
    ck_assert_int_eq(write(f.u_app, "world!", 6), 6);
    spin(&f, 30);
    ck_assert_uint_eq(read_all(f.u_app, buf, sizeof(buf)), 5);
    ck_assert(memcmp(buf, "hello", 5) == 0);
    ck_assert_uint_eq(read_all(f.c_app, buf, sizeof(buf)), 6);
    ck_assert(memcmp(buf, "world!", 6) == 0);
    ck_assert_int_eq(f.closes, 0);
    ck_assert_uint_eq(tun_count(f.ts), 1);
    /* the upstream leaves first: the client's write half is shut, then the
     * client's close ends the tunnel, counted as the upstream's doing */
    shutdown(f.u_app, SHUT_WR);
    spin(&f, 30);
    ck_assert_int_eq(read(f.c_app, buf, sizeof(buf)), 0);
    shutdown(f.c_app, SHUT_WR);
    spin(&f, 50);
    ck_assert_int_eq(f.closes, 1);
    ck_assert_int_eq(f.st.cause, TUN_UPSTREAM);
    ck_assert_uint_eq(f.st.bytes_up, 7);
    ck_assert_uint_eq(f.st.bytes_down, 8);
    ck_assert_uint_eq(tun_count(f.ts), 0);
    ck_assert_int_ne(fcntl(f.c_gw, F_GETFD), -1);
    teardown(&f);
}
END_TEST

START_TEST(test_half_close_keeps_the_other_direction)
{
    fixture f;
    setup(&f, NULL, NULL, 10000, 0);
    char buf[64];
    shutdown(f.c_app, SHUT_WR);
    spin(&f, 30);
    ck_assert_int_eq(read(f.u_app, buf, sizeof(buf)), 0); /* EOF reached the upstream */
    ck_assert_int_eq(write(f.u_app, "late", 4), 4);
    spin(&f, 30);
    ck_assert_uint_eq(read_all(f.c_app, buf, sizeof(buf)), 4);
    ck_assert_int_eq(f.closes, 0);
    close(f.u_app);
    f.u_app = -1;
    spin(&f, 50);
    ck_assert_int_eq(f.closes, 1);
    ck_assert_int_eq(f.st.cause, TUN_CLIENT);
    teardown(&f);
}
END_TEST

/* A reader that does not read: the tunnel stops reading the writer, so the
 * writer blocks after a bounded amount, and nothing is lost once the reader
 * catches up. */
START_TEST(test_back_pressure)
{
    fixture f;
    setup(&f, NULL, NULL, 10000, 0);
    static char chunk[65536];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (char)(i * 7);
    size_t written = 0;
    for (int round = 0; round < 200; round++) {
        ssize_t n = write(f.c_app, chunk, sizeof(chunk));
        if (n > 0)
            written += (size_t)n;
        spin(&f, 2);
    }
    ck_assert_uint_gt(written, 0);
    /* Two kernel socket buffers and one tunnel buffer, far below what 200
     * rounds of 64 KiB would be. */
    ck_assert_uint_lt(written, 8u * 1024 * 1024);
    ck_assert_int_eq(write(f.c_app, chunk, sizeof(chunk)), -1);
    ck_assert_int_eq(errno, EAGAIN);
    size_t got = 0;
    static char in[65536];
    for (int round = 0; round < 2000 && got < written; round++) {
        size_t k = read_all(f.u_app, in, sizeof(in));
        for (size_t i = 0; i < k; i++)
            ck_assert_int_eq(in[i], (char)((got + i) % sizeof(chunk) * 7));
        got += k;
        spin(&f, 1);
    }
    ck_assert_uint_eq(got, written);
    ck_assert_int_eq(f.closes, 0);
    teardown(&f);
}
END_TEST

START_TEST(test_idle_and_expiry_and_drain)
{
    fixture f;
    setup(&f, NULL, NULL, 50, 0);
    spin(&f, 400);
    ck_assert_int_eq(f.closes, 1);
    ck_assert_int_eq(f.st.cause, TUN_IDLE);
    teardown(&f);

    setup(&f, NULL, NULL, 10000, mono() + 30);
    spin(&f, 400);
    ck_assert_int_eq(f.closes, 1);
    ck_assert_int_eq(f.st.cause, TUN_TOKEN_EXPIRED);
    teardown(&f);

    setup(&f, NULL, NULL, 10000, 0);
    tun_close_all(f.ts, TUN_DRAIN);
    ck_assert_int_eq(f.closes, 1);
    ck_assert_int_eq(f.st.cause, TUN_DRAIN);
    char b;
    spin(&f, 0);
    ck_assert_int_eq(read(f.c_app, &b, 1), 0); /* both sides see the close */
    ck_assert_int_eq(read(f.u_app, &b, 1), 0);
    teardown(&f);
    ck_assert_uint_eq(tun_open_total(), 0); /* every slot given back */
}
END_TEST

START_TEST(test_reset_ends_it)
{
    fixture f;
    setup(&f, NULL, NULL, 10000, 0);
    ck_assert_int_eq(write(f.c_app, "x", 1), 1);
    close(f.u_app); /* the upstream vanished: the relay's send fails */
    f.u_app = -1;
    spin(&f, 100);
    ck_assert_int_eq(f.closes, 1);
    ck_assert_int_eq(f.st.cause, TUN_UPSTREAM);
    teardown(&f);
}
END_TEST

START_TEST(test_reserve_and_names)
{
    ck_assert(tun_reserve(2));
    ck_assert(tun_reserve(2));
    ck_assert(!tun_reserve(2));
    ck_assert(!tun_reserve(0));
    ck_assert_uint_eq(tun_open_total(), 2);
    tun_release();
    tun_release();
    ck_assert_uint_eq(tun_open_total(), 0);
    ck_assert_str_eq(tun_cause_name(TUN_CAUSE_UNSET), "unset");
    ck_assert_str_eq(tun_cause_name(TUN_IDLE), "idle_timeout");
    for (int a = 1; a < TUN_CAUSE__COUNT; a++)
        for (int b = a + 1; b < TUN_CAUSE__COUNT; b++)
            ck_assert_str_ne(tun_cause_name((tun_cause)a), tun_cause_name((tun_cause)b));
    /* the worker's other epoll tags are not the tunnel's */
    ck_assert(!tun_owns_event(1ull << 63));
    ck_assert(!tun_owns_event((1ull << 61) | (1ull << 60)));
    ck_assert(!tun_owns_event(5));
    ck_assert(tun_owns_event(TUN_EPOLL_TAG | 0x1000));
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("tun");
    TCase *tc = tcase_create("tunnel");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_both_ways_with_early_bytes);
    tcase_add_test(tc, test_half_close_keeps_the_other_direction);
    tcase_add_test(tc, test_back_pressure);
    tcase_add_test(tc, test_idle_and_expiry_and_drain);
    tcase_add_test(tc, test_reset_ends_it);
    tcase_add_test(tc, test_reserve_and_names);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
