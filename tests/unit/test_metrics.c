/* metrics: sharded recording, label bounds and escaping, histogram shape, and
 * the text exposition format, checked by parsing what met_render produces. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "testutil.h"
#include "util.h"

/* Renders everything into a fresh NUL-terminated string (caller frees). */
static char *render(const met_gauges *g)
{
    ag_buf b;
    ag_buf_init(&b);
    ck_assert_int_eq(met_render(&b, g), 0);
    char *s = ag_buf_steal(&b);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* Value of the sample whose name+labels are exactly `series`, or -1. */
static double value_of(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

static int count_prefix(const char *text, const char *prefix)
{
    int c = 0;
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, prefix, n) == 0)
            c++;
    return c;
}

/* Sum of the values of every sample line starting with prefix. */
static double sum_prefix(const char *text, const char *prefix)
{
    double s = 0;
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, prefix, n) == 0) {
            const char *sp = strchr(p, '\n');
            const char *v = sp ? sp : p + strlen(p);
            while (v > p && v[-1] != ' ')
                v--;
            s += strtod(v, NULL);
        }
    }
    return s;
}

/* A strict reader of the text format: every line is a comment or
 * `name{l="v",...} value`, label values use only \\, \" and \n escapes and
 * contain no raw control bytes. Returns the number of samples, -1 if malformed. */
static int check_exposition(const char *text)
{
    int samples = 0;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        if (!eol)
            return -1; /* the last line must end with a newline too */
        if (*p == '#') {
            if (strncmp(p, "# HELP ", 7) != 0 && strncmp(p, "# TYPE ", 7) != 0)
                return -1;
            p = eol + 1;
            continue;
        }
        const char *q = p;
        while (q < eol && (*q == '_' || *q == ':' || (*q >= 'a' && *q <= 'z') ||
                           (*q >= 'A' && *q <= 'Z') || (q > p && *q >= '0' && *q <= '9')))
            q++;
        if (q == p)
            return -1;
        if (*q == '{') {
            q++;
            for (;;) {
                const char *ls = q;
                while (q < eol && (*q == '_' || (*q >= 'a' && *q <= 'z')))
                    q++;
                if (q == ls || q + 1 >= eol || q[0] != '=' || q[1] != '"')
                    return -1;
                q += 2;
                while (q < eol && *q != '"') {
                    if ((unsigned char)*q < 0x20)
                        return -1;
                    if (*q == '\\') {
                        if (q[1] != '\\' && q[1] != '"' && q[1] != 'n')
                            return -1;
                        q++;
                    }
                    q++;
                }
                if (q >= eol)
                    return -1;
                q++;
                if (*q == ',') {
                    q++;
                    continue;
                }
                if (*q != '}')
                    return -1;
                q++;
                break;
            }
        }
        if (*q != ' ')
            return -1;
        char *end;
        strtod(q + 1, &end);
        if (end != eol || end == q + 1)
            return -1;
        samples++;
        p = eol + 1;
    }
    return samples;
}

START_TEST(test_init_rules)
{
    ck_assert_int_eq(met_init(0), -1);
    ck_assert_int_eq(met_init(2), 0);
    ck_assert_int_eq(met_init(2), -1); /* already running */
    met_shutdown();
    ck_assert_int_eq(met_init(1), 0);
    met_shutdown();
    met_shutdown(); /* idempotent */
}
END_TEST

START_TEST(test_uninitialised_is_noop)
{
    met_request(0, "/x", 200, "allow", "", 0.01, 0.005);
    met_cache(0, true);
    met_connections(0, 1);
    char *t = render(NULL);
    ck_assert_int_ge(check_exposition(t), 0);
    ck_assert_int_eq(count_prefix(t, "authgate_requests_total{"), 0);
    ck_assert(value_of(t, "authgate_token_cache_hits_total") == 0);
    ck_assert(value_of(t, "authgate_open_connections") == 0);
    /* No gauges given: no build_info sample either. */
    ck_assert_int_eq(count_prefix(t, "authgate_build_info{"), 0);
    free(t);
}
END_TEST

START_TEST(test_shards_are_summed)
{
    ck_assert_int_eq(met_init(3), 0);
    met_request(0, "/api/{id}", 200, "allow", "", 0.001, 0.0005);
    met_request(1, "/api/{id}", 200, "allow", "", 0.001, 0.0005);
    met_request(2, "/api/{id}", 200, "allow", "", 0.001, 0.0005);
    met_request(1, "/api/{id}", 403, "deny", "org_role_mismatch", 0.001, -1);
    /* Out-of-range shards land on the shared last shard, not on the floor. */
    met_request(99, "/api/{id}", 200, "allow", "", 0.001, -1);
    met_request(-1, "/api/{id}", 200, "allow", "", 0.001, -1);
    char *t = render(NULL);
    ck_assert_int_gt(check_exposition(t), 0);
    ck_assert(value_of(t, "authgate_requests_total{route=\"/api/{id}\",status=\"200\","
                          "decision=\"allow\",reason=\"none\"}") == 5);
    ck_assert(value_of(t, "authgate_requests_total{route=\"/api/{id}\",status=\"403\","
                          "decision=\"deny\",reason=\"org_role_mismatch\"}") == 1);
    ck_assert_int_eq(count_prefix(t, "authgate_requests_total{"), 2);
    ck_assert(value_of(t, "authgate_request_duration_seconds_count{decision=\"allow\"}") == 5);
    ck_assert(value_of(t, "authgate_request_duration_seconds_count{decision=\"deny\"}") == 1);
    /* Only the three with an upstream exchange. */
    ck_assert(value_of(t, "authgate_upstream_duration_seconds_count") == 3);
    free(t);
    met_shutdown();
}
END_TEST

START_TEST(test_forward_auth_mode_label)
{
    /* A forward-auth decision and a proxied request of the same route, status
     * and reason are two series; only the former has a mode label. */
    ck_assert_int_eq(met_init(2), 0);
    met_request(0, "/api/{id}", 200, "allow", "ok", 0.001, 0.0005);
    met_request_forward_auth(1, "/api/{id}", 200, "allow", "ok", 0.001);
    met_request_forward_auth(1, "/api/{id}", 200, "allow", "ok", 0.001);
    met_request_forward_auth(0, NULL, 400, "reject", "forward_auth_uri_missing", 0.001);
    char *t = render(NULL);
    ck_assert_int_gt(check_exposition(t), 0);
    ck_assert(value_of(t, "authgate_requests_total{route=\"/api/{id}\",status=\"200\","
                          "decision=\"allow\",reason=\"ok\"}") == 1);
    ck_assert(value_of(t, "authgate_requests_total{route=\"/api/{id}\",status=\"200\","
                          "decision=\"allow\",reason=\"ok\",mode=\"forward_auth\"}") == 2);
    ck_assert(value_of(t, "authgate_requests_total{route=\"none\",status=\"400\","
                          "decision=\"reject\",reason=\"forward_auth_uri_missing\","
                          "mode=\"forward_auth\"}") == 1);
    ck_assert_int_eq(count_prefix(t, "authgate_requests_total{"), 3);
    /* No upstream exchange behind a decision. */
    ck_assert(value_of(t, "authgate_upstream_duration_seconds_count") == 1);
    free(t);
    met_shutdown();
}
END_TEST

START_TEST(test_missing_labels_and_unknown_decision)
{
    ck_assert_int_eq(met_init(1), 0);
    met_request(0, NULL, 404, "reject", "no_route", 0.0001, -1);
    met_request(0, "", 500, "weird", NULL, 0.0001, -1);
    met_request(0, "/r", 1234, NULL, "x", 0.0001, -1);
    char *t = render(NULL);
    ck_assert_int_gt(check_exposition(t), 0);
    ck_assert(value_of(t, "authgate_requests_total{route=\"none\",status=\"404\","
                          "decision=\"reject\",reason=\"no_route\"}") == 1);
    ck_assert(value_of(t, "authgate_requests_total{route=\"none\",status=\"500\","
                          "decision=\"other\",reason=\"none\"}") == 1);
    ck_assert(value_of(t, "authgate_requests_total{route=\"/r\",status=\"0\","
                          "decision=\"other\",reason=\"x\"}") == 1);
    ck_assert(value_of(t, "authgate_request_duration_seconds_count{decision=\"other\"}") == 2);
    /* Known decisions are always present (rate() starts from zero). */
    ck_assert(value_of(t, "authgate_request_duration_seconds_count{decision=\"aborted\"}") == 0);
    free(t);
    met_shutdown();
}
END_TEST

START_TEST(test_label_escaping)
{
    ck_assert_int_eq(met_init(1), 0);
    met_request(0, "/a\"b\\c\nd", 200, "allow", "", 0, -1);
    met_request(0, "/tab\there/\xff/caf\xc3\xa9/\xc3", 200, "allow", "", 0, -1);
    char long_route[600];
    memset(long_route, 'r', sizeof(long_route) - 1);
    long_route[0] = '/';
    long_route[sizeof(long_route) - 1] = '\0';
    met_request(0, long_route, 200, "allow", "", 0, -1);
    char *t = render(NULL);
    ck_assert_int_gt(check_exposition(t), 0);
    ck_assert(value_of(t, "authgate_requests_total{route=\"/a\\\"b\\\\c\\nd\",status=\"200\","
                          "decision=\"allow\",reason=\"none\"}") == 1);
    /* Control bytes and invalid UTF-8 become '?'; valid UTF-8 stays. */
    ck_assert(value_of(t, "authgate_requests_total{route=\"/tab?here/?/caf\xc3\xa9/?\","
                          "status=\"200\",decision=\"allow\",reason=\"none\"}") == 1);
    /* Labels are capped at 128 bytes. */
    char want[300];
    snprintf(want, sizeof(want),
             "authgate_requests_total{route=\"%.128s\",status=\"200\",decision=\"allow\","
             "reason=\"none\"}",
             long_route);
    ck_assert(value_of(t, want) == 1);
    free(t);
    met_shutdown();
}
END_TEST

START_TEST(test_histogram_buckets)
{
    ck_assert_int_eq(met_init(2), 0);
    met_request(0, "/h", 200, "allow", "", 0.0001, 0.0001);
    met_request(1, "/h", 200, "allow", "", 0.0005, 0.0005); /* on the bound: le includes it */
    met_request(0, "/h", 200, "allow", "", 0.003, 2.0);
    met_request(1, "/h", 200, "allow", "", 20.0, 30.0); /* beyond the last bucket */
    met_request(0, "/h", 200, "allow", "", -5.0, -1);   /* clock oddity: counted as 0 */
    char *t = render(NULL);
    ck_assert_int_gt(check_exposition(t), 0);
#define REQ_B(le) "authgate_request_duration_seconds_bucket{decision=\"allow\",le=\"" le "\"}"
    ck_assert(value_of(t, REQ_B("0.0005")) == 3);
    ck_assert(value_of(t, REQ_B("0.001")) == 3);
    ck_assert(value_of(t, REQ_B("0.0025")) == 3);
    ck_assert(value_of(t, REQ_B("0.005")) == 4);
    ck_assert(value_of(t, REQ_B("10")) == 4);
    ck_assert(value_of(t, REQ_B("+Inf")) == 5);
    ck_assert(value_of(t, "authgate_request_duration_seconds_count{decision=\"allow\"}") == 5);
    double sum = value_of(t, "authgate_request_duration_seconds_sum{decision=\"allow\"}");
    ck_assert(sum > 20.0035 && sum < 20.0037);
#define UP_B(le) "authgate_upstream_duration_seconds_bucket{le=\"" le "\"}"
    ck_assert(value_of(t, UP_B("0.0005")) == 2);
    ck_assert(value_of(t, UP_B("2.5")) == 3);
    ck_assert(value_of(t, UP_B("+Inf")) == 4);
    ck_assert(value_of(t, "authgate_upstream_duration_seconds_count") == 4);
    /* Empty decisions render a full, zero histogram. */
    ck_assert(
        value_of(t, "authgate_request_duration_seconds_bucket{decision=\"deny\",le=\"+Inf\"}") ==
        0);
    free(t);
    met_shutdown();
}
END_TEST

START_TEST(test_cardinality_is_bounded)
{
    ck_assert_int_eq(met_init(2), 0);
    char route[64];
    int total = 0;
    for (int i = 0; i < 5000; i++, total++) {
        snprintf(route, sizeof(route), "/r/%d", i);
        met_request(0, route, 200, "allow", "", 0.001, -1);
    }
    /* Past the cap, new route names share route="other" but keep status. */
    char *t = render(NULL);
    ck_assert_int_gt(check_exposition(t), 0);
    ck_assert(value_of(t, "authgate_requests_total{route=\"other\",status=\"200\","
                          "decision=\"allow\",reason=\"none\"}") == 5000 - 4096);
    ck_assert(value_of(t, "authgate_requests_total{route=\"/r/0\",status=\"200\","
                          "decision=\"allow\",reason=\"none\"}") == 1);
    free(t);
    /* Once the reserve for route="other" is used, the rest goes to one series. */
    for (int i = 0; i < 600; i++, total++) {
        snprintf(route, sizeof(route), "/s/%d", i);
        met_request(0, route, 100 + i, "deny", "r", 0.001, -1);
    }
    /* Series already known keep counting exactly. */
    met_request(0, "/r/7", 200, "allow", "", 0.001, -1);
    total++;
    t = render(NULL);
    ck_assert_int_gt(check_exposition(t), 0);
    int lines = count_prefix(t, "authgate_requests_total{");
    ck_assert_int_le(lines, 4096 + 256 + 1);
    ck_assert_int_gt(lines, 4096);
    ck_assert(sum_prefix(t, "authgate_requests_total{") == total);
    double other = value_of(t, "authgate_requests_total{route=\"other\",status=\"other\","
                               "decision=\"other\",reason=\"other\"}");
    ck_assert(other == 600 - (256 - 1));
    ck_assert(value_of(t, "authgate_requests_total{route=\"/r/7\",status=\"200\","
                          "decision=\"allow\",reason=\"none\"}") == 2);
    /* The other shard still has its own full capacity. */
    met_request(1, "/fresh", 200, "allow", "", 0.001, -1);
    free(t);
    t = render(NULL);
    ck_assert(value_of(t, "authgate_requests_total{route=\"/fresh\",status=\"200\","
                          "decision=\"allow\",reason=\"none\"}") == 1);
    free(t);
    met_shutdown();
}
END_TEST

START_TEST(test_upstream_errors)
{
    ck_assert_int_eq(met_init(2), 0);
    met_upstream_error(0, "backend", "upstream_timeout");
    met_upstream_error(1, "backend", "upstream_timeout");
    met_upstream_error(1, "backend", "upstream_connect_failed");
    met_upstream_error(1, NULL, NULL);
    char *t = render(NULL);
    ck_assert_int_gt(check_exposition(t), 0);
    ck_assert(value_of(t, "authgate_upstream_errors_total{upstream=\"backend\","
                          "reason=\"upstream_timeout\"}") == 2);
    ck_assert(value_of(t, "authgate_upstream_errors_total{upstream=\"backend\","
                          "reason=\"upstream_connect_failed\"}") == 1);
    ck_assert(value_of(t, "authgate_upstream_errors_total{upstream=\"none\",reason=\"none\"}") ==
              1);
    free(t);
    char name[32];
    for (int i = 0; i < 400; i++) {
        snprintf(name, sizeof(name), "u%d", i);
        met_upstream_error(0, name, "x");
    }
    t = render(NULL);
    /* Shard 0 holds at most 256 series; shard 1 has its 2; plus the catch-all. */
    ck_assert_int_eq(count_prefix(t, "authgate_upstream_errors_total{"), 256 + 2 + 1);
    ck_assert(sum_prefix(t, "authgate_upstream_errors_total{") == 404);
    ck_assert(value_of(t, "authgate_upstream_errors_total{upstream=\"other\",reason=\"other\"}") ==
              400 - 255);
    free(t);
    met_shutdown();
}
END_TEST

START_TEST(test_gauges_and_counters)
{
    ck_assert_int_eq(met_init(2), 0);
    met_cache(0, true);
    met_cache(1, true);
    met_cache(1, false);
    met_connections(0, 1);
    met_connections(1, 1);
    met_connections(1, 1);
    met_connections(0, -1);
    met_reload(true);
    met_reload(false);
    met_reload(false);
    met_gauges g = {
        .keys_ready = true,
        .key_loaded_at = ag_now_wall() - 100,
        .key_refresh_ok = 7,
        .key_refresh_failures = 2,
        .policy_hash = "ab\"cd",
        .policy_loaded_at = 1700000000,
        .version = "1.2.3",
    };
    char *t = render(&g);
    ck_assert_int_gt(check_exposition(t), 0);
    ck_assert(value_of(t, "authgate_token_cache_hits_total") == 2);
    ck_assert(value_of(t, "authgate_token_cache_misses_total") == 1);
    ck_assert(value_of(t, "authgate_open_connections") == 2);
    ck_assert(value_of(t, "authgate_reloads_total{result=\"ok\"}") == 1);
    ck_assert(value_of(t, "authgate_reloads_total{result=\"error\"}") == 2);
    ck_assert(value_of(t, "authgate_keys_ready") == 1);
    double age = value_of(t, "authgate_key_age_seconds");
    ck_assert(age >= 100 && age <= 102);
    ck_assert(value_of(t, "authgate_key_refresh_total{result=\"ok\"}") == 7);
    ck_assert(value_of(t, "authgate_key_refresh_total{result=\"error\"}") == 2);
    ck_assert(value_of(t, "authgate_policy_loaded_timestamp_seconds") == 1700000000);
    ck_assert(value_of(t, "authgate_build_info{version=\"1.2.3\",policy_hash=\"ab\\\"cd\"}") == 1);
    /* Every family is announced exactly once, with HELP before TYPE. */
    ck_assert_int_eq(count_prefix(t, "# TYPE authgate_requests_total counter"), 1);
    ck_assert_int_eq(count_prefix(t, "# TYPE authgate_request_duration_seconds histogram"), 1);
    ck_assert_int_eq(count_prefix(t, "# TYPE authgate_keys_ready gauge"), 1);
    free(t);

    /* Keys never loaded: readiness 0 and no age sample (no fake 0 age). */
    met_gauges g2 = {.version = "x"};
    t = render(&g2);
    ck_assert(value_of(t, "authgate_keys_ready") == 0);
    ck_assert(value_of(t, "authgate_key_age_seconds") == -1);
    ck_assert(value_of(t, "authgate_build_info{version=\"x\",policy_hash=\"\"}") == 1);
    free(t);
    met_shutdown();
}
END_TEST

/* ---- concurrency: writers on their own shards, plus two on a shared one ---- */

#define PER_THREAD 100000
#define NKEYS 37

typedef struct wargs {
    int shard;
    int seed;
} wargs;

static volatile int g_stop_reader;

static void *writer(void *p)
{
    const wargs *w = p;
    char route[32];
    for (int i = 0; i < PER_THREAD; i++) {
        /* The same keys in every thread so shared-shard inserts race. */
        snprintf(route, sizeof(route), "/k/%d", (i + w->seed) % NKEYS);
        met_request(w->shard, route, 200, "allow", "", (double)(i % 100) / 1000.0,
                    i % 2 ? 0.001 : -1);
        met_cache(w->shard, i % 3 == 0);
        met_connections(w->shard, i % 2 ? -1 : 1);
    }
    return NULL;
}

/* Checks one histogram's invariants in a render taken mid-flight. */
static void check_hist_consistent(const char *t, const char *bucket_prefix, const char *count)
{
    double prev = -1;
    size_t n = strlen(bucket_prefix);
    for (const char *p = t; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, bucket_prefix, n) != 0)
            continue;
        const char *sp = strchr(p, ' ');
        double v = strtod(sp + 1, NULL);
        ck_assert(v >= prev);
        prev = v;
        if (strncmp(p + n, "le=\"+Inf\"", 9) == 0)
            ck_assert(v == value_of(t, count));
    }
}

static void *reader(void *p)
{
    (void)p;
    int rounds = 0;
    while (!__atomic_load_n(&g_stop_reader, __ATOMIC_ACQUIRE) || rounds == 0) {
        char *t = render(NULL);
        ck_assert_int_gt(check_exposition(t), 0);
        check_hist_consistent(t, "authgate_request_duration_seconds_bucket{decision=\"allow\",",
                              "authgate_request_duration_seconds_count{decision=\"allow\"}");
        check_hist_consistent(t, "authgate_upstream_duration_seconds_bucket{",
                              "authgate_upstream_duration_seconds_count");
        free(t);
        rounds++;
    }
    return NULL;
}

START_TEST(test_concurrent_writers_and_reader)
{
    ck_assert_int_eq(met_init(3), 0);
    wargs a[4] = {{0, 0}, {1, 5}, {2, 11}, {2, 23}}; /* two threads share shard 2 */
    pthread_t th[4], rd;
    __atomic_store_n(&g_stop_reader, 0, __ATOMIC_RELEASE);
    ck_assert_int_eq(pthread_create(&rd, NULL, reader, NULL), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, writer, &a[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    __atomic_store_n(&g_stop_reader, 1, __ATOMIC_RELEASE);
    pthread_join(rd, NULL);

    char *t = render(NULL);
    ck_assert_int_gt(check_exposition(t), 0);
    /* Exactly NKEYS series after merging shards: no duplicates from racing inserts. */
    ck_assert_int_eq(count_prefix(t, "authgate_requests_total{"), NKEYS);
    ck_assert(sum_prefix(t, "authgate_requests_total{") == 4.0 * PER_THREAD);
    ck_assert(value_of(t, "authgate_request_duration_seconds_count{decision=\"allow\"}") ==
              4.0 * PER_THREAD);
    ck_assert(value_of(t, "authgate_upstream_duration_seconds_count") == 2.0 * PER_THREAD);
    int hits_per = (PER_THREAD + 2) / 3;
    ck_assert(value_of(t, "authgate_token_cache_hits_total") == 4.0 * hits_per);
    ck_assert(value_of(t, "authgate_token_cache_misses_total") == 4.0 * (PER_THREAD - hits_per));
    ck_assert(value_of(t, "authgate_open_connections") == 0);
    free(t);
    met_shutdown();
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_init_rules);
    tcase_add_test(tc, test_uninitialised_is_noop);
    tcase_add_test(tc, test_shards_are_summed);
    tcase_add_test(tc, test_forward_auth_mode_label);
    tcase_add_test(tc, test_missing_labels_and_unknown_decision);
    tcase_add_test(tc, test_label_escaping);
    tcase_add_test(tc, test_histogram_buckets);
    tcase_add_test(tc, test_cardinality_is_bounded);
    tcase_add_test(tc, test_upstream_errors);
    tcase_add_test(tc, test_gauges_and_counters);
    tcase_add_test(tc, test_concurrent_writers_and_reader);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
