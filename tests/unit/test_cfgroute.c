/* cfgroute: routes[] (path, methods, policy, org id source, upstream,
 * strip_prefix), the route table's ambiguity check and the lint for public
 * routes under a protected subtree. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cfgtest.h"
#include "config.h"
#include "httpx.h"
#include "testutil.h"
#include "util.h"

START_TEST(test_J90_overlap_rules)
{
    cfg_config *c;
    cfg_diags d;
    /* Different specificity: loads, precedence decides. */
    int rc = load_str(BASE_AUTH "routes:\n"
                                "  - path: /api/org/{org_id}/settings\n"
                                "    policy: require_org_member_with_minimum_role\n"
                                "    role: Admin\n"
                                "  - path: /api/org/{org_id}/{page}\n"
                                "    policy: require_org_member\n",
                      &c, &d);
    if (rc != 0)
        dump(&d);
    ck_assert_int_eq(rc, 0);
    cfg_free(c);
    cfg_diags_free(&d);
    /* Same shape with overlapping methods: both locations named. */
    rc = load_str(BASE_AUTH "routes:\n"
                            "  - path: /a/{x}\n"
                            "    methods: [GET, POST]\n"
                            "    policy: public\n"
                            "  - path: /a/{y}\n"
                            "    methods: [POST]\n"
                            "    policy: require_user\n",
                  &c, &d);
    ck_assert_int_eq(rc, -1);
    ck_assert_uint_eq(d.nerrors, 1);
    ck_assert_str_eq(d.errors[0], "t.yaml:10:5: route \"/a/{y}\": same path shape and overlapping "
                                  "methods as route \"/a/{x}\" at line 7 (ambiguous; give them "
                                  "disjoint methods or different paths)");
    cfg_diags_free(&d);
    /* Disjoint methods: fine. */
    rc = load_str(BASE_AUTH "routes:\n"
                            "  - {path: \"/a/{x}\", methods: [GET], policy: public}\n"
                            "  - {path: \"/a/{y}\", methods: [POST], policy: require_user}\n",
                  &c, &d);
    ck_assert_int_eq(rc, 0);
    cfg_free(c);
    cfg_diags_free(&d);
    /* A public catch-all next to protected routes is deterministic, not a lint hit. */
    rc = load_str(BASE_AUTH "routes:\n"
                            "  - {path: /**, policy: public}\n"
                            "  - {path: /api/**, policy: require_user}\n",
                  &c, &d);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(d.nwarnings, 0);
    cfg_free(c);
    cfg_diags_free(&d);
}
END_TEST

START_TEST(test_upstream_choice)
{
    cfg_config *c;
    cfg_diags d;
    int rc = load_str("auth: {auth_url: \"https://a\", api_key_env: K}\n"
                      "upstreams: {a: \"http://h1\", b: \"http://h2:81\"}\n"
                      "routes:\n"
                      "  - {path: /x, policy: public, upstream: b}\n"
                      "  - {path: /y, policy: public}\n",
                      &c, &d);
    ck_assert_int_eq(rc, -1);
    ck_assert_uint_eq(d.nerrors, 1);
    ck_assert_str_eq(d.errors[0],
                     "t.yaml:5:5: route \"/y\": upstream is required when 2 upstreams are defined");
    cfg_diags_free(&d);
    rc = load_str("auth: {auth_url: \"https://a\", api_key_env: K}\n"
                  "routes: [{path: /x, policy: public}]\n",
                  &c, &d);
    ck_assert_int_eq(rc, -1);
    ck_assert(has_diag(d.errors, d.nerrors, "t.yaml:1:1: upstreams: missing"));
    cfg_diags_free(&d);
}
END_TEST

START_TEST(test_10k_routes_load)
{
    ag_buf b;
    ag_buf_init(&b);
    ck_assert_int_eq(ag_buf_puts(&b, BASE_AUTH "routes:\n"), 0);
    for (int i = 0; i < 10000; i++)
        ck_assert_int_eq(ag_buf_printf(&b,
                                       "  - path: /svc%d/org/{org_id}/items\n"
                                       "    methods: [GET, POST]\n"
                                       "    policy: require_org_member\n",
                                       i),
                         0);
    cfg_config *c;
    cfg_diags d;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = load_str(b.p, &c, &d);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(c->nroutes, 10000);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(s < 5.0, "10k routes took %.2fs", s);
    cfg_free(c);
    cfg_diags_free(&d);
    ag_buf_free(&b);
}
END_TEST

/* Found by fuzz_config: the lint that looks for public holes in protected
 * subtrees read past an empty template. The file must just be an error. */
START_TEST(test_J89_empty_route_path_next_to_protected_tree)
{
    static const char yaml[] = "auth: {verifier_key_pem: \"x\", issuer: https://i}\n"
                               "upstreams: {app: \"http://127.0.0.1:1\"}\n"
                               "routes:\n"
                               "  - {path: \"/api/org/{org_id}/**\", policy: require_org_member}\n"
                               "  - {path: \"\", policy: public}\n"
                               "  - {path: \"api/x\", policy: public}\n";
    cfg_config *c;
    cfg_diags d;
    ck_assert_int_ne(load_str(yaml, &c, &d), 0);
    ck_assert(has_diag(d.errors, d.nerrors, "must start with '/'"));
    cfg_diags_free(&d);
}
END_TEST

START_TEST(test_no_lint_on_routes_with_errors)
{
    cfg_config *c;
    cfg_diags d;
    /* the public route's policy is mistyped: no "lies under" warning for it */
    load_fail(BASE_AUTH "routes:\n"
                        "  - {path: \"/api/**\", policy: require_user}\n"
                        "  - {path: /api/x, policy: pubic}\n",
              &d);
    ck_assert(has_diag(d.errors, d.nerrors, "unknown policy \"pubic\" (did you mean \"public\"?)"));
    ck_assert_uint_eq(d.nwarnings, 0);
    cfg_diags_free(&d);

    /* a duplicate /api/ ** is an error, never "lies under itself" */
    load_fail(BASE_AUTH "routes:\n"
                        "  - {path: \"/api/**\", policy: require_user}\n"
                        "  - {path: \"/api/**\", policy: public}\n",
              &d);
    ck_assert(has_diag(d.errors, d.nerrors, "ambiguous"));
    ck_assert_uint_eq(d.nwarnings, 0);
    cfg_diags_free(&d);

    /* same subtree, disjoint methods: not a hole either */
    ck_assert_int_eq(load_str(BASE_AUTH
                              "routes:\n"
                              "  - {path: \"/api/**\", methods: [POST], policy: require_user}\n"
                              "  - {path: \"/api/**\", methods: [GET], policy: public}\n",
                              &c, &d),
                     0);
    ck_assert_uint_eq(d.nwarnings, 0);
    cfg_free(c);
    cfg_diags_free(&d);

    /* the lint itself still works */
    ck_assert_int_eq(load_str(BASE_AUTH "routes:\n"
                                        "  - {path: \"/api/**\", policy: require_user}\n"
                                        "  - {path: /api/x, policy: public}\n",
                              &c, &d),
                     0);
    ck_assert(has_diag(d.warnings, d.nwarnings, "lies under protected route"));
    cfg_free(c);
    cfg_diags_free(&d);
}
END_TEST

/* ---- contract tests added with the split ---------------------------------- */

#define PUB "    policy: public\n"

START_TEST(test_strip_prefix)
{
    cfg_config *c =
        load_ok(BASE_AUTH "routes:\n"
                          "  - {path: \"/api/**\", policy: public, strip_prefix: /api}\n"
                          "  - {path: /v1/x, policy: public, strip_prefix: /v1/x}\n"
                          "  - {path: /y, policy: public}\n");
    ck_assert_str_eq(c->routes[0].strip_prefix, "/api");
    ck_assert_str_eq(c->routes[1].strip_prefix, "/v1/x");
    ck_assert_ptr_null(c->routes[2].strip_prefix);
    cfg_free(c);
    static const char *const bad[] = {"api", "/", "/api/", "/a/{b}", "/a*", "/a?b", "/a%2f"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char y[512], want[256];
        snprintf(y, sizeof(y),
                 BASE_AUTH "routes:\n  - path: \"/a/{b}/c\"\n" PUB "    strip_prefix: \"%s\"\n",
                 bad[i]);
        snprintf(want, sizeof(want),
                 "route \"/a/{b}/c\": strip_prefix: expected a literal path prefix like /api "
                 "(leading '/', no trailing '/', no template parts), got \"%s\"",
                 bad[i]);
        err_has(y, want);
    }
    /* whole segments of the path only */
    err_has(BASE_AUTH "routes:\n  - path: /apix/y\n" PUB "    strip_prefix: /api\n",
            "route \"/apix/y\": strip_prefix: the route's path \"/apix/y\" does not start with the "
            "segments \"/api\"");
    err_has(BASE_AUTH "routes:\n  - path: /x/api\n" PUB "    strip_prefix: /api\n",
            "does not start with the segments \"/api\"");
}
END_TEST

START_TEST(test_methods)
{
    cfg_config *c = load_ok(BASE_AUTH "routes:\n"
                                      "  - {path: /x, policy: public, methods: [OPTIONS, HEAD]}\n");
    ck_assert_uint_eq(c->routes[0].methods, HX_M_OPTIONS | HX_M_HEAD);
    cfg_free(c);
    err_has(BASE_AUTH "routes:\n  - {path: /x, policy: public, methods: GET}\n",
            "route \"/x\": methods: expected a list like [GET, POST], got a scalar");
    err_has(BASE_AUTH "routes:\n  - {path: /x, policy: public, methods: []}\n",
            "route \"/x\": methods: empty list (omit it for all methods)");
    err_has(BASE_AUTH "routes:\n  - {path: /x, policy: public, methods: [GET, [POST]]}\n",
            "route \"/x\": methods: expected a method name, got a list");
    err_has(BASE_AUTH "routes:\n  - {path: /x, policy: public, methods: [GET, ~]}\n",
            "route \"/x\": methods: expected a method name, got nothing (null)");
}
END_TEST

START_TEST(test_policy_arguments)
{
    err_has(BASE_AUTH "routes:\n"
                      "  - path: \"/o/{org_id}\"\n"
                      "    policy: require_org_member_with_all_permissions\n"
                      "    permission: p\n",
            "route \"/o/{org_id}\": policy require_org_member_with_all_permissions does not take a "
            "permission (use permissions: [...])");
    err_has(BASE_AUTH "routes:\n"
                      "  - path: \"/o/{org_id}\"\n"
                      "    policy: require_org_member_with_permission\n"
                      "    permissions: [p]\n",
            "policy require_org_member_with_permission does not take permissions (use "
            "permission: NAME)");
    err_has(BASE_AUTH "routes:\n"
                      "  - {path: \"/o/{org_id}\", policy: require_org_member_with_permission}\n",
            "route \"/o/{org_id}\": policy require_org_member_with_permission needs a permission");
    err_has(BASE_AUTH
            "routes:\n"
            "  - {path: \"/o/{org_id}\", policy: require_org_member_with_all_permissions}\n",
            "policy require_org_member_with_all_permissions needs permissions: [...]");
    err_has(BASE_AUTH "routes:\n"
                      "  - path: \"/o/{org_id}\"\n"
                      "    policy: require_org_member_with_exact_role\n"
                      "    role: \"\"\n",
            "route \"/o/{org_id}\": role must not be empty");
    err_has(BASE_AUTH "routes:\n  - {path: /x}\n", "route \"/x\": policy is required");
    /* legal but likely a mistake: warnings, and the values kept as written */
    cfg_config *c;
    cfg_diags d;
    ck_assert_int_eq(load_str(BASE_AUTH "routes:\n"
                                        "  - path: \"/o/{org_id}\"\n"
                                        "    policy: require_org_member_with_all_permissions\n"
                                        "    permissions: []\n"
                                        "  - path: \"/p/{org_id}\"\n"
                                        "    policy: require_org_member_with_minimum_role\n"
                                        "    role: \"Admin \"\n",
                              &c, &d),
                     0);
    ck_assert(has_diag(d.warnings, d.nwarnings,
                       "route \"/o/{org_id}\": permissions: [] requires no permission at all "
                       "(same as require_org_member)"));
    ck_assert(has_diag(d.warnings, d.nwarnings,
                       "route \"/p/{org_id}\": role has leading or trailing whitespace "
                       "(comparisons are exact)"));
    ck_assert_uint_eq(c->routes[0].policy.npermissions, 0);
    ck_assert_str_eq(c->routes[1].policy.role, "Admin ");
    cfg_free(c);
    cfg_diags_free(&d);
}
END_TEST

START_TEST(test_org_id_from_forms)
{
    cfg_config *c =
        load_ok(BASE_AUTH "routes:\n"
                          "  - {path: /a, policy: require_org_member, org_id_from: query}\n"
                          "  - path: \"/b/{org_id}\"\n"
                          "    policy: require_org_member\n"
                          "    org_id_from: path\n"
                          "  - {path: /c, policy: require_org_member, org_id_from: "
                          "\"header:X-Tenant\"}\n");
    ck_assert_int_eq(c->routes[0].org_kind, CFG_ORG_QUERY);
    ck_assert_str_eq(c->routes[0].org_name, "org_id");
    ck_assert_int_eq(c->routes[1].org_kind, CFG_ORG_PATH);
    ck_assert_str_eq(c->routes[1].org_name, "org_id");
    ck_assert_int_eq(c->routes[2].org_kind, CFG_ORG_HEADER);
    ck_assert_str_eq(c->routes[2].org_name, "X-Tenant");
    cfg_free(c);
    static const char *const badq[] = {"a&b", "a=b", "a b", "a%20", "a+b", "a#"};
    for (size_t i = 0; i < sizeof(badq) / sizeof(badq[0]); i++) {
        char y[512], want[128];
        snprintf(y, sizeof(y),
                 BASE_AUTH "routes:\n  - {path: /a, policy: require_org_member, org_id_from: "
                           "\"query:%s\"}\n",
                 badq[i]);
        snprintf(want, sizeof(want), "route \"/a\": org_id_from: bad query parameter name \"%s\"",
                 badq[i]);
        err_has(y, want);
    }
    err_has(BASE_AUTH
            "routes:\n  - {path: /a, policy: require_org_member, org_id_from: \"query:\"}\n",
            "org_id_from: bad query parameter name \"\"");
    err_has(BASE_AUTH "routes:\n  - {path: /a, policy: require_org_member, org_id_from: "
                      "\"header:X Tenant\"}\n",
            "route \"/a\": org_id_from: bad header name \"X Tenant\"");
    /* "header" needs its name */
    err_has(BASE_AUTH "routes:\n  - {path: /a, policy: require_org_member, org_id_from: header}\n",
            "org_id_from: expected path, path:NAME, query, query:NAME or header:NAME, got "
            "\"header\"");
}
END_TEST

START_TEST(test_routes_shape)
{
    err_has(BASE_AUTH "routes: {path: /x, policy: public}\n",
            "routes: expected a list, got a mapping");
    err_has(BASE_AUTH "routes:\n  - /x\n", "routes[]: expected a mapping, got a scalar");
    cfg_config *c =
        load_ok(BASE_AUTH "routes:\n  - {path: /x, policy: public, preserve_host: true}\n"
                          "  - {path: /y, policy: public}\n");
    ck_assert(c->routes[0].preserve_host);
    ck_assert(!c->routes[1].preserve_host);
    ck_assert_uint_eq(c->routes[1].index, 1);
    cfg_free(c);
}
END_TEST

/* The lint: which public routes count as carved out of a protected subtree. */
START_TEST(test_lint_public_holes)
{
    static const struct {
        const char *routes;
        bool warn;
    } cases[] = {
        /* a parameter segment matches a literal one */
        {"  - {path: \"/api/{v}/**\", policy: require_user}\n"
         "  - {path: /api/v1/x, policy: public}\n",
         true},
        /* only public routes count */
        {"  - {path: \"/api/**\", policy: require_user}\n"
         "  - {path: /api/x, policy: optional_user}\n",
         false},
        /* another prefix */
        {"  - {path: \"/api/**\", policy: require_user}\n"
         "  - {path: /apix/x, policy: public}\n",
         false},
        /* a broader public subtree: the protected one wins under it */
        {"  - {path: \"/api/v1/**\", policy: require_user}\n"
         "  - {path: \"/api/**\", policy: public}\n",
         false},
        {"  - {path: \"/api/{x}/**\", policy: require_user}\n"
         "  - {path: \"/api/**\", policy: public}\n",
         false},
        /* only a protected ** subtree draws the lint */
        {"  - {path: \"/api/{x}\", policy: require_user}\n"
         "  - {path: /api/x, policy: public}\n",
         false},
        /* disjoint methods: no hole */
        {"  - {path: \"/api/**\", methods: [POST], policy: require_user}\n"
         "  - {path: /api/x, methods: [GET], policy: public}\n",
         false},
        /* overlapping methods only */
        {"  - {path: \"/api/**\", methods: [GET], policy: require_user}\n"
         "  - {path: /api/x, methods: [GET, POST], policy: public}\n",
         true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char y[1024];
        snprintf(y, sizeof(y), BASE_AUTH "routes:\n%s", cases[i].routes);
        cfg_config *c;
        cfg_diags d;
        int rc = load_str(y, &c, &d);
        if (rc != 0)
            dump(&d);
        ck_assert_int_eq(rc, 0);
        bool warned = has_diag(d.warnings, d.nwarnings, "lies under protected route");
        ck_assert_msg(warned == cases[i].warn, "case %zu: warned %d", i, warned);
        cfg_free(c);
        cfg_diags_free(&d);
    }
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("cfgroute");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_J90_overlap_rules);
    tcase_add_test(tc, test_upstream_choice);
    tcase_add_test(tc, test_10k_routes_load);
    tcase_add_test(tc, test_J89_empty_route_path_next_to_protected_tree);
    tcase_add_test(tc, test_no_lint_on_routes_with_errors);
    tcase_add_test(tc, test_strip_prefix);
    tcase_add_test(tc, test_methods);
    tcase_add_test(tc, test_policy_arguments);
    tcase_add_test(tc, test_org_id_from_forms);
    tcase_add_test(tc, test_routes_shape);
    tcase_add_test(tc, test_lint_public_holes);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
