/* Unit tests for src/gate.c, the whole decision engine: canonicalization,
 * route and method matching, the Authorization header, token verification
 * (with and without the token cache), org id sources, the policy table of
 * docs/semantics.md section 3, the identity headers of section 4 and the
 * error bodies. Configurations come from cfg_load_string; tokens are signed
 * with the demo key (tests/unit/fixtures/tokhelp.h); the verifier key set is a
 * hand-built keys_snapshot so generations can be chosen freely. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fixtures/tokhelp.h"
#include "gate.h"
#include "httpx.h"
#include "keys.h"
#include "log.h"
#include "tcache.h"
#include "testutil.h"
#include "util.h"

/* ---- fixtures ------------------------------------------------------------------ */

#define AUTH_AND_UPSTREAM                                                                          \
    "auth:\n"                                                                                      \
    "  verifier_key_pem: \"-----BEGIN PUBLIC KEY-----\\nx\\n-----END PUBLIC KEY-----\\n\"\n"       \
    "  issuer: " TH_ISS "\n"                                                                       \
    "upstreams:\n"                                                                                 \
    "  app: http://127.0.0.1:9000\n"

#define ROUTES                                                                                     \
    "routes:\n"                                                                                    \
    "  - path: /health\n"                                                                          \
    "    methods: [GET, HEAD]\n"                                                                   \
    "    policy: public\n"                                                                         \
    "  - path: /only-post\n"                                                                       \
    "    methods: [POST]\n"                                                                        \
    "    policy: public\n"                                                                         \
    "  - path: /feed\n"                                                                            \
    "    policy: optional_user\n"                                                                  \
    "  - path: /me\n"                                                                              \
    "    policy: require_user\n"                                                                   \
    "  - path: /orgs/{org_id}\n"                                                                   \
    "    policy: require_org_member\n"                                                             \
    "  - path: /orgs/{org_id}/admin\n"                                                             \
    "    policy: require_org_member_with_minimum_role\n"                                           \
    "    role: Admin\n"                                                                            \
    "  - path: /orgs/{org_id}/owner\n"                                                             \
    "    policy: require_org_member_with_exact_role\n"                                             \
    "    role: Owner\n"                                                                            \
    "  - path: /orgs/{org_id}/billing\n"                                                           \
    "    policy: require_org_member_with_permission\n"                                             \
    "    permission: can_view_billing\n"                                                           \
    "  - path: /reports\n"                                                                         \
    "    policy: require_org_member_with_all_permissions\n"                                        \
    "    permissions: [A, C]\n"                                                                    \
    "    org_id_from: query\n"                                                                     \
    "  - path: /hdr\n"                                                                             \
    "    policy: require_org_member\n"                                                             \
    "    org_id_from: header:X-Tenant-Id\n"

#define DEFAULT_EXTRA                                                                              \
    "identity:\n"                                                                                  \
    "  strip_headers: [X-Debug-User, X-Internal]\n"

static gate *mk_gate(const char *extra)
{
    ag_buf y;
    ag_buf_init(&y);
    ck_assert_int_eq(ag_buf_printf(&y, "%s%s%s", AUTH_AND_UPSTREAM, extra, ROUTES), 0);
    cfg_config *c = NULL;
    cfg_diags d;
    memset(&d, 0, sizeof(d));
    int rc = cfg_load_string("gate-test.yaml", y.p, y.len, &c, &d);
    if (rc != 0)
        cfg_diags_print(&d, stderr);
    ck_assert_int_eq(rc, 0);
    cfg_diags_free(&d);
    ag_buf_free(&y);
    gate *g = NULL;
    char err[256];
    ck_assert_msg(gate_new(c, &g, err, sizeof(err)) == 0, "gate_new: %s", err);
    return g;
}

static keys_snapshot mk_keys(uint64_t generation)
{
    keys_snapshot k;
    memset(&k, 0, sizeof(k));
    k.keys[0] = th_key(TH_DEMO_PUB);
    k.nkeys = 1;
    k.issuer = ag_strdup(TH_ISS);
    ck_assert_ptr_nonnull(k.issuer);
    k.generation = generation;
    k.refs = 1;
    return k;
}

static void free_keys(keys_snapshot *k)
{
    jwt_key_unref(k->keys[0]);
    free(k->issuer);
}

static gate *G;
static keys_snapshot K;

static void setup(void)
{
    G = mk_gate(DEFAULT_EXTRA);
    K = mk_keys(1);
}

static void teardown(void)
{
    gate_unref(G);
    free_keys(&K);
}

/* One org entry in the token. */
#define ORG(id, role, inh, perms)                                                                  \
    "\"" id "\":{\"org_id\":\"" id "\",\"org_name\":\"Org " id                                     \
    "\",\"url_safe_org_name\":\"org-" id "\",\"org_metadata\":{\"plan\":\"pro\"},\"user_role\":"   \
    "\"" role "\",\"inherited_user_roles_plus_current_role\":" inh ",\"user_permissions\":" perms  \
    "}"

/* Member of o1 (Admin, inherits Member; permissions A, B, C, can_view_billing)
 * and of o2 (Member only). */
#define STD_ORGS                                                                                   \
    ",\"email\":\"alice@example.com\",\"org_id_to_org_member_info\":{" ORG(                        \
        "o1", "Admin", "[\"Admin\",\"Member\"]",                                                   \
        "[\"A\",\"B\",\"C\",\"can_view_billing\"]") "," ORG("o2", "Member", "[\"Member\"]",        \
                                                            "[]") "}"

static char *token_with(const char *extra)
{
    char *claims = th_claims(extra);
    char *t = th_sign(claims);
    free(claims);
    return t;
}

static char *std_token(void)
{
    return token_with(STD_ORGS);
}

static char *bearer(const char *tok)
{
    ag_buf b;
    ag_buf_init(&b);
    ck_assert_int_eq(ag_buf_printf(&b, "Bearer %s", tok), 0);
    return ag_buf_steal(&b);
}

#define MAXH 8

typedef struct req {
    gate_header h[MAXH];
    size_t nh;
    char *owned[MAXH];
    size_t nowned;
} req;

static void add_h(req *r, const char *name, const char *value)
{
    ck_assert_uint_lt(r->nh, MAXH);
    r->h[r->nh++] = (gate_header){name, strlen(name), value, strlen(value)};
}

/* Authorization: Bearer <tok>, with the value owned by r. */
static void add_auth(req *r, const char *tok)
{
    char *v = bearer(tok);
    r->owned[r->nowned++] = v;
    add_h(r, "Authorization", v);
}

static void req_free(req *r)
{
    for (size_t i = 0; i < r->nowned; i++)
        free(r->owned[i]);
}

static gate_decision *decide_at(const gate *g, const keys_snapshot *k, tc_cache *c,
                                const char *method, const char *target, const req *r, int64_t now)
{
    gate_decision *d = malloc(sizeof(*d));
    ck_assert_ptr_nonnull(d);
    gate_decision_init(d);
    gate_request q = {
        .method = method,
        .target = target,
        .target_len = strlen(target),
        .headers = r ? r->h : NULL,
        .nheaders = r ? r->nh : 0,
    };
    gate_decide(g, k, c, &q, now, d);
    return d;
}

static gate_decision *decide(const char *method, const char *target, const req *r)
{
    return decide_at(G, &K, NULL, method, target, r, TH_NOW);
}

static void done(gate_decision *d)
{
    gate_decision_clear(d);
    free(d);
}

/* status 0: forwarded. The enum, the table row and the strings must agree. */
static void expect(gate_decision *d, int status, const char *error, const char *reason)
{
    ck_assert_int_eq(d->status, status);
    if (error)
        ck_assert_str_eq(d->error, error);
    ck_assert_str_eq(d->reason, reason);
    ck_assert_str_eq(reason_name(d->code), reason);
    ck_assert_int_eq(reason_status(d->code), status);
    if (status != 0) {
        ck_assert_int_eq(d->outcome, GATE_REFUSE);
        ck_assert_ptr_null(d->x_user);
        ck_assert_ptr_null(d->x_org);
    } else {
        ck_assert_int_eq(d->outcome, GATE_FORWARD);
        ck_assert_ptr_nonnull(d->route);
        ck_assert_ptr_nonnull(d->route->upstream);
    }
}

static void expect_body(const gate_decision *d, const char *want)
{
    ag_buf b;
    ag_buf_init(&b);
    ck_assert_int_eq(gate_error_body(d, &b), 0);
    ck_assert_str_eq(b.p, want);
    ag_buf_free(&b);
}

static json_t *parse(const char *s)
{
    ck_assert_ptr_nonnull(s);
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    ck_assert_msg(j != NULL, "not JSON (%s): %s", e.text, s);
    return j;
}

/* 1 request for a route with the standard user's token. */
static gate_decision *as_std(const char *method, const char *target)
{
    char *t = std_token();
    req r = {0};
    add_auth(&r, t);
    gate_decision *d = decide(method, target, &r);
    req_free(&r);
    free(t);
    return d;
}

/* ---- canonicalization, routes, methods -------------------------------------------- */

START_TEST(test_canon_rejects)
{
    static const struct {
        const char *target;
        const char *reason;
    } cases[] = {
        {"/health/../me", "path_dot_segment"},
        {"/./health", "path_dot_segment"},
        {"/orgs/o1%2fadmin", "path_encoded_separator"},
        {"/orgs/o1%5Cadmin", "path_encoded_separator"},
        {"//health", "path_empty_segment"},
        {"/health%00", "path_control_char"},
        {"/he%zzalth", "path_bad_encoding"},
        {"/health#frag", "path_fragment"},
        {"health", "path_not_origin_form"},
        {"http://evil/health", "path_not_origin_form"},
        {"/health?x=%zz", "query_bad_encoding"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        gate_decision *d = decide("GET", cases[i].target, NULL);
        ck_assert_msg(d->status == 400, "%s: status %d", cases[i].target, d->status);
        ck_assert_str_eq(d->error, "bad_request");
        ck_assert_msg(strcmp(d->reason, cases[i].reason) == 0, "%s: reason %s, want %s",
                      cases[i].target, d->reason, cases[i].reason);
        ck_assert_ptr_null(d->route);
        done(d);
    }
}
END_TEST

START_TEST(test_uri_too_long)
{
    /* limits.max_uri_bytes defaults to 8192 */
    char *t = malloc(9000);
    ck_assert_ptr_nonnull(t);
    t[0] = '/';
    memset(t + 1, 'a', 8999 - 1);
    t[8999] = '\0';
    gate_decision *d = decide("GET", t, NULL);
    expect(d, 414, "uri_too_long", "limit_uri");
    done(d);
    /* just under the limit is not a 414 (it is simply not a route) */
    t[8191] = '\0';
    d = decide("GET", t, NULL);
    expect(d, 404, "not_found", "no_route");
    done(d);
    /* exactly at the limit is allowed too; one byte over is 414 */
    memset(t + 1, 'a', 8191);
    t[8192] = '\0';
    d = decide("GET", t, NULL);
    expect(d, 404, "not_found", "no_route");
    done(d);
    t[8192] = 'a';
    t[8193] = '\0';
    d = decide("GET", t, NULL);
    expect(d, 414, "uri_too_long", "limit_uri");
    done(d);
    /* raw non-ASCII bytes are re-encoded as %XX, tripling their size: a target
     * within the limit must still fit */
    for (size_t i = 1; i + 1 < 8192; i += 2) {
        t[i] = (char)0xc3; /* U+00E9, two bytes, six once encoded */
        t[i + 1] = (char)0xa9;
    }
    t[8191] = 'a';
    t[8192] = '\0';
    d = decide("GET", t, NULL);
    expect(d, 404, "not_found", "no_route");
    done(d);
    free(t);
}
END_TEST

START_TEST(test_not_found_and_method)
{
    gate_decision *d = decide("GET", "/nope", NULL);
    expect(d, 404, "not_found", "no_route");
    ck_assert_ptr_null(d->route);
    ck_assert_uint_eq(d->allow, 0);
    expect_body(d, "{\"error\":\"not_found\",\"reason\":\"no_route\"}\n");
    done(d);

    d = decide("DELETE", "/health", NULL);
    expect(d, 405, "method_not_allowed", "method_not_allowed");
    ck_assert_uint_eq(d->allow, HX_M_GET | HX_M_HEAD);
    ck_assert_ptr_null(d->route);
    done(d);

    d = decide("GET", "/only-post", NULL);
    expect(d, 405, "method_not_allowed", "method_not_allowed");
    ck_assert_uint_eq(d->allow, HX_M_POST);
    done(d);

    /* a method we do not know at all is never matched */
    d = decide("BREW", "/health", NULL);
    ck_assert_int_eq(d->status, 405);
    ck_assert_uint_eq(d->allow, HX_M_GET | HX_M_HEAD);
    done(d);
    /* methods are case-sensitive */
    d = decide("get", "/health", NULL);
    ck_assert_int_eq(d->status, 405);
    done(d);

    /* a route without methods takes them all */
    d = decide("PATCH", "/feed", NULL);
    expect(d, 0, NULL, "ok");
    done(d);
}
END_TEST

START_TEST(test_public_forwarded_with_canonical_path)
{
    gate_decision *d = decide("HEAD", "/he%61lth?a=1&b=%41", NULL);
    expect(d, 0, NULL, "ok");
    ck_assert_ptr_nonnull(d->route);
    ck_assert_str_eq(d->route->path, "/health");
    ck_assert_str_eq(d->path, "/health");
    ck_assert_uint_eq(d->path_len, 7);
    ck_assert_uint_eq(d->query_len, 9);
    ck_assert_int_eq(strncmp(d->query, "a=1&b=%41", 9), 0);
    ck_assert_ptr_null(d->x_user);
    ck_assert_ptr_null(d->x_org);
    ck_assert_ptr_null(d->user);
    ck_assert(!d->token_sent);
    done(d);

    /* a token on a public route is neither checked nor turned into identity */
    req r = {0};
    add_h(&r, "Authorization", "Bearer not-a-token");
    d = decide("GET", "/health", &r);
    expect(d, 0, NULL, "ok");
    ck_assert_ptr_null(d->x_user);
    ck_assert_ptr_null(d->user);
    done(d);
    char *t = std_token();
    req r2 = {0};
    add_auth(&r2, t);
    d = decide("GET", "/health", &r2);
    expect(d, 0, NULL, "ok");
    ck_assert_ptr_null(d->x_user);
    done(d);
    req_free(&r2);
    free(t);
}
END_TEST

/* ---- the Authorization header and the token ------------------------------------------ */

START_TEST(test_401_without_token)
{
    gate_decision *d = decide("GET", "/me", NULL);
    expect(d, 401, "unauthorized", "token_missing");
    ck_assert(!d->token_sent); /* WWW-Authenticate without error="invalid_token" */
    ck_assert_ptr_null(d->user);
    expect_body(d, "{\"error\":\"unauthorized\",\"reason\":\"token_missing\"}\n");
    done(d);

    /* an unrelated header does not count as a token */
    req r = {0};
    add_h(&r, "X-Authorization", "Bearer abc");
    add_h(&r, "Proxy-Authorization", "Bearer abc");
    d = decide("GET", "/me", &r);
    expect(d, 401, "unauthorized", "token_missing");
    ck_assert(!d->token_sent);
    done(d);
}
END_TEST

START_TEST(test_401_bad_header_or_token)
{
    static const struct {
        const char *value;
        const char *reason;
    } cases[] = {
        {"token abc", "auth_header_invalid"},     {"Basic dTpw", "auth_header_invalid"},
        {"Bearer", "auth_header_invalid"},        {"Bearer a b", "auth_header_invalid"},
        {"Bearer whatisthis", "token_malformed"}, {"bearer a.b.c", "token_malformed"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        req r = {0};
        add_h(&r, "Authorization", cases[i].value);
        gate_decision *d = decide("GET", "/me", &r);
        ck_assert_msg(d->status == 401, "'%s': %d", cases[i].value, d->status);
        ck_assert_str_eq(d->error, "unauthorized");
        ck_assert_msg(strcmp(d->reason, cases[i].reason) == 0, "'%s': %s", cases[i].value,
                      d->reason);
        ck_assert_str_eq(d->token_reason, cases[i].reason);
        ck_assert(d->token_sent);
        ck_assert_ptr_null(d->user);
        done(d);
    }
}
END_TEST

START_TEST(test_401_token_verification)
{
    char *expired = th_sign("{\"user_id\":\"u1\",\"iss\":\"" TH_ISS
                            "\",\"iat\":1789990000,\"exp\":1789999000}");
    char *other_key = th_sign_with(TH_FIX "other-key.pem", NULL,
                                   "{\"user_id\":\"u1\",\"iss\":\"" TH_ISS
                                   "\",\"iat\":1790000000,\"exp\":1790001800}");
    char *http_iss =
        th_sign("{\"user_id\":\"u1\",\"iss\":\"http://auth.example.com\",\"iat\":1790000000,"
                "\"exp\":1790001800}");
    char *no_user = th_sign("{\"iss\":\"" TH_ISS "\",\"iat\":1790000000,\"exp\":1790001800}");
    const struct {
        const char *tok;
        const char *reason;
    } cases[] = {
        {expired, "token_expired"},
        {other_key, "token_signature"},
        {http_iss, "token_issuer"},
        {no_user, "token_claims"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        req r = {0};
        add_auth(&r, cases[i].tok);
        gate_decision *d = decide("GET", "/me", &r);
        expect(d, 401, "unauthorized", cases[i].reason);
        ck_assert(d->token_sent);
        ck_assert_ptr_null(d->user);
        done(d);
        req_free(&r);
    }
    free(expired);
    free(other_key);
    free(http_iss);
    free(no_user);
}
END_TEST

START_TEST(test_401_duplicate_authorization)
{
    char *t = std_token();
    /* both copies valid and equal: still refused */
    const char *names[][2] = {{"Authorization", "Authorization"},
                              {"authorization", "AUTHORIZATION"},
                              {"Authorization", "aUtHoRiZaTiOn"}};
    for (size_t i = 0; i < AG_ARRAY_LEN(names); i++) {
        req r = {0};
        char *v = bearer(t);
        add_h(&r, names[i][0], v);
        add_h(&r, "X-Other", "1");
        add_h(&r, names[i][1], v);
        gate_decision *d = decide("GET", "/me", &r);
        expect(d, 401, "unauthorized", "auth_header_duplicate");
        ck_assert(d->token_sent);
        ck_assert_ptr_null(d->user);
        done(d);
        /* on an optional route the duplicate is an invalid token: anonymous */
        d = decide("GET", "/feed", &r);
        expect(d, 0, NULL, "token_invalid_ignored");
        ck_assert_ptr_null(d->x_user);
        done(d);
        free(v);
    }
    free(t);
}
END_TEST

START_TEST(test_require_user_allowed)
{
    char *t = std_token();
    req r = {0};
    /* header name in any case, scheme in any case, extra spaces */
    char v[8192];
    snprintf(v, sizeof(v), "BEARER   %s", t);
    add_h(&r, "authorization", v);
    gate_decision *d = decide("GET", "/me", &r);
    expect(d, 0, NULL, "ok");
    ck_assert(d->token_sent);
    ck_assert_ptr_nonnull(d->user);
    ck_assert_str_eq(id_user_id(d->user), "u1");
    ck_assert_ptr_null(d->x_org);
    json_t *u = parse(d->x_user);
    ck_assert_str_eq(json_string_value(json_object_get(u, "user_id")), "u1");
    ck_assert_str_eq(json_string_value(json_object_get(u, "email")), "alice@example.com");
    json_t *orgs = json_object_get(u, "org_id_to_org_member_info");
    ck_assert(json_is_object(orgs));
    ck_assert_uint_eq(json_object_size(orgs), 2); /* user_orgs: all */
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(orgs, "o1"), "user_assigned_role")),
        "Admin");
    ck_assert(json_is_null(json_object_get(u, "active_org_id")));
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(u, "login_method"), "login_method")),
        "unknown");
    json_decref(u);
    done(d);
    req_free(&r);
    free(t);
}
END_TEST

/* ---- optional_user ---------------------------------------------------------------- */

START_TEST(test_optional_user)
{
    gate_decision *d = decide("GET", "/feed", NULL);
    expect(d, 0, NULL, "ok");
    ck_assert_ptr_null(d->x_user);
    ck_assert(!d->token_sent);
    done(d);

    /* the library's six inputs: all forwarded, only the valid one with identity */
    char *valid = std_token();
    char *expired = th_sign("{\"user_id\":\"u1\",\"iss\":\"" TH_ISS
                            "\",\"iat\":1789990000,\"exp\":1789999000}");
    const char *bad_values[] = {"token abc", "Bearer whatisthis"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad_values); i++) {
        req r = {0};
        add_h(&r, "Authorization", bad_values[i]);
        d = decide("GET", "/feed", &r);
        expect(d, 0, NULL, "token_invalid_ignored");
        ck_assert_ptr_null(d->x_user);
        ck_assert_ptr_null(d->x_org);
        ck_assert_ptr_null(d->user);
        ck_assert(d->token_sent);
        ck_assert_ptr_nonnull(d->token_reason);
        done(d);
    }
    req r = {0};
    add_auth(&r, expired);
    d = decide("GET", "/feed", &r);
    expect(d, 0, NULL, "token_invalid_ignored");
    ck_assert_str_eq(d->token_reason, "token_expired");
    ck_assert_ptr_null(d->x_user);
    done(d);
    req_free(&r);

    req r2 = {0};
    add_auth(&r2, valid);
    d = decide("GET", "/feed", &r2);
    expect(d, 0, NULL, "ok");
    json_t *u = parse(d->x_user);
    ck_assert_str_eq(json_string_value(json_object_get(u, "user_id")), "u1");
    json_decref(u);
    ck_assert_ptr_null(d->x_org);
    done(d);
    req_free(&r2);
    free(valid);
    free(expired);
}
END_TEST

/* ---- orgs ------------------------------------------------------------------------- */

START_TEST(test_org_routes)
{
    static const struct {
        const char *method, *target;
        int status;
        const char *reason;
    } cases[] = {
        {"GET", "/orgs/o1", 0, "ok"},
        {"GET", "/orgs/o2", 0, "ok"},
        {"GET", "/orgs/o3", 403, "not_member"},
        {"GET", "/orgs/O1", 403, "not_member"},
        {"GET", "/orgs/o%31", 0, "ok"}, /* percent-decoded before the lookup */
        {"GET", "/orgs/o1/admin", 0, "ok"},
        {"GET", "/orgs/o2/admin", 403, "role_below_minimum"},
        {"GET", "/orgs/o1/owner", 403, "role_mismatch"},
        {"GET", "/orgs/o1/billing", 0, "ok"},
        {"GET", "/orgs/o2/billing", 403, "missing_permission"},
        {"GET", "/reports?org_id=o1", 0, "ok"},
        {"GET", "/reports?org_id=o2", 403, "missing_permission"},
        {"GET", "/reports", 403, "org_id_missing"},
        {"GET", "/reports?other=o1", 403, "org_id_missing"},
        {"GET", "/reports?org_id=o1&org_id=o1", 400, "org_id_ambiguous"},
        {"GET", "/reports?org_id=o1&ORG_ID=o2", 400, "org_id_ambiguous"},
        {"GET", "/reports?org_id=", 403, "org_id_missing"}, /* empty = absent (case 43) */
        {"GET", "/reports?org_id", 403, "org_id_missing"},
        {"GET", "/reports?org_id=a%20b", 400, "org_id_invalid"},
        {"GET", "/orgs/o1?org_id=o1", 0, "ok"},
        {"GET", "/orgs/o1?org_id=o2", 400, "org_id_ambiguous"},
        {"GET", "/orgs/o1?org_id=o1&org_id=o1", 400, "org_id_ambiguous"},
        {"GET", "/hdr", 403, "org_id_missing"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        gate_decision *d = as_std(cases[i].method, cases[i].target);
        ck_assert_msg(d->status == cases[i].status && strcmp(d->reason, cases[i].reason) == 0,
                      "%s: %d %s, want %d %s", cases[i].target, d->status, d->reason,
                      cases[i].status, cases[i].reason);
        if (cases[i].status == 0) {
            ck_assert_ptr_nonnull(d->x_user);
            ck_assert_ptr_nonnull(d->x_org);
            ck_assert(d->has_org_id);
        } else {
            ck_assert_ptr_null(d->x_user);
            ck_assert_ptr_null(d->x_org);
            ck_assert_str_eq(d->error, cases[i].status == 400 ? "bad_request" : "forbidden");
        }
        done(d);
    }
}
END_TEST

START_TEST(test_org_identity_headers)
{
    gate_decision *d = as_std("GET", "/orgs/o%31/admin");
    expect(d, 0, NULL, "ok");
    ck_assert_str_eq(d->org_id, "o1");
    ck_assert_uint_eq(d->org_id_len, 2);
    json_t *o = parse(d->x_org);
    ck_assert_str_eq(json_string_value(json_object_get(o, "org_id")), "o1");
    ck_assert_str_eq(json_string_value(json_object_get(o, "org_name")), "Org o1");
    ck_assert_str_eq(json_string_value(json_object_get(o, "user_assigned_role")), "Admin");
    ck_assert_str_eq(json_string_value(json_object_get(o, "org_role_structure")),
                     "single_role_in_hierarchy");
    ck_assert_uint_eq(json_array_size(json_object_get(o, "user_permissions")), 4);
    ck_assert_uint_eq(json_array_size(json_object_get(o, "user_inherited_roles_plus_current_role")),
                      2);
    ck_assert(json_is_array(json_object_get(o, "assigned_additional_roles")));
    ck_assert(json_is_null(json_object_get(o, "legacy_org_id")));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "org_metadata"), "plan")),
                     "pro");
    /* none of the token's own field names leak through */
    ck_assert_ptr_null(json_object_get(o, "user_role"));
    json_decref(o);
    json_t *u = parse(d->x_user);
    ck_assert_str_eq(json_string_value(json_object_get(u, "user_id")), "u1");
    json_decref(u);
    done(d);

    /* the org named in the request, not the first one in the token */
    d = as_std("GET", "/orgs/o2");
    o = parse(d->x_org);
    ck_assert_str_eq(json_string_value(json_object_get(o, "org_id")), "o2");
    ck_assert_str_eq(json_string_value(json_object_get(o, "user_assigned_role")), "Member");
    json_decref(o);
    done(d);
}
END_TEST

START_TEST(test_org_from_header)
{
    char *t = std_token();
    const char *names[] = {"X-Tenant-Id", "x-tenant-id", "X-TENANT-ID"};
    for (size_t i = 0; i < AG_ARRAY_LEN(names); i++) {
        req r = {0};
        add_auth(&r, t);
        add_h(&r, names[i], "o1");
        gate_decision *d = decide("PUT", "/hdr", &r);
        expect(d, 0, NULL, "ok");
        json_t *o = parse(d->x_org);
        ck_assert_str_eq(json_string_value(json_object_get(o, "org_id")), "o1");
        json_decref(o);
        done(d);
        req_free(&r);
    }
    req r = {0};
    add_auth(&r, t);
    add_h(&r, "X-Tenant-Id", "o3");
    gate_decision *d = decide("GET", "/hdr", &r);
    expect(d, 403, "forbidden", "not_member");
    done(d);
    /* the same header twice, even agreeing: ambiguous */
    add_h(&r, "x-tenant-id", "o3");
    d = decide("GET", "/hdr", &r);
    expect(d, 400, "bad_request", "org_id_ambiguous");
    done(d);
    req_free(&r);
    /* A look-alike is read as the source too (a backend may read either),
     * so a second one is ambiguous and a lone one is the org id. */
    const char *alike[] = {"X_Tenant_Id", "x.tenant.id", "XTenantId"};
    for (size_t i = 0; i < AG_ARRAY_LEN(alike); i++) {
        req ra = {0};
        add_auth(&ra, t);
        add_h(&ra, "X-Tenant-Id", "o1");
        add_h(&ra, alike[i], "o3");
        d = decide("GET", "/hdr", &ra);
        expect(d, 400, "bad_request", "org_id_ambiguous");
        done(d);
        req_free(&ra);
        req rb = {0};
        add_auth(&rb, t);
        add_h(&rb, alike[i], "o3");
        d = decide("GET", "/hdr", &rb);
        expect(d, 403, "forbidden", "not_member");
        done(d);
        req_free(&rb);
    }
    req rc = {0};
    add_auth(&rc, t);
    add_h(&rc, "X-Tenant", "o3");
    d = decide("GET", "/hdr", &rc);
    ck_assert(!d->has_org_id);
    done(d);
    req_free(&rc);

    req r2 = {0};
    add_auth(&r2, t);
    add_h(&r2, "X-Tenant-Id", "o 1");
    d = decide("GET", "/hdr", &r2);
    expect(d, 400, "bad_request", "org_id_invalid");
    done(d);
    req_free(&r2);

    /* a header value longer than any org id */
    char big[400];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    req r3 = {0};
    add_auth(&r3, t);
    add_h(&r3, "X-Tenant-Id", big);
    d = decide("GET", "/hdr", &r3);
    expect(d, 400, "bad_request", "org_id_invalid");
    done(d);
    req_free(&r3);
    free(t);
}
END_TEST

START_TEST(test_order_bad_token_before_org)
{
    /* header -> token -> org: a bad token is 401 whatever the org would say */
    const char *targets[] = {
        "/orgs/o3", "/orgs/o1?org_id=o2", "/reports?org_id=a&org_id=b", "/reports?org_id=a%20b",
        "/reports", "/orgs/o2/owner"};
    for (size_t i = 0; i < AG_ARRAY_LEN(targets); i++) {
        req r = {0};
        add_h(&r, "Authorization", "Bearer whatisthis");
        gate_decision *d = decide("GET", targets[i], &r);
        ck_assert_msg(d->status == 401, "%s: %d %s", targets[i], d->status, d->reason);
        ck_assert_str_eq(d->reason, "token_malformed");
        done(d);
        d = decide("GET", targets[i], NULL);
        ck_assert_msg(d->status == 401, "%s: %d %s", targets[i], d->status, d->reason);
        ck_assert_str_eq(d->reason, "token_missing");
        done(d);
    }
}
END_TEST

START_TEST(test_token_without_orgs)
{
    char *t = token_with("");
    req r = {0};
    add_auth(&r, t);
    gate_decision *d = decide("GET", "/orgs/o1", &r);
    expect(d, 403, "forbidden", "not_member");
    done(d);
    d = decide("GET", "/me", &r);
    expect(d, 0, NULL, "ok");
    json_t *u = parse(d->x_user);
    ck_assert(json_is_null(json_object_get(u, "org_id_to_org_member_info")));
    json_decref(u);
    done(d);
    req_free(&r);
    free(t);
}
END_TEST

/* ---- keys not loaded -------------------------------------------------------------- */

START_TEST(test_keys_unavailable)
{
    char *t = std_token();
    req with = {0};
    add_auth(&with, t);

    gate_decision *d = decide_at(G, NULL, NULL, "GET", "/me", NULL, TH_NOW);
    expect(d, 503, "unavailable", "keys_unavailable");
    expect_body(d, "{\"error\":\"unavailable\",\"reason\":\"keys_unavailable\"}\n");
    done(d);
    d = decide_at(G, NULL, NULL, "GET", "/me", &with, TH_NOW);
    expect(d, 503, "unavailable", "keys_unavailable");
    done(d);
    d = decide_at(G, NULL, NULL, "GET", "/orgs/o1", &with, TH_NOW);
    expect(d, 503, "unavailable", "keys_unavailable");
    done(d);
    d = decide_at(G, NULL, NULL, "GET", "/reports?org_id=o1", NULL, TH_NOW);
    expect(d, 503, "unavailable", "keys_unavailable");
    done(d);

    /* public still works, with or without a token */
    d = decide_at(G, NULL, NULL, "GET", "/health", NULL, TH_NOW);
    expect(d, 0, NULL, "ok");
    done(d);
    d = decide_at(G, NULL, NULL, "GET", "/health", &with, TH_NOW);
    expect(d, 0, NULL, "ok");
    done(d);
    /* optional_user without a token is served anonymously */
    d = decide_at(G, NULL, NULL, "GET", "/feed", NULL, TH_NOW);
    expect(d, 0, NULL, "ok");
    ck_assert_ptr_null(d->x_user);
    done(d);
    /* a token that cannot be checked must not silently lose its identity */
    d = decide_at(G, NULL, NULL, "GET", "/feed", &with, TH_NOW);
    expect(d, 503, "unavailable", "keys_unavailable");
    done(d);
    req_free(&with);
    free(t);
}
END_TEST

/* ---- identity size cap ------------------------------------------------------------ */

START_TEST(test_identity_too_large)
{
    gate *g = mk_gate("limits:\n  max_identity_bytes: 512\n");
    char pad[700];
    memset(pad, 'p', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    char extra[1024];
    snprintf(extra, sizeof(extra), ",\"properties\":{\"pad\":\"%s\"}", pad);
    char *big = token_with(extra);
    char *small = token_with("");
    req rb = {0}, rs = {0};
    add_auth(&rb, big);
    add_auth(&rs, small);

    gate_decision *d = decide_at(g, &K, NULL, "GET", "/me", &rb, TH_NOW);
    expect(d, 431, "request_header_fields_too_large", "identity_too_large");
    ck_assert_ptr_null(d->x_user);
    done(d);
    d = decide_at(g, &K, NULL, "GET", "/feed", &rb, TH_NOW);
    expect(d, 431, "request_header_fields_too_large", "identity_too_large");
    done(d);
    /* the cap is about the identity we would send, not the route */
    d = decide_at(g, &K, NULL, "GET", "/health", &rb, TH_NOW);
    expect(d, 0, NULL, "ok");
    done(d);
    d = decide_at(g, &K, NULL, "GET", "/me", &rs, TH_NOW);
    expect(d, 0, NULL, "ok");
    ck_assert_uint_le(strlen(d->x_user), 512);
    done(d);
    /* with the default cap the big identity is fine */
    d = decide("GET", "/me", &rb);
    expect(d, 0, NULL, "ok");
    ck_assert_ptr_nonnull(strstr(d->x_user, pad));
    done(d);
    req_free(&rb);
    req_free(&rs);
    free(big);
    free(small);
    gate_unref(g);
}
END_TEST

START_TEST(test_user_orgs_requested)
{
    gate *g = mk_gate("identity:\n  user_orgs: requested\n");
    char *t = std_token();
    req r = {0};
    add_auth(&r, t);
    gate_decision *d = decide_at(g, &K, NULL, "GET", "/orgs/o2", &r, TH_NOW);
    expect(d, 0, NULL, "ok");
    json_t *u = parse(d->x_user);
    json_t *orgs = json_object_get(u, "org_id_to_org_member_info");
    ck_assert_uint_eq(json_object_size(orgs), 1);
    ck_assert_ptr_nonnull(json_object_get(orgs, "o2"));
    json_decref(u);
    done(d);
    d = decide_at(g, &K, NULL, "GET", "/me", &r, TH_NOW);
    u = parse(d->x_user);
    orgs = json_object_get(u, "org_id_to_org_member_info");
    ck_assert(json_is_object(orgs));
    ck_assert_uint_eq(json_object_size(orgs), 0);
    json_decref(u);
    done(d);
    req_free(&r);
    free(t);
    gate_unref(g);
}
END_TEST

/* ---- error bodies --------------------------------------------- */

START_TEST(test_error_body_never_echoes_request)
{
    static const char *targets[] = {
        "/me?<script>alert(1)</script>", "/health/../<img>",        "/orgs/%22%3Cx%3E",
        "/nope\"},{\"injected\":1",      "/reports?org_id=%3Cb%3E",
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(targets); i++) {
        req r = {0};
        add_h(&r, "Authorization", "Bearer <evil>\"");
        gate_decision *d = decide("GET", targets[i], &r);
        ck_assert_int_ne(d->status, 0);
        ag_buf b;
        ag_buf_init(&b);
        ck_assert_int_eq(gate_error_body(d, &b), 0);
        /* exactly {"error":<class>,"reason":<code>} built from constants */
        json_t *j = parse(b.p);
        ck_assert_uint_eq(json_object_size(j), 2);
        ck_assert_str_eq(json_string_value(json_object_get(j, "error")), d->error);
        ck_assert_str_eq(json_string_value(json_object_get(j, "reason")), d->reason);
        for (const char *p = b.p; *p; p++)
            ck_assert_msg(*p != '<' && *p != '>', "request bytes in body: %s", b.p);
        ck_assert_ptr_null(strstr(b.p, "evil"));
        ck_assert_ptr_null(strstr(b.p, "injected"));
        json_decref(j);
        ag_buf_free(&b);
        done(d);
    }
    /* an untouched decision still gives a well-formed body */
    gate_decision *d = malloc(sizeof(*d));
    ck_assert_ptr_nonnull(d);
    gate_decision_init(d);
    expect_body(d, "{\"error\":\"error\",\"reason\":\"unknown\"}\n");
    done(d);
}
END_TEST

/* ---- token cache --------------------------------------------------------------------- */

START_TEST(test_token_cache)
{
    tc_cache *c = tc_new(100, 1 << 20);
    ck_assert_ptr_nonnull(c);
    char *t = std_token();
    req r = {0};
    add_auth(&r, t);

    gate_decision *d = decide_at(G, &K, c, "GET", "/orgs/o1", &r, TH_NOW);
    expect(d, 0, NULL, "ok");
    ck_assert(d->cache_used);
    ck_assert(!d->cache_hit);
    char *first_user = ag_strdup(d->x_user);
    char *first_org = ag_strdup(d->x_org);
    done(d);

    /* the same token again: served from the cache, same identity */
    d = decide_at(G, &K, c, "GET", "/orgs/o1", &r, TH_NOW + 10);
    expect(d, 0, NULL, "ok");
    ck_assert(d->cache_used);
    ck_assert(d->cache_hit);
    ck_assert_str_eq(d->x_user, first_user);
    ck_assert_str_eq(d->x_org, first_org);
    done(d);
    /* a cached user still goes through the org checks */
    d = decide_at(G, &K, c, "GET", "/orgs/o3", &r, TH_NOW + 10);
    expect(d, 403, "forbidden", "not_member");
    ck_assert(d->cache_hit);
    done(d);

    /* another key generation: the entry does not count, the token is verified
     * again (and cached under the new generation) */
    keys_snapshot k2 = mk_keys(2);
    d = decide_at(G, &k2, c, "GET", "/orgs/o1", &r, TH_NOW + 20);
    expect(d, 0, NULL, "ok");
    ck_assert(d->cache_used);
    ck_assert(!d->cache_hit);
    done(d);
    d = decide_at(G, &k2, c, "GET", "/orgs/o1", &r, TH_NOW + 20);
    ck_assert(d->cache_hit);
    done(d);

    /* after expiry (beyond the leeway) the cache does not keep it alive */
    d = decide_at(G, &k2, c, "GET", "/me", &r, TH_NOW + 1800 + 61);
    expect(d, 401, "unauthorized", "token_expired");
    ck_assert(!d->cache_hit);
    done(d);

    /* a rejected token is never cached */
    req bad = {0};
    add_h(&bad, "Authorization", "Bearer a.b.c");
    for (int i = 0; i < 2; i++) {
        d = decide_at(G, &K, c, "GET", "/me", &bad, TH_NOW);
        expect(d, 401, "unauthorized", "token_malformed");
        ck_assert(!d->cache_hit);
        done(d);
    }
    uint64_t hits = 0, misses = 0;
    size_t entries = 0;
    tc_stats(c, &hits, &misses, &entries);
    ck_assert_uint_eq(hits, 3);
    /* the generation-1 entry went at the generation-2 lookup, the generation-2
     * one at the lookup after its expiry */
    ck_assert_uint_eq(entries, 0);

    /* no cache: nothing is looked up */
    d = decide_at(G, &K, NULL, "GET", "/me", &r, TH_NOW);
    expect(d, 0, NULL, "ok");
    ck_assert(!d->cache_used);
    ck_assert(!d->cache_hit);
    done(d);

    free_keys(&k2);
    free(first_user);
    free(first_org);
    req_free(&r);
    free(t);
    tc_free(c);
}
END_TEST

START_TEST(test_keys_start_manual)
{
    /* The same decisions with a snapshot from the real key store. */
    char cwd[4096];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    cfg_auth a;
    memset(&a, 0, sizeof(a));
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", cwd, TH_DEMO_PUB);
    a.verifier_key_file = path;
    a.issuer = TH_ISS;
    a.leeway_seconds = 60;
    a.refresh_interval_s = 3600;
    a.previous_key_grace_s = 600;
    a.fetch_timeout_ms = 1000;
    keys_store *ks = NULL;
    char err[256];
    log_set_level(LOG_WARN); /* the "key loaded" line is noise here */
    ck_assert_msg(keys_start(&a, NULL, &ks, err, sizeof(err)) == 0, "%s", err);
    keys_snapshot *s = keys_acquire(ks);
    ck_assert_ptr_nonnull(s);
    char *t = std_token();
    req r = {0};
    add_auth(&r, t);
    gate_decision *d = decide_at(G, s, NULL, "GET", "/orgs/o1/billing", &r, TH_NOW);
    expect(d, 0, NULL, "ok");
    done(d);
    char *other = th_sign_with(TH_FIX "other-key.pem", NULL,
                               "{\"user_id\":\"u1\",\"iss\":\"" TH_ISS
                               "\",\"iat\":1790000000,\"exp\":1790001800}");
    req r2 = {0};
    add_auth(&r2, other);
    d = decide_at(G, s, NULL, "GET", "/me", &r2, TH_NOW);
    expect(d, 401, "unauthorized", "token_signature");
    done(d);
    req_free(&r);
    req_free(&r2);
    free(t);
    free(other);
    keys_snapshot_unref(s);
    keys_stop(ks);
}
END_TEST

START_TEST(test_gate_refcount_and_config)
{
    const cfg_config *c = gate_config(G);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(c->nroutes, 10);
    ck_assert_ptr_nonnull(gate_routes(G));
    gate *g2 = gate_ref(G);
    ck_assert_ptr_eq(g2, G);
    gate_unref(g2); /* the fixture's reference keeps it alive */
    gate_decision *d = decide("GET", "/health", NULL);
    expect(d, 0, NULL, "ok");
    ck_assert_ptr_eq(d->route, &c->routes[0]);
    done(d);
}
END_TEST

/* Fail closed by construction: a decision nobody completed refuses with 500. */
START_TEST(test_fresh_decision_refuses)
{
    gate_decision d;
    gate_decision_init(&d);
    ck_assert_int_eq(d.outcome, GATE_REFUSE);
    ck_assert_int_eq(d.code, AR_INTERNAL);
    ck_assert_int_eq(reason_status(d.code), 500);
    ck_assert_ptr_null(d.token_reason);
    gate_decision_clear(&d);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("gate");
    TCase *tc = tcase_create("gate");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_canon_rejects);
    tcase_add_test(tc, test_uri_too_long);
    tcase_add_test(tc, test_fresh_decision_refuses);
    tcase_add_test(tc, test_not_found_and_method);
    tcase_add_test(tc, test_public_forwarded_with_canonical_path);
    tcase_add_test(tc, test_401_without_token);
    tcase_add_test(tc, test_401_bad_header_or_token);
    tcase_add_test(tc, test_401_token_verification);
    tcase_add_test(tc, test_401_duplicate_authorization);
    tcase_add_test(tc, test_require_user_allowed);
    tcase_add_test(tc, test_optional_user);
    tcase_add_test(tc, test_org_routes);
    tcase_add_test(tc, test_org_identity_headers);
    tcase_add_test(tc, test_org_from_header);
    tcase_add_test(tc, test_order_bad_token_before_org);
    tcase_add_test(tc, test_token_without_orgs);
    tcase_add_test(tc, test_keys_unavailable);
    tcase_add_test(tc, test_identity_too_large);
    tcase_add_test(tc, test_user_orgs_requested);
    tcase_add_test(tc, test_error_body_never_echoes_request);
    tcase_add_test(tc, test_token_cache);
    tcase_add_test(tc, test_keys_start_manual);
    tcase_add_test(tc, test_gate_refcount_and_config);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
