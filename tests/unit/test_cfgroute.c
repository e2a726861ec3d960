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
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
