/* resolve: literal addresses answer at once, names resolve on the resolver
 * thread and announce themselves, rs_get never waits for a lookup, a failed
 * refresh keeps the last good answer, and rs_free returns while a lookup hangs.
 * Most cases replace the lookup with a scripted one (rs_test_lookup); two use
 * the real getaddrinfo ("localhost", "nonexistent.invalid"). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "resolve.h"
#include "testutil.h"

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- on_update counter ---- */

static atomic_int g_updates;
static atomic_bool g_update_on_main;
static pthread_t g_main;

static void on_update(void *ctx)
{
    ck_assert_ptr_eq(ctx, &g_updates);
    if (pthread_equal(pthread_self(), g_main))
        atomic_store(&g_update_on_main, true);
    atomic_fetch_add(&g_updates, 1);
}

/* ---- the scripted lookup ---- */

enum hk_mode { HK_A = 1, HK_B, HK_FAIL, HK_BLOCK, HK_SLEEP, HK_BYNAME };

static pthread_mutex_t hk_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hk_cv = PTHREAD_COND_INITIALIZER;
static enum hk_mode hk_mode;
static bool hk_released;
static atomic_int hk_calls;
static atomic_int hk_returned;

static void put4(rs_addrs *out, const char *ip, const char *port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->a[out->n].sa;
    memset(&out->a[out->n], 0, sizeof(out->a[out->n]));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)atoi(port));
    ck_assert_int_eq(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
    out->a[out->n].len = sizeof(*sin);
    out->n++;
}

static int hook(const char *host, const char *port, rs_addrs *out, char *err, size_t errlen)
{
    atomic_fetch_add(&hk_calls, 1);
    pthread_mutex_lock(&hk_mu);
    while (hk_mode == HK_BLOCK && !hk_released)
        pthread_cond_wait(&hk_cv, &hk_mu);
    enum hk_mode m = hk_mode; /* a released block answers the mode set since */
    pthread_mutex_unlock(&hk_mu);
    int rc = 0;
    out->n = 0;
    switch (m) {
    case HK_A:
        put4(out, "10.0.0.1", port);
        break;
    case HK_B:
        put4(out, "10.0.0.2", port);
        put4(out, "10.0.0.3", port);
        break;
    case HK_SLEEP:
        sleep_ms(2500);
        put4(out, "10.0.0.9", port);
        break;
    case HK_BYNAME: {
        /* "nNNN.test" answers 10.1.(NNN / 256).(NNN % 256) */
        int k = atoi(host + 1);
        char ip[32];
        snprintf(ip, sizeof(ip), "10.1.%d.%d", k / 256, k % 256);
        put4(out, ip, port);
        break;
    }
    default:
        snprintf(err, errlen, "scripted failure");
        rc = -1;
    }
    atomic_fetch_add(&hk_returned, 1);
    return rc;
}

static void set_mode(enum hk_mode m)
{
    pthread_mutex_lock(&hk_mu);
    hk_mode = m;
    pthread_mutex_unlock(&hk_mu);
}

static void release_block(void)
{
    pthread_mutex_lock(&hk_mu);
    hk_released = true;
    pthread_cond_broadcast(&hk_cv);
    pthread_mutex_unlock(&hk_mu);
}

static void setup(void)
{
    g_main = pthread_self();
    atomic_store(&g_updates, 0);
    atomic_store(&g_update_on_main, false);
    atomic_store(&hk_calls, 0);
    atomic_store(&hk_returned, 0);
    hk_mode = HK_FAIL;
    hk_released = false;
    rs_test_lookup = NULL;
}

static void teardown(void)
{
    rs_test_lookup = NULL;
}

/* Polls rs_get until the state is `want` (5 s at most); every call is timed. */
static rs_state wait_state(rs_resolver *r, int id, rs_state want, rs_addrs *out, char *err,
                           size_t errlen)
{
    int64_t deadline = now_us() + 5000000;
    rs_state st;
    for (;;) {
        int64_t t0 = now_us();
        st = rs_get(r, id, out, err, errlen);
        ck_assert_int_lt(now_us() - t0, 1000);
        if (st == want || now_us() > deadline)
            return st;
        sleep_ms(2);
    }
}

static void wait_count(atomic_int *c, int atleast)
{
    int64_t deadline = now_us() + 5000000;
    while (atomic_load(c) < atleast && now_us() < deadline)
        sleep_ms(1);
    ck_assert_int_ge(atomic_load(c), atleast);
}

static const char *ntop(const rs_addr *a, char *buf, size_t len)
{
    const struct sockaddr *sa = (const struct sockaddr *)&a->sa;
    if (sa->sa_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, len);
    if (sa->sa_family == AF_INET6)
        return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
                         (socklen_t)len);
    return "?";
}

static int port_of(const rs_addr *a)
{
    const struct sockaddr *sa = (const struct sockaddr *)&a->sa;
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

START_TEST(test_numeric_immediate)
{
    rs_test_lookup = hook; /* a lookup for a literal would show in hk_calls */
    rs_resolver *r = rs_new(60000, on_update, &g_updates);
    ck_assert_ptr_nonnull(r);
    rs_addrs a;
    char err[128], buf[64];

    int v4 = rs_add(r, "127.0.0.1", "8080");
    ck_assert_int_ge(v4, 0);
    ck_assert_int_eq(rs_get(r, v4, &a, err, sizeof(err)), RS_READY);
    ck_assert_uint_eq(a.n, 1);
    ck_assert_uint_ne(a.gen, 0);
    ck_assert_int_eq(((struct sockaddr *)&a.a[0].sa)->sa_family, AF_INET);
    ck_assert_uint_eq(a.a[0].len, sizeof(struct sockaddr_in));
    ck_assert_str_eq(ntop(&a.a[0], buf, sizeof(buf)), "127.0.0.1");
    ck_assert_int_eq(port_of(&a.a[0]), 8080);
    ck_assert_uint_eq(rs_generation(r, v4), a.gen);

    int v6 = rs_add(r, "::1", "443");
    ck_assert_int_ge(v6, 0);
    ck_assert_int_ne(v6, v4);
    ck_assert_int_eq(rs_get(r, v6, &a, err, sizeof(err)), RS_READY);
    ck_assert_uint_eq(a.n, 1);
    ck_assert_int_eq(((struct sockaddr *)&a.a[0].sa)->sa_family, AF_INET6);
    ck_assert_uint_eq(a.a[0].len, sizeof(struct sockaddr_in6));
    ck_assert_str_eq(ntop(&a.a[0], buf, sizeof(buf)), "::1");
    ck_assert_int_eq(port_of(&a.a[0]), 443);

    /* Never looked up, not even when forced. */
    rs_resolve_now(r);
    sleep_ms(50);
    ck_assert_int_eq(atomic_load(&hk_calls), 0);
    ck_assert_int_eq(atomic_load(&g_updates), 0);
    ck_assert_int_eq(rs_get(r, v4, &a, err, sizeof(err)), RS_READY);
    rs_free(r);
}
END_TEST

START_TEST(test_bad_arguments)
{
    rs_resolver *r = rs_new(60000, NULL, NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(rs_add(r, "", "80"), -1);
    ck_assert_int_eq(rs_add(r, "[::1]", "80"), -1);
    ck_assert_int_eq(rs_add(r, "127.0.0.1", ""), -1);
    ck_assert_int_eq(rs_add(r, "127.0.0.1", "0"), -1);
    ck_assert_int_eq(rs_add(r, "127.0.0.1", "65536"), -1);
    ck_assert_int_eq(rs_add(r, "127.0.0.1", "http"), -1);
    ck_assert_int_eq(rs_add(r, "127.0.0.1", "-1"), -1);
    char longname[RS_HOST_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert_int_eq(rs_add(r, longname, "80"), -1);
    ck_assert_int_eq(rs_add(r, "127.0.0.1", "65535"), 0);

    /* Unknown ids carry no address and say so. */
    rs_addrs a;
    char err[64];
    ck_assert_int_eq(rs_get(r, 1, &a, err, sizeof(err)), RS_FAILED);
    ck_assert_uint_eq(a.n, 0);
    ck_assert_str_ne(err, "");
    ck_assert_int_eq(rs_get(r, -1, &a, err, sizeof(err)), RS_FAILED);
    ck_assert_uint_eq(rs_generation(r, 7), 0);
    ck_assert_ptr_null(rs_new(0, NULL, NULL));
    ck_assert_ptr_null(rs_new(RS_REFRESH_MAX_MS + 1, NULL, NULL));
    rs_free(r);
    rs_free(NULL);
}
END_TEST

START_TEST(test_localhost_background)
{
    rs_resolver *r = rs_new(60000, on_update, &g_updates);
    ck_assert_ptr_nonnull(r);
    int id = rs_add(r, "localhost", "8081");
    ck_assert_int_ge(id, 0);
    rs_addrs a;
    char err[128], buf[64];
    ck_assert_int_eq(wait_state(r, id, RS_READY, &a, err, sizeof(err)), RS_READY);
    ck_assert_uint_ge(a.n, 1);
    for (size_t i = 0; i < a.n; i++) {
        const char *ip = ntop(&a.a[i], buf, sizeof(buf));
        ck_assert_msg(!strcmp(ip, "127.0.0.1") || !strcmp(ip, "::1"), "localhost gave %s", ip);
        ck_assert_int_eq(port_of(&a.a[i]), 8081);
    }
    wait_count(&g_updates, 1);
    ck_assert(!atomic_load(&g_update_on_main));
    rs_free(r);
}
END_TEST

START_TEST(test_unresolvable_fails)
{
    rs_resolver *r = rs_new(60000, on_update, &g_updates);
    ck_assert_ptr_nonnull(r);
    int id = rs_add(r, "nonexistent.invalid", "80");
    ck_assert_int_ge(id, 0);
    rs_addrs a;
    char err[128];
    ck_assert_int_eq(wait_state(r, id, RS_FAILED, &a, err, sizeof(err)), RS_FAILED);
    ck_assert_uint_eq(a.n, 0);
    ck_assert_uint_gt(strlen(err), 0);
    wait_count(&g_updates, 1);
    rs_free(r);
}
END_TEST

/* While a lookup is pending, rs_get answers RS_UNKNOWN (no address) at once.
 * Also prints the cost of rs_get on a ready name. */
START_TEST(test_get_never_waits)
{
    rs_test_lookup = hook;
    set_mode(HK_BLOCK);
    rs_resolver *r = rs_new(60000, on_update, &g_updates);
    ck_assert_ptr_nonnull(r);
    int id = rs_add(r, "slow.test", "80");
    int lit = rs_add(r, "127.0.0.1", "80");
    wait_count(&hk_calls, 1);
    rs_addrs a;
    char err[64];
    int64_t worst = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t t0 = now_us();
        ck_assert_int_eq(rs_get(r, id, &a, err, sizeof(err)), RS_UNKNOWN);
        int64_t dt = now_us() - t0;
        worst = dt > worst ? dt : worst;
        ck_assert_uint_eq(a.n, 0);
    }
    ck_assert_int_lt(worst, 1000);
    /* Other names stay usable while the thread is stuck. */
    ck_assert_int_eq(rs_get(r, lit, &a, err, sizeof(err)), RS_READY);
    /* No ck_assert inside the timed loop: in fork mode each one is a write to
     * check's pipe, which would be measured instead of rs_get. */
    int ready = 0;
    int64_t t0 = now_us();
    for (int i = 0; i < 100000; i++)
        ready += rs_get(r, lit, &a, err, sizeof(err)) == RS_READY;
    int64_t per_ns = (now_us() - t0) * 1000 / 100000;
    ck_assert_int_eq(ready, 100000);
    printf("rs_get: %lld ns per call on a ready name; worst %lld us while pending\n",
           (long long)per_ns, (long long)worst);
    ck_assert_int_lt(per_ns, 20000);
    set_mode(HK_A);
    release_block();
    ck_assert_int_eq(wait_state(r, id, RS_READY, &a, err, sizeof(err)), RS_READY);
    rs_free(r);
}
END_TEST

/* Warnings go to stderr; capture them in a file to count them. */
static int capture_stderr(char *path, size_t len, int *saved)
{
    snprintf(path, len, "/tmp/ag-resolve-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    *saved = dup(2);
    ck_assert_int_ge(*saved, 0);
    ck_assert_int_eq(dup2(fd, 2), 2);
    close(fd);
    return 0;
}

static int count_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

START_TEST(test_keeps_last_good)
{
    char path[64];
    int saved;
    capture_stderr(path, sizeof(path), &saved);
    rs_test_lookup = hook;
    set_mode(HK_A);
    rs_resolver *r = rs_new(60000, on_update, &g_updates);
    ck_assert_ptr_nonnull(r);
    int id = rs_add(r, "svc.test", "9000");
    rs_addrs a;
    char err[64], buf[64];
    ck_assert_int_eq(wait_state(r, id, RS_READY, &a, err, sizeof(err)), RS_READY);
    ck_assert_uint_eq(a.n, 1);
    ck_assert_str_eq(ntop(&a.a[0], buf, sizeof(buf)), "10.0.0.1");
    uint64_t gen1 = a.gen;
    wait_count(&g_updates, 1);
    int updates = atomic_load(&g_updates);

    /* Three failed refreshes, then a fourth started: the thread is serial, so
     * the first three are applied by then. */
    set_mode(HK_FAIL);
    int c = atomic_load(&hk_returned);
    for (int i = 1; i <= 3; i++) {
        rs_resolve_now(r);
        wait_count(&hk_returned, c + i);
    }
    rs_resolve_now(r);
    wait_count(&hk_calls, c + 4);
    ck_assert_int_eq(rs_get(r, id, &a, err, sizeof(err)), RS_READY);
    ck_assert_uint_eq(a.n, 1);
    ck_assert_str_eq(ntop(&a.a[0], buf, sizeof(buf)), "10.0.0.1");
    ck_assert_int_eq(port_of(&a.a[0]), 9000);
    ck_assert_uint_eq(a.gen, gen1);
    ck_assert_int_eq(atomic_load(&g_updates), updates);

    /* A new answer replaces it, in lookup order, with a new generation. */
    set_mode(HK_B);
    rs_resolve_now(r);
    wait_count(&g_updates, updates + 1);
    ck_assert_int_eq(rs_get(r, id, &a, err, sizeof(err)), RS_READY);
    ck_assert_uint_eq(a.n, 2);
    ck_assert_str_eq(ntop(&a.a[0], buf, sizeof(buf)), "10.0.0.2");
    ck_assert_str_eq(ntop(&a.a[1], buf, sizeof(buf)), "10.0.0.3");
    ck_assert_uint_gt(a.gen, gen1);
    ck_assert_uint_eq(rs_generation(r, id), a.gen);

    /* The same answer again changes nothing. */
    uint64_t gen2 = a.gen;
    int calls = atomic_load(&hk_returned);
    rs_resolve_now(r);
    wait_count(&hk_returned, calls + 1);
    rs_resolve_now(r);
    wait_count(&hk_returned, calls + 2);
    ck_assert_uint_eq(rs_generation(r, id), gen2);
    rs_free(r);

    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    /* One warning for the streak of failures, one note when it ended. */
    ck_assert_int_eq(count_in_file(path, "svc.test:9000: cannot resolve: scripted failure"), 1);
    ck_assert_int_eq(count_in_file(path, "keeping the last good answer"), 1);
    ck_assert_int_eq(count_in_file(path, "svc.test:9000 resolves again"), 1);
    unlink(path);
}
END_TEST

START_TEST(test_failed_then_ready)
{
    rs_test_lookup = hook;
    set_mode(HK_FAIL);
    rs_resolver *r = rs_new(60000, on_update, &g_updates);
    int id = rs_add(r, "late.test", "80");
    rs_addrs a;
    char err[64];
    ck_assert_int_eq(wait_state(r, id, RS_FAILED, &a, err, sizeof(err)), RS_FAILED);
    ck_assert_str_eq(err, "scripted failure");
    ck_assert_uint_eq(a.n, 0);
    wait_count(&g_updates, 1);
    /* Retried on its own (after RS_RETRY_FIRST_MS), without rs_resolve_now. */
    set_mode(HK_A);
    ck_assert_int_eq(wait_state(r, id, RS_READY, &a, err, sizeof(err)), RS_READY);
    ck_assert_str_eq(err, "");
    wait_count(&g_updates, 2);
    rs_free(r);
}
END_TEST

/* rs_resolve_now during a lookup: that answer may predate what the reload
 * wanted to see (an edited /etc/hosts), so the name is looked up once more. */
START_TEST(test_resolve_now_during_lookup)
{
    rs_test_lookup = hook;
    set_mode(HK_BLOCK);
    rs_resolver *r = rs_new(60000, on_update, &g_updates);
    int id = rs_add(r, "reload.test", "80");
    wait_count(&hk_calls, 1);
    rs_resolve_now(r);
    set_mode(HK_A);
    release_block();
    wait_count(&hk_returned, 2);
    rs_addrs a;
    char err[64];
    ck_assert_int_eq(wait_state(r, id, RS_READY, &a, err, sizeof(err)), RS_READY);
    /* ...and only once more: the next refresh is refresh_ms away. */
    sleep_ms(100);
    ck_assert_int_eq(atomic_load(&hk_calls), 2);
    rs_free(r);
}
END_TEST

START_TEST(test_dedup)
{
    rs_test_lookup = hook;
    set_mode(HK_A);
    rs_resolver *r = rs_new(60000, on_update, &g_updates);
    int a = rs_add(r, "dup.test", "80");
    int b = rs_add(r, "dup.test", "80");
    int c = rs_add(r, "DUP.Test", "80");
    int d = rs_add(r, "dup.test", "81");
    int e = rs_add(r, "10.0.0.5", "80");
    int f = rs_add(r, "10.0.0.5", "80");
    ck_assert_int_ge(a, 0);
    ck_assert_int_eq(a, b);
    ck_assert_int_eq(a, c);
    ck_assert_int_ne(a, d);
    ck_assert_int_ge(d, 0);
    ck_assert_int_ne(e, a);
    ck_assert_int_ne(e, d);
    ck_assert_int_eq(e, f);
    rs_addrs x;
    char err[64];
    ck_assert_int_eq(wait_state(r, a, RS_READY, &x, err, sizeof(err)), RS_READY);
    ck_assert_int_eq(wait_state(r, d, RS_READY, &x, err, sizeof(err)), RS_READY);
    ck_assert_int_eq(port_of(&x.a[0]), 81);
    /* Two distinct names were looked up, not four. */
    ck_assert_int_eq(atomic_load(&hk_calls), 2);
    rs_free(r);
}
END_TEST

#define MANY 1500
#define ADDERS 4

static rs_resolver *g_many;
static int g_ids[ADDERS][MANY];

static void *adder(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < MANY; i++) {
        int k = (i * 7 + t * 13) % MANY; /* every thread, another order */
        char host[32];
        snprintf(host, sizeof(host), "n%d.test", k);
        g_ids[t][k] = rs_add(g_many, host, "80");
    }
    return NULL;
}

START_TEST(test_many_ids)
{
    rs_test_lookup = hook;
    set_mode(HK_BYNAME);
    g_many = rs_new(60000, on_update, &g_updates);
    ck_assert_ptr_nonnull(g_many);
    pthread_t th[ADDERS];
    for (int t = 0; t < ADDERS; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, adder, (void *)(intptr_t)t), 0);
    for (int t = 0; t < ADDERS; t++)
        pthread_join(th[t], NULL);
    static bool seen[MANY];
    memset(seen, 0, sizeof(seen));
    for (int k = 0; k < MANY; k++) {
        int id = g_ids[0][k];
        ck_assert_int_ge(id, 0);
        ck_assert_int_lt(id, MANY);
        ck_assert(!seen[id]);
        seen[id] = true;
        for (int t = 1; t < ADDERS; t++)
            ck_assert_int_eq(g_ids[t][k], id);
    }
    wait_count(&g_updates, MANY);
    for (int k = 0; k < MANY; k++) {
        rs_addrs a;
        char err[64], want[32], buf[64];
        ck_assert_int_eq(rs_get(g_many, g_ids[0][k], &a, err, sizeof(err)), RS_READY);
        ck_assert_uint_eq(a.n, 1);
        snprintf(want, sizeof(want), "10.1.%d.%d", k / 256, k % 256);
        ck_assert_str_eq(ntop(&a.a[0], buf, sizeof(buf)), want);
    }
    ck_assert_int_eq(atomic_load(&hk_calls), MANY);
    rs_free(g_many);
}
END_TEST

/* Readers copy while the answer flips between A and B: a copy is always one
 * whole answer, never a mix. */
static atomic_bool g_stop_readers;
static rs_resolver *g_flip;
static int g_flip_id;

static void *reader(void *arg)
{
    long checked = 0;
    while (!atomic_load(&g_stop_readers)) {
        rs_addrs a;
        char err[64], b0[64], b1[64];
        rs_state st = rs_get(g_flip, g_flip_id, &a, err, sizeof(err));
        if (st != RS_READY) {
            ck_assert_uint_eq(a.n, 0);
            continue;
        }
        if (a.n == 1) {
            ck_assert_str_eq(ntop(&a.a[0], b0, sizeof(b0)), "10.0.0.1");
        } else {
            ck_assert_uint_eq(a.n, 2);
            ck_assert_str_eq(ntop(&a.a[0], b0, sizeof(b0)), "10.0.0.2");
            ck_assert_str_eq(ntop(&a.a[1], b1, sizeof(b1)), "10.0.0.3");
        }
        checked++;
    }
    return (void *)checked;
}

START_TEST(test_concurrent_readers)
{
    rs_test_lookup = hook;
    set_mode(HK_A);
    g_flip = rs_new(60000, on_update, &g_updates);
    g_flip_id = rs_add(g_flip, "flip.test", "80");
    atomic_store(&g_stop_readers, false);
    pthread_t th[2];
    for (int t = 0; t < 2; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, reader, NULL), 0);
    for (int i = 0; i < 200; i++) {
        /* A lookup already running may still answer the previous mode; the
         * forced one after it answers this one. */
        size_t want = i % 2 ? 1 : 2;
        set_mode(want == 1 ? HK_A : HK_B);
        rs_resolve_now(g_flip);
        int64_t deadline = now_us() + 5000000;
        rs_addrs a;
        char err[64];
        while ((rs_get(g_flip, g_flip_id, &a, err, sizeof(err)) != RS_READY || a.n != want) &&
               now_us() < deadline)
            sleep_ms(1);
        ck_assert_uint_eq(a.n, want);
    }
    atomic_store(&g_stop_readers, true);
    long total = 0;
    for (int t = 0; t < 2; t++) {
        void *ret;
        pthread_join(th[t], &ret);
        total += (long)ret;
    }
    ck_assert_int_gt(total, 0);
    ck_assert_uint_ge(rs_generation(g_flip, g_flip_id), 200);
    rs_free(g_flip);
}
END_TEST

START_TEST(test_free_bounded_while_lookup_hangs)
{
    rs_test_lookup = hook;
    set_mode(HK_SLEEP); /* 2.5 s, longer than RS_FREE_WAIT_MS */
    rs_resolver *r = rs_new(60000, on_update, &g_updates);
    rs_add(r, "hang.test", "80");
    wait_count(&hk_calls, 1);
    int64_t t0 = now_us();
    rs_free(r);
    int64_t took_ms = (now_us() - t0) / 1000;
    ck_assert_int_ge(took_ms, RS_FREE_WAIT_MS - 50);
    ck_assert_int_lt(took_ms, RS_FREE_WAIT_MS + 500);
    /* The detached thread finishes the lookup, frees the resolver (ASan would
     * see a use after free) and does not call on_update after rs_free. */
    wait_count(&hk_returned, 1);
    sleep_ms(100);
    ck_assert_int_eq(atomic_load(&g_updates), 0);

    /* An idle resolver stops at once. */
    r = rs_new(60000, on_update, &g_updates);
    t0 = now_us();
    rs_free(r);
    ck_assert_int_lt(now_us() - t0, 200000);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("resolve");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_numeric_immediate);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_localhost_background);
    tcase_add_test(tc, test_unresolvable_fails);
    tcase_add_test(tc, test_get_never_waits);
    tcase_add_test(tc, test_keeps_last_good);
    tcase_add_test(tc, test_failed_then_ready);
    tcase_add_test(tc, test_resolve_now_during_lookup);
    tcase_add_test(tc, test_dedup);
    tcase_add_test(tc, test_many_ids);
    tcase_add_test(tc, test_concurrent_readers);
    tcase_add_test(tc, test_free_bounded_while_lookup_hangs);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
