/* routes: template syntax, specificity, 404/405, duplicates, scale. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "httpx.h"
#include "routes.h"
#include "testutil.h"
#include "util.h"

static char err[256];

/* Tags for routes: the data pointer is the address of one of these strings. */
static const char *const R_HEALTH = "healthz";

static rt_table *mk(void)
{
    rt_table *t = rt_new();
    ck_assert_ptr_nonnull(t);
    return t;
}

static void add_ok(rt_table *t, const char *tmpl, unsigned methods, const void *data)
{
    void *dup = NULL;
    int rc = rt_add(t, tmpl, methods, ag_unconst(data), &dup, err, sizeof err);
    ck_assert_msg(rc == 0, "rt_add(%s) = %d: %s", tmpl, rc, err);
}

static const void *match(const rt_table *t, const char *path, unsigned method, rt_match *m)
{
    rt_match_path(t, path, strlen(path), method, m);
    return m->data;
}

static void expect(const rt_table *t, const char *path, unsigned method, const void *want)
{
    rt_match m;
    const void *got = match(t, path, method, &m);
    ck_assert_msg(got == want, "%s: got %s, want %s", path, got ? (const char *)got : "(none)",
                  want ? (const char *)want : "(none)");
}

static const char *param(const rt_match *m, const char *name, size_t *len)
{
    for (size_t i = 0; i < m->nparams; i++) {
        if (strcmp(m->params[i].name, name) == 0) {
            *len = m->params[i].value_len;
            return m->params[i].value;
        }
    }
    return NULL;
}

/* ---- template syntax ---- */

START_TEST(test_template_good)
{
    const char *good[] = {
        "/",
        "/healthz",
        "/api/org/{org_id}/billing",
        "/api/org/{org_id}/admin/**",
        "/**",
        "/{a}/{b_2}/{_c}",
        "/caf%C3%A9",
        "/a:b@c!$&'()+,;=",
        "/v1.2/~user/x-y_z",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        ck_assert_msg(rt_template_check(good[i], err, sizeof err) == 0, "%s: %s", good[i], err);
}
END_TEST

START_TEST(test_template_bad)
{
    struct {
        const char *t;
        const char *msg;
    } bad[] = {
        {"", "start with '/'"},
        {"api", "start with '/'"},
        {"//x", "empty segment"},
        {"/x//y", "empty segment"},
        {"/x/", "empty segment"},
        {"/**/x", "last segment"},
        {"/a/**/**", "last segment"},
        {"/*", "'*'"},
        {"/a*", "'*'"},
        {"/***", "'*'"},
        {"/x{id}", "whole segment"},
        {"/{id}x", "whole segment"},
        {"/{}", "whole segment"},
        {"/{1a}", "bad parameter name"},
        {"/{a-b}", "bad parameter name"},
        {"/{id}/{id}", "duplicate parameter"},
        {"/.", "dot segment"},
        {"/a/../b", "dot segment"},
        {"/a b", "not allowed"},
        {"/a?b", "not allowed"},
        {"/a#b", "not allowed"},
        {"/a\\b", "not allowed"},
        {"/a\"b", "not allowed"},
        {"/a\x01", "not allowed"},
        {"/a%", "bad percent-escape"},
        {"/a%2", "bad percent-escape"},
        {"/a%zz", "bad percent-escape"},
        {"/a%c3%a9", "upper-case"},
        {"/%41", "write %41 as 'A'"},
        {"/a%2Fb", "never accepted"},
        {"/a%00", "never accepted"},
        {"/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", "more than 8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        ck_assert_msg(rt_template_check(bad[i].t, err, sizeof err) == -1, "accepted %s", bad[i].t);
        ck_assert_msg(strstr(err, bad[i].msg) != NULL, "%s: message \"%s\" lacks \"%s\"", bad[i].t,
                      err, bad[i].msg);
    }
    /* rt_add refuses the same templates and leaves the table usable. */
    rt_table *t = mk();
    ck_assert_int_eq(rt_add(t, "/a/**/b", HX_M_GET, (void *)"x", NULL, err, sizeof err), -1);
    expect(t, "/a/z/b", HX_M_GET, NULL);
    rt_free(t);
}
END_TEST

/* ---- specificity ---- */

START_TEST(test_specificity_literal_param_star)
{
    rt_table *t = mk();
    /* Added least specific first, so insertion order cannot be what decides. */
    add_ok(t, "/**", HX_M_ALL, "root-star");
    add_ok(t, "/api/**", HX_M_ALL, "api-star");
    add_ok(t, "/api/{x}", HX_M_ALL, "api-param");
    add_ok(t, "/api/me", HX_M_ALL, "api-me");
    add_ok(t, "/api/{x}/y", HX_M_ALL, "api-param-y");
    add_ok(t, "/api/me/{z}", HX_M_ALL, "api-me-param");

    expect(t, "/api/me", HX_M_GET, "api-me");
    expect(t, "/api/you", HX_M_GET, "api-param");
    expect(t, "/api/you/y", HX_M_GET, "api-param-y");
    /* Left-most segment decides first: literal "me" beats {x} even though
     * {x}/y would match the rest literally. */
    expect(t, "/api/me/y", HX_M_GET, "api-me-param");
    /* ...but when the literal branch dead-ends the search backtracks. */
    expect(t, "/api/me/y/z", HX_M_GET, "api-star");
    expect(t, "/api", HX_M_GET, "api-star");  /* ** takes zero segments */
    expect(t, "/api/", HX_M_GET, "api-star"); /* trailing empty segment */
    expect(t, "/apix", HX_M_GET, "root-star");
    expect(t, "/", HX_M_GET, "root-star");
    rt_free(t);
}
END_TEST

START_TEST(test_params_point_into_path)
{
    rt_table *t = mk();
    add_ok(t, "/api/org/{org_id}/users/{user}", HX_M_GET, "r");
    const char *path = "/api/org/%C3%A9x/users/u%2Fv";
    rt_match m;
    ck_assert_ptr_eq(match(t, path, HX_M_GET, &m), "r");
    ck_assert_uint_eq(m.nparams, 2);
    size_t len = 0;
    const char *v = param(&m, "org_id", &len);
    ck_assert_ptr_eq(v, path + 9);
    ck_assert_uint_eq(len, 7);
    v = param(&m, "user", &len);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(memcmp(v, "u%2Fv", len), 0);
    ck_assert_uint_eq(len, 5);
    rt_free(t);
}
END_TEST

START_TEST(test_params_names_per_route)
{
    /* Same shape, disjoint methods, different parameter names: each route
     * reports its own names. */
    rt_table *t = mk();
    add_ok(t, "/o/{org_id}", HX_M_GET, "get");
    add_ok(t, "/o/{id}", HX_M_DELETE, "del");
    rt_match m;
    size_t len;
    ck_assert_ptr_eq(match(t, "/o/abc", HX_M_GET, &m), "get");
    ck_assert_ptr_nonnull(param(&m, "org_id", &len));
    ck_assert_ptr_null(param(&m, "id", &len));
    ck_assert_ptr_eq(match(t, "/o/abc", HX_M_DELETE, &m), "del");
    ck_assert_ptr_nonnull(param(&m, "id", &len));
    ck_assert_uint_eq(len, 3);
    rt_free(t);
}
END_TEST

START_TEST(test_param_never_empty)
{
    rt_table *t = mk();
    add_ok(t, "/api/org/{org_id}/billing", HX_M_GET, "billing");
    add_ok(t, "/x/{a}", HX_M_GET, "xa");
    expect(t, "/api/org//billing", HX_M_GET, NULL);
    expect(t, "/x/", HX_M_GET, NULL);
    expect(t, "/x/a", HX_M_GET, "xa");
    rt_free(t);
}
END_TEST

/* ---- 404 / 405 ---- */

START_TEST(test_405_allow_union)
{
    rt_table *t = mk();
    add_ok(t, "/api/org/{org_id}", HX_M_DELETE, "delete");
    add_ok(t, "/api/org/{org_id}", HX_M_GET | HX_M_HEAD, "get");
    add_ok(t, "/api/org/{org_id}/**", HX_M_PUT, "put-star");
    rt_match m;
    ck_assert_ptr_eq(match(t, "/api/org/b", HX_M_DELETE, &m), "delete");
    ck_assert_uint_eq(m.allow, 0);
    ck_assert_ptr_eq(match(t, "/api/org/b", HX_M_GET, &m), "get");
    /* A less specific route with the method still wins over 405. */
    ck_assert_ptr_eq(match(t, "/api/org/b", HX_M_PUT, &m), "put-star");
    ck_assert_ptr_null(match(t, "/api/org/b", HX_M_POST, &m));
    ck_assert_uint_eq(m.allow, HX_M_DELETE | HX_M_GET | HX_M_HEAD | HX_M_PUT);
    ck_assert_uint_eq(m.nparams, 0);
    ck_assert_ptr_null(match(t, "/api/org/b/x", HX_M_GET, &m));
    ck_assert_uint_eq(m.allow, HX_M_PUT);
    /* Unknown method (bit 0) never matches, but the path is known. */
    ck_assert_ptr_null(match(t, "/api/org/b", 0, &m));
    ck_assert_uint_eq(m.allow, HX_M_DELETE | HX_M_GET | HX_M_HEAD | HX_M_PUT);
    ck_assert_ptr_null(match(t, "/api/orgs/b", HX_M_GET, &m));
    ck_assert_uint_eq(m.allow, 0);
    rt_free(t);
}
END_TEST

/* Case 38: the demo policy of tests/integration/sec_common.py; nothing outside it matches. */
static rt_table *demo_table(void)
{
    rt_table *t = mk();
    add_ok(t, "/public/**", HX_M_GET, "R1");
    add_ok(t, "/api/me", HX_M_GET, "R2");
    add_ok(t, "/api/feed", HX_M_GET, "R3");
    add_ok(t, "/api/org/{org_id}/billing", HX_M_GET, "R4");
    add_ok(t, "/api/org/{org_id}/settings", HX_M_GET | HX_M_POST, "R5");
    add_ok(t, "/api/reports", HX_M_GET, "R6");
    add_ok(t, "/api/org/{org_id}", HX_M_DELETE, "R7");
    return t;
}

START_TEST(test_C38_default_deny)
{
    rt_table *t = demo_table();
    struct {
        const char *path;
        unsigned method;
        unsigned allow; /* 0 = 404 */
    } rows[] = {
        {"/api/unknown", HX_M_GET, 0},
        {"/", HX_M_GET, 0},
        {"/api/me", HX_M_POST, HX_M_GET},
        {"/api/org/B", HX_M_GET, HX_M_DELETE},
        {"/api/org/B/billing/extra", HX_M_GET, 0},
        {"/api/meta", HX_M_GET, 0},
        {"/api/m", HX_M_GET, 0},
        {"/api", HX_M_GET, 0},
        {"/api/me/", HX_M_GET, 0}, /* case 34: /x/ is not /x */
        {"/api/org/B/settings", HX_M_DELETE, HX_M_GET | HX_M_POST},
        {"/publicx", HX_M_GET, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        rt_match m;
        ck_assert_msg(match(t, rows[i].path, rows[i].method, &m) == NULL, "%s matched",
                      rows[i].path);
        ck_assert_msg(m.allow == rows[i].allow, "%s: allow %#x want %#x", rows[i].path, m.allow,
                      rows[i].allow);
    }
    expect(t, "/api/me", HX_M_GET, "R2");
    expect(t, "/public", HX_M_GET, "R1");
    expect(t, "/public/a/b/../c", HX_M_GET, "R1"); /* the canonicalizer rejects dots first */
    expect(t, "/api/org/B/billing", HX_M_GET, "R4");
    rt_free(t);
}
END_TEST

START_TEST(test_C34_trailing_slash_and_suffix)
{
    rt_table *t = demo_table();
    expect(t, "/api/org/X/settings.", HX_M_GET, NULL);
    expect(t, "/api/org/X/settings.json", HX_M_GET, NULL);
    expect(t, "/api/org/X/settings%20", HX_M_GET, NULL);
    expect(t, "/api/org/X/settings/", HX_M_GET, NULL);
    expect(t, "/api/org/X/settings", HX_M_GET, "R5");
    rt_free(t);
}
END_TEST

/* ---- duplicates and ambiguity ---- */

START_TEST(test_C90_duplicates)
{
    rt_table *t = mk();
    add_ok(t, "/api/org/{org_id}/settings", HX_M_GET, "settings");
    add_ok(t, "/api/org/{org_id}/{page}", HX_M_GET, "page"); /* different shape: allowed */
    add_ok(t, "/api/x", HX_M_GET | HX_M_POST, "x1");
    add_ok(t, "/api/x", HX_M_DELETE, "x2");
    add_ok(t, "/api/**", HX_M_GET, "star");

    void *dup = NULL;
    /* same shape, parameter named differently: still the same request set */
    ck_assert_int_eq(
        rt_add(t, "/api/org/{id}/{p}", HX_M_GET | HX_M_PUT, (void *)"again", &dup, err, sizeof err),
        -2);
    ck_assert_ptr_eq(dup, "page");
    ck_assert_ptr_nonnull(strstr(err, "same shape"));
    dup = NULL;
    ck_assert_int_eq(rt_add(t, "/api/x", HX_M_POST, (void *)"x3", &dup, err, sizeof err), -2);
    ck_assert_ptr_eq(dup, "x1");
    dup = NULL;
    ck_assert_int_eq(rt_add(t, "/api/**", HX_M_ALL, (void *)"s2", &dup, err, sizeof err), -2);
    ck_assert_ptr_eq(dup, "star");
    /* Disjoint methods on the same shape are fine. */
    add_ok(t, "/api/**", HX_M_POST, "star-post");
    /* Settings beats {page} deterministically. */
    expect(t, "/api/org/a/settings", HX_M_GET, "settings");
    expect(t, "/api/org/a/other", HX_M_GET, "page");
    expect(t, "/api/x", HX_M_DELETE, "x2");
    expect(t, "/api/y/z", HX_M_POST, "star-post");
    rt_free(t);
}
END_TEST

START_TEST(test_candidates_order)
{
    rt_table *t = mk();
    add_ok(t, "/**", HX_M_GET, "root-star");
    add_ok(t, "/api/org/{org_id}/settings", HX_M_GET, "settings");
    add_ok(t, "/api/org/{org_id}/{page}", HX_M_GET, "page");
    add_ok(t, "/api/org/{org_id}/**", HX_M_POST, "org-star");
    add_ok(t, "/api/org/x/settings", HX_M_DELETE, "x-settings");
    void *out[8];
    const char *p = "/api/org/x/settings";
    size_t n = rt_candidates(t, p, strlen(p), out, 8);
    ck_assert_uint_eq(n, 5);
    ck_assert_str_eq(out[0], "x-settings");
    ck_assert_str_eq(out[1], "settings");
    ck_assert_str_eq(out[2], "page");
    ck_assert_str_eq(out[3], "org-star");
    ck_assert_str_eq(out[4], "root-star");
    ck_assert_uint_eq(rt_candidates(t, p, strlen(p), out, 2), 2);
    ck_assert_str_eq(out[1], "settings");
    rt_free(t);
}
END_TEST

START_TEST(test_root_and_bad_input)
{
    rt_table *t = mk();
    add_ok(t, "/", HX_M_GET, R_HEALTH);
    expect(t, "/", HX_M_GET, R_HEALTH);
    expect(t, "/x", HX_M_GET, NULL);
    rt_match m;
    rt_match_path(t, "x", 1, HX_M_GET, &m);
    ck_assert_ptr_null(m.data);
    rt_match_path(t, "", 0, HX_M_GET, &m);
    ck_assert_ptr_null(m.data);
    /* Length is honoured: the bytes after len are not part of the path. */
    rt_match_path(t, "/junk", 1, HX_M_GET, &m);
    ck_assert_ptr_eq(m.data, R_HEALTH);
    rt_free(t);
}
END_TEST

/* ---- scale ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double bench(const rt_table *t, const char *path, int iters)
{
    rt_match m;
    size_t len = strlen(path);
    double t0 = now_s();
    for (int i = 0; i < iters; i++)
        rt_match_path(t, path, len, HX_M_GET, &m);
    ck_assert_ptr_nonnull(m.data);
    return now_s() - t0;
}

START_TEST(test_10k_routes_cost_like_10)
{
    static char names[10000][48];
    rt_table *small = mk(), *big = mk();
    for (int i = 0; i < 10000; i++) {
        snprintf(names[i], sizeof names[i], "/svc%05d/{org_id}/items/%d", i, i % 7);
        if (i < 10)
            add_ok(small, names[i], HX_M_GET, names[i]);
        add_ok(big, names[i], HX_M_GET, names[i]);
    }
    /* Correctness over the whole table first (10,000 siblings: the hashed
     * index of literal children, not the sorted array, answers these). */
    for (int i = 0; i < 10000; i++) {
        char p[64];
        snprintf(p, sizeof p, "/svc%05d/o1/items/%d", i, i % 7);
        expect(big, p, HX_M_GET, names[i]);
    }
    expect(big, "/svc09999/o/items/0", HX_M_GET, NULL);
    /* near misses: a prefix, a longer name, another case, an empty segment */
    expect(big, "/svc0999/o/items/0", HX_M_GET, NULL);
    expect(big, "/svc000010/o/items/3", HX_M_GET, NULL);
    expect(big, "/SVC00010/o/items/3", HX_M_GET, NULL);
    expect(big, "/svc10000/o/items/0", HX_M_GET, NULL);
    /* Then cost: a linear scan would be ~1000x slower; allow a generous 8x for
     * noise under sanitizers. Take the best of three to dodge scheduler hiccups. */
    double ts = 1e9, tb = 1e9;
    for (int r = 0; r < 3; r++) {
        double a = bench(small, "/svc00005/o1/items/5", 20000);
        double b = bench(big, "/svc05005/o1/items/0", 20000);
        ts = a < ts ? a : ts;
        tb = b < tb ? b : tb;
    }
    ck_assert_msg(tb < ts * 8 + 0.002, "10k routes: %.6fs vs 10 routes: %.6fs", tb, ts);
    rt_free(small);
    rt_free(big);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("routes");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_template_good);
    tcase_add_test(tc, test_template_bad);
    tcase_add_test(tc, test_specificity_literal_param_star);
    tcase_add_test(tc, test_params_point_into_path);
    tcase_add_test(tc, test_params_names_per_route);
    tcase_add_test(tc, test_param_never_empty);
    tcase_add_test(tc, test_405_allow_union);
    tcase_add_test(tc, test_C38_default_deny);
    tcase_add_test(tc, test_C34_trailing_slash_and_suffix);
    tcase_add_test(tc, test_C90_duplicates);
    tcase_add_test(tc, test_candidates_order);
    tcase_add_test(tc, test_root_and_bad_input);
    tcase_add_test(tc, test_10k_routes_cost_like_10);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
