/* cfgcors: the global cors section and routes[].cors. Each route's compiled
 * policy is the global keys, each replaced by the route's own; list and
 * compile errors are reported where the key is, a global one only once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgtest.h"
#include "config.h"
#include "cors.h"
#include "testutil.h"
#include "util.h"

#define APP "https://app.example.com"
#define OTHER "https://other.example.com"

/* Access-Control-* lines of a response (or allowed preflight) from origin. */
typedef struct {
    char got[512];
} lines;

static int collect(void *ctx, const char *name, const char *value)
{
    lines *l = ctx;
    size_t n = strlen(l->got);
    snprintf(l->got + n, sizeof(l->got) - n, "%s=%s|", name, value);
    return 0;
}

static const char *answer(const cors_policy *p, const char *origin, bool preflight)
{
    static lines l;
    memset(&l, 0, sizeof(l));
    cors_request rq = {.origin = origin,
                       .origin_len = strlen(origin),
                       .preflight = preflight,
                       .method = "GET",
                       .method_len = 3};
    ck_assert_int_eq(cors_response_headers(p, &rq, collect, &l), 0);
    return l.got;
}

static bool allows(const cors_policy *p, const char *origin)
{
    return cors_origin_allowed(p, origin, strlen(origin));
}

static cors_verdict pre(const cors_policy *p, const char *method, const char *hdrs)
{
    return cors_preflight(p, APP, strlen(APP), method, strlen(method), hdrs,
                          hdrs ? strlen(hdrs) : 0);
}

START_TEST(test_cors_off_by_default)
{
    cfg_config *c = load_ok(BASE_AUTH "routes: [{path: /x, policy: public}]\n");
    ck_assert_uint_eq(c->cors.norigins, 0);
    ck_assert_uint_eq(c->cors.nheaders, 2);
    ck_assert_str_eq(c->cors.headers[0], "Authorization");
    ck_assert_str_eq(c->cors.headers[1], "Content-Type");
    ck_assert_ptr_null(c->routes[0].cors);
    cfg_free(c);
    /* a route alone may turn it on */
    c = load_ok(BASE_AUTH "routes:\n"
                          "  - {path: /x, policy: public, cors: {allowed_origins: [\"" APP "\"]}}\n"
                          "  - {path: /y, policy: public}\n");
    ck_assert_ptr_nonnull(c->routes[0].cors);
    ck_assert(allows(c->routes[0].cors, APP));
    ck_assert_ptr_null(c->routes[1].cors);
    cfg_free(c);
}
END_TEST

/* Each key a route sets replaces the global one; the others are inherited. */
START_TEST(test_cors_route_replaces_key_by_key)
{
    cfg_config *c =
        load_ok(BASE_AUTH "cors:\n"
                          "  allowed_origins: [\"" APP "\"]\n"
                          "  allow_credentials: true\n"
                          "  max_age: 120\n"
                          "  exposed_headers: [X-Total]\n"
                          "routes:\n"
                          "  - {path: /a, policy: public}\n"
                          "  - {path: /b, policy: public, cors: {allowed_origins: []}}\n"
                          "  - path: /c\n"
                          "    policy: public\n"
                          "    cors: {allowed_origins: [\"" OTHER "\"]}\n"
                          "  - {path: /d, policy: public, cors: {allowed_methods: [GET]}}\n"
                          "  - path: /e\n"
                          "    policy: public\n"
                          "    cors: {allowed_headers: [X-Custom], max_age: 5,\n"
                          "           allow_credentials: false}\n");
    const cfg_route *r = c->routes;
    /* /a: the global policy as it is */
    ck_assert(allows(r[0].cors, APP));
    ck_assert(!allows(r[0].cors, OTHER));
    const char *a = answer(r[0].cors, APP, true);
    ck_assert_msg(strstr(a, "Access-Control-Allow-Credentials=true|"), "%s", a);
    ck_assert_msg(strstr(a, "Access-Control-Max-Age=120|"), "%s", a);
    ck_assert_int_eq(pre(r[0].cors, "DELETE", "authorization"), CORS_ALLOW);
    /* /b: [] turns cors off for the route */
    ck_assert_ptr_null(r[1].cors);
    /* /c: other origins, the rest inherited */
    ck_assert(allows(r[2].cors, OTHER));
    ck_assert(!allows(r[2].cors, APP));
    const char *cc = answer(r[2].cors, OTHER, false);
    ck_assert_msg(strstr(cc, "X-Total"), "%s", cc);
    /* /d: the methods only */
    ck_assert_int_eq(pre(r[3].cors, "GET", NULL), CORS_ALLOW);
    ck_assert_int_eq(pre(r[3].cors, "POST", NULL), CORS_DENY_METHOD);
    ck_assert(strstr(answer(r[3].cors, APP, true), "Access-Control-Allow-Credentials=true|"));
    /* /e: headers, max_age and credentials replaced */
    ck_assert_int_eq(pre(r[4].cors, "GET", "x-custom"), CORS_ALLOW);
    ck_assert_int_eq(pre(r[4].cors, "GET", "authorization"), CORS_DENY_HEADERS);
    const char *e = answer(r[4].cors, APP, true);
    ck_assert_msg(strstr(e, "Access-Control-Max-Age=5|"), "%s", e);
    ck_assert_msg(!strstr(e, "Access-Control-Allow-Credentials"), "%s", e);
    /* the global section itself is kept as written */
    ck_assert_uint_eq(c->cors.norigins, 1);
    ck_assert_str_eq(c->cors.origins[0], APP);
    ck_assert(c->cors.credentials);
    cfg_free(c);
}
END_TEST

#define ROUTES "routes: [{path: /x, policy: public}]\n"

START_TEST(test_cors_list_errors)
{
    err_has(BASE_AUTH "cors: [\"" APP "\"]\n" ROUTES, "cors: expected a mapping, got a list");
    err_has(BASE_AUTH "cors: {allowed_origins: \"" APP "\"}\n" ROUTES,
            "cors.allowed_origins: expected a list, got a scalar");
    err_has(BASE_AUTH "cors: {allowed_origins: [\"" APP "\"], allowed_headers: X-A}\n" ROUTES,
            "cors.allowed_headers: expected a list, got a scalar");
    err_has(BASE_AUTH "cors: {allowed_origins: [\"" APP "\"], exposed_headers: [[X-A]]}\n" ROUTES,
            "cors.exposed_headers: expected a string, got a list");
    char *y = n_entries(BASE_AUTH "cors:\n  allowed_origins:\n", 65, "    - \"https://h",
                        ".example.com\"", ROUTES);
    err_has(y, "cors.allowed_origins: more than 64 entries");
    free(y);
    err_has(BASE_AUTH "cors: {allowed_origins: [\"" APP "\"], allowed_methods: []}\n" ROUTES,
            "cors.allowed_methods: expected a non-empty list like [GET, POST]");
    err_has(BASE_AUTH "cors: {allowed_origins: [\"" APP "\"], allowed_methods: GET}\n" ROUTES,
            "cors.allowed_methods: expected a non-empty list like [GET, POST]");
    err_has(BASE_AUTH "cors: {allowed_origins: [\"" APP
                      "\"], allowed_methods: [GET, FETCH]}\n" ROUTES,
            "cors.allowed_methods: unknown method \"FETCH\" (use GET, HEAD, POST, PUT, DELETE, "
            "PATCH)");
    /* on a route, the same checks under the route's name */
    err_has(BASE_AUTH "routes: [{path: /x, policy: public, cors: on}]\n",
            "route \"/x\": cors: expected a mapping, got a scalar");
    err_has(BASE_AUTH "routes: [{path: /x, policy: public, cors: {exposed_headers: X-A}}]\n",
            "route \"/x\": cors.exposed_headers: expected a list, got a scalar");
    err_has(BASE_AUTH "routes: [{path: /x, policy: public, cors: {allowed_methods: [~]}}]\n",
            "route \"/x\": cors.allowed_methods: unknown method");
}
END_TEST

START_TEST(test_cors_compile_errors)
{
    /* the global section: reported once, at the section, not again per route */
    cfg_config *c;
    cfg_diags d;
    ck_assert_int_eq(load_str(BASE_AUTH "cors: {allowed_origins: [\"null\"]}\n"
                                        "routes:\n"
                                        "  - {path: /x, policy: public}\n"
                                        "  - {path: /y, policy: public}\n",
                              &c, &d),
                     -1);
    ck_assert_uint_eq(d.nerrors, 1);
    ck_assert_str_eq(d.errors[0], "t.yaml:6:7: cors: allowed_origins: \"null\" is the origin of "
                                  "sandboxed frames and file: pages; it cannot be allowed");
    cfg_diags_free(&d);
    err_has(BASE_AUTH "cors: {allowed_origins: [\"" APP
                      "\"], allowed_headers: [\"Bad Name\"]}\n" ROUTES,
            "cors: allowed_headers: \"Bad Name\" is not a header name");
    /* a route's own fault, and one made of a global key and the route's */
    err_has(BASE_AUTH "routes:\n"
                      "  - path: /x\n"
                      "    policy: public\n"
                      "    cors: {allowed_origins: [\"*\"], allow_credentials: true}\n",
            "route \"/x\": cors: allowed_origins: \"*\" cannot be combined with "
            "allow_credentials: list the origins");
    err_has(BASE_AUTH "cors: {allowed_origins: [\"" APP "\"], allow_credentials: true}\n"
                      "routes: [{path: /x, policy: public, cors: {allowed_origins: [\"*\"]}}]\n",
            "route \"/x\": cors: allowed_origins: \"*\" cannot be combined with "
            "allow_credentials");
    err_has(BASE_AUTH
            "routes: [{path: /x, policy: public, cors: {allowed_origins: [app.example]}}]\n",
            "route \"/x\": cors: allowed_origins: \"app.example\" is not an origin");
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("cfgcors");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_cors_off_by_default);
    tcase_add_test(tc, test_cors_route_replaces_key_by_key);
    tcase_add_test(tc, test_cors_list_errors);
    tcase_add_test(tc, test_cors_compile_errors);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
