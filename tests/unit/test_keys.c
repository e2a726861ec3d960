/* Unit tests for src/keys.c and src/kfetch.c: docs/security.md A19 (key
 * material hygiene) and A20 (keys unavailable), the API key sources, and the
 * fetch/refresh/rotation machinery against an in-process HTTP server on
 * loopback. The pure pieces (docs/semantics.md section 1: issuer and request
 * derivation, status and body meaning) are tested in test_kmeta.c. */
#include "testutil.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixtures/tokhelp.h"
#include "keys.h"
#include "log.h"
#include "util.h"

#define SECRET "sk_test_5f1e0c9a2b7d4e3f"

static char *write_tmp(const char *content, mode_t mode)
{
    char *path = strdup("/tmp/ag-keys-test-XXXXXX");
    ck_assert_ptr_nonnull(path);
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t n = strlen(content);
    ck_assert_int_eq(write(fd, content, n), (ssize_t)n);
    close(fd);
    ck_assert_int_eq(chmod(path, mode), 0);
    return path;
}

static void expect_key(const cfg_auth *a, const char *want)
{
    char *k = NULL, err[512] = "";
    ck_assert_msg(keys_read_api_key(a, &k, err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(k, want);
    free(k);
}

static void expect_no_key(const cfg_auth *a, const char *needle)
{
    char *k = (char *)0x1, err[512] = "";
    ck_assert_int_eq(keys_read_api_key(a, &k, err, sizeof(err)), -1);
    ck_assert_ptr_null(k);
    ck_assert_msg(strstr(err, needle) != NULL, "message %s lacks %s", err, needle);
    ck_assert_msg(!strstr(err, SECRET), "message leaks the key: %s", err);
}

START_TEST(test_read_api_key)
{
    cfg_auth a = {0};
    a.api_key = SECRET;
    expect_key(&a, SECRET);

    a = (cfg_auth){.api_key_env = "AG_TEST_KEYS_API_KEY"};
    setenv("AG_TEST_KEYS_API_KEY", SECRET, 1);
    expect_key(&a, SECRET);
    unsetenv("AG_TEST_KEYS_API_KEY");
    expect_no_key(&a, "AG_TEST_KEYS_API_KEY");
    setenv("AG_TEST_KEYS_API_KEY", "", 1);
    expect_no_key(&a, "not set or empty");
    unsetenv("AG_TEST_KEYS_API_KEY");

    char *p = write_tmp("  " SECRET " \r\nsecond line\n", 0600);
    a = (cfg_auth){.api_key_file = p};
    expect_key(&a, SECRET);
    ck_assert_int_eq(chmod(p, 0400), 0);
    expect_key(&a, SECRET);
    /* Readable by group or others: refused with the mode and the fix. */
    ck_assert_int_eq(chmod(p, 0644), 0);
    expect_no_key(&a, "(mode 0644)");
    expect_no_key(&a, "chmod 600");
    ck_assert_int_eq(chmod(p, 0640), 0);
    expect_no_key(&a, "group or others");
    ck_assert_int_eq(chmod(p, 0604), 0);
    expect_no_key(&a, "group or others");
    unlink(p);
    expect_no_key(&a, "cannot open");
    free(p);

    p = write_tmp(SECRET, 0600); /* no newline at all */
    a.api_key_file = p;
    expect_key(&a, SECRET);
    unlink(p);
    free(p);
    p = write_tmp("\n" SECRET "\n", 0600);
    a.api_key_file = p;
    expect_no_key(&a, "first line is empty");
    unlink(p);
    free(p);
    char big[KEYS_MAX_API_KEY_BYTES + 10];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    p = write_tmp(big, 0600);
    a.api_key_file = p;
    expect_no_key(&a, "longer than");
    unlink(p);
    free(p);

    a = (cfg_auth){.api_key = SECRET, .api_key_env = "X"};
    expect_no_key(&a, "exactly one");
    a = (cfg_auth){0};
    expect_no_key(&a, "exactly one");
}
END_TEST

/* ---- an in-process metadata server ---------------------------------------- */

typedef enum fake_mode { FAKE_STATUS = 0, FAKE_HANG } fake_mode;

typedef struct fake {
    int lfd;
    int port;
    pthread_t th;
    pthread_mutex_t mu;
    /* guarded by mu */
    fake_mode mode;
    int status;
    char *body;
    size_t body_len;
    int requests;
    int hanging;
    char last_head[8192];
    int stop;
} fake;

static void fake_set(fake *f, int status, const char *body)
{
    pthread_mutex_lock(&f->mu);
    f->mode = FAKE_STATUS;
    f->status = status;
    free(f->body);
    f->body = strdup(body ? body : "");
    f->body_len = strlen(f->body);
    pthread_mutex_unlock(&f->mu);
}

static void fake_set_key(fake *f, const char *pem_path)
{
    char *b = th_metadata_json(pem_path, true);
    fake_set(f, 200, b);
    free(b);
}

static void fake_hang(fake *f)
{
    pthread_mutex_lock(&f->mu);
    f->mode = FAKE_HANG;
    pthread_mutex_unlock(&f->mu);
}

static int fake_get(fake *f, int *field)
{
    pthread_mutex_lock(&f->mu);
    int v = *field;
    pthread_mutex_unlock(&f->mu);
    return v;
}

static void serve_one(fake *f, int c)
{
    char head[8192];
    size_t n = 0;
    while (n < sizeof(head) - 1) {
        ssize_t r = recv(c, head + n, sizeof(head) - 1 - n, 0);
        if (r <= 0)
            return;
        n += (size_t)r;
        head[n] = '\0';
        if (strstr(head, "\r\n\r\n"))
            break;
    }
    pthread_mutex_lock(&f->mu);
    f->requests++;
    memcpy(f->last_head, head, n + 1);
    fake_mode mode = f->mode;
    int status = f->status;
    char *body = strdup(f->body ? f->body : "");
    if (mode == FAKE_HANG)
        f->hanging++;
    pthread_mutex_unlock(&f->mu);
    if (mode == FAKE_HANG) {
        /* Hold the connection until the client gives up or the test ends. */
        for (;;) {
            struct pollfd p = {.fd = c, .events = POLLIN};
            int pr = poll(&p, 1, 50);
            char tmp[64];
            if (pr > 0 && recv(c, tmp, sizeof(tmp), 0) <= 0)
                break;
            if (fake_get(f, &f->stop))
                break;
        }
        pthread_mutex_lock(&f->mu);
        f->hanging--;
        pthread_mutex_unlock(&f->mu);
    } else {
        char hdr[256];
        size_t blen = strlen(body);
        int hl = snprintf(hdr, sizeof(hdr),
                          "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: "
                          "%zu\r\nConnection: close\r\n\r\n",
                          status, blen);
        ssize_t w = send(c, hdr, (size_t)hl, MSG_NOSIGNAL);
        size_t off = 0;
        while (w >= 0 && off < blen) {
            w = send(c, body + off, blen - off, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
        }
    }
    free(body);
}

static void *fake_main(void *arg)
{
    fake *f = arg;
    for (;;) {
        struct pollfd p = {.fd = f->lfd, .events = POLLIN};
        int pr = poll(&p, 1, 50);
        if (fake_get(f, &f->stop))
            break;
        if (pr <= 0)
            continue;
        int c = accept(f->lfd, NULL, NULL);
        if (c < 0)
            continue;
        serve_one(f, c);
        close(c);
    }
    return NULL;
}

static fake *fake_start(void)
{
    fake *f = calloc(1, sizeof(*f));
    ck_assert_ptr_nonnull(f);
    pthread_mutex_init(&f->mu, NULL);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(f->lfd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(f->lfd, 16), 0);
    socklen_t sl = sizeof(sa);
    ck_assert_int_eq(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
    f->port = ntohs(sa.sin_port);
    fake_set(f, 500, "{}");
    ck_assert_int_eq(pthread_create(&f->th, NULL, fake_main, f), 0);
    return f;
}

static void fake_stop(fake *f)
{
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->th, NULL);
    close(f->lfd);
    free(f->body);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static char base_url[64];

static cfg_auth fetch_cfg(const fake *f)
{
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d/", f->port);
    cfg_auth a = {.auth_url = "https://auth.example.com:8443/some/path",
                  .api_key = SECRET,
                  .api_base_url = base_url,
                  .refresh_interval_s = 3600,
                  .previous_key_grace_s = 600,
                  .fetch_timeout_ms = 2000};
    return a;
}

static bool wait_for(bool (*cond)(keys_store *, const void *), keys_store *ks, const void *arg,
                     int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        if (cond(ks, arg))
            return true;
        usleep(20 * 1000);
    }
    return cond(ks, arg);
}

static bool is_ready(keys_store *ks, const void *arg)
{
    return keys_ready(ks);
}

static bool generation_past(keys_store *ks, const void *arg)
{
    return keys_generation(ks) > *(const uint64_t *)arg;
}

static bool failures_past(keys_store *ks, const void *arg)
{
    keys_status st;
    keys_get_status(ks, &st);
    return st.refresh_failures > *(const uint64_t *)arg;
}

static bool ok_past(keys_store *ks, const void *arg)
{
    keys_status st;
    keys_get_status(ks, &st);
    return st.refresh_ok > *(const uint64_t *)arg;
}

static void expect_start_fails(fake *f, const cfg_auth *a, const char *needle)
{
    keys_store *ks = (keys_store *)0x1;
    char err[512] = "";
    ck_assert_int_eq(keys_start(a, NULL, &ks, err, sizeof(err)), -1);
    ck_assert_ptr_null(ks);
    ck_assert_msg(strstr(err, needle) != NULL, "start-up message %s lacks %s", err, needle);
    ck_assert_msg(!strchr(err, '\n'), "start-up message is not one line: %s", err);
    ck_assert_msg(!strstr(err, SECRET), "start-up message leaks the API key: %s", err);
}

START_TEST(test_fetch_request_headers_and_issuer)
{
    fake *f = fake_start();
    fake_set_key(f, TH_DEMO_PUB);
    cfg_auth a = fetch_cfg(f);
    keys_store *ks = NULL;
    char err[512];
    ck_assert_msg(keys_start(&a, NULL, &ks, err, sizeof(err)) == 0, "%s", err);
    ck_assert(keys_ready(ks));
    keys_snapshot *s = keys_acquire(ks);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->issuer, "https://auth.example.com:8443");
    ck_assert_uint_eq(s->nkeys, 1);
    jwt_key *ref = th_key(TH_DEMO_PUB);
    ck_assert_str_eq(jwt_key_fingerprint(s->keys[0]), jwt_key_fingerprint(ref));
    keys_status st;
    keys_get_status(ks, &st);
    ck_assert(st.ready && st.fetched);
    ck_assert_str_eq(st.fingerprint, jwt_key_fingerprint(ref));
    ck_assert_uint_eq(st.refresh_ok, 1);
    ck_assert_uint_eq(st.refresh_failures, 0);
    ck_assert_int_gt(st.loaded_at, 0);

    pthread_mutex_lock(&f->mu);
    char head[8192];
    memcpy(head, f->last_head, sizeof(head));
    pthread_mutex_unlock(&f->mu);
    ck_assert_msg(strncmp(head, "GET /api/v1/token_verification_metadata HTTP/1.1\r\n", 50) == 0,
                  "%s", head);
    ck_assert_msg(strstr(head, "\r\nAuthorization: Bearer " SECRET "\r\n"), "%s", head);
    ck_assert_msg(strstr(head, "\r\nX-Propelauth-url: auth.example.com:8443\r\n"), "%s", head);
    keys_snapshot_unref(s);
    jwt_key_unref(ref);
    keys_stop(ks);
    fake_stop(f);
}
END_TEST

START_TEST(test_startup_definitive_errors_are_fatal)
{
    fake *f = fake_start();
    cfg_auth a = fetch_cfg(f);
    fake_set(f, 401, "{\"error\":\"unauthorized\"}");
    expect_start_fails(f, &a, "API key is incorrect (401 from http://127.0.0.1:");
    fake_set(f, 404, "");
    expect_start_fails(f, &a, "auth_url is incorrect (404 from");
    fake_set(f, 400, "");
    expect_start_fails(f, &a, "bad request (400 from");
    fake_set(f, 200, "this is not json");
    expect_start_fails(f, &a, "unusable response");
    char *b = th_metadata_json(TH_FIX "ec-pub.pem", false);
    fake_set(f, 200, b);
    free(b);
    expect_start_fails(f, &a, "unusable response from http://127.0.0.1:");
    expect_start_fails(f, &a, "RSA");
    b = th_metadata_json(TH_FIX "rsa1024-pub.pem", false);
    fake_set(f, 200, b);
    free(b);
    expect_start_fails(f, &a, "2048");
    char *huge = malloc(200 * 1024 + 1);
    ck_assert_ptr_nonnull(huge);
    memset(huge, 'a', 200 * 1024);
    huge[200 * 1024] = '\0';
    fake_set(f, 200, huge);
    free(huge);
    expect_start_fails(f, &a, "larger than 65536 bytes");
    fake_stop(f);
}
END_TEST

START_TEST(test_startup_config_errors)
{
    fake *f = fake_start();
    fake_set_key(f, TH_DEMO_PUB);
    cfg_auth a = fetch_cfg(f);
    a.api_base_url = "http://propelauth-api.example";
    expect_start_fails(f, &a, "https://");
    a = fetch_cfg(f);
    a.auth_url = "https://";
    expect_start_fails(f, &a, "auth_url has no host");
    a = fetch_cfg(f);
    a.api_key = NULL;
    a.api_key_env = "AG_TEST_KEYS_UNSET_VAR";
    unsetenv("AG_TEST_KEYS_UNSET_VAR");
    expect_start_fails(f, &a, "AG_TEST_KEYS_UNSET_VAR");
    char *p = write_tmp(SECRET "\n", 0644);
    a = fetch_cfg(f);
    a.api_key = NULL;
    a.api_key_file = p;
    expect_start_fails(f, &a, "chmod 600");
    ck_assert_int_eq(fake_get(f, &f->requests), 0); /* refused before any request */
    unlink(p);
    free(p);
    fake_stop(f);
}
END_TEST

START_TEST(test_A20_transient_start_then_recover)
{
    static const int statuses[] = {500, 503, 429};
    for (size_t i = 0; i < AG_ARRAY_LEN(statuses); i++) {
        fake *f = fake_start();
        fake_set(f, statuses[i], "{}");
        cfg_auth a = fetch_cfg(f);
        keys_store *ks = NULL;
        char err[512];
        ck_assert_msg(keys_start(&a, NULL, &ks, err, sizeof(err)) == 0, "%s", err);
        ck_assert(!keys_ready(ks));
        ck_assert_ptr_null(keys_acquire(ks));
        keys_status st;
        keys_get_status(ks, &st);
        ck_assert(!st.ready && st.fetched);
        ck_assert_uint_ge(st.refresh_failures, 1);
        char num[8];
        snprintf(num, sizeof(num), "%d", statuses[i]);
        ck_assert_msg(strstr(st.last_error, num) != NULL, "%s", st.last_error);
        ck_assert(!strstr(st.last_error, SECRET));
        /* Retries happen on their own (back-off starts at 0.25-0.5 s). */
        uint64_t one = 1;
        ck_assert(wait_for(failures_past, ks, &one, 3000));
        fake_set_key(f, TH_DEMO_PUB);
        ck_assert(wait_for(is_ready, ks, NULL, 5000));
        keys_snapshot *s = keys_acquire(ks);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_eq(s->nkeys, 1);
        keys_snapshot_unref(s);
        keys_get_status(ks, &st);
        ck_assert_str_eq(st.last_error, "");
        keys_stop(ks);
        fake_stop(f);
    }
}
END_TEST

START_TEST(test_A20_connection_refused_is_transient)
{
    fake *f = fake_start();
    cfg_auth a = fetch_cfg(f);
    fake_stop(f); /* nothing listens there any more */
    keys_store *ks = NULL;
    char err[512];
    ck_assert_msg(keys_start(&a, NULL, &ks, err, sizeof(err)) == 0, "%s", err);
    ck_assert(!keys_ready(ks));
    keys_status st;
    keys_get_status(ks, &st);
    ck_assert_msg(strstr(st.last_error, "cannot reach") != NULL, "%s", st.last_error);
    keys_stop(ks);
}
END_TEST

START_TEST(test_A20_hang_times_out_and_stop_is_prompt)
{
    fake *f = fake_start();
    fake_hang(f);
    cfg_auth a = fetch_cfg(f);
    a.fetch_timeout_ms = 300;
    keys_store *ks = NULL;
    char err[512];
    uint64_t t0 = ag_now_mono_ns();
    ck_assert_msg(keys_start(&a, NULL, &ks, err, sizeof(err)) == 0, "%s", err);
    uint64_t took = (ag_now_mono_ns() - t0) / 1000000;
    ck_assert_uint_ge(took, 250);
    ck_assert_uint_lt(took, 3000);
    ck_assert(!keys_ready(ks));
    keys_stop(ks);

    /* A long timeout and a fetch in progress: keys_stop must not wait it out. */
    a.fetch_timeout_ms = 30000;
    fake_set(f, 503, "");
    ck_assert_int_eq(keys_start(&a, NULL, &ks, err, sizeof(err)), 0);
    fake_hang(f);
    for (int i = 0; i < 200 && fake_get(f, &f->hanging) == 0; i++)
        usleep(20 * 1000);
    ck_assert_int_eq(fake_get(f, &f->hanging), 1);
    t0 = ag_now_mono_ns();
    keys_stop(ks);
    took = (ag_now_mono_ns() - t0) / 1000000;
    ck_assert_msg(took < 2500, "keys_stop took %llu ms", (unsigned long long)took);
    fake_stop(f);
}
END_TEST

START_TEST(test_rotation_grace_and_refresh_now)
{
    fake *f = fake_start();
    fake_set_key(f, TH_DEMO_PUB);
    cfg_auth a = fetch_cfg(f);
    a.previous_key_grace_s = 1;
    keys_store *ks = NULL;
    char err[512];
    ck_assert_msg(keys_start(&a, NULL, &ks, err, sizeof(err)) == 0, "%s", err);
    jwt_key *demo = th_key(TH_DEMO_PUB), *other = th_key(TH_FIX "other-pub.pem");
    keys_snapshot *before = keys_acquire(ks);
    uint64_t g0 = keys_generation(ks);

    /* Same key again: nothing changes. */
    uint64_t ok0 = 1;
    keys_refresh_now(ks);
    ck_assert(wait_for(ok_past, ks, &ok0, 3000));
    ck_assert_uint_eq(keys_generation(ks), g0);

    fake_set_key(f, TH_FIX "other-pub.pem");
    keys_refresh_now(ks);
    ck_assert(wait_for(generation_past, ks, &g0, 3000));
    keys_snapshot *during = keys_acquire(ks);
    ck_assert_uint_eq(during->nkeys, 2);
    ck_assert_str_eq(jwt_key_fingerprint(during->keys[0]), jwt_key_fingerprint(other));
    ck_assert_str_eq(jwt_key_fingerprint(during->keys[1]), jwt_key_fingerprint(demo));
    keys_status st;
    keys_get_status(ks, &st);
    ck_assert_str_eq(st.fingerprint, jwt_key_fingerprint(other));
    /* The request that started before the rotation still holds the old set. */
    ck_assert_uint_eq(before->nkeys, 1);
    ck_assert_str_eq(jwt_key_fingerprint(before->keys[0]), jwt_key_fingerprint(demo));

    uint64_t g1 = keys_generation(ks);
    ck_assert(wait_for(generation_past, ks, &g1, 3000)); /* grace ends after 1 s */
    keys_snapshot *after = keys_acquire(ks);
    ck_assert_uint_eq(after->nkeys, 1);
    ck_assert_str_eq(jwt_key_fingerprint(after->keys[0]), jwt_key_fingerprint(other));
    ck_assert_str_eq(after->issuer, "https://auth.example.com:8443");

    keys_snapshot_unref(before);
    keys_snapshot_unref(during);
    keys_snapshot_unref(after);
    jwt_key_unref(demo);
    jwt_key_unref(other);
    keys_stop(ks);
    fake_stop(f);
}
END_TEST

START_TEST(test_no_grace_drops_old_key_at_once)
{
    fake *f = fake_start();
    fake_set_key(f, TH_DEMO_PUB);
    cfg_auth a = fetch_cfg(f);
    a.previous_key_grace_s = 0;
    keys_store *ks = NULL;
    char err[512];
    ck_assert_int_eq(keys_start(&a, NULL, &ks, err, sizeof(err)), 0);
    uint64_t g0 = keys_generation(ks);
    fake_set_key(f, TH_FIX "other-pub.pem");
    keys_refresh_now(ks);
    ck_assert(wait_for(generation_past, ks, &g0, 3000));
    keys_snapshot *s = keys_acquire(ks);
    ck_assert_uint_eq(s->nkeys, 1);
    keys_snapshot_unref(s);
    keys_stop(ks);
    fake_stop(f);
}
END_TEST

START_TEST(test_A20_failed_refresh_keeps_last_key)
{
    fake *f = fake_start();
    fake_set_key(f, TH_DEMO_PUB);
    cfg_auth a = fetch_cfg(f);
    keys_store *ks = NULL;
    char err[512];
    ck_assert_int_eq(keys_start(&a, NULL, &ks, err, sizeof(err)), 0);
    uint64_t g0 = keys_generation(ks);
    /* Even a definitive error or an unusable body only logs once we are serving. */
    static const int statuses[] = {500, 401, 200};
    for (size_t i = 0; i < AG_ARRAY_LEN(statuses); i++) {
        fake_set(f, statuses[i], "not json");
        keys_status st;
        keys_get_status(ks, &st);
        uint64_t fails = st.refresh_failures;
        keys_refresh_now(ks);
        ck_assert(wait_for(failures_past, ks, &fails, 3000));
        keys_get_status(ks, &st);
        ck_assert(st.ready);
        ck_assert(st.last_error[0] != '\0');
        ck_assert_uint_eq(keys_generation(ks), g0);
        keys_snapshot *s = keys_acquire(ks);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_eq(s->nkeys, 1);
        keys_snapshot_unref(s);
    }
    keys_stop(ks);
    fake_stop(f);
}
END_TEST

START_TEST(test_periodic_refresh)
{
    fake *f = fake_start();
    fake_set_key(f, TH_DEMO_PUB);
    cfg_auth a = fetch_cfg(f);
    a.refresh_interval_s = 1;
    keys_store *ks = NULL;
    char err[512];
    ck_assert_int_eq(keys_start(&a, NULL, &ks, err, sizeof(err)), 0);
    uint64_t two = 2;
    ck_assert(wait_for(ok_past, ks, &two, 4000)); /* 3 fetches within ~2 s */
    ck_assert_int_ge(fake_get(f, &f->requests), 3);
    keys_stop(ks);
    fake_stop(f);
}
END_TEST

START_TEST(test_manual_keys_unchanged)
{
    cfg_auth a = {.verifier_key_file = TH_DEMO_PUB, .issuer = TH_ISS};
    keys_store *ks = NULL;
    char err[512];
    ck_assert_msg(keys_start(&a, NULL, &ks, err, sizeof(err)) == 0, "%s", err);
    ck_assert(keys_ready(ks));
    keys_refresh_now(ks); /* no-op, no thread */
    keys_snapshot *s = keys_acquire(ks);
    ck_assert_str_eq(s->issuer, TH_ISS);
    ck_assert_uint_eq(s->nkeys, 1);
    keys_snapshot_unref(s);
    keys_status st;
    keys_get_status(ks, &st);
    ck_assert(st.ready && !st.fetched);
    keys_stop(ks);

    a.verifier_key_file = TH_FIX "ec-pub.pem";
    ks = (keys_store *)0x1;
    ck_assert_int_eq(keys_start(&a, NULL, &ks, err, sizeof(err)), -1);
    ck_assert_ptr_null(ks);
    ck_assert_msg(strstr(err, "ec-pub.pem: verifier key: ") != NULL, "%s", err);
    char *pem = th_read(TH_FIX "demo-pub-pkcs1.pem", NULL);
    a = (cfg_auth){.verifier_key_pem = pem, .issuer = TH_ISS};
    ck_assert_int_eq(keys_start(&a, NULL, &ks, err, sizeof(err)), 0);
    keys_stop(ks);
    free(pem);
}
END_TEST

static Suite *make_suite(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_set_level(LOG_ERROR); /* the fetch paths log on purpose; keep test output readable */
    Suite *s = suite_create("keys");
    TCase *tc = tcase_create("api_key");
    tcase_add_test(tc, test_read_api_key);
    suite_add_tcase(s, tc);
    tc = tcase_create("fetch");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fetch_request_headers_and_issuer);
    tcase_add_test(tc, test_startup_definitive_errors_are_fatal);
    tcase_add_test(tc, test_startup_config_errors);
    tcase_add_test(tc, test_A20_transient_start_then_recover);
    tcase_add_test(tc, test_A20_connection_refused_is_transient);
    tcase_add_test(tc, test_A20_hang_times_out_and_stop_is_prompt);
    tcase_add_test(tc, test_rotation_grace_and_refresh_now);
    tcase_add_test(tc, test_no_grace_drops_old_key_at_once);
    tcase_add_test(tc, test_A20_failed_refresh_keeps_last_key);
    tcase_add_test(tc, test_periodic_refresh);
    tcase_add_test(tc, test_manual_keys_unchanged);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
