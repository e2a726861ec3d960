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
#include "wsframe.h"

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

/* A gateway close frame at the start of buf: its code, with the reason
 * checked; returns the frame's length. */
static size_t expect_close(const char *buf, size_t n, bool masked, int code, const char *reason)
{
    const unsigned char *b = (const unsigned char *)buf;
    ck_assert_uint_ge(n, 4);
    ck_assert_uint_eq(b[0], 0x88);
    ck_assert_uint_eq((b[1] & 0x80) != 0, masked);
    size_t pl = b[1] & 0x7f, h = masked ? 6 : 2;
    ck_assert_uint_ge(n, h + pl);
    char p[126];
    for (size_t i = 0; i < pl; i++)
        p[i] = (char)(masked ? b[h + i] ^ b[2 + (i & 3)] : b[h + i]);
    ck_assert_int_eq(((unsigned char)p[0] << 8) | (unsigned char)p[1], code);
    ck_assert_uint_eq(pl - 2, strlen(reason));
    ck_assert(memcmp(p + 2, reason, pl - 2) == 0);
    return h + pl;
}

/* Nobody answers: each side gets its close frame, then, after the wait, EOF. */
START_TEST(test_idle_close_frames_and_bounded_wait)
{
    fixture f;
    setup(&f, NULL, NULL, 50, 0);
    int64_t t0 = mono();
    spin(&f, 3000);
    int64_t took = mono() - t0;
    ck_assert_int_eq(f.closes, 1);
    ck_assert_int_eq(f.st.cause, TUN_IDLE);
    ck_assert_int_ge(took, 50 + TUN_CLOSE_WAIT_MS - 100);
    ck_assert_int_lt(took, 50 + TUN_CLOSE_WAIT_MS + 1000);
    char buf[256];
    size_t n = read_all(f.c_app, buf, sizeof(buf));
    ck_assert_uint_eq(expect_close(buf, n, false, 1001, "idle timeout"), n);
    n = read_all(f.u_app, buf, sizeof(buf));
    ck_assert_uint_eq(expect_close(buf, n, true, 1001, "idle timeout"), n);
    ck_assert_uint_eq(f.st.bytes_up, 0); /* the gateway's own frames are not relayed bytes */
    teardown(&f);
    ck_assert_uint_eq(tun_open_total(), 0);
}
END_TEST

/* Both sides answer: the tunnel ends as soon as they have. */
START_TEST(test_expiry_answered_ends_at_once)
{
    fixture f;
    setup(&f, NULL, NULL, 10000, mono() + 30);
    char buf[256];
    size_t n = 0;
    for (int i = 0; i < 100 && n == 0; i++) {
        spin(&f, 10);
        n = read_all(f.c_app, buf, sizeof(buf));
    }
    ck_assert_uint_eq(expect_close(buf, n, false, 1008, "token expired"), n);
    n = read_all(f.u_app, buf, sizeof(buf));
    ck_assert_uint_eq(expect_close(buf, n, true, 1008, "token expired"), n);
    ck_assert_int_eq(f.closes, 0);
    int64_t t0 = mono();
    /* the client's answer (masked, as a client sends), then the upstream's */
    ck_assert_int_eq(write(f.c_app, "\x88\x82\x01\x02\x03\x04\x02\xea", 8), 8);
    ck_assert_int_eq(write(f.u_app, "\x88\x02\x03\xf0", 4), 4);
    spin(&f, 3000);
    ck_assert_int_eq(f.closes, 1);
    ck_assert_int_eq(f.st.cause, TUN_TOKEN_EXPIRED);
    ck_assert_int_lt(mono() - t0, 500);
    ck_assert_int_eq(read(f.c_app, buf, 1), 0); /* write halves shut after the frames */
    ck_assert_int_eq(read(f.u_app, buf, 1), 0);
    teardown(&f);
}
END_TEST

/* The client is in the middle of a frame: the upstream cannot get a close
 * frame and is cut off at once; the client, between frames, gets one. */
START_TEST(test_drain_mid_frame_is_abrupt_on_that_side)
{
    fixture f;
    setup(&f, NULL, NULL, 10000, 0);
    /* a masked binary frame of 1000 bytes, of which 10 are sent */
    ck_assert_int_eq(write(f.c_app, "\x82\xfe\x03\xe8kkkk0123456789", 18), 18);
    spin(&f, 30);
    char buf[256];
    ck_assert_uint_eq(read_all(f.u_app, buf, sizeof(buf)), 18);
    tun_begin_close_all(f.ts, TUN_DRAIN, mono());
    spin(&f, 30);
    ck_assert_int_eq(read(f.u_app, buf, sizeof(buf)), 0); /* EOF, no frame */
    size_t n = read_all(f.c_app, buf, sizeof(buf));
    ck_assert_uint_eq(expect_close(buf, n, false, 1001, "going away"), n);
    ck_assert_int_eq(f.closes, 0);
    /* the client finishes its frame before answering: still read, dropped */
    static char rest[990 + 6];
    memcpy(rest + 990, "\x88\x80\x00\x00\x00\x00", 6);
    ck_assert_int_eq(write(f.c_app, rest, sizeof(rest)), (ssize_t)sizeof(rest));
    spin(&f, 500);
    ck_assert_int_eq(f.closes, 1);
    ck_assert_int_eq(f.st.cause, TUN_DRAIN);
    ck_assert_int_eq(read(f.u_app, buf, sizeof(buf)), 0); /* nothing relayed */
    teardown(&f);

    /* neither side between frames: nothing to wait for */
    setup(&f, NULL, NULL, 10000, 0);
    ck_assert_int_eq(write(f.c_app, "\x82\xfe\x03\xe8kkkk01", 10), 10);
    ck_assert_int_eq(write(f.u_app,
                           "\x82\x7e\x03\xe8"
                           "01",
                           6),
                     6);
    spin(&f, 30);
    tun_begin_close_all(f.ts, TUN_DRAIN, mono());
    ck_assert_int_eq(f.closes, 1);
    ck_assert_int_eq(f.st.cause, TUN_DRAIN);
    ck_assert_uint_eq(read_all(f.c_app, buf, sizeof(buf)), 6); /* the relayed part only */
    ck_assert_int_eq(read(f.c_app, buf, 1), 0);
    teardown(&f);
}
END_TEST

/* The client already started a close handshake: the upstream has its close
 * frame and gets no second one; the client gets the gateway's answer. */
START_TEST(test_peer_close_in_flight_is_not_doubled)
{
    fixture f;
    setup(&f, NULL, NULL, 10000, 0);
    ck_assert_int_eq(write(f.c_app, "\x88\x82\x00\x00\x00\x00\x03\xe8", 8), 8);
    spin(&f, 30);
    char buf[256];
    ck_assert_uint_eq(read_all(f.u_app, buf, sizeof(buf)), 8);
    tun_begin_close_all(f.ts, TUN_DRAIN, mono());
    tun_begin_close_all(f.ts, TUN_DRAIN, mono()); /* again: no second frame */
    spin(&f, 30);
    size_t n = read_all(f.c_app, buf, sizeof(buf));
    ck_assert_uint_eq(expect_close(buf, n, false, 1001, "going away"), n);
    ck_assert_int_eq(read(f.u_app, buf, sizeof(buf)), 0); /* shut, nothing more */
    ck_assert_int_eq(f.closes, 0);
    ck_assert_int_eq(write(f.u_app, "\x88\x02\x03\xe8", 4), 4); /* the upstream's answer */
    spin(&f, 500);
    /* the client answered by its own earlier close: done at once */
    ck_assert_int_eq(f.closes, 1);
    ck_assert_int_eq(f.st.cause, TUN_DRAIN);
    teardown(&f);
}
END_TEST

START_TEST(test_close_all_writes_frames_without_waiting)
{
    fixture f;
    setup(&f, NULL, NULL, 10000, 0);
    tun_close_all(f.ts, TUN_DRAIN);
    ck_assert_int_eq(f.closes, 1);
    ck_assert_int_eq(f.st.cause, TUN_DRAIN);
    char buf[256];
    spin(&f, 0);
    size_t n = read_all(f.c_app, buf, sizeof(buf));
    ck_assert_uint_eq(expect_close(buf, n, false, 1001, "going away"), n);
    ck_assert_int_eq(read(f.c_app, buf, 1), 0); /* then the close */
    n = read_all(f.u_app, buf, sizeof(buf));
    ck_assert_uint_eq(expect_close(buf, n, true, 1001, "going away"), n);
    ck_assert_int_eq(read(f.u_app, buf, 1), 0);
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
    tcase_add_test(tc, test_idle_close_frames_and_bounded_wait);
    tcase_add_test(tc, test_expiry_answered_ends_at_once);
    tcase_add_test(tc, test_drain_mid_frame_is_abrupt_on_that_side);
    tcase_add_test(tc, test_peer_close_in_flight_is_not_doubled);
    tcase_add_test(tc, test_close_all_writes_frames_without_waiting);
    tcase_add_test(tc, test_reset_ends_it);
    tcase_add_test(tc, test_reserve_and_names);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
