/* Unit tests for src/policy.c: the decision table of docs/semantics.md
 * section 3 (every policy against every token / org situation), the check
 * order (header -> token -> org -> role/permission), the reason codes, and the
 * library test cases of section 5 that are about roles and permissions. Users
 * are real id_user values built from JSON claims. */
#include <string.h>

#include "identity.h"
#include "policy.h"
#include "testutil.h"
#include "util.h"

/* One org entry; role is JSON text (a string literal or null). */
#define ORG(id, role, inh, perms)                                                                  \
    "\"" id "\":{\"org_id\":\"" id "\",\"org_name\":\"Org " id                                     \
    "\",\"url_safe_org_name\":\"org-" id "\",\"org_metadata\":{},\"user_role\":" role              \
    ",\"inherited_user_roles_plus_current_role\":" inh ",\"user_permissions\":" perms "}"

#define MULTI_ORG(id, role, addl, inh, perms)                                                      \
    "\"" id "\":{\"org_id\":\"" id "\",\"org_name\":\"Org " id                                     \
    "\",\"url_safe_org_name\":\"org-" id "\",\"org_metadata\":{},\"user_role\":" role              \
    ",\"inherited_user_roles_plus_current_role\":" inh ",\"user_permissions\":" perms              \
    ",\"org_role_structure\":\"multi_role\",\"additional_roles\":" addl "}"

#define USER(orgs)                                                                                 \
    "{\"user_id\":\"u1\",\"exp\":1790001800,\"iat\":1790000000,"                                   \
    "\"iss\":\"https://auth.example.com\",\"org_id_to_org_member_info\":{" orgs "}}"

static id_user *mk_user(const char *json)
{
    json_error_t e;
    json_t *c = json_loads(json, 0, &e);
    ck_assert_msg(c != NULL, "bad JSON in test: %s", e.text);
    id_user *u = NULL;
    ag_reason reason = AR_INTERNAL;
    int rc = id_user_from_claims(c, &u, &reason);
    ck_assert_msg(rc == 0, "claims rejected (%s): %s", reason_name(reason), json);
    json_decref(c);
    return u;
}

/* The standard user: Admin (inherits Member) of o1 with permissions A, B, C. */
static id_user *std_user(void)
{
    return mk_user(USER(ORG("o1", "\"Admin\"", "[\"Admin\",\"Member\"]", "[\"A\",\"B\",\"C\"]")));
}

static pol_spec spec_of(pol_kind k)
{
    static char *const all_ac[] = {"A", "C"};
    pol_spec s = {.kind = k};
    switch (k) {
    case POL_ORG_MIN_ROLE:
    case POL_ORG_EXACT_ROLE:
        s.role = "Admin";
        break;
    case POL_ORG_PERMISSION:
        s.permission = "B";
        break;
    case POL_ORG_ALL_PERMISSIONS:
        s.permissions = ag_unconst(all_ac);
        s.npermissions = 2;
        break;
    default:
        break;
    }
    return s;
}

/* A spec whose check the standard user fails (for the "check fails" column). */
static pol_spec failing_spec_of(pol_kind k)
{
    static char *const all_ad[] = {"A", "D"};
    pol_spec s = {.kind = k};
    switch (k) {
    case POL_ORG_MIN_ROLE:
        s.role = "Owner";
        break;
    case POL_ORG_EXACT_ROLE:
        s.role = "Member"; /* inherited, but not the exact role */
        break;
    case POL_ORG_PERMISSION:
        s.permission = "D";
        break;
    case POL_ORG_ALL_PERMISSIONS:
        s.permissions = ag_unconst(all_ad);
        s.npermissions = 2;
        break;
    default:
        break;
    }
    return s;
}

static pol_result decide(const pol_spec *s, pol_token_state t, const id_user *u, const char *org)
{
    pol_input in = {.token = t, .user = u, .org_id = org, .org_id_len = org ? strlen(org) : 0};
    if (t == POL_TOKEN_INVALID)
        in.token_reason = AR_TOKEN_EXPIRED;
    pol_result r;
    memset(&r, 0x5A, sizeof(r)); /* pol_decide must set every field it reports */
    pol_decide(s, &in, &r);
    return r;
}

static void expect_deny(const pol_result *r, int status, const char *reason)
{
    ck_assert_int_eq(r->outcome, POL_DENY);
    ck_assert_int_eq(reason_status(r->code), status);
    ck_assert_str_eq(reason_name(r->code), reason);
    ck_assert(!r->inject_user);
    ck_assert_ptr_null(r->org);
    ck_assert_uint_ge(r->nchecks, 1);
    ck_assert_uint_le(r->nchecks, AG_ARRAY_LEN(r->checks));
    /* The failing check is the last one recorded. */
    ck_assert(!r->check_ok[r->nchecks - 1]);
}

static void expect_allow(const pol_result *r, bool inject, const id_org *org)
{
    ck_assert_int_eq(r->outcome, POL_ALLOW);
    ck_assert_int_eq(r->code, AR_OK);
    ck_assert_int_eq(r->inject_user, inject);
    ck_assert_ptr_eq(r->org, org);
    ck_assert_uint_ge(r->nchecks, 1);
    for (size_t i = 0; i < r->nchecks; i++)
        ck_assert_msg(r->check_ok[i], "check %zu (%s) failed on allow", i, r->checks[i]);
}

/* ---- the table: every policy x every situation ----------------------------- */

START_TEST(test_table_public)
{
    id_user *u = std_user();
    pol_spec s = spec_of(POL_PUBLIC);
    pol_token_state states[] = {POL_TOKEN_NONE, POL_TOKEN_INVALID, POL_KEYS_UNAVAILABLE,
                                POL_TOKEN_VALID};
    for (size_t i = 0; i < AG_ARRAY_LEN(states); i++) {
        pol_result r = decide(&s, states[i], states[i] == POL_TOKEN_VALID ? u : NULL, "o1");
        /* forwarded, never with identity, even for a valid token */
        expect_allow(&r, false, NULL);
    }
    id_user_unref(u);
}
END_TEST

START_TEST(test_table_optional_user)
{
    id_user *u = std_user();
    pol_spec s = spec_of(POL_OPTIONAL_USER);
    pol_result r = decide(&s, POL_TOKEN_NONE, NULL, NULL);
    expect_allow(&r, false, NULL);
    r = decide(&s, POL_TOKEN_INVALID, NULL, NULL);
    expect_allow(&r, false, NULL);
    r = decide(&s, POL_KEYS_UNAVAILABLE, NULL, NULL);
    expect_allow(&r, false, NULL);
    r = decide(&s, POL_TOKEN_VALID, u, NULL);
    expect_allow(&r, true, NULL);
    /* an org id in the request changes nothing: no X-Org on optional routes */
    r = decide(&s, POL_TOKEN_VALID, u, "o1");
    expect_allow(&r, true, NULL);
    id_user_unref(u);
}
END_TEST

START_TEST(test_table_require_user)
{
    id_user *u = std_user();
    pol_spec s = spec_of(POL_REQUIRE_USER);
    pol_result r = decide(&s, POL_TOKEN_NONE, NULL, NULL);
    expect_deny(&r, 401, "token_missing");
    r = decide(&s, POL_TOKEN_INVALID, NULL, NULL);
    expect_deny(&r, 401, "token_expired");
    r = decide(&s, POL_KEYS_UNAVAILABLE, NULL, NULL);
    expect_deny(&r, 503, "keys_unavailable");
    r = decide(&s, POL_TOKEN_VALID, u, NULL);
    expect_allow(&r, true, NULL);
    /* an org the user is not in does not matter to require_user */
    r = decide(&s, POL_TOKEN_VALID, u, "nope");
    expect_allow(&r, true, NULL);
    id_user_unref(u);
}
END_TEST

static const char *const fail_reason[POL__COUNT] = {
    [POL_ORG_MIN_ROLE] = "role_below_minimum",
    [POL_ORG_EXACT_ROLE] = "role_mismatch",
    [POL_ORG_PERMISSION] = "missing_permission",
    [POL_ORG_ALL_PERMISSIONS] = "missing_permission",
};

/* Looped over POL_ORG_MEMBER .. POL_ORG_ALL_PERMISSIONS. */
START_TEST(test_table_org_policies)
{
    pol_kind k = (pol_kind)_i;
    id_user *u = std_user();
    const id_org *o1 = id_user_get_org(u, "o1", 2);
    ck_assert_ptr_nonnull(o1);
    pol_spec s = spec_of(k);

    pol_result r = decide(&s, POL_TOKEN_NONE, NULL, "o1");
    expect_deny(&r, 401, "token_missing");
    r = decide(&s, POL_TOKEN_INVALID, NULL, "o1");
    expect_deny(&r, 401, "token_expired");
    r = decide(&s, POL_KEYS_UNAVAILABLE, NULL, "o1");
    expect_deny(&r, 503, "keys_unavailable");
    r = decide(&s, POL_TOKEN_VALID, u, NULL);
    expect_deny(&r, 403, "org_id_missing");
    r = decide(&s, POL_TOKEN_VALID, u, "o2");
    expect_deny(&r, 403, "not_member");
    if (k != POL_ORG_MEMBER) {
        pol_spec f = failing_spec_of(k);
        r = decide(&f, POL_TOKEN_VALID, u, "o1");
        expect_deny(&r, 403, fail_reason[k]);
        /* token, membership and the failed check were all recorded */
        ck_assert_uint_eq(r.nchecks, 3);
        ck_assert(r.check_ok[0] && r.check_ok[1]);
    }
    r = decide(&s, POL_TOKEN_VALID, u, "o1");
    expect_allow(&r, true, o1);
    ck_assert_uint_eq(r.nchecks, k == POL_ORG_MEMBER ? 2 : 3);
    id_user_unref(u);
}
END_TEST

/* ---- check order ------------------------------------------------------------ */

START_TEST(test_order_bad_token_beats_bad_org)
{
    for (int k = POL_REQUIRE_USER; k < POL__COUNT; k++) {
        pol_spec s = failing_spec_of((pol_kind)k);
        /* invalid token with an org the user could not be in anyway: 401, not 403 */
        pol_result r = decide(&s, POL_TOKEN_INVALID, NULL, "not-a-member");
        expect_deny(&r, 401, "token_expired");
        ck_assert_uint_eq(r.nchecks, 1);
        /* no token and no org id: 401, not 403 org_id_missing */
        r = decide(&s, POL_TOKEN_NONE, NULL, NULL);
        expect_deny(&r, 401, "token_missing");
        /* no key and no org: 503 */
        r = decide(&s, POL_KEYS_UNAVAILABLE, NULL, NULL);
        expect_deny(&r, 503, "keys_unavailable");
    }
}
END_TEST

START_TEST(test_order_membership_before_role)
{
    /* not a member and the role would fail too: the answer names membership */
    id_user *u = std_user();
    pol_spec s = failing_spec_of(POL_ORG_MIN_ROLE);
    pol_result r = decide(&s, POL_TOKEN_VALID, u, "o2");
    expect_deny(&r, 403, "not_member");
    ck_assert_uint_eq(r.nchecks, 2);
    id_user_unref(u);
}
END_TEST

START_TEST(test_invalid_without_reason_and_valid_without_user)
{
    pol_spec s = spec_of(POL_REQUIRE_USER);
    pol_input in = {.token = POL_TOKEN_INVALID};
    pol_result r;
    pol_decide(&s, &in, &r);
    expect_deny(&r, 401, "token_invalid");
    /* a VALID state without a user is a caller bug: fail closed */
    in.token = POL_TOKEN_VALID;
    in.user = NULL;
    pol_decide(&s, &in, &r);
    expect_deny(&r, 401, "token_invalid");
    /* the reason given by the verifier is passed through verbatim */
    in.token = POL_TOKEN_INVALID;
    in.token_reason = AR_AUTH_HEADER_DUPLICATE;
    pol_decide(&s, &in, &r);
    expect_deny(&r, 401, "auth_header_duplicate");
}
END_TEST

START_TEST(test_unknown_kind_fails_closed)
{
    id_user *u = std_user();
    pol_spec s = {.kind = POL__COUNT};
    pol_result r = decide(&s, POL_TOKEN_VALID, u, "o1");
    ck_assert_int_eq(r.outcome, POL_DENY);
    ck_assert_int_eq(r.code, AR_POLICY_ERROR);
    ck_assert(!r.inject_user);
    ck_assert_ptr_null(r.org);
    id_user_unref(u);
}
END_TEST

/* ---- org lookup -------------------------------------------------------------- */

START_TEST(test_org_lookup_exact_and_length_delimited)
{
    id_user *u = mk_user(USER(ORG("org-1", "\"Admin\"", "[\"Admin\"]", "[]") "," ORG(
        "__proto__", "\"Member\"", "[\"Member\"]", "[]") "," ORG("dropped", "null", "[]", "[]")));
    pol_spec s = spec_of(POL_ORG_MEMBER);
    pol_result r = decide(&s, POL_TOKEN_VALID, u, "ORG-1");
    expect_deny(&r, 403, "not_member");
    r = decide(&s, POL_TOKEN_VALID, u, "org-");
    expect_deny(&r, 403, "not_member");
    r = decide(&s, POL_TOKEN_VALID, u, "org-12");
    expect_deny(&r, 403, "not_member");
    /* a key like __proto__ is just a string */
    r = decide(&s, POL_TOKEN_VALID, u, "__proto__");
    expect_allow(&r, true, id_user_get_org(u, "__proto__", 9));
    ck_assert_str_eq(id_org_id(r.org), "__proto__");
    r = decide(&s, POL_TOKEN_VALID, u, "constructor");
    expect_deny(&r, 403, "not_member");
    /* user_role null: not a member */
    r = decide(&s, POL_TOKEN_VALID, u, "dropped");
    expect_deny(&r, 403, "not_member");

    /* org_id_len, not the NUL, delimits the id */
    pol_input in = {.token = POL_TOKEN_VALID, .user = u, .org_id = "org-1xyz", .org_id_len = 5};
    pol_decide(&s, &in, &r);
    expect_allow(&r, true, id_user_get_org(u, "org-1", 5));
    in.org_id_len = 8;
    pol_decide(&s, &in, &r);
    expect_deny(&r, 403, "not_member");
    id_user_unref(u);
}
END_TEST

START_TEST(test_user_without_orgs)
{
    /* propelauth: token without orgs on an org route -> 403 */
    id_user *u = mk_user("{\"user_id\":\"u1\",\"exp\":1790001800}");
    for (int k = POL_ORG_MEMBER; k < POL__COUNT; k++) {
        pol_spec s = spec_of((pol_kind)k);
        pol_result r = decide(&s, POL_TOKEN_VALID, u, "o1");
        expect_deny(&r, 403, "not_member");
    }
    id_user_unref(u);
}
END_TEST

/* ---- roles and permissions (semantics section 5) ------------------------------ */

/* 200 when allowed, else the refusal's status. */
static int status_of(const id_user *u, pol_kind k, const char *role, const char *perm,
                     char *const *perms, size_t nperms)
{
    pol_spec s = {.kind = k,
                  .role = ag_unconst(role),
                  .permission = ag_unconst(perm),
                  .permissions = ag_unconst(perms),
                  .npermissions = nperms};
    pol_result r = decide(&s, POL_TOKEN_VALID, u, "o1");
    if (r.outcome == POL_ALLOW) {
        ck_assert(r.inject_user);
        ck_assert_ptr_nonnull(r.org);
        ck_assert_str_eq(id_org_id(r.org), "o1");
        ck_assert_ptr_eq(r.judged, r.org);
        return 200;
    }
    ck_assert_int_eq(reason_status(r.code), 403);
    return 403;
}

START_TEST(test_roles_single_hierarchy)
{
    id_user *owner =
        mk_user(USER(ORG("o1", "\"Owner\"", "[\"Owner\",\"Admin\",\"Member\"]", "[]")));
    id_user *admin = mk_user(USER(ORG("o1", "\"Admin\"", "[\"Admin\",\"Member\"]", "[]")));
    id_user *member = mk_user(USER(ORG("o1", "\"Member\"", "[\"Member\"]", "[]")));

    ck_assert_int_eq(status_of(owner, POL_ORG_MIN_ROLE, "Owner", NULL, NULL, 0), 200);
    ck_assert_int_eq(status_of(owner, POL_ORG_EXACT_ROLE, "Owner", NULL, NULL, 0), 200);
    ck_assert_int_eq(status_of(owner, POL_ORG_MIN_ROLE, "Member", NULL, NULL, 0), 200);
    ck_assert_int_eq(status_of(member, POL_ORG_MIN_ROLE, "Admin", NULL, NULL, 0), 403);
    ck_assert_int_eq(status_of(admin, POL_ORG_MIN_ROLE, "Admin", NULL, NULL, 0), 200);
    ck_assert_int_eq(status_of(admin, POL_ORG_MIN_ROLE, "Member", NULL, NULL, 0), 200);
    ck_assert_int_eq(status_of(admin, POL_ORG_EXACT_ROLE, "Member", NULL, NULL, 0), 403);
    ck_assert_int_eq(status_of(admin, POL_ORG_EXACT_ROLE, "Admin", NULL, NULL, 0), 200);
    ck_assert_int_eq(status_of(admin, POL_ORG_MIN_ROLE, "Owner", NULL, NULL, 0), 403);
    /* exact and case-sensitive */
    ck_assert_int_eq(status_of(admin, POL_ORG_MIN_ROLE, "admin", NULL, NULL, 0), 403);
    ck_assert_int_eq(status_of(admin, POL_ORG_EXACT_ROLE, "ADMIN", NULL, NULL, 0), 403);
    ck_assert_int_eq(status_of(admin, POL_ORG_EXACT_ROLE, "Admin ", NULL, NULL, 0), 403);
    /* unknown role */
    ck_assert_int_eq(status_of(owner, POL_ORG_MIN_ROLE, "Superuser", NULL, NULL, 0), 403);

    /* no local ordering: a hierarchy the token does not state does not exist */
    id_user *odd = mk_user(USER(ORG("o1", "\"Owner\"", "[\"Owner\"]", "[]")));
    ck_assert_int_eq(status_of(odd, POL_ORG_MIN_ROLE, "Member", NULL, NULL, 0), 403);
    ck_assert_int_eq(status_of(odd, POL_ORG_MIN_ROLE, "Owner", NULL, NULL, 0), 200);

    id_user_unref(owner);
    id_user_unref(admin);
    id_user_unref(member);
    id_user_unref(odd);
}
END_TEST

START_TEST(test_roles_multi_role)
{
    /* user_role A, additional B and C; the inherited list is ignored */
    id_user *u = mk_user(USER(
        MULTI_ORG("o1", "\"Role A\"", "[\"Role B\",\"Role C\"]", "[\"Role A\",\"Role Z\"]", "[]")));
    const char *pass[] = {"Role A", "Role B", "Role C"};
    for (size_t i = 0; i < AG_ARRAY_LEN(pass); i++) {
        ck_assert_int_eq(status_of(u, POL_ORG_MIN_ROLE, pass[i], NULL, NULL, 0), 200);
        ck_assert_int_eq(status_of(u, POL_ORG_EXACT_ROLE, pass[i], NULL, NULL, 0), 200);
    }
    const char *fail[] = {"Role Z", "Role D", "role a", "Owner", ""};
    for (size_t i = 0; i < AG_ARRAY_LEN(fail); i++) {
        ck_assert_int_eq(status_of(u, POL_ORG_MIN_ROLE, fail[i], NULL, NULL, 0), 403);
        ck_assert_int_eq(status_of(u, POL_ORG_EXACT_ROLE, fail[i], NULL, NULL, 0), 403);
    }
    id_user_unref(u);

    /* a single-role org whose token happens to carry additional_roles: they do
     * not count */
    id_user *s = mk_user(USER(
        "\"o1\":{\"org_id\":\"o1\",\"org_name\":\"O\",\"url_safe_org_name\":\"o\","
        "\"org_metadata\":{},\"user_role\":\"Member\","
        "\"inherited_user_roles_plus_current_role\":[\"Member\"],\"user_permissions\":[],"
        "\"org_role_structure\":\"single_role_in_hierarchy\",\"additional_roles\":[\"Admin\"]}"));
    ck_assert_int_eq(status_of(s, POL_ORG_EXACT_ROLE, "Admin", NULL, NULL, 0), 403);
    ck_assert_int_eq(status_of(s, POL_ORG_MIN_ROLE, "Admin", NULL, NULL, 0), 403);
    ck_assert_int_eq(status_of(s, POL_ORG_EXACT_ROLE, "Member", NULL, NULL, 0), 200);
    id_user_unref(s);
}
END_TEST

START_TEST(test_permissions)
{
    id_user *u = std_user(); /* A, B, C */
    ck_assert_int_eq(status_of(u, POL_ORG_PERMISSION, NULL, "A", NULL, 0), 200);
    ck_assert_int_eq(status_of(u, POL_ORG_PERMISSION, NULL, "D", NULL, 0), 403);
    ck_assert_int_eq(status_of(u, POL_ORG_PERMISSION, NULL, "a", NULL, 0), 403);
    /* a role name is not a permission */
    ck_assert_int_eq(status_of(u, POL_ORG_PERMISSION, NULL, "Admin", NULL, 0), 403);

    char *const ac[] = {"A", "C"};
    char *const abc[] = {"C", "B", "A"};
    char *const ad[] = {"A", "D"};
    char *const d[] = {"D"};
    ck_assert_int_eq(status_of(u, POL_ORG_ALL_PERMISSIONS, NULL, NULL, ac, 2), 200);
    ck_assert_int_eq(status_of(u, POL_ORG_ALL_PERMISSIONS, NULL, NULL, abc, 3), 200);
    ck_assert_int_eq(status_of(u, POL_ORG_ALL_PERMISSIONS, NULL, NULL, ad, 2), 403);
    ck_assert_int_eq(status_of(u, POL_ORG_ALL_PERMISSIONS, NULL, NULL, d, 1), 403);
    /* empty list: allowed (still requires membership) */
    ck_assert_int_eq(status_of(u, POL_ORG_ALL_PERMISSIONS, NULL, NULL, NULL, 0), 200);
    pol_spec s = {.kind = POL_ORG_ALL_PERMISSIONS};
    pol_result r = decide(&s, POL_TOKEN_VALID, u, "o9");
    expect_deny(&r, 403, "not_member");
    id_user_unref(u);

    /* [A, B] holding only [A] -> 403 */
    id_user *only_a = mk_user(USER(ORG("o1", "\"Member\"", "[\"Member\"]", "[\"A\"]")));
    char *const ab[] = {"A", "B"};
    ck_assert_int_eq(status_of(only_a, POL_ORG_ALL_PERMISSIONS, NULL, NULL, ab, 2), 403);
    ck_assert_int_eq(status_of(only_a, POL_ORG_ALL_PERMISSIONS, NULL, NULL, ab, 1), 200);
    id_user_unref(only_a);
}
END_TEST

START_TEST(test_org_from_several)
{
    /* the org handed back is the one requested, not the first in the token */
    id_user *u = mk_user(USER(ORG("o1", "\"Member\"", "[\"Member\"]", "[]") "," ORG(
        "o2", "\"Owner\"", "[\"Owner\",\"Member\"]", "[\"P\"]")));
    pol_spec s = {.kind = POL_ORG_MIN_ROLE, .role = "Owner"};
    pol_result r = decide(&s, POL_TOKEN_VALID, u, "o2");
    expect_allow(&r, true, id_user_get_org(u, "o2", 2));
    ck_assert_str_eq(id_org_id(r.org), "o2");
    r = decide(&s, POL_TOKEN_VALID, u, "o1");
    expect_deny(&r, 403, "role_below_minimum");
    s = (pol_spec){.kind = POL_ORG_PERMISSION, .permission = "P"};
    r = decide(&s, POL_TOKEN_VALID, u, "o1");
    expect_deny(&r, 403, "missing_permission");
    r = decide(&s, POL_TOKEN_VALID, u, "o2");
    expect_allow(&r, true, id_user_get_org(u, "o2", 2));
    id_user_unref(u);
}
END_TEST

/* ---- names and helpers ---------------------------------------------------------- */

START_TEST(test_kind_names_round_trip)
{
    static const char *const names[POL__COUNT] = {
        "public",
        "optional_user",
        "require_user",
        "require_org_member",
        "require_org_member_with_minimum_role",
        "require_org_member_with_exact_role",
        "require_org_member_with_permission",
        "require_org_member_with_all_permissions",
    };
    for (int k = 0; k < POL__COUNT; k++) {
        ck_assert_str_eq(pol_kind_name((pol_kind)k), names[k]);
        pol_kind out = POL__COUNT;
        ck_assert_int_eq(pol_kind_from_name(names[k], &out), 0);
        ck_assert_int_eq(out, k);
    }
    const char *bad[] = {"",
                         "Public",
                         "PUBLIC",
                         "public ",
                         " public",
                         "require_org",
                         "require_org_member_with_minimum_role_x",
                         "unknown",
                         "optional-user"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        pol_kind out = POL_REQUIRE_USER;
        ck_assert_msg(pol_kind_from_name(bad[i], &out) == -1, "accepted '%s'", bad[i]);
        ck_assert_int_eq(out, POL_REQUIRE_USER); /* untouched on failure */
    }
    ck_assert_str_eq(pol_kind_name(POL__COUNT), "unknown");
    ck_assert_str_eq(pol_kind_name((pol_kind)-1), "unknown");
}
END_TEST

START_TEST(test_needs_token_and_org)
{
    ck_assert(!pol_needs_token(POL_PUBLIC));
    ck_assert(!pol_needs_token(POL_OPTIONAL_USER));
    ck_assert(pol_needs_token(POL_REQUIRE_USER));
    ck_assert(!pol_needs_org(POL_PUBLIC));
    ck_assert(!pol_needs_org(POL_OPTIONAL_USER));
    ck_assert(!pol_needs_org(POL_REQUIRE_USER));
    for (int k = POL_ORG_MEMBER; k < POL__COUNT; k++) {
        ck_assert(pol_needs_token((pol_kind)k));
        ck_assert(pol_needs_org((pol_kind)k));
    }
    ck_assert(!pol_needs_org(POL__COUNT));
}
END_TEST

START_TEST(test_spec_free)
{
    pol_spec s = {.kind = POL_ORG_ALL_PERMISSIONS};
    s.role = ag_strdup("Admin");
    s.permission = ag_strdup("p");
    s.permissions = calloc(3, sizeof(char *));
    ck_assert_ptr_nonnull(s.permissions);
    for (int i = 0; i < 3; i++)
        s.permissions[i] = ag_strdup("x");
    s.npermissions = 3;
    pol_spec_free(&s); /* ASan reports any leak */
    ck_assert_ptr_null(s.role);
    ck_assert_ptr_null(s.permission);
    ck_assert_ptr_null(s.permissions);
    ck_assert_uint_eq(s.npermissions, 0);
    ck_assert_int_eq(s.kind, POL_PUBLIC);
    pol_spec_free(&s); /* freeing a cleared spec is harmless */
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("policy");
    tcase_add_test(tc, test_table_public);
    tcase_add_test(tc, test_table_optional_user);
    tcase_add_test(tc, test_table_require_user);
    tcase_add_loop_test(tc, test_table_org_policies, POL_ORG_MEMBER, POL__COUNT);
    tcase_add_test(tc, test_order_bad_token_beats_bad_org);
    tcase_add_test(tc, test_order_membership_before_role);
    tcase_add_test(tc, test_invalid_without_reason_and_valid_without_user);
    tcase_add_test(tc, test_unknown_kind_fails_closed);
    tcase_add_test(tc, test_org_lookup_exact_and_length_delimited);
    tcase_add_test(tc, test_user_without_orgs);
    tcase_add_test(tc, test_roles_single_hierarchy);
    tcase_add_test(tc, test_roles_multi_role);
    tcase_add_test(tc, test_permissions);
    tcase_add_test(tc, test_org_from_several);
    tcase_add_test(tc, test_kind_names_round_trip);
    tcase_add_test(tc, test_needs_token_and_org);
    tcase_add_test(tc, test_spec_free);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
