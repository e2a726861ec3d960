/* cfghdr: the identity section, the checks every configured header name
 * passes, the org id header source against what the gateway strips, and the
 * rewrite rules routes[].request_headers and response_headers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgtest.h"
#include "config.h"
#include "fwd.h"
#include "hdr.h"
#include "testutil.h"
#include "util.h"

START_TEST(test_identity_rules)
{
    cfg_config *c;
    cfg_diags d;
    int rc = load_str(BASE_AUTH "identity:\n"
                                "  user_header: X-Who\n"
                                "  org_header: x-who\n"
                                "  strip_headers: [\"Bad Header\", Connection]\n"
                                "routes: [{path: /x, policy: public}]\n",
                      &c, &d);
    ck_assert_int_eq(rc, -1);
    ck_assert(has_diag(d.errors, d.nerrors, "identity: user_header and org_header must differ"));
    ck_assert(has_diag(d.errors, d.nerrors,
                       "identity.strip_headers[]: \"Bad Header\" is not a valid header name"));
    cfg_diags_free(&d);
    rc = load_str(BASE_AUTH "identity: {user_header: Authorization}\n"
                            "routes: [{path: /x, policy: public}]\n",
                  &c, &d);
    ck_assert_int_eq(rc, -1);
    ck_assert(has_diag(d.errors, d.nerrors, "identity.user_header: \"Authorization\" is reserved"));
    cfg_diags_free(&d);
    /* Reserved means any class of the header table but identity, in any
     * spelling the forwarder would judge as it. */
    static const char *const reserved[] = {
        "X-Forwarded-For", "X_Forwarded_For", "X-Request-Id",   "Host",        "Content_Length",
        "X-Authgate-Who",  "Proxy-Who",       "author_ization", "Content-Type"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        char y[512], want[128];
        snprintf(y, sizeof(y),
                 BASE_AUTH "identity: {org_header: \"%s\"}\n"
                           "routes: [{path: /x, policy: public}]\n",
                 reserved[i]);
        snprintf(want, sizeof(want), "identity.org_header: \"%s\" is reserved", reserved[i]);
        ck_assert_int_eq(load_str(y, &c, &d), -1);
        ck_assert_msg(has_diag(d.errors, d.nerrors, want), "%s accepted", reserved[i]);
        cfg_diags_free(&d);
    }
    /* user and org header differ in normal form, not only in case */
    rc = load_str(BASE_AUTH "identity: {user_header: X-Who, org_header: X_WHO}\n"
                            "routes: [{path: /x, policy: public}]\n",
                  &c, &d);
    ck_assert_int_eq(rc, -1);
    ck_assert(has_diag(d.errors, d.nerrors, "identity: user_header and org_header must differ"));
    cfg_diags_free(&d);
    /* names fwd could not compare are refused here, not first at start */
    rc = load_str(BASE_AUTH "identity: {user_header: \"--\", strip_headers: [\"~\"]}\n"
                            "routes: [{path: /x, policy: public}]\n",
                  &c, &d);
    ck_assert_int_eq(rc, -1);
    ck_assert(has_diag(d.errors, d.nerrors, "identity.user_header: \"--\" has no letter or digit"));
    ck_assert(
        has_diag(d.errors, d.nerrors, "identity.strip_headers[]: \"~\" has no letter or digit"));
    cfg_diags_free(&d);
    /* identity look-alikes of the defaults are still identity: allowed */
    rc = load_str(BASE_AUTH "identity: {user_header: X_User, org_header: x.org}\n"
                            "routes: [{path: /x, policy: public}]\n",
                  &c, &d);
    ck_assert_int_eq(rc, 0);
    cfg_free(c);
    cfg_diags_free(&d);
}
END_TEST

/* The org id's header source must be a header the upstream receives as the
 * client sent it: every name fwd strips, in every spelling, is refused. */
START_TEST(test_org_header_source_not_stripped)
{
    static const char *const refused[] = {
        "X-Forwarded-For", "X_Forwarded_For",   "x.real.ip",      "X-Request-Id",
        "X_Request_Id",    "Authorization",     "Author_ization", "Host",
        "Connection",      "Proxy-Tenant",      "X-Authgate-Org", "X_User",
        "x-org",           "X.Auth.User",       "x_debug_tenant", "Expect",
        "Forwarded",       "Transfer_Encoding",
    };
    cfg_config *c;
    cfg_diags d;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        char y[768], want[160];
        snprintf(y, sizeof(y),
                 BASE_AUTH "identity: {user_header: X-Auth-User, strip_headers: [X-Debug-Tenant]}\n"
                           "routes:\n"
                           "  - path: /x\n"
                           "    policy: require_org_member\n"
                           "    org_id_from: \"header:%s\"\n",
                 refused[i]);
        snprintf(want, sizeof(want),
                 "org_id_from: header \"%s\" is stripped or reserved by the gateway", refused[i]);
        ck_assert_int_eq(load_str(y, &c, &d), -1);
        ck_assert_msg(has_diag(d.errors, d.nerrors, want), "%s accepted", refused[i]);
        cfg_diags_free(&d);
    }
    static const char *const ok[] = {"X-Tenant-Id", "x_tenant_id", "Accept-Language"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char y[768];
        snprintf(y, sizeof(y),
                 BASE_AUTH "identity: {user_header: X-Auth-User, strip_headers: [X-Debug-Tenant]}\n"
                           "routes:\n"
                           "  - path: /x\n"
                           "    policy: require_org_member\n"
                           "    org_id_from: \"header:%s\"\n",
                 ok[i]);
        int rc = load_str(y, &c, &d);
        if (rc != 0)
            dump(&d);
        ck_assert_int_eq(rc, 0);
        cfg_free(c);
        cfg_diags_free(&d);
    }
    ck_assert_int_eq(load_str(BASE_AUTH "routes:\n"
                                        "  - path: /x\n"
                                        "    policy: require_org_member\n"
                                        "    org_id_from: \"header:-_-\"\n",
                              &c, &d),
                     -1);
    ck_assert(has_diag(d.errors, d.nerrors, "org_id_from: header \"-_-\" has no letter or digit"));
    cfg_diags_free(&d);
}
END_TEST

/* Config and forwarding agree on "a name the gateway strips": every name
 * fwd drops from a client, under any trust/authorization setting, is refused
 * as the org id's header source (config may refuse more, never less). */
#define COVER_SETTINGS                                                                             \
    BASE_AUTH "trust_forwarded_headers: %s\n"                                                      \
              "identity: {user_header: X-Auth-User, org_header: X-Auth-Org,\n"                     \
              "           forward_authorization: %s, strip_headers: [X-Debug-Tenant]}\n"

static size_t cover_one(int mode, const fwd_rules *r, const char *name)
{
    const char *trust = mode & 1 ? "true" : "false", *authz = mode & 2 ? "true" : "false";
    char v[3][64];
    /* as spelled, with '_' for '-', and with "x" appended (a member of a
     * prefix row, or a different name beside an exact row) */
    snprintf(v[0], sizeof(v[0]), "%s", name);
    snprintf(v[1], sizeof(v[1]), "%s", name);
    for (char *p = v[1]; *p; p++)
        if (*p == '-')
            *p = '_';
    snprintf(v[2], sizeof(v[2]), "%sx", name);
    size_t checked = 0;
    for (size_t k = 0; k < 3; k++) {
        if (!fwd_client_header_stripped(r, v[k], strlen(v[k])))
            continue;
        checked++;
        char y[1024];
        snprintf(y, sizeof(y),
                 COVER_SETTINGS "routes:\n  - path: /x\n    policy: require_org_member\n"
                                "    org_id_from: \"header:%s\"\n",
                 trust, authz, v[k]);
        cfg_config *c = NULL;
        cfg_diags d;
        int rc = load_str(y, &c, &d);
        if (rc == 0)
            cfg_free(c);
        cfg_diags_free(&d);
        ck_assert_msg(rc == -1, "mode %d: fwd strips %s but config takes it as the org source",
                      mode, v[k]);
    }
    return checked;
}

START_TEST(test_org_source_covers_fwd)
{
    static const char *const extra[] = {"X-Auth-User", "x_auth_org", "X.Debug.Tenant",
                                        "X-Tenant-Id", "Accept",     "Content-Type"};
    size_t checked = 0;
    for (int mode = 0; mode < 4; mode++) {
        char y[768];
        snprintf(y, sizeof(y), COVER_SETTINGS "routes: [{path: /x, policy: public}]\n",
                 mode & 1 ? "true" : "false", mode & 2 ? "true" : "false");
        cfg_config *c = NULL;
        cfg_diags d;
        ck_assert_int_eq(load_str(y, &c, &d), 0);
        cfg_diags_free(&d);
        char err[128] = "";
        fwd_rules *r = fwd_rules_new(c, err, sizeof(err));
        ck_assert_msg(r != NULL, "%s", err);
        const char *name;
        for (size_t i = 0; (name = hdr_row(i, NULL)) != NULL; i++)
            checked += cover_one(mode, r, name);
        for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
            checked += cover_one(mode, r, extra[i]);
        fwd_rules_free(r);
        cfg_free(c);
    }
    /* most rows in three spellings, four times over (390 today) */
    ck_assert_uint_ge(checked, 350);
}
END_TEST

/* ---- contract tests added with the split ---------------------------------- */

#define ROUTE_ANY "routes: [{path: /x, policy: public}]\n"

START_TEST(test_identity_shapes)
{
    err_has(BASE_AUTH "identity: [X-User]\nroutes: [{path: /x, policy: public}]\n",
            "identity: expected a mapping, got a list");
    err_has(BASE_AUTH "identity: {strip_headers: X-Debug}\nroutes: [{path: /x, policy: public}]\n",
            "identity.strip_headers: expected a list, got a scalar");
#define STRIP_LIST BASE_AUTH "identity:\n  strip_headers:\n"
    char *y = n_entries(STRIP_LIST, 65, "    - X-Strip-", "", ROUTE_ANY);
    err_has(y, "identity.strip_headers: more than 64 entries");
    free(y);
    err_has(BASE_AUTH
            "identity: {org_header: \"Bad Name\"}\nroutes: [{path: /x, policy: public}]\n",
            "identity.org_header: \"Bad Name\" is not a valid header name");
    char long_y[1024], name[200];
    memset(name, 'a', 150);
    name[150] = '\0';
    snprintf(long_y, sizeof(long_y),
             BASE_AUTH "identity: {user_header: X-%s}\nroutes: [{path: /x, policy: public}]\n",
             name);
    err_has(long_y, "\" is too long");
    /* 64 entries is the limit, not beyond it */
    y = n_entries(STRIP_LIST, 64, "    - X-Strip-", "", ROUTE_ANY);
    cfg_config *c = load_ok(y);
    ck_assert_uint_eq(c->identity.nstrip_headers, 64);
    ck_assert_str_eq(c->identity.strip_headers[63], "X-Strip-63");
    cfg_free(c);
    free(y);
}
END_TEST

#define ROUTE_X "routes:\n  - path: /x\n    policy: public\n"

START_TEST(test_rewrite_rules_loaded)
{
    cfg_config *c = load_ok(BASE_AUTH ROUTE_X "    request_headers:\n"
                                              "      set: {X-Env: prod, Content-Type: text/plain}\n"
                                              "      add: {X-Extra: one}\n"
                                              "      remove: [Cookie]\n"
                                              "    response_headers:\n"
                                              "      set: {Cache-Control: no-store}\n"
                                              "      remove: [Server, X-User]\n");
    const cfg_hdr_rules *q = &c->routes[0].req_hdrs, *s = &c->routes[0].resp_hdrs;
    ck_assert_uint_eq(q->nset, 2);
    ck_assert_str_eq(q->set[0].name, "X-Env");
    ck_assert_str_eq(q->set[0].value, "prod");
    ck_assert_str_eq(q->set[1].name, "Content-Type");
    ck_assert_str_eq(q->set[1].value, "text/plain");
    ck_assert_uint_eq(q->nadd, 1);
    ck_assert_str_eq(q->add[0].name, "X-Extra");
    ck_assert_str_eq(q->add[0].value, "one");
    ck_assert_uint_eq(q->nremove, 1);
    ck_assert_str_eq(q->remove[0].name, "Cookie");
    ck_assert_ptr_null(q->remove[0].value);
    ck_assert_uint_eq(s->nset, 1);
    ck_assert_str_eq(s->set[0].name, "Cache-Control");
    ck_assert_uint_eq(s->nadd, 0);
    ck_assert_uint_eq(s->nremove, 2);
    ck_assert_str_eq(s->remove[1].name, "X-User");
    cfg_free(c);
}
END_TEST

START_TEST(test_rewrite_rule_shapes)
{
    err_has(BASE_AUTH ROUTE_X "    request_headers: X-Env\n",
            "route \"/x\": request_headers: expected a mapping, got a scalar");
    err_has(BASE_AUTH ROUTE_X "    request_headers: {set: [X-Env]}\n",
            "route \"/x\": request_headers.set: expected a mapping of header names to values, got "
            "a list");
    err_has(BASE_AUTH ROUTE_X "    response_headers: {add: X-Env}\n",
            "route \"/x\": response_headers.add: expected a mapping of header names to values, got "
            "a scalar");
    err_has(BASE_AUTH ROUTE_X "    response_headers: {remove: {X-Env: a}}\n",
            "route \"/x\": response_headers.remove: expected a list of header names, got a "
            "mapping");
    err_has(BASE_AUTH ROUTE_X "    request_headers: {sett: {X-Env: a}}\n", "unknown key \"sett\"");
    char *y = n_entries(BASE_AUTH ROUTE_X "    request_headers:\n      set:\n", 65, "        X-H-",
                        ": v", "");
    err_has(y, "route \"/x\": request_headers.set: more than 64 entries");
    free(y);
}
END_TEST

START_TEST(test_rewrite_rule_names_and_values)
{
    err_has(BASE_AUTH ROUTE_X "    request_headers: {set: {\"Bad Name\": v}}\n",
            "route \"/x\": request_headers.set: \"Bad Name\" is not a valid header name");
    err_has(BASE_AUTH ROUTE_X "    response_headers: {remove: [\"--\"]}\n",
            "route \"/x\": response_headers.remove: \"--\" has no letter or digit");
    err_has(BASE_AUTH ROUTE_X "    request_headers: {add: {X-Env: \"\"}}\n",
            "route \"/x\": request_headers.add: \"X-Env\": value \"\" is empty or not a header "
            "value");
    err_has(BASE_AUTH ROUTE_X "    response_headers: {set: {X-Env: \"a\\nb\"}}\n",
            "response_headers.set: \"X-Env\": value");
    err_has(BASE_AUTH ROUTE_X "    request_headers: {set: {X-Env: [a]}}\n",
            "request_headers.set: expected a string, got a list");
}
END_TEST

/* What the gateway owns stays out of a rule: the header table's classes, the
 * identity and strip names (request side), framing and hop-by-hop names
 * (response side), the org id source, and Access-Control-* under cors. */
START_TEST(test_rewrite_rule_gateway_names)
{
#define OWN " is the gateway's own (identity, forwarding or transport header); a rewrite rule"
    static const char *const req[] = {
        "X-Forwarded-For", "x_forwarded_for", "Authorization",    "Host", "Connection", "X-User",
        "x.org",           "X-Debug-Tenant",  "Transfer-Encoding"};
    for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
        char y[768], want[200];
        snprintf(y, sizeof(y),
                 BASE_AUTH "identity: {strip_headers: [X-Debug-Tenant]}\n" ROUTE_X
                           "    request_headers: {remove: [\"%s\"]}\n",
                 req[i]);
        snprintf(want, sizeof(want), "request_headers.remove: \"%s\"" OWN, req[i]);
        err_has(y, want);
    }
    static const char *const resp[] = {"Transfer-Encoding", "Connection", "Content-Length"};
    for (size_t i = 0; i < sizeof(resp) / sizeof(resp[0]); i++) {
        char y[768], want[200];
        snprintf(y, sizeof(y), BASE_AUTH ROUTE_X "    response_headers: {set: {\"%s\": x}}\n",
                 resp[i]);
        snprintf(want, sizeof(want), "response_headers.set: \"%s\"" OWN, resp[i]);
        err_has(y, want);
    }
#undef OWN
    /* the org id source, in any spelling, on the request side only */
    static const char org_route[] = BASE_AUTH "routes:\n"
                                              "  - path: /x\n"
                                              "    policy: require_org_member\n"
                                              "    org_id_from: \"header:X-Tenant\"\n";
    err_has(BASE_AUTH "routes:\n"
                      "  - path: /x\n"
                      "    policy: require_org_member\n"
                      "    org_id_from: \"header:X-Tenant\"\n"
                      "    request_headers: {set: {x_tenant: a}}\n",
            "request_headers.set: \"x_tenant\" is the route's org id source (org_id_from); a "
            "rewrite rule cannot set or remove it");
    cfg_config *c = load_ok(BASE_AUTH "routes:\n"
                                      "  - path: /x\n"
                                      "    policy: require_org_member\n"
                                      "    org_id_from: \"header:X-Tenant\"\n"
                                      "    response_headers: {remove: [X-Tenant]}\n");
    cfg_free(c);
    c = load_ok(org_route);
    cfg_free(c);
    /* Access-Control-* is the route's cors's; without cors it is the upstream's */
    err_has(BASE_AUTH ROUTE_X "    cors: {allowed_origins: [\"https://app.example.com\"]}\n"
                              "    response_headers: {remove: [access-control-allow-origin]}\n",
            "response_headers.remove: \"access-control-allow-origin\" is set by the route's cors");
    c = load_ok(BASE_AUTH ROUTE_X
                "    response_headers: {remove: [access-control-allow-origin]}\n");
    ck_assert_uint_eq(c->routes[0].resp_hdrs.nremove, 1);
    cfg_free(c);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("cfghdr");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_identity_rules);
    tcase_add_test(tc, test_org_header_source_not_stripped);
    tcase_add_test(tc, test_org_source_covers_fwd);
    tcase_add_test(tc, test_identity_shapes);
    tcase_add_test(tc, test_rewrite_rules_loaded);
    tcase_add_test(tc, test_rewrite_rule_shapes);
    tcase_add_test(tc, test_rewrite_rule_names_and_values);
    tcase_add_test(tc, test_rewrite_rule_gateway_names);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
