/* config: fixture files with their exact expected diagnostics, a round trip of
 * every key, defaults, and the hostile-file cases of docs/security.md group J.
 * The identity and header rules are tested in test_cfghdr.c, cors in
 * test_cfgcors.c, routes and the lint in test_cfgroute.c. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cfgtest.h"
#include "config.h"
#include "httpx.h"
#include "testutil.h"
#include "util.h"

#define FIX "tests/unit/fixtures/config/"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ag_buf b;
    ag_buf_init(&b);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        ck_assert_int_eq(ag_buf_append(&b, tmp, n), 0);
    fclose(f);
    if (!b.p)
        ck_assert_int_eq(ag_buf_puts(&b, ""), 0);
    return ag_buf_steal(&b);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(path, mode), 0);
}

/* ---- fixtures with expected diagnostics ----------------------------------- */

static const struct {
    const char *name;
    int rc;
} fixtures[] = {
    {"bad_syntax", -1},     {"bad_unknown_keys", -1}, {"bad_types", -1},
    {"bad_duplicates", -1}, {"bad_auth_both", -1},    {"bad_auth_neither", -1},
    {"bad_auth_fetch", -1}, {"bad_auth_manual", -1},  {"bad_upstreams", -1},
    {"bad_routes", -1},     {"bad_hostile", -1},      {"empty", -1},
    {"bad_multidoc", -1},   {"warn_lint", 0},
};

/* Each line of NAME.expected is "LINE:COL: message" (warnings after errors,
 * as cfg_diags_print writes them); {DIR} stands for the fixture directory made
 * absolute, where relative paths in the file resolve. */
START_TEST(test_fixture_diagnostics)
{
    const char *name = fixtures[_i].name;
    char yaml[256], exp_path[256], dir[PATH_MAX];
    snprintf(yaml, sizeof yaml, FIX "%s.yaml", name);
    snprintf(exp_path, sizeof exp_path, FIX "%s.expected", name);
    ck_assert_ptr_nonnull(realpath(FIX, dir));

    cfg_config *c = NULL;
    cfg_diags d = {0};
    int rc = cfg_load_file(yaml, &c, &d);
    ck_assert_msg(rc == fixtures[_i].rc, "%s: rc %d", name, rc);
    ck_assert(rc == 0 ? c != NULL : c == NULL);

    char *expected = slurp(exp_path);
    size_t got_n = d.nerrors + d.nwarnings, want_n = 0;
    char *save = NULL;
    for (char *line = strtok_r(expected, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        ag_buf want;
        ag_buf_init(&want);
        ck_assert_int_eq(ag_buf_printf(&want, "%s:", yaml), 0);
        for (const char *p = line; *p;) {
            if (strncmp(p, "{DIR}", 5) == 0) {
                ck_assert_int_eq(ag_buf_puts(&want, dir), 0);
                p += 5;
            } else {
                ck_assert_int_eq(ag_buf_append(&want, p, 1), 0);
                p++;
            }
        }
        const char *got = NULL;
        if (want_n < d.nerrors)
            got = d.errors[want_n];
        else if (want_n < got_n)
            got = d.warnings[want_n - d.nerrors];
        if (!got || strcmp(got, want.p) != 0) {
            dump(&d);
            ck_abort_msg("%s line %zu:\n want: %s\n  got: %s", name, want_n + 1, want.p,
                         got ? got : "(nothing)");
        }
        ag_buf_free(&want);
        want_n++;
    }
    if (got_n != want_n)
        dump(&d);
    ck_assert_msg(got_n == want_n, "%s: %zu diagnostics, expected %zu", name, got_n, want_n);
    ck_assert_msg(rc == 0 || d.nerrors > 0, "failure without an error");
    free(expected);
    cfg_diags_free(&d);
    cfg_free(c);
}
END_TEST

START_TEST(test_multiple_errors_at_once)
{
    cfg_config *c = NULL;
    cfg_diags d = {0};
    ck_assert_int_eq(cfg_load_file(FIX "bad_routes.yaml", &c, &d), -1);
    ck_assert_ptr_null(c);
    /* one per broken route at least, in file order */
    ck_assert_uint_ge(d.nerrors, 18);
    int prev = 0;
    for (size_t i = 0; i < d.nerrors; i++) {
        int line = atoi(d.errors[i] + strlen(FIX "bad_routes.yaml:"));
        ck_assert_int_ge(line, prev);
        prev = line;
    }
    cfg_diags_free(&d);
}
END_TEST

/* ---- round trip ----------------------------------------------------------- */

START_TEST(test_good_full_every_key)
{
    cfg_config *c = NULL;
    cfg_diags d = {0};
    char dir[PATH_MAX], want[PATH_MAX + 64];
    ck_assert_ptr_nonnull(realpath(FIX, dir));
    int rc = cfg_load_file(FIX "good_full.yaml", &c, &d);
    if (rc != 0)
        dump(&d);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(d.nerrors, 0);
    ck_assert_uint_eq(d.nwarnings, 0);

    ck_assert_str_eq(c->file, FIX "good_full.yaml");
    ck_assert_str_eq(c->listen, "[::1]:18080");
    ck_assert_str_eq(c->admin_listen, "127.0.0.1:19090");
    ck_assert_int_eq(c->workers, 3);
    ck_assert_int_eq(c->shutdown_grace_ms, 2500);
    ck_assert(c->trust_forwarded_headers);

    snprintf(want, sizeof want, "%s/verifier.pem", dir);
    ck_assert_str_eq(c->auth.verifier_key_file, want);
    ck_assert_str_eq(c->auth.issuer, "https://auth.example.test");
    ck_assert_ptr_null(c->auth.auth_url);
    ck_assert_ptr_null(c->auth.verifier_key_pem);
    ck_assert_int_eq(c->auth.leeway_seconds, 5);
    ck_assert_int_eq(c->auth.refresh_interval_s, 600);
    ck_assert_int_eq(c->auth.previous_key_grace_s, 90);
    ck_assert_int_eq(c->auth.fetch_timeout_ms, 1500);
    ck_assert_uint_eq(c->auth.token_cache_entries, 0);

    ck_assert_uint_eq(c->nupstreams, 2);
    ck_assert_str_eq(c->upstreams[0].name, "app");
    ck_assert_str_eq(c->upstreams[0].url, "http://127.0.0.1:9000"); /* trailing '/' dropped */
    ck_assert_int_eq(c->upstreams[0].connect_timeout_ms, 100);
    ck_assert_int_eq(c->upstreams[0].timeout_ms, 200);
    ck_assert_int_eq(c->upstreams[0].line, 18);
    ck_assert_int_eq(c->upstreams[0].col, 3);
    ck_assert_str_eq(c->upstreams[1].name, "billing");
    ck_assert_str_eq(c->upstreams[1].url, "https://billing.internal:8443/base");
    ck_assert_int_eq(c->upstreams[1].connect_timeout_ms, 2000);
    ck_assert_int_eq(c->upstreams[1].timeout_ms, 30000);

    ck_assert_str_eq(c->identity.user_header, "X-Auth-User");
    ck_assert_str_eq(c->identity.org_header, "X-Auth-Org");
    ck_assert_int_eq(c->identity.user_orgs, ID_ORGS_REQUESTED);
    ck_assert(!c->identity.forward_authorization);
    ck_assert_uint_eq(c->identity.nstrip_headers, 2);
    ck_assert_str_eq(c->identity.strip_headers[0], "X-Debug-User");
    ck_assert_str_eq(c->identity.strip_headers[1], "X-Internal");

    ck_assert_uint_eq(c->limits.max_header_bytes, 32768);
    ck_assert_uint_eq(c->limits.max_headers, 50);
    ck_assert_uint_eq(c->limits.max_uri_bytes, 4096);
    ck_assert_uint_eq(c->limits.max_token_bytes, 16384);
    ck_assert_uint_eq(c->limits.max_body_bytes, 1048576);
    ck_assert_uint_eq(c->limits.max_connections, 500);
    ck_assert_uint_eq(c->limits.max_connections_per_ip, 20);
    ck_assert_int_eq(c->limits.idle_timeout_ms, 5000);
    ck_assert_int_eq(c->limits.request_timeout_ms, 3000);
    ck_assert_uint_eq(c->limits.max_identity_bytes, 8192);
    ck_assert_uint_eq(c->limits.max_response_header_bytes, 16384);

    ck_assert(c->paths.resolve_dot_segments);
    ck_assert(c->paths.merge_slashes);
    ck_assert_str_eq(c->paths.org_id_pattern, "[0-9a-f-]{36}");
    snprintf(want, sizeof want, "%s/logs/access.log", dir);
    ck_assert_str_eq(c->log.access_log, want);
    ck_assert_str_eq(c->log.level, "debug");

    ck_assert_uint_eq(c->nroutes, 10);
    const cfg_route *r = c->routes;
    ck_assert_str_eq(r[0].path, "/healthz");
    ck_assert_uint_eq(r[0].methods, HX_M_GET | HX_M_HEAD);
    ck_assert_int_eq(r[0].policy.kind, POL_PUBLIC);
    ck_assert_int_eq(r[0].org_kind, CFG_ORG_NONE);
    ck_assert_ptr_eq(r[0].upstream, &c->upstreams[0]);
    ck_assert_int_eq(r[0].line, 46);
    ck_assert_int_eq(r[0].col, 5);
    ck_assert_uint_eq(r[0].index, 0);

    ck_assert_int_eq(r[1].policy.kind, POL_REQUIRE_USER);
    ck_assert_uint_eq(r[1].methods, HX_M_ALL);
    ck_assert_int_eq(r[2].policy.kind, POL_OPTIONAL_USER);

    ck_assert_int_eq(r[3].policy.kind, POL_ORG_MEMBER);
    ck_assert_uint_eq(r[3].methods, HX_M_GET);
    ck_assert_int_eq(r[3].org_kind, CFG_ORG_PATH); /* default from {org_id} */
    ck_assert_str_eq(r[3].org_name, "org_id");

    ck_assert_int_eq(r[4].policy.kind, POL_ORG_EXACT_ROLE);
    ck_assert_str_eq(r[4].policy.role, "Owner");
    ck_assert_uint_eq(r[4].methods, HX_M_DELETE);

    ck_assert_int_eq(r[5].policy.kind, POL_ORG_MIN_ROLE);
    ck_assert_str_eq(r[5].policy.role, "Admin");
    ck_assert_str_eq(r[5].path, "/api/org/{org_id}/admin/**");

    ck_assert_int_eq(r[6].policy.kind, POL_ORG_PERMISSION);
    ck_assert_str_eq(r[6].policy.permission, "can_view_billing");
    ck_assert_int_eq(r[6].org_kind, CFG_ORG_PATH);
    ck_assert_str_eq(r[6].org_name, "org");
    ck_assert_ptr_eq(r[6].upstream, &c->upstreams[1]);
    ck_assert_uint_eq(r[6].methods, HX_M_GET | HX_M_POST);

    ck_assert_int_eq(r[7].policy.kind, POL_ORG_ALL_PERMISSIONS);
    ck_assert_uint_eq(r[7].policy.npermissions, 2);
    ck_assert_str_eq(r[7].policy.permissions[0], "can_view_billing");
    ck_assert_str_eq(r[7].policy.permissions[1], "can_view_reports");
    ck_assert_int_eq(r[7].org_kind, CFG_ORG_QUERY);
    ck_assert_str_eq(r[7].org_name, "org_id");

    ck_assert_int_eq(r[8].org_kind, CFG_ORG_QUERY);
    ck_assert_str_eq(r[8].org_name, "tenant");

    ck_assert_int_eq(r[9].org_kind, CFG_ORG_HEADER);
    ck_assert_str_eq(r[9].org_name, "X-Tenant-Id");
    ck_assert_uint_eq(r[9].methods, HX_M_PUT | HX_M_PATCH | HX_M_OPTIONS);

    ck_assert_uint_eq(strlen(c->hash), 16);
    cfg_free(c);
    cfg_diags_free(&d);
}
END_TEST

START_TEST(test_good_fetch)
{
    cfg_config *c = NULL;
    cfg_diags d = {0};
    int rc = cfg_load_file(FIX "good_fetch.yaml", &c, &d);
    if (rc != 0)
        dump(&d);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(c->auth.auth_url, "https://auth.example.test/");
    ck_assert_str_eq(c->auth.api_key_env, "PROPELAUTH_API_KEY");
    ck_assert_str_eq(c->auth.api_base_url, "http://127.0.0.1:4010");
    ck_assert_ptr_nonnull(strstr(c->auth.ca_file, "/fixtures/config/verifier.pem"));
    ck_assert_int_eq(c->auth.ca_file[0], '/');
    ck_assert_int_eq(c->auth.refresh_interval_s, 3600);
    ck_assert_int_eq(c->auth.previous_key_grace_s, 30);
    ck_assert_ptr_null(c->auth.issuer);
    /* one upstream: routes may omit it */
    ck_assert_ptr_eq(c->routes[0].upstream, &c->upstreams[0]);
    cfg_free(c);
    cfg_diags_free(&d);
}
END_TEST

START_TEST(test_defaults)
{
    cfg_config *c;
    cfg_diags d;
    int rc = load_str(BASE_AUTH "routes:\n  - path: /x\n    policy: public\n", &c, &d);
    if (rc != 0)
        dump(&d);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(c->listen, "127.0.0.1:8080");
    ck_assert_ptr_null(c->admin_listen);
    ck_assert_int_eq(c->workers, 0);
    ck_assert_int_eq(c->shutdown_grace_ms, 10000);
    ck_assert(!c->trust_forwarded_headers);
    ck_assert_str_eq(c->auth.api_base_url, "https://propelauth-api.com");
    ck_assert_int_eq(c->auth.leeway_seconds, 60);
    ck_assert_int_eq(c->auth.refresh_interval_s, 3600);
    ck_assert_int_eq(c->auth.previous_key_grace_s, 600);
    ck_assert_int_eq(c->auth.fetch_timeout_ms, 10000);
    ck_assert_uint_eq(c->auth.token_cache_entries, 10000);
    ck_assert_str_eq(c->identity.user_header, "X-User");
    ck_assert_str_eq(c->identity.org_header, "X-Org");
    ck_assert_int_eq(c->identity.user_orgs, ID_ORGS_ALL);
    ck_assert(c->identity.forward_authorization);
    ck_assert_uint_eq(c->identity.nstrip_headers, 0);
    ck_assert_uint_eq(c->limits.max_header_bytes, 16384);
    ck_assert_uint_eq(c->limits.max_headers, 100);
    ck_assert_uint_eq(c->limits.max_uri_bytes, 8192);
    ck_assert_uint_eq(c->limits.max_token_bytes, 49152);
    ck_assert_uint_eq(c->limits.max_body_bytes, 0);
    ck_assert_uint_eq(c->limits.max_connections, 10000);
    ck_assert_uint_eq(c->limits.max_connections_per_ip, 0);
    ck_assert_int_eq(c->limits.idle_timeout_ms, 60000);
    ck_assert_int_eq(c->limits.request_timeout_ms, 10000);
    ck_assert_uint_eq(c->limits.max_identity_bytes, 65536);
    ck_assert_uint_eq(c->limits.max_response_header_bytes, 65536);
    ck_assert(!c->paths.resolve_dot_segments);
    ck_assert(!c->paths.merge_slashes);
    ck_assert_str_eq(c->paths.org_id_pattern, "[A-Za-z0-9._~-]{1,128}");
    ck_assert_str_eq(c->log.access_log, "stdout");
    ck_assert_str_eq(c->log.level, "info");
    ck_assert_uint_eq(c->routes[0].methods, HX_M_ALL);
    cfg_free(c);
    cfg_diags_free(&d);
}
END_TEST

START_TEST(test_durations_and_hash)
{
    const char *forms[][2] = {{"45", "45"}, {"30s", "30"}, {"10m", "600"}, {"2h", "7200"}};
    for (size_t i = 0; i < 4; i++) {
        char y[1024];
        snprintf(y, sizeof y,
                 "auth:\n  auth_url: https://a.example\n  api_key_env: K\n  refresh_interval: "
                 "%s\nupstreams: {app: \"http://h\"}\nroutes: [{path: /x, policy: public}]\n",
                 forms[i][0]);
        cfg_config *c;
        cfg_diags d;
        int rc = load_str(y, &c, &d);
        if (rc != 0)
            dump(&d);
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(c->auth.refresh_interval_s, atol(forms[i][1]));
        cfg_free(c);
        cfg_diags_free(&d);
    }
    /* the hash follows the bytes: one more newline, another hash */
    cfg_config *c;
    cfg_diags d;
    const char *y = BASE_AUTH "routes: [{path: /x, policy: public}]\n";
    ck_assert_int_eq(load_str(y, &c, &d), 0);
    char h1[17];
    memcpy(h1, c->hash, 17);
    cfg_free(c);
    cfg_diags_free(&d);
    ck_assert_int_eq(load_str(BASE_AUTH "routes: [{path: /x, policy: public}]\n\n", &c, &d), 0);
    ck_assert_str_ne(c->hash, h1);
    cfg_free(c);
    cfg_diags_free(&d);
}
END_TEST

START_TEST(test_hash_value)
{
    /* A valid file whose SHA-256 we know: compute it over BASE_AUTH + routes. */
    char dir[] = "/tmp/agcfgXXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/h.yaml", dir);
    const char *y = "auth:\n  auth_url: https://a.example\n  api_key_env: K\n"
                    "upstreams: {app: \"http://h\"}\nroutes: [{path: /x, policy: public}]\n";
    write_file(path, y, 0600);
    cfg_config *c;
    cfg_diags d = {0};
    ck_assert_int_eq(cfg_load_file(path, &c, &d), 0);
    /* printf '%s' "$y" | sha256sum | cut -c1-16 */
    ck_assert_str_eq(c->hash, "e4dbcd79235860eb");
    cfg_free(c);
    cfg_diags_free(&d);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* ---- docs/security.md group J -------------------------------------------------- */

START_TEST(test_J87_empty_truncated_missing)
{
    const char *inputs[] = {"", "\n\n", "# only a comment\n", "~\n", "---\n"};
    for (size_t i = 0; i < AG_ARRAY_LEN(inputs); i++) {
        cfg_config *c;
        cfg_diags d;
        ck_assert_int_eq(load_str(inputs[i], &c, &d), -1);
        ck_assert_ptr_null(c);
        ck_assert(has_diag(d.errors, d.nerrors, "t.yaml:1:1: configuration is empty"));
        cfg_diags_free(&d);
    }
    /* half-written: cut in the middle of the routes */
    cfg_config *c;
    cfg_diags d;
    ck_assert_int_eq(load_str(BASE_AUTH "routes:\n  - path: /x\n    pol", &c, &d), -1);
    ck_assert_uint_ge(d.nerrors, 1);
    cfg_diags_free(&d);
    ck_assert_int_eq(load_str(BASE_AUTH "routes: []\n", &c, &d), -1);
    ck_assert(has_diag(d.errors, d.nerrors, "routes: at least one route is required"));
    cfg_diags_free(&d);
    ck_assert_int_eq(load_str(BASE_AUTH, &c, &d), -1);
    ck_assert(has_diag(d.errors, d.nerrors, "t.yaml:1:1: routes: missing"));
    cfg_diags_free(&d);
    memset(&d, 0, sizeof d);
    ck_assert_int_eq(cfg_load_file(FIX "no-such-file.yaml", &c, &d), -1);
    ck_assert_ptr_null(c);
    ck_assert_uint_eq(d.nerrors, 1);
    ck_assert_str_eq(d.errors[0],
                     FIX "no-such-file.yaml:1:1: cannot open: No such file or directory");
    cfg_diags_free(&d);
    ck_assert_int_eq(cfg_load_file(FIX, &c, &d), -1);
    ck_assert(has_diag(d.errors, d.nerrors, "not a regular file"));
    cfg_diags_free(&d);
}
END_TEST

START_TEST(test_J89_alias_bomb)
{
    const char *y = "a: &a [x, x, x, x, x, x, x, x, x]\n"
                    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                    "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                    "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                    "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    cfg_config *c;
    cfg_diags d;
    ck_assert_int_eq(load_str(y, &c, &d), -1);
    ck_assert(
        has_diag(d.errors, d.nerrors, "t.yaml:1:4: YAML anchors and aliases are not supported"));
    ck_assert(
        has_diag(d.errors, d.nerrors, "t.yaml:2:8: YAML anchors and aliases are not supported"));
    cfg_diags_free(&d);
}
END_TEST

START_TEST(test_J89_big_scalar_deep_nesting_tags)
{
    cfg_config *c;
    cfg_diags d;
    size_t big = 1 << 20;
    char *y = malloc(big + 64);
    ck_assert_ptr_nonnull(y);
    strcpy(y, "listen: ");
    memset(y + 8, 'a', big);
    strcpy(y + 8 + big, "\n");
    ck_assert_int_eq(load_str(y, &c, &d), -1);
    ck_assert(has_diag(d.errors, d.nerrors, "t.yaml:1:9: value longer than 65536 bytes"));
    cfg_diags_free(&d);
    free(y);

    char deep[256] = "routes: ";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    for (int i = 0; i < 40; i++)
        strcat(deep, "]");
    ck_assert_int_eq(load_str(deep, &c, &d), -1);
    ck_assert(has_diag(d.errors, d.nerrors, "nesting deeper than 32 levels"));
    cfg_diags_free(&d);

    ck_assert_int_eq(load_str("listen: !!python/object:os.system x\n", &c, &d), -1);
    ck_assert(has_diag(d.errors, d.nerrors, "t.yaml:1:9: YAML tags are not supported"));
    cfg_diags_free(&d);

    ck_assert_int_eq(load_str("listen: \"a\\0b\"\n", &c, &d), -1);
    ck_assert(has_diag(d.errors, d.nerrors, "t.yaml:1:9: NUL byte in value"));
    cfg_diags_free(&d);

    /* A hostile mapping with many keys: every duplicate found, quickly. */
    ag_buf b;
    ag_buf_init(&b);
    for (int i = 0; i < 20000; i++)
        ck_assert_int_eq(ag_buf_printf(&b, "k%d: 1\n", i % 10000), 0);
    ck_assert_int_eq(load_str(b.p, &c, &d), -1);
    ck_assert(has_diag(d.errors, d.nerrors, "duplicate key \"k0\" (first at line 1)"));
    ck_assert(has_diag(d.errors, d.nerrors, "too many errors"));
    ck_assert_uint_eq(d.nerrors, 101); /* 100 shown plus the "too many" line */
    cfg_diags_free(&d);
    ag_buf_free(&b);
}
END_TEST

START_TEST(test_J89_file_permissions)
{
    char dir[] = "/tmp/agcfgXXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cfgp[64], keyp[64];
    snprintf(cfgp, sizeof cfgp, "%s/c.yaml", dir);
    snprintf(keyp, sizeof keyp, "%s/api.key", dir);
    write_file(keyp, "secret\n", 0644);
    write_file(cfgp,
               "auth:\n  auth_url: https://a.example\n  api_key_file: api.key\n"
               "upstreams: {app: \"http://h\"}\nroutes: [{path: /x, policy: public}]\n",
               0666);
    cfg_config *c;
    cfg_diags d = {0};
    /* The daemon refuses to read a secret from such a file, so loading
     * refuses the file that names it (check and run agree). */
    ck_assert_int_ne(cfg_load_file(cfgp, &c, &d), 0);
    ck_assert(has_diag(d.errors, d.nerrors, "3:17: auth.api_key_file: "));
    ck_assert(has_diag(d.errors, d.nerrors, "accessible by group or others (mode 0644)"));
    ck_assert(has_diag(d.warnings, d.nwarnings, "file is writable by others (mode 0666)"));
    cfg_diags_free(&d);

    ck_assert_int_eq(chmod(keyp, 0600), 0);
    ck_assert_int_eq(cfg_load_file(cfgp, &c, &d), 0);
    ck_assert_str_eq(c->auth.api_key_file, keyp); /* resolved next to the config */
    ck_assert(has_diag(d.warnings, d.nwarnings, "file is writable by others (mode 0666)"));
    cfg_free(c);
    cfg_diags_free(&d);

    ck_assert_int_eq(chmod(keyp, 0600), 0);
    ck_assert_int_eq(chmod(cfgp, 0640), 0);
    ck_assert_int_eq(cfg_load_file(cfgp, &c, &d), 0);
    ck_assert_uint_eq(d.nwarnings, 0);
    cfg_free(c);
    cfg_diags_free(&d);
    unlink(keyp);
    unlink(cfgp);
    rmdir(dir);
}
END_TEST

START_TEST(test_websocket_keys)
{
    cfg_config *c;
    cfg_diags d;
    int rc = load_str("auth: {auth_url: \"https://a\", api_key_env: K}\n"
                      "upstreams: {a: \"http://h1\", s: \"https://h2\"}\n"
                      "websocket: {max_tunnels: 7, close_on_token_expiry: true}\n"
                      "routes:\n"
                      "  - {path: /ws, policy: require_user, upstream: a, websocket: true}\n"
                      "  - {path: /x, policy: require_user, upstream: s}\n",
                      &c, &d);
    dump(&d);
    ck_assert_int_eq(rc, 0);
    ck_assert(c->routes[0].websocket);
    ck_assert(!c->routes[1].websocket); /* off unless a route says so */
    ck_assert_uint_eq(c->websocket.max_tunnels, 7);
    ck_assert_int_eq(c->websocket.idle_timeout_ms, 300000);
    ck_assert(c->websocket.close_on_token_expiry);
    cfg_free(c);
    cfg_diags_free(&d);
    /* no tunnel through libcurl: refused where the key is */
    rc = load_str("auth: {auth_url: \"https://a\", api_key_env: K}\n"
                  "upstreams: {s: \"https://h2\"}\n"
                  "routes:\n"
                  "  - {path: /ws, policy: require_user, websocket: true}\n",
                  &c, &d);
    ck_assert_int_eq(rc, -1);
    ck_assert_uint_eq(d.nerrors, 1);
    ck_assert_str_eq(d.errors[0], "t.yaml:4:50: route \"/ws\": websocket: true needs an http:// "
                                  "upstream; upstream \"s\" is https:// (authgate does not "
                                  "tunnel WebSockets through TLS)");
    cfg_diags_free(&d);
    rc = load_str("auth: {auth_url: \"https://a\", api_key_env: K}\n"
                  "upstreams: {a: \"http://h1\"}\n"
                  "websocket: {idle_timeout_ms: 10}\n"
                  "routes: [{path: /ws, policy: require_user, websocket: true}]\n",
                  &c, &d);
    ck_assert_int_eq(rc, -1);
    ck_assert_uint_eq(d.nerrors, 1); /* 10 ms is below the minimum */
    ck_assert(has_diag(d.errors, d.nerrors, "websocket.idle_timeout_ms"));
    cfg_diags_free(&d);
}
END_TEST

START_TEST(test_demo_config_loads)
{
    /* The demo file must always be valid (make run depends on it), apart from
     * the key file, which another part of the tree provides. */
    cfg_config *c = NULL;
    cfg_diags d = {0};
    int rc = cfg_load_file("config/demo.yaml", &c, &d);
    bool only_key_missing = rc != 0 && d.nerrors == 1 && strstr(d.errors[0], "verifier_key_file");
    if (rc != 0 && !only_key_missing)
        dump(&d);
    ck_assert(rc == 0 || only_key_missing);
    ck_assert_uint_eq(d.nwarnings, 0);
    if (c) {
        ck_assert_str_eq(c->listen, "127.0.0.1:8080");
        ck_assert_str_eq(c->auth.issuer, "https://auth.demo.authgate.local");
        ck_assert_str_eq(c->upstreams[0].url, "http://127.0.0.1:9000");
        bool seen[POL__COUNT] = {0};
        for (size_t i = 0; i < c->nroutes; i++)
            seen[c->routes[i].policy.kind] = true;
        for (int k = 0; k < POL__COUNT; k++)
            ck_assert_msg(seen[k], "demo has no %s route", pol_kind_name((pol_kind)k));
    }
    cfg_free(c);
    cfg_diags_free(&d);
}
END_TEST

/* ---- root cause first (issue 13, finding 2) --------------------------------- */

static size_t diag_index(const cfg_diags *d, const char *needle)
{
    for (size_t i = 0; i < d->nerrors; i++)
        if (strstr(d->errors[i], needle))
            return i;
    return SIZE_MAX;
}

START_TEST(test_misspelt_section_is_the_only_error)
{
    cfg_diags d;
    load_fail(
        "auth:\n"
        "  verifier_key_pem: \"-----BEGIN PUBLIC KEY-----\\nx\\n-----END PUBLIC KEY-----\\n\"\n"
        "  issuer: https://auth.example.test\n"
        "routes:\n"
        "  - {path: /x, policy: public, upstream: app}\n"
        "upstream:\n"
        "  app: http://127.0.0.1:9000\n",
        &d);
    ck_assert(
        has_diag(d.errors, d.nerrors, "unknown key \"upstream\" (did you mean \"upstreams\"?)"));
    ck_assert(!has_diag(d.errors, d.nerrors, "upstreams: missing"));
    ck_assert(!has_diag(d.errors, d.nerrors, "unknown upstream"));
    ck_assert_uint_eq(d.nerrors, 1);
    cfg_diags_free(&d);

    load_fail("auth:\n  verifier_key_pem: \"-----BEGIN PUBLIC KEY-----\\nx\\n\"\n"
              "  isuer: https://auth.example.test\n" BASE_AUTH_UPSTREAM
              "routes:\n  - {path: /x, policy: public}\n",
              &d);
    ck_assert(has_diag(d.errors, d.nerrors, "did you mean \"issuer\"?"));
    ck_assert(!has_diag(d.errors, d.nerrors, "issuer is required"));
    cfg_diags_free(&d);

    /* inside a route: a misspelt policy key is one error, not two */
    load_fail(BASE_AUTH "routes:\n  - {path: /x, polcy: public}\n", &d);
    ck_assert(has_diag(d.errors, d.nerrors, "did you mean \"policy\"?"));
    ck_assert(!has_diag(d.errors, d.nerrors, "policy is required"));
    cfg_diags_free(&d);

    /* a genuinely missing section is still reported */
    load_fail(BASE_AUTH, &d);
    ck_assert(has_diag(d.errors, d.nerrors, "routes: missing"));
    cfg_diags_free(&d);
}
END_TEST

START_TEST(test_did_you_mean_values)
{
    cfg_diags d;
    load_fail(BASE_AUTH "routes:\n"
                        "  - path: /api/org/{org_id}/a\n"
                        "    policy: require_org_member_with_min_role\n"
                        "    role: Admin\n"
                        "  - {path: /b, policy: Public}\n"
                        "  - {path: /c, policy: require_superuser}\n",
              &d);
    ck_assert(
        has_diag(d.errors, d.nerrors, "(did you mean \"require_org_member_with_minimum_role\"?)"));
    ck_assert(
        has_diag(d.errors, d.nerrors, "unknown policy \"Public\" (did you mean \"public\"?)"));
    /* nothing close: the whole list */
    ck_assert(
        has_diag(d.errors, d.nerrors, "unknown policy \"require_superuser\" (one of public,"));
    cfg_diags_free(&d);

    load_fail(BASE_AUTH "log: {level: inf}\nidentity: {user_orgs: Requested}\n"
                        "routes:\n  - {path: /x, policy: public}\n",
              &d);
    ck_assert(has_diag(d.errors, d.nerrors, "got \"inf\" (did you mean \"info\"?)"));
    ck_assert(has_diag(d.errors, d.nerrors, "got \"Requested\" (did you mean \"requested\"?)"));
    cfg_diags_free(&d);
}
END_TEST

START_TEST(test_yaml_trap_hints)
{
    cfg_diags d;
    load_fail("listen: 127.0.0.1:1\nauth:\n\tissuer: x\n", &d);
    ck_assert(has_diag(d.errors, d.nerrors, "3:1: invalid YAML"));
    ck_assert(has_diag(d.errors, d.nerrors, "indent with spaces"));
    cfg_diags_free(&d);

    load_fail(BASE_AUTH "routes:\n  - { path: /api/org/{org_id}, policy: require_org_member }\n",
              &d);
    ck_assert(has_diag(d.errors, d.nerrors, "quote the template"));
    cfg_diags_free(&d);

    load_fail("listen: [::1]:8080\n", &d);
    ck_assert(has_diag(d.errors, d.nerrors, "quote an IPv6 address"));
    cfg_diags_free(&d);

    /* a syntax error that is none of these gets no hint */
    load_fail("a: b: c\n", &d);
    ck_assert(!has_diag(d.errors, d.nerrors, "quote"));
    ck_assert(!has_diag(d.errors, d.nerrors, "spaces"));
    cfg_diags_free(&d);
}
END_TEST

START_TEST(test_errors_read_top_down_root_first)
{
    cfg_diags d;
    /* the unknown key comes first even though a later one is derived from nothing */
    load_fail("listn: 127.0.0.1:1\n" BASE_AUTH "routes:\n  - {path: /x, policy: public}\n", &d);
    ck_assert_uint_eq(diag_index(&d, "unknown key \"listn\""), 0);
    cfg_diags_free(&d);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_fixture_diagnostics, 0, (int)AG_ARRAY_LEN(fixtures));
    tcase_add_test(tc, test_multiple_errors_at_once);
    tcase_add_test(tc, test_good_full_every_key);
    tcase_add_test(tc, test_good_fetch);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_durations_and_hash);
    tcase_add_test(tc, test_hash_value);
    tcase_add_test(tc, test_J87_empty_truncated_missing);
    tcase_add_test(tc, test_J89_alias_bomb);
    tcase_add_test(tc, test_J89_big_scalar_deep_nesting_tags);
    tcase_add_test(tc, test_J89_file_permissions);
    tcase_add_test(tc, test_websocket_keys);
    tcase_add_test(tc, test_demo_config_loads);
    tcase_add_test(tc, test_misspelt_section_is_the_only_error);
    tcase_add_test(tc, test_did_you_mean_values);
    tcase_add_test(tc, test_yaml_trap_hints);
    tcase_add_test(tc, test_errors_read_top_down_root_first);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
