/* admin: a real listener on 127.0.0.1 (ephemeral port) queried with libcurl:
 * health, readiness in both states, the metrics scrape, 404/405, HEAD, and
 * listen-address validation. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "metrics.h"
#include "testutil.h"

typedef struct fake {
    bool keys_ready, policy_loaded, draining;
    const char *key_error;
    int calls;
} fake;

static void status_cb(void *ctx, adm_status *st)
{
    fake *f = ctx;
    __atomic_add_fetch(&f->calls, 1, __ATOMIC_RELAXED);
    st->keys_ready = f->keys_ready;
    st->policy_loaded = f->policy_loaded;
    st->draining = f->draining;
    snprintf(st->policy_hash, sizeof(st->policy_hash), "0123456789abcdef");
    st->policy_loaded_at = 1700000000;
    snprintf(st->key_fingerprint, sizeof(st->key_fingerprint), "fedcba9876543210");
    snprintf(st->key_error, sizeof(st->key_error), "%s", f->key_error ? f->key_error : "");
    st->gauges.keys_ready = f->keys_ready;
    st->gauges.key_refresh_ok = 3;
    st->gauges.version = "9.9.9";
    /* policy_hash / policy_loaded_at left empty: admin fills them in. */
}

typedef struct reply {
    long status;
    char body[65536];
    size_t len;
    char ctype[128];
    char allow[64];
} reply;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    reply *r = ud;
    size_t take = sz * n;
    if (take > sizeof(r->body) - 1 - r->len)
        take = sizeof(r->body) - 1 - r->len;
    memcpy(r->body + r->len, p, take);
    r->len += take;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    reply *r = ud;
    size_t len = sz * n;
    if (len > 7 && strncasecmp(p, "Allow: ", 7) == 0)
        snprintf(r->allow, sizeof(r->allow), "%.*s", (int)(len - 9), p + 7);
    return len;
}

static void http(const char *host, int port, const char *method, const char *path, reply *r)
{
    memset(r, 0, sizeof(*r));
    char url[128];
    snprintf(url, sizeof(url), "http://%s:%d%s", host, port, path);
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    const char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(r->ctype, sizeof(r->ctype), "%s", ct ? ct : "");
    curl_easy_cleanup(c);
}

static json_t *parse_json(const reply *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body, r->len, 0, &e);
    ck_assert_msg(j != NULL, "bad JSON: %s", r->body);
    return j;
}

static adm_server *start(fake *f, int *port)
{
    adm_server *a = NULL;
    char err[256] = "";
    ck_assert_msg(adm_start("127.0.0.1:0", status_cb, f, &a, err, sizeof(err)) == 0, "%s", err);
    ck_assert_ptr_nonnull(a);
    *port = adm_port(a);
    ck_assert_int_gt(*port, 0);
    return a;
}

START_TEST(test_healthz_and_unknown)
{
    fake f = {.keys_ready = true, .policy_loaded = true};
    int port;
    adm_server *a = start(&f, &port);
    reply r;
    http("127.0.0.1", port, "GET", "/healthz", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"status\":\"alive\"}\n");
    ck_assert_str_eq(r.ctype, "application/json");
    /* Liveness never asks the daemon anything. */
    ck_assert_int_eq(__atomic_load_n(&f.calls, __ATOMIC_RELAXED), 0);

    http("127.0.0.1", port, "HEAD", "/healthz", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.len, 0);

    http("127.0.0.1", port, "GET", "/nope", &r);
    ck_assert_int_eq(r.status, 404);
    json_t *j = parse_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "error")), "not_found");
    json_decref(j);
    http("127.0.0.1", port, "GET", "/healthz/extra", &r);
    ck_assert_int_eq(r.status, 404);

    http("127.0.0.1", port, "POST", "/metrics", &r);
    ck_assert_int_eq(r.status, 405);
    ck_assert_str_eq(r.allow, "GET, HEAD");
    j = parse_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "error")), "method_not_allowed");
    json_decref(j);
    http("127.0.0.1", port, "DELETE", "/readyz", &r);
    ck_assert_int_eq(r.status, 405);
    adm_stop(a);
}
END_TEST

START_TEST(test_readyz_states)
{
    fake f = {.keys_ready = true, .policy_loaded = true};
    int port;
    adm_server *a = start(&f, &port);
    reply r;
    http("127.0.0.1", port, "GET", "/readyz", &r);
    ck_assert_int_eq(r.status, 200);
    json_t *j = parse_json(&r);
    ck_assert(json_is_true(json_object_get(j, "ready")));
    ck_assert_ptr_null(json_object_get(j, "reasons"));
    ck_assert_str_eq(json_string_value(json_object_get(j, "policy_hash")), "0123456789abcdef");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "policy_loaded_at")), 1700000000);
    ck_assert_str_eq(json_string_value(json_object_get(j, "key_fingerprint")), "fedcba9876543210");
    json_decref(j);

    f.keys_ready = false;
    f.draining = true;
    f.key_error = "fetch \"jwks\" failed\n(timeout)";
    http("127.0.0.1", port, "GET", "/readyz", &r);
    ck_assert_int_eq(r.status, 503);
    j = parse_json(&r);
    ck_assert(json_is_false(json_object_get(j, "ready")));
    json_t *reasons = json_object_get(j, "reasons");
    ck_assert_uint_eq(json_array_size(reasons), 2);
    ck_assert_str_eq(json_string_value(json_array_get(reasons, 0)), "keys_unavailable");
    ck_assert_str_eq(json_string_value(json_array_get(reasons, 1)), "draining");
    ck_assert_str_eq(json_string_value(json_object_get(j, "key_error")),
                     "fetch \"jwks\" failed\n(timeout)");
    json_decref(j);

    f.keys_ready = true;
    f.draining = false;
    f.policy_loaded = false;
    f.key_error = NULL;
    http("127.0.0.1", port, "GET", "/readyz", &r);
    ck_assert_int_eq(r.status, 503);
    j = parse_json(&r);
    reasons = json_object_get(j, "reasons");
    ck_assert_uint_eq(json_array_size(reasons), 1);
    ck_assert_str_eq(json_string_value(json_array_get(reasons, 0)), "policy_not_loaded");
    ck_assert_ptr_null(json_object_get(j, "key_error"));
    json_decref(j);
    adm_stop(a);
}
END_TEST

START_TEST(test_metrics_scrape)
{
    ck_assert_int_eq(met_init(2), 0);
    met_request(0, "/api/{x}", 200, "allow", "", 0.002, 0.001);
    met_request(1, "/api/{x}", 200, "allow", "", 0.002, 0.001);
    met_reload(true);
    fake f = {.keys_ready = true, .policy_loaded = true};
    int port;
    adm_server *a = start(&f, &port);
    reply r;
    http("127.0.0.1", port, "GET", "/metrics", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
    ck_assert_ptr_nonnull(strstr(r.body,
                                 "\nauthgate_requests_total{route=\"/api/{x}\",status=\"200\","
                                 "decision=\"allow\",reason=\"none\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(
        r.body, "authgate_build_info{version=\"9.9.9\",policy_hash=\"0123456789abcdef\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "\nauthgate_keys_ready 1\n"));
    ck_assert_ptr_nonnull(
        strstr(r.body, "\nauthgate_policy_loaded_timestamp_seconds 1700000000\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "\nauthgate_key_refresh_total{result=\"ok\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "\nauthgate_reloads_total{result=\"ok\"} 1\n"));
    ck_assert_int_eq(__atomic_load_n(&f.calls, __ATOMIC_RELAXED), 1);

    f.keys_ready = false;
    http("127.0.0.1", port, "GET", "/metrics", &r);
    ck_assert_ptr_nonnull(strstr(r.body, "\nauthgate_keys_ready 0\n"));
    adm_stop(a);
    met_shutdown();
}
END_TEST

START_TEST(test_ipv6_loopback)
{
    fake f = {.keys_ready = true, .policy_loaded = true};
    adm_server *a = NULL;
    char err[256] = "";
    if (adm_start("[::1]:0", status_cb, &f, &a, err, sizeof(err)) != 0) {
        /* No IPv6 on this host's loopback: nothing to test, but say so. */
        fprintf(stderr, "test_ipv6_loopback skipped: %s\n", err);
        return;
    }
    reply r;
    http("[::1]", adm_port(a), "GET", "/healthz", &r);
    ck_assert_int_eq(r.status, 200);
    adm_stop(a);
}
END_TEST

START_TEST(test_listen_validation)
{
    static const char *const bad[] = {
        "",
        "nohost",
        ":9901",
        "127.0.0.1:",
        "127.0.0.1:99999",
        "::1:9901",
        "[::1]9901",
        "[::1]",
        "[]:80",
        "example.com:80",
        "127.0.0.1:80x",
        "127.0.0.1:-1",
        "[127.0.0.1]:80",
        "1.2.3:80",
        "127.0.0.1:1234567",
    };
    fake f = {0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        adm_server *a = (adm_server *)&f; /* must be reset to NULL on failure */
        char err[256] = "";
        ck_assert_msg(adm_start(bad[i], status_cb, &f, &a, err, sizeof(err)) == -1, "%s", bad[i]);
        ck_assert_ptr_null(a);
        ck_assert_msg(err[0] != '\0', "no error text for %s", bad[i]);
    }
}
END_TEST

START_TEST(test_port_in_use)
{
    fake f = {.keys_ready = true, .policy_loaded = true};
    int port;
    adm_server *a = start(&f, &port);
    char spec[64], err[256] = "";
    snprintf(spec, sizeof(spec), "localhost:%d", port);
    adm_server *b = NULL;
    ck_assert_int_eq(adm_start(spec, status_cb, &f, &b, err, sizeof(err)), -1);
    ck_assert_ptr_null(b);
    ck_assert_ptr_nonnull(strstr(err, "cannot listen on"));
    /* The first listener is unharmed. */
    reply r;
    http("127.0.0.1", port, "GET", "/healthz", &r);
    ck_assert_int_eq(r.status, 200);
    adm_stop(a);
    adm_stop(NULL);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("admin");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_healthz_and_unknown);
    tcase_add_test(tc, test_readyz_states);
    tcase_add_test(tc, test_metrics_scrape);
    tcase_add_test(tc, test_ipv6_loopback);
    tcase_add_test(tc, test_listen_validation);
    tcase_add_test(tc, test_port_in_use);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
