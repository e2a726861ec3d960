/* cfghdr: the identity section, the checks every configured header name
 * passes, the org id header source against what the gateway strips, and the
 * rewrite rules routes[].request_headers and response_headers. */
#include <stdio.h>
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

static Suite *make_suite(void)
{
    Suite *s = suite_create("cfghdr");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_identity_rules);
    tcase_add_test(tc, test_org_header_source_not_stripped);
    tcase_add_test(tc, test_org_source_covers_fwd);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
