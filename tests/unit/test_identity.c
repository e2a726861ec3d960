/* Unit tests for src/identity.c: user from claims (docs/semantics.md 2),
 * role and permission logic (3), X-User / X-Org (4); the library test cases of
 * docs/compatibility.md that are about claims, roles and serialization;
 * docs/security.md A18, E48, E49, F56. */
#include "testutil.h"

#include "fixtures/tokhelp.h"
#include "identity.h"
#include "jnum.h"
#include "util.h"

static id_user *user_ok(const char *json)
{
    json_error_t e;
    json_t *c = json_loads(json, 0, &e);
    ck_assert_msg(c != NULL, "bad JSON in test: %s", e.text);
    id_user *u = NULL;
    ag_reason reason = AR_INTERNAL;
    int rc = id_user_from_claims(c, &u, &reason);
    ck_assert_msg(rc == 0, "rejected: %s", json);
    ck_assert_ptr_nonnull(u);
    ck_assert_int_eq(reason, AR_OK);
    json_decref(c);
    return u;
}

static void user_bad(const char *json)
{
    json_error_t e;
    json_t *c = json_loads(json, 0, &e);
    ck_assert_msg(c != NULL, "bad JSON in test: %s", e.text);
    id_user *u = (id_user *)0x1;
    ag_reason reason = AR_INTERNAL;
    ck_assert_msg(id_user_from_claims(c, &u, &reason) == -1, "accepted: %s", json);
    ck_assert_ptr_null(u);
    ck_assert_str_eq(reason_name(reason), "token_claims");
    json_decref(c);
}

/* Every header byte is printable ASCII: no CR, LF, NUL, other controls, DEL or
 * bytes >= 0x80. */
static void assert_header_safe(const char *h)
{
    ck_assert_ptr_nonnull(h);
    for (const unsigned char *p = (const unsigned char *)h; *p; p++)
        ck_assert_msg(*p >= 0x20 && *p < 0x7F, "byte 0x%02x in header", *p);
}

#define ORG(id, role, inh, perms)                                                                  \
    "\"" id "\":{\"org_id\":\"" id "\",\"org_name\":\"Org " id                                     \
    "\",\"url_safe_org_name\":\"org-" id "\",\"org_metadata\":{},\"user_role\":" role              \
    ",\"inherited_user_roles_plus_current_role\":" inh ",\"user_permissions\":" perms "}"

#define BASE "\"user_id\":\"u1\",\"exp\":1790001800"

START_TEST(test_py_only_user_id_orgs_null)
{
    /* propelauth-py test_require_user 2: only user_id -> orgs None */
    id_user *u = user_ok("{" BASE "}");
    ck_assert_str_eq(id_user_id(u), "u1");
    ck_assert_ptr_null(id_user_email(u));
    ck_assert_ptr_null(id_user_active_org_id(u));
    ck_assert_int_eq(id_user_exp(u), 1790001800);
    ck_assert_uint_eq(id_user_org_count(u), 0);
    ck_assert_ptr_null(id_user_get_org(u, "o1", 2));
    ck_assert_str_eq(id_user_header(u, ID_ORGS_ALL, NULL, NULL),
                     "{\"user_id\":\"u1\",\"org_id_to_org_member_info\":null,\"email\":null,"
                     "\"login_method\":{\"login_method\":\"unknown\"},\"first_name\":null,"
                     "\"last_name\":null,\"username\":null,\"properties\":null,"
                     "\"legacy_user_id\":null,\"impersonator_user_id\":null,"
                     "\"active_org_id\":null}");
    id_user_unref(u);
    /* explicit null map: same */
    u = user_ok("{" BASE ",\"org_id_to_org_member_info\":null}");
    ck_assert_ptr_nonnull(
        strstr(id_user_header(u, ID_ORGS_ALL, NULL, NULL), "\"org_id_to_org_member_info\":null,"));
    id_user_unref(u);
    /* empty map: an empty object, not null */
    u = user_ok("{" BASE ",\"org_id_to_org_member_info\":{}}");
    ck_assert_ptr_nonnull(
        strstr(id_user_header(u, ID_ORGS_ALL, NULL, NULL), "\"org_id_to_org_member_info\":{},"));
    id_user_unref(u);
}
END_TEST

static const char realistic[] =
    "{\"user_id\":\"31c41c16-c281-44ae-9602-8a047e3bf33d\",\"email\":\"alice@example.com\","
    "\"first_name\":\"Alice\",\"last_name\":\"Ng\",\"username\":null,"
    "\"properties\":{\"tier\":\"gold\"},"
    "\"org_id_to_org_member_info\":{\"1189c444-8a2d-4c41-8b4b-ae43ce79a492\":{"
    "\"org_id\":\"1189c444-8a2d-4c41-8b4b-ae43ce79a492\",\"org_name\":\"Acme Inc\","
    "\"url_safe_org_name\":\"acme-inc\",\"org_metadata\":{\"plan\":\"pro\"},\"user_role\":"
    "\"Admin\","
    "\"inherited_user_roles_plus_current_role\":[\"Admin\",\"Member\"],"
    "\"user_permissions\":[\"can_view_billing\",\"read\"],"
    "\"org_role_structure\":\"single_role_in_hierarchy\",\"additional_roles\":[]}},"
    "\"login_method\":{\"login_method\":\"saml_sso\",\"provider\":\"Okta\","
    "\"org_id\":\"1189c444-8a2d-4c41-8b4b-ae43ce79a492\"},"
    "\"iat\":1790000000,\"exp\":1790001800,\"iss\":\"https://auth.example.com\"}";

#define ACME_XORG                                                                                  \
    "{\"org_id\":\"1189c444-8a2d-4c41-8b4b-ae43ce79a492\",\"org_name\":\"Acme Inc\","              \
    "\"org_metadata\":{\"plan\":\"pro\"},\"user_assigned_role\":\"Admin\","                        \
    "\"user_inherited_roles_plus_current_role\":[\"Admin\",\"Member\"],"                           \
    "\"user_permissions\":[\"can_view_billing\",\"read\"],"                                        \
    "\"org_role_structure\":\"single_role_in_hierarchy\",\"assigned_additional_roles\":[],"        \
    "\"url_safe_org_name\":\"acme-inc\",\"legacy_org_id\":null}"

#define ACME_HEAD                                                                                  \
    "{\"user_id\":\"31c41c16-c281-44ae-9602-8a047e3bf33d\",\"org_id_to_org_member_info\":"
#define ACME_TAIL                                                                                  \
    ",\"email\":\"alice@example.com\",\"login_method\":{\"login_method\":\"saml_sso\","            \
    "\"provider\":\"Okta\",\"org_id\":\"1189c444-8a2d-4c41-8b4b-ae43ce79a492\"},"                  \
    "\"first_name\":\"Alice\",\"last_name\":\"Ng\",\"username\":null,"                             \
    "\"properties\":{\"tier\":\"gold\"},\"legacy_user_id\":null,\"impersonator_user_id\":null,"    \
    "\"active_org_id\":null}"

START_TEST(test_realistic_example_headers)
{
    id_user *u = user_ok(realistic);
    ck_assert_str_eq(id_user_email(u), "alice@example.com");
    ck_assert_uint_eq(id_user_org_count(u), 1);
    const char *key = "1189c444-8a2d-4c41-8b4b-ae43ce79a492";
    const id_org *o = id_user_get_org(u, key, strlen(key));
    ck_assert_ptr_nonnull(o);
    ck_assert_ptr_eq(o, id_user_org_at(u, 0));
    ck_assert_str_eq(id_org_id(o), key);
    ck_assert_str_eq(id_org_name(o), "Acme Inc");
    ck_assert_str_eq(id_org_role(o), "Admin");
    ck_assert(!id_org_is_multi_role(o));
    ck_assert_str_eq(id_org_header(o), ACME_XORG);
    ck_assert_str_eq(id_user_header(u, ID_ORGS_ALL, NULL, NULL), ACME_HEAD
                     "{\"1189c444-8a2d-4c41-8b4b-ae43ce79a492\":" ACME_XORG "}" ACME_TAIL);
    ag_buf scratch;
    ag_buf_init(&scratch);
    ck_assert_str_eq(id_user_header(u, ID_ORGS_NONE, NULL, &scratch), ACME_HEAD "null" ACME_TAIL);
    ck_assert_str_eq(id_user_header(u, ID_ORGS_REQUESTED, NULL, &scratch),
                     ACME_HEAD "{}" ACME_TAIL);
    ck_assert_str_eq(id_user_header(u, ID_ORGS_REQUESTED, o, &scratch), ACME_HEAD
                     "{\"1189c444-8a2d-4c41-8b4b-ae43ce79a492\":" ACME_XORG "}" ACME_TAIL);
    ck_assert_ptr_null(id_user_header(u, ID_ORGS_NONE, NULL, NULL));
    /* Headers parse back as JSON with the renamed keys. */
    json_error_t e;
    json_t *x = json_loads(id_org_header(o), JSON_REJECT_DUPLICATES, &e);
    ck_assert_ptr_nonnull(x);
    ck_assert_uint_eq(json_object_size(x), 10);
    ck_assert_ptr_null(json_object_get(x, "user_role"));
    ck_assert_str_eq(json_string_value(json_object_get(x, "user_assigned_role")), "Admin");
    json_decref(x);
    x = json_loads(id_user_header(u, ID_ORGS_ALL, NULL, NULL), JSON_REJECT_DUPLICATES, &e);
    ck_assert_ptr_nonnull(x);
    ck_assert_uint_eq(json_object_size(x), 11);
    json_decref(x);
    ag_buf_free(&scratch);
    id_user_unref(u);
}
END_TEST

/* propelauth-py test_user_conversion: three single-role orgs with SAML login
 * and legacy_org_id; multi-role orgs; active org; password login. */
START_TEST(test_py_conversion_single_role_orgs)
{
    id_user *u = user_ok(
        "{" BASE ",\"email\":\"e@x.com\",\"legacy_user_id\":\"L1\","
        "\"login_method\":{\"login_method\":\"saml_sso\",\"provider\":\"Okta\",\"org_id\":\"o1\"},"
        "\"org_id_to_org_member_info\":{"
        "\"o1\":{\"org_id\":\"o1\",\"org_name\":\"one\",\"url_safe_org_name\":\"one\","
        "\"org_metadata\":{\"a\":1},\"user_role\":\"Owner\","
        "\"inherited_user_roles_plus_current_role\":[\"Owner\",\"Admin\",\"Member\"],"
        "\"user_permissions\":[\"p1\",\"p2\"],\"legacy_org_id\":\"legacy-1\"},"
        "\"o2\":{\"org_id\":\"o2\",\"org_name\":\"two\",\"url_safe_org_name\":\"two\","
        "\"org_metadata\":{},\"user_role\":\"Admin\","
        "\"inherited_user_roles_plus_current_role\":[\"Admin\",\"Member\"],"
        "\"user_permissions\":[]},"
        "\"o3\":{\"org_id\":\"o3\",\"org_name\":\"three\",\"url_safe_org_name\":\"three\","
        "\"org_metadata\":{},\"user_role\":\"Member\","
        "\"inherited_user_roles_plus_current_role\":[\"Member\"],\"user_permissions\":[\"p3\"]}}}");
    ck_assert_uint_eq(id_user_org_count(u), 3);
    ck_assert_str_eq(id_org_id(id_user_org_at(u, 0)), "o1"); /* token order kept */
    ck_assert_str_eq(id_org_id(id_user_org_at(u, 2)), "o3");
    const id_org *o1 = id_user_get_org(u, "o1", 2);
    ck_assert_ptr_nonnull(strstr(id_org_header(o1), "\"legacy_org_id\":\"legacy-1\"}"));
    ck_assert_ptr_nonnull(strstr(id_org_header(o1),
                                 "\"org_role_structure\":\"single_role_in_hierarchy\","
                                 "\"assigned_additional_roles\":[]"));
    const char *h = id_user_header(u, ID_ORGS_ALL, NULL, NULL);
    ck_assert_ptr_nonnull(strstr(h, "\"legacy_user_id\":\"L1\""));
    ck_assert_ptr_nonnull(strstr(h, "\"login_method\":{\"login_method\":\"saml_sso\","
                                    "\"provider\":\"Okta\",\"org_id\":\"o1\"}"));
    /* org map in token order inside X-User */
    const char *p1 = strstr(h, "\"o1\":{"), *p2 = strstr(h, "\"o2\":{"),
               *p3 = strstr(h, "\"o3\":{");
    ck_assert(p1 && p2 && p3 && p1 < p2 && p2 < p3);
    id_user_unref(u);
}
END_TEST

START_TEST(test_py_conversion_multi_role_orgs)
{
    id_user *u =
        user_ok("{" BASE ",\"org_id_to_org_member_info\":{"
                "\"m1\":{\"org_id\":\"m1\",\"org_name\":\"M1\",\"url_safe_org_name\":\"m1\","
                "\"org_metadata\":{},\"user_role\":\"Admin\","
                "\"inherited_user_roles_plus_current_role\":[\"Admin\"],"
                "\"user_permissions\":[],\"org_role_structure\":\"multi_role\","
                "\"additional_roles\":[\"Billing\",\"Finance\"]},"
                "\"m2\":{\"org_id\":\"m2\",\"org_name\":\"M2\",\"url_safe_org_name\":\"m2\","
                "\"org_metadata\":{},\"user_role\":\"Member\","
                "\"inherited_user_roles_plus_current_role\":[\"Member\"],"
                "\"user_permissions\":[],\"org_role_structure\":\"multi_role\","
                "\"additional_roles\":[\"IT\"]},"
                "\"m3\":{\"org_id\":\"m3\",\"org_name\":\"M3\",\"url_safe_org_name\":\"m3\","
                "\"org_metadata\":{},\"user_role\":\"Member\","
                "\"inherited_user_roles_plus_current_role\":[\"Member\"],"
                "\"user_permissions\":[],\"org_role_structure\":\"multi_role\","
                "\"additional_roles\":[]}}}");
    const id_org *m1 = id_user_get_org(u, "m1", 2);
    ck_assert(id_org_is_multi_role(m1));
    ck_assert(id_org_is_role(m1, "Billing"));
    ck_assert(id_org_is_role(m1, "Finance"));
    ck_assert(id_org_is_role(m1, "Admin"));
    ck_assert(!id_org_is_role(m1, "IT"));
    ck_assert_ptr_nonnull(strstr(id_org_header(m1), "\"org_role_structure\":\"multi_role\","
                                                    "\"assigned_additional_roles\":[\"Billing\","
                                                    "\"Finance\"]"));
    const id_org *m3 = id_user_get_org(u, "m3", 2);
    ck_assert(id_org_is_role(m3, "Member"));
    ck_assert(!id_org_is_role(m3, "IT"));
    id_user_unref(u);
}
END_TEST

START_TEST(test_py_conversion_active_org)
{
    id_user *u = user_ok(
        "{" BASE ",\"login_method\":{\"login_method\":\"social_sso\",\"provider\":\"Google\"},"
        "\"org_id_to_org_member_info\":{" ORG(
            "ignored", "\"Owner\"", "[\"Owner\"]",
            "[]") "},"
                  "\"org_member_info\":{\"org_id\":\"act\",\"org_name\":\"Active\","
                  "\"url_safe_org_name\":\"active\",\"org_metadata\":{},\"user_role\":\"Admin\","
                  "\"inherited_user_roles_plus_current_role\":[\"Admin\",\"Member\"],"
                  "\"user_permissions\":[\"read\"]}}");
    ck_assert_str_eq(id_user_active_org_id(u), "act");
    ck_assert_uint_eq(id_user_org_count(u), 1);
    ck_assert_ptr_nonnull(id_user_get_org(u, "act", 3));
    /* the map is replaced, not merged; another org requested is not found */
    ck_assert_ptr_null(id_user_get_org(u, "ignored", 7));
    const char *h = id_user_header(u, ID_ORGS_ALL, NULL, NULL);
    ck_assert_ptr_nonnull(strstr(h, "\"org_id_to_org_member_info\":{\"act\":{\"org_id\":\"act\""));
    ck_assert_ptr_nonnull(strstr(h, "\"active_org_id\":\"act\"}"));
    ck_assert_ptr_nonnull(
        strstr(h, "\"login_method\":{\"login_method\":\"social_sso\",\"provider\":\"Google\"}"));
    ck_assert_ptr_null(strstr(h, "ignored"));
    id_user_unref(u);

    /* org_member_info that is null or {} (falsy in Python) falls back to the map */
    u = user_ok("{" BASE ",\"org_member_info\":{},\"org_id_to_org_member_info\":{" ORG(
        "o1", "\"Owner\"", "[\"Owner\"]", "[]") "}}");
    ck_assert_ptr_null(id_user_active_org_id(u));
    ck_assert_ptr_nonnull(id_user_get_org(u, "o1", 2));
    id_user_unref(u);
    u = user_ok("{" BASE ",\"org_member_info\":null}");
    ck_assert_ptr_null(id_user_active_org_id(u));
    id_user_unref(u);
    /* a truthy non-object, or an active org without a string org_id */
    user_bad("{" BASE ",\"org_member_info\":\"act\"}");
    user_bad("{" BASE ",\"org_member_info\":{\"org_name\":\"x\"}}");
}
END_TEST

START_TEST(test_py_conversion_password_login_and_passthrough)
{
    id_user *u = user_ok("{" BASE ",\"email\":\"a@b.c\",\"first_name\":\"A\",\"last_name\":\"B\","
                         "\"username\":\"ab\",\"properties\":{\"k\":[1,2.5,true,null]},"
                         "\"impersonator_user_id\":\"imp\","
                         "\"login_method\":{\"login_method\":\"password\"},"
                         "\"metadata\":{\"ignored\":1},\"sub\":\"u1\"}");
    ck_assert_str_eq(id_user_header(u, ID_ORGS_ALL, NULL, NULL),
                     "{\"user_id\":\"u1\",\"org_id_to_org_member_info\":null,\"email\":\"a@b.c\","
                     "\"login_method\":{\"login_method\":\"password\"},\"first_name\":\"A\","
                     "\"last_name\":\"B\",\"username\":\"ab\","
                     "\"properties\":{\"k\":[1,2.5,true,null]},\"legacy_user_id\":null,"
                     "\"impersonator_user_id\":\"imp\",\"active_org_id\":null}");
    id_user_unref(u);
    /* login_method: null -> unknown; an unlisted provider passes unchanged */
    u = user_ok("{" BASE ",\"login_method\":null}");
    ck_assert_ptr_nonnull(strstr(id_user_header(u, ID_ORGS_ALL, NULL, NULL),
                                 "\"login_method\":{\"login_method\":\"unknown\"}"));
    id_user_unref(u);
    u = user_ok("{" BASE
                ",\"login_method\":{\"login_method\":\"social_sso\",\"provider\":\"Apple\"}}");
    ck_assert_ptr_nonnull(strstr(id_user_header(u, ID_ORGS_ALL, NULL, NULL),
                                 "\"login_method\":{\"login_method\":\"social_sso\","
                                 "\"provider\":\"Apple\"}"));
    id_user_unref(u);
    /* a non-string email passes through in X-User but is not an email */
    u = user_ok("{" BASE ",\"email\":42}");
    ck_assert_ptr_null(id_user_email(u));
    ck_assert_ptr_nonnull(strstr(id_user_header(u, ID_ORGS_ALL, NULL, NULL), "\"email\":42,"));
    id_user_unref(u);
}
END_TEST

START_TEST(test_user_required_fields)
{
    user_bad("{\"exp\":1790001800}");
    user_bad("{\"user_id\":5,\"exp\":1790001800}");
    user_bad("{\"user_id\":\"\",\"exp\":1790001800}");
    user_bad("{\"user_id\":\"u1\"}");
    user_bad("{\"user_id\":\"u1\",\"exp\":\"1790001800\"}");
    user_bad("[]");
    id_user *u = NULL;
    ag_reason reason = AR_INTERNAL;
    ck_assert_int_eq(id_user_from_claims(NULL, &u, &reason), -1);
    ck_assert_str_eq(reason_name(reason), "token_claims");
    /* exp as a real is truncated */
    u = user_ok("{\"user_id\":\"u1\",\"exp\":1790001800.75}");
    ck_assert_int_eq(id_user_exp(u), 1790001800);
    id_user_unref(u);
}
END_TEST

/* ---- roles and permissions (docs/semantics.md section 3) */

static id_user *one_org(const char *role, const char *inh, const char *perms, const char *extra)
{
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "{" BASE ",\"org_id_to_org_member_info\":{\"o1\":{\"org_id\":\"o1\","
             "\"org_name\":\"O\",\"url_safe_org_name\":\"o\",\"org_metadata\":{},"
             "\"user_role\":%s,\"inherited_user_roles_plus_current_role\":%s,"
             "\"user_permissions\":%s%s}}}",
             role, inh, perms, extra);
    return user_ok(buf);
}

START_TEST(test_py_auth_fns_admin)
{
    id_user *u = one_org("\"Admin\"", "[\"Admin\",\"Member\"]", "[\"read\",\"write\"]", "");
    const id_org *o = id_user_get_org(u, "o1", 2);
    ck_assert(id_org_is_at_least_role(o, "Admin"));
    ck_assert(id_org_is_at_least_role(o, "Member"));
    ck_assert(!id_org_is_at_least_role(o, "Owner"));
    ck_assert(id_org_is_role(o, "Admin"));
    ck_assert(!id_org_is_role(o, "Member"));
    ck_assert(!id_org_is_role(o, "other"));
    ck_assert(id_org_has_permission(o, "read"));
    ck_assert(id_org_has_permission(o, "write"));
    ck_assert(!id_org_has_permission(o, "delete"));
    char *rw[] = {"read", "write"}, *rwd[] = {"read", "write", "delete"}, *d[] = {"delete"};
    ck_assert(id_org_has_all_permissions(o, rw, 2));
    ck_assert(id_org_has_all_permissions(o, rw, 1));
    ck_assert(!id_org_has_all_permissions(o, rwd, 3));
    ck_assert(!id_org_has_all_permissions(o, d, 1));
    ck_assert(id_org_has_all_permissions(o, NULL, 0)); /* empty list: any member */
    ck_assert(!id_org_is_at_least_role(o, "js problems"));
    id_user_unref(u);
}
END_TEST

START_TEST(test_fastapi_org_matrix)
{
    id_user *u = one_org("\"Owner\"", "[\"Owner\"]", "[\"permA\",\"permB\",\"permC\"]", "");
    const id_org *o = id_user_get_org(u, "o1", 2);
    ck_assert(id_org_is_at_least_role(o, "Owner"));
    ck_assert(id_org_is_role(o, "Owner"));
    ck_assert_ptr_null(id_user_get_org(u, "o2", 2)); /* wrong org id */
    char *ac[] = {"permA", "permC"};
    ck_assert(id_org_has_all_permissions(o, ac, 2));
    id_user_unref(u);
    u = one_org("\"Member\"", "[\"Member\"]", "[\"permA\"]", "");
    o = id_user_get_org(u, "o1", 2);
    ck_assert(!id_org_is_at_least_role(o, "Admin"));
    ck_assert(id_org_has_permission(o, "permA"));
    ck_assert(!id_org_has_permission(o, "permB"));
    char *ab[] = {"permA", "permB"};
    ck_assert(!id_org_has_all_permissions(o, ab, 2));
    id_user_unref(u);
    /* NULL org (not a member) fails everything */
    ck_assert(!id_org_is_role(NULL, "Owner"));
    ck_assert(!id_org_is_at_least_role(NULL, "Owner"));
    ck_assert(!id_org_has_permission(NULL, "p"));
    ck_assert(!id_org_has_all_permissions(NULL, NULL, 0));
}
END_TEST

START_TEST(test_multi_role_org)
{
    /* The inherited list is ignored in multi-role orgs, whatever it says. */
    id_user *u = one_org("\"Role A\"", "[\"Role A\",\"Owner\",\"Role D\"]", "[]",
                         ",\"org_role_structure\":\"multi_role\","
                         "\"additional_roles\":[\"Role B\",\"Role C\"]");
    const id_org *o = id_user_get_org(u, "o1", 2);
    ck_assert(id_org_is_multi_role(o));
    static const char *const yes[] = {"Role A", "Role B", "Role C"};
    static const char *const no[] = {"Owner", "Role D", "role a", "Role", "Role B ", ""};
    for (size_t i = 0; i < AG_ARRAY_LEN(yes); i++) {
        ck_assert(id_org_is_role(o, yes[i]));
        ck_assert(id_org_is_at_least_role(o, yes[i]));
    }
    for (size_t i = 0; i < AG_ARRAY_LEN(no); i++) {
        ck_assert_msg(!id_org_is_role(o, no[i]), "%s", no[i]);
        ck_assert_msg(!id_org_is_at_least_role(o, no[i]), "%s", no[i]);
    }
    id_user_unref(u);
    /* Single-role: additional_roles never count; other structures are single. */
    u = one_org("\"Member\"", "[\"Member\"]", "[]",
                ",\"org_role_structure\":\"Multi_Role\",\"additional_roles\":[\"Admin\"]");
    o = id_user_get_org(u, "o1", 2);
    ck_assert(!id_org_is_multi_role(o));
    ck_assert(!id_org_is_role(o, "Admin"));
    ck_assert(!id_org_is_at_least_role(o, "Admin"));
    id_user_unref(u);
}
END_TEST

START_TEST(test_E48_exact_roles_and_permissions)
{
    static const char *const roles[] = {"\"admin\"", "\"Admin \"", "\"ADMIN\""};
    for (size_t i = 0; i < AG_ARRAY_LEN(roles); i++) {
        char inh[64];
        snprintf(inh, sizeof(inh), "[%s]", roles[i]);
        id_user *u = one_org(roles[i], inh, "[]", "");
        const id_org *o = id_user_get_org(u, "o1", 2);
        ck_assert(!id_org_is_role(o, "Admin"));
        ck_assert(!id_org_is_at_least_role(o, "Admin"));
        id_user_unref(u);
    }
    static const char *const perms[] = {"[\"can_view_billing \"]", "[\"CAN_VIEW_BILLING\"]",
                                        "[\"can_view_billing_x\"]", "[\"can_view\"]"};
    for (size_t i = 0; i < AG_ARRAY_LEN(perms); i++) {
        id_user *u = one_org("\"Admin\"", "[\"Admin\"]", perms[i], "");
        ck_assert(!id_org_has_permission(id_user_get_org(u, "o1", 2), "can_view_billing"));
        id_user_unref(u);
    }
    /* multi_role with the wanted role only in the inherited list */
    id_user *u = one_org("\"Member\"", "[\"Member\",\"Admin\"]", "[]",
                         ",\"org_role_structure\":\"multi_role\"");
    ck_assert(!id_org_is_at_least_role(id_user_get_org(u, "o1", 2), "Admin"));
    id_user_unref(u);
}
END_TEST

/* ---- E49: membership */
START_TEST(test_E49_user_role_null_dropped)
{
    id_user *u = user_ok("{" BASE ",\"org_id_to_org_member_info\":{" ORG(
        "gone", "null", "[]", "[]") "," ORG("kept", "\"Member\"", "[\"Member\"]", "[]") "}}");
    ck_assert_uint_eq(id_user_org_count(u), 1);
    ck_assert_ptr_null(id_user_get_org(u, "gone", 4));
    ck_assert_ptr_nonnull(id_user_get_org(u, "kept", 4));
    const char *h = id_user_header(u, ID_ORGS_ALL, NULL, NULL);
    ck_assert_ptr_null(strstr(h, "gone"));
    id_user_unref(u);
    /* only a dropped entry: an empty map, not null */
    u = user_ok("{" BASE ",\"org_id_to_org_member_info\":{" ORG("gone", "null", "[]", "[]") "}}");
    ck_assert_uint_eq(id_user_org_count(u), 0);
    ck_assert_ptr_nonnull(
        strstr(id_user_header(u, ID_ORGS_ALL, NULL, NULL), "\"org_id_to_org_member_info\":{},"));
    id_user_unref(u);
}
END_TEST

/* ---- A18: good signature, malformed org claims */
START_TEST(test_A18_malformed_org_claims)
{
    user_bad("{" BASE ",\"org_id_to_org_member_info\":[]}");
    user_bad("{" BASE ",\"org_id_to_org_member_info\":\"o1\"}");
    user_bad("{" BASE ",\"org_id_to_org_member_info\":{\"B\":\"Admin\"}}");
    /* inner org_id differs from its key */
    user_bad("{" BASE ",\"org_id_to_org_member_info\":{\"B\":{\"org_id\":\"X\",\"org_name\":\"n\","
             "\"url_safe_org_name\":\"n\",\"org_metadata\":{},\"user_role\":\"Admin\","
             "\"inherited_user_roles_plus_current_role\":[\"Admin\"],\"user_permissions\":[]}}}");
    /* ...also when the role is null (the key check comes first) */
    user_bad("{" BASE ",\"org_id_to_org_member_info\":{\"B\":{\"org_id\":\"X\",\"org_name\":\"n\","
             "\"url_safe_org_name\":\"n\",\"org_metadata\":{},\"user_role\":null,"
             "\"inherited_user_roles_plus_current_role\":[],\"user_permissions\":[]}}}");
    /* each required key missing in turn */
    static const char *const keys[] = {
        "org_id",          "org_name",  "url_safe_org_name",
        "org_metadata",    "user_role", "inherited_user_roles_plus_current_role",
        "user_permissions"};
    for (size_t i = 0; i < AG_ARRAY_LEN(keys); i++) {
        json_t *c = th_json("{" BASE ",\"org_id_to_org_member_info\":{" ORG(
            "o1", "\"Admin\"", "[\"Admin\"]", "[\"p\"]") "}}");
        json_t *e = json_object_get(json_object_get(c, "org_id_to_org_member_info"), "o1");
        ck_assert_int_eq(json_object_del(e, keys[i]), 0);
        id_user *u = NULL;
        ag_reason reason = AR_INTERNAL;
        ck_assert_msg(id_user_from_claims(c, &u, &reason) == -1, "missing %s accepted", keys[i]);
        ck_assert_str_eq(reason_name(reason), "token_claims");
        json_decref(c);
    }
    /* wrong types: never a substring match against a string "list" */
    user_bad("{" BASE ",\"org_id_to_org_member_info\":{" ORG("o1", "\"Admin\"", "[\"Admin\"]",
                                                             "\"can_view_billing\"") "}}");
    user_bad("{" BASE ",\"org_id_to_org_member_info\":{" ORG("o1", "\"Admin\"", "\"Admin,Member\"",
                                                             "[]") "}}");
    user_bad("{" BASE
             ",\"org_id_to_org_member_info\":{" ORG("o1", "\"Admin\"", "[\"Admin\",1]", "[]") "}}");
    user_bad("{" BASE ",\"org_id_to_org_member_info\":{" ORG("o1", "7", "[\"Admin\"]", "[]") "}}");
    user_bad("{" BASE
             ",\"org_id_to_org_member_info\":{" ORG("o1", "[\"Admin\"]", "[\"Admin\"]", "[]") "}}");
    id_user *u = one_org("\"Admin\"", "[\"Admin\"]", "[]", "");
    id_user_unref(u);
    static const char *const extras[] = {
        ",\"additional_roles\":\"Billing\"",
        ",\"additional_roles\":[1]",
        ",\"org_role_structure\":1",
        ",\"legacy_org_id\":{}",
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(extras); i++) {
        char buf[1024];
        snprintf(buf, sizeof(buf),
                 "{" BASE ",\"org_id_to_org_member_info\":{\"o1\":{\"org_id\":\"o1\","
                 "\"org_name\":\"O\",\"url_safe_org_name\":\"o\",\"org_metadata\":{},"
                 "\"user_role\":\"Admin\",\"inherited_user_roles_plus_current_role\":[\"Admin\"],"
                 "\"user_permissions\":[]%s}}}",
                 extras[i]);
        user_bad(buf);
    }
    user_bad("{" BASE ",\"org_id_to_org_member_info\":{\"o1\":{\"org_id\":\"o1\","
             "\"org_name\":5,\"url_safe_org_name\":\"o\",\"org_metadata\":{},"
             "\"user_role\":\"Admin\",\"inherited_user_roles_plus_current_role\":[],"
             "\"user_permissions\":[]}}}");
    user_bad("{" BASE ",\"org_id_to_org_member_info\":{\"o1\":{\"org_id\":\"o1\","
             "\"org_name\":\"O\",\"url_safe_org_name\":\"o\",\"org_metadata\":\"m\","
             "\"user_role\":\"Admin\",\"inherited_user_roles_plus_current_role\":[],"
             "\"user_permissions\":[]}}}");
    /* defaults: null additional_roles / structure / legacy id are accepted */
    u = one_org("\"Admin\"", "[\"Admin\"]", "[]",
                ",\"additional_roles\":null,\"org_role_structure\":null,\"legacy_org_id\":null");
    ck_assert_ptr_nonnull(strstr(id_org_header(id_user_get_org(u, "o1", 2)),
                                 "\"org_role_structure\":\"single_role_in_hierarchy\","
                                 "\"assigned_additional_roles\":[]"));
    id_user_unref(u);
}
END_TEST

/* ---- lookup: exact bytes, length-delimited, __proto__ is just a string */
START_TEST(test_E49_lookup_exact_and_proto_keys)
{
    id_user *u = user_ok("{" BASE ",\"org_id_to_org_member_info\":{" ORG(
        "__proto__", "\"Admin\"", "[\"Admin\"]",
        "[]") "," ORG("constructor", "\"Member\"", "[\"Member\"]",
                      "[]") "," ORG("o1", "\"Owner\"", "[\"Owner\"]", "[]") "}}");
    ck_assert_str_eq(id_org_role(id_user_get_org(u, "__proto__", 9)), "Admin");
    ck_assert_str_eq(id_org_role(id_user_get_org(u, "constructor", 11)), "Member");
    ck_assert_ptr_null(id_user_get_org(u, "toString", 8));
    ck_assert_ptr_null(id_user_get_org(u, "O1", 2));
    ck_assert_ptr_null(id_user_get_org(u, "o", 1));
    ck_assert_ptr_null(id_user_get_org(u, "o1 ", 3));
    ck_assert_ptr_null(id_user_get_org(u, "o1\0x", 4));
    ck_assert_ptr_nonnull(id_user_get_org(u, "o1xyz", 2)); /* length delimits */
    ck_assert_ptr_null(id_user_get_org(u, "", 0));
    ck_assert_ptr_null(id_user_get_org(u, NULL, 0));
    id_user_unref(u);
    u = user_ok("{" BASE "}");
    ck_assert_ptr_null(id_user_get_org(u, "__proto__", 9));
    id_user_unref(u);
}
END_TEST

START_TEST(test_many_orgs_lookup)
{
    /* 120 orgs, inserted in an order unrelated to their sort order. */
    ag_buf b;
    ag_buf_init(&b);
    ck_assert_int_eq(ag_buf_puts(&b, "{" BASE ",\"org_id_to_org_member_info\":{"), 0);
    for (int i = 0; i < 120; i++) {
        int k = (i * 37) % 120;
        ck_assert_int_eq(
            ag_buf_printf(&b,
                          "%s\"org-%d\":{\"org_id\":\"org-%d\",\"org_name\":\"N%d\","
                          "\"url_safe_org_name\":\"n%d\",\"org_metadata\":{\"i\":%d},"
                          "\"user_role\":\"R%d\",\"inherited_user_roles_plus_current_role\":"
                          "[\"R%d\"],\"user_permissions\":[\"p%d\"]}",
                          i ? "," : "", k, k, k, k, k, k, k, k),
            0);
    }
    ck_assert_int_eq(ag_buf_puts(&b, "}}"), 0);
    id_user *u = user_ok(b.p);
    ck_assert_uint_eq(id_user_org_count(u), 120);
    for (int k = 0; k < 120; k++) {
        char id[32], role[32], perm[32];
        snprintf(id, sizeof(id), "org-%d", k);
        snprintf(role, sizeof(role), "R%d", k);
        snprintf(perm, sizeof(perm), "p%d", k);
        const id_org *o = id_user_get_org(u, id, strlen(id));
        ck_assert_msg(o != NULL, "%s", id);
        ck_assert_str_eq(id_org_id(o), id);
        ck_assert(id_org_is_role(o, role));
        ck_assert(id_org_has_permission(o, perm));
    }
    ck_assert_ptr_null(id_user_get_org(u, "org-120", 7));
    ck_assert_str_eq(id_org_id(id_user_org_at(u, 1)), "org-37");
    ck_assert_ptr_null(id_user_org_at(u, 120));
    json_error_t e;
    json_t *x = json_loads(id_user_header(u, ID_ORGS_ALL, NULL, NULL), JSON_REJECT_DUPLICATES, &e);
    ck_assert_ptr_nonnull(x);
    ck_assert_uint_eq(json_object_size(json_object_get(x, "org_id_to_org_member_info")), 120);
    json_decref(x);
    id_user_unref(u);
    ag_buf_free(&b);
}
END_TEST

/* ---- F56: escaping */
START_TEST(test_F56_non_ascii_and_hostile_strings)
{
    /* Raw UTF-8 plus every troublesome escape, in names, email, metadata keys
     * and values, properties and the org key itself. */
    const char *claims =
        "{" BASE ",\"email\":\"a\\r\\nX-Evil: 1@x.com\",\"first_name\":\"Ünïcödé 🎉\","
        "\"last_name\":\"</script>\\\"\\\\\\t\\u0001\\u007f\\u2028\","
        "\"properties\":{\"k\\r\\n\":\"v\\n\\r\",\"é\":\"日本\"},"
        "\"org_id_to_org_member_info\":{\"ö\\n1\":{\"org_id\":\"ö\\n1\","
        "\"org_name\":\"Acme\\r\\nSet-Cookie: x\",\"url_safe_org_name\":\"a\","
        "\"org_metadata\":{\"x\":\"\\r\\n\\r\\n\"},\"user_role\":\"Ädmin\","
        "\"inherited_user_roles_plus_current_role\":[\"Ädmin\"],\"user_permissions\":[]}}}";
    id_user *u = user_ok(claims);
    const char *h = id_user_header(u, ID_ORGS_ALL, NULL, NULL);
    assert_header_safe(h);
    ck_assert_ptr_nonnull(strstr(h, "\"first_name\":\"\\u00dcn\\u00efc\\u00f6d\\u00e9 "
                                    "\\ud83c\\udf89\""));
    ck_assert_ptr_nonnull(strstr(h, "\"email\":\"a\\r\\nX-Evil: 1@x.com\""));
    const id_org *o = id_user_get_org(u, "\xc3\xb6\n1", 4);
    ck_assert_ptr_nonnull(o);
    ck_assert(id_org_is_role(o, "\xc3\x84"
                                "dmin"));
    assert_header_safe(id_org_header(o));
    ag_buf s;
    ag_buf_init(&s);
    assert_header_safe(id_user_header(u, ID_ORGS_REQUESTED, o, &s));
    assert_header_safe(id_user_header(u, ID_ORGS_NONE, NULL, &s));
    /* The upstream parses the header back to the same values. */
    json_error_t e;
    json_t *orig = json_loads(claims, 0, &e);
    json_t *x = json_loads(h, JSON_REJECT_DUPLICATES, &e);
    ck_assert_ptr_nonnull(x);
    ck_assert(json_equal(json_object_get(x, "email"), json_object_get(orig, "email")));
    ck_assert(json_equal(json_object_get(x, "first_name"), json_object_get(orig, "first_name")));
    ck_assert(json_equal(json_object_get(x, "last_name"), json_object_get(orig, "last_name")));
    ck_assert(json_equal(json_object_get(x, "properties"), json_object_get(orig, "properties")));
    json_t *xo = json_loads(id_org_header(o), 0, &e);
    ck_assert_ptr_nonnull(xo);
    ck_assert_str_eq(json_string_value(json_object_get(xo, "org_name")), "Acme\r\nSet-Cookie: x");
    ck_assert_str_eq(json_string_value(json_object_get(xo, "org_id")), "\xc3\xb6\n1");
    json_decref(xo);
    json_decref(x);
    json_decref(orig);
    ag_buf_free(&s);
    id_user_unref(u);
}
END_TEST

START_TEST(test_F56_large_values_and_numbers)
{
    /* 8 KB of text and assorted numbers survive exactly. */
    ag_buf b;
    ag_buf_init(&b);
    ck_assert_int_eq(ag_buf_puts(&b, "{" BASE ",\"properties\":{\"big\":\""), 0);
    for (int i = 0; i < 8192; i++)
        ck_assert_int_eq(ag_buf_append(&b, i % 64 == 63 ? "\\n" : "x", i % 64 == 63 ? 2 : 1), 0);
    ck_assert_int_eq(ag_buf_puts(&b, "\",\"n\":[-9223372036854775808,0.1,1e300,-0.0,3]}}"), 0);
    id_user *u = user_ok(b.p);
    const char *h = id_user_header(u, ID_ORGS_ALL, NULL, NULL);
    assert_header_safe(h);
    json_error_t e;
    json_t *orig = json_loads(b.p, 0, &e), *x = json_loads(h, 0, &e);
    ck_assert_ptr_nonnull(x);
    ck_assert(json_equal(json_object_get(orig, "properties"), json_object_get(x, "properties")));
    json_decref(orig);
    json_decref(x);
    id_user_unref(u);
    ag_buf_free(&b);
}
END_TEST

/* Integers beyond 64 bits (parsed the way the verifier parses a payload)
 * reach X-User digit for digit; where a string is required they are refused. */
START_TEST(test_big_integers_exact_in_x_user)
{
    static const char ok[] = "{\"user_id\":\"u1\",\"exp\":99999999999999999999,"
                             "\"properties\":{\"n\":12345678901234567890,"
                             "\"m\":[-123456789012345678901234567890,1]}}";
    json_error_t e;
    json_t *c = jnum_loadb(ok, strlen(ok), JSON_REJECT_DUPLICATES, &e);
    ck_assert_ptr_nonnull(c);
    id_user *u = NULL;
    ag_reason reason = AR_INTERNAL;
    ck_assert_int_eq(id_user_from_claims(c, &u, &reason), 0);
    json_decref(c);
    ck_assert(id_user_exp(u) == INT64_MAX);
    const char *h = id_user_header(u, ID_ORGS_ALL, NULL, NULL);
    assert_header_safe(h);
    ck_assert_msg(strstr(h, "\"properties\":{\"n\":12345678901234567890,"
                            "\"m\":[-123456789012345678901234567890,1]}") != NULL,
                  "%s", h);
    id_user_unref(u);

    static const char *const bad[] = {
        "{\"user_id\":12345678901234567890,\"exp\":1790001800}",
        "{\"user_id\":\"u1\",\"exp\":1790001800,\"org_id_to_org_member_info\":{\"o1\":{"
        "\"org_id\":\"o1\",\"org_name\":\"O\",\"url_safe_org_name\":\"o\",\"org_metadata\":{},"
        "\"user_role\":12345678901234567890,\"inherited_user_roles_plus_current_role\":[],"
        "\"user_permissions\":[]}}}",
        "{\"user_id\":\"u1\",\"exp\":1790001800,\"org_id_to_org_member_info\":{\"o1\":{"
        "\"org_id\":\"o1\",\"org_name\":\"O\",\"url_safe_org_name\":\"o\",\"org_metadata\":{},"
        "\"user_role\":\"Admin\",\"inherited_user_roles_plus_current_role\":[\"Admin\"],"
        "\"user_permissions\":[12345678901234567890]}}}",
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        c = jnum_loadb(bad[i], strlen(bad[i]), JSON_REJECT_DUPLICATES, &e);
        ck_assert_ptr_nonnull(c);
        u = (id_user *)0x1;
        ck_assert_msg(id_user_from_claims(c, &u, &reason) == -1, "accepted %s", bad[i]);
        ck_assert_ptr_null(u);
        json_decref(c);
    }
}
END_TEST

/* docs/compatibility.md, "Deliberately stricter": the org shapes, by name. */
START_TEST(test_compat_strictness_orgs)
{
    /* org_map_not_object */
    user_bad("{" BASE ",\"org_id_to_org_member_info\":[]}");
    user_bad("{" BASE ",\"org_id_to_org_member_info\":\"o1\"}");
    user_bad("{" BASE ",\"org_id_to_org_member_info\":7}");
    /* org_entry_not_object, also a non-object org_member_info (even a falsy one) */
    user_bad("{" BASE ",\"org_id_to_org_member_info\":{\"o1\":\"Admin\"}}");
    user_bad("{" BASE ",\"org_id_to_org_member_info\":{\"o1\":null}}");
    user_bad("{" BASE ",\"org_member_info\":\"o1\"}");
    user_bad("{" BASE ",\"org_member_info\":0}");
    user_bad("{" BASE ",\"org_member_info\":false}");
    user_bad("{" BASE ",\"org_member_info\":[]}");
    /* org_entry_field_type: null or the wrong JSON type */
    static const char *const fields[][2] = {
        {"org_name", "null"},
        {"url_safe_org_name", "1"},
        {"user_role", "[\"Admin\"]"},
        {"inherited_user_roles_plus_current_role", "null"},
        {"inherited_user_roles_plus_current_role", "\"Admin\""},
        {"user_permissions", "null"},
        {"user_permissions", "\"can_view_billing\""},
        {"org_metadata", "[]"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(fields); i++) {
        json_t *c = th_json("{" BASE ",\"org_id_to_org_member_info\":{" ORG(
            "o1", "\"Admin\"", "[\"Admin\"]", "[\"can_view_billing\"]") "}}");
        json_t *e = json_object_get(json_object_get(c, "org_id_to_org_member_info"), "o1");
        json_t *v = json_loads(fields[i][1], JSON_DECODE_ANY, NULL);
        ck_assert_ptr_nonnull(v);
        ck_assert_int_eq(json_object_set_new(e, fields[i][0], v), 0);
        id_user *u = (id_user *)0x1;
        ag_reason reason = AR_OK;
        ck_assert_msg(id_user_from_claims(c, &u, &reason) == -1, "%s: %s accepted", fields[i][0],
                      fields[i][1]);
        ck_assert_int_eq(reason, AR_TOKEN_CLAIMS);
        json_decref(c);
    }
    /* user_id_empty is the verifier's (test_jwt); the builder refuses it too */
    user_bad("{\"user_id\":\"\",\"exp\":1790001800}");
}
END_TEST

START_TEST(test_deep_metadata_refused)
{
    ag_buf b;
    ag_buf_init(&b);
    ck_assert_int_eq(ag_buf_puts(&b, "{" BASE ",\"properties\":"), 0);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(ag_buf_puts(&b, "["), 0);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(ag_buf_puts(&b, "]"), 0);
    ck_assert_int_eq(ag_buf_puts(&b, "}"), 0);
    user_bad(b.p);
    ag_buf_free(&b);
}
END_TEST

START_TEST(test_refcount_shared)
{
    id_user *u = user_ok(realistic);
    ck_assert_ptr_eq(id_user_ref(u), u);
    id_user_unref(u);
    ck_assert_str_eq(id_user_id(u), "31c41c16-c281-44ae-9602-8a047e3bf33d");
    id_user_unref(u);
    id_user_unref(NULL);
    ck_assert_ptr_null(id_user_ref(NULL));
    ck_assert_ptr_null(id_user_header(NULL, ID_ORGS_ALL, NULL, NULL));
    ck_assert_ptr_null(id_org_header(NULL));
}
END_TEST

/* End to end with the verifier: a minted token becomes a user. */
START_TEST(test_from_verified_token)
{
    jwt_key *k = th_key(TH_DEMO_PUB);
    char *tok = th_sign(realistic);
    jwt_key *keys[1] = {k};
    jwt_params p = {.keys = keys,
                    .nkeys = 1,
                    .issuer = TH_ISS,
                    .leeway = 60,
                    .now = 1790000100,
                    .max_token_bytes = 65536};
    json_t *claims = NULL;
    ck_assert_int_eq(jwt_verify(tok, strlen(tok), &p, &claims), JWT_OK);
    id_user *u = NULL;
    ag_reason reason = AR_INTERNAL;
    ck_assert_int_eq(id_user_from_claims(claims, &u, &reason), 0);
    json_decref(claims);
    ck_assert_str_eq(id_user_header(u, ID_ORGS_ALL, NULL, NULL), ACME_HEAD
                     "{\"1189c444-8a2d-4c41-8b4b-ae43ce79a492\":" ACME_XORG "}" ACME_TAIL);
    id_user_unref(u);
    free(tok);
    jwt_key_unref(k);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("identity");
    TCase *tc = tcase_create("identity");
    tcase_add_test(tc, test_py_only_user_id_orgs_null);
    tcase_add_test(tc, test_realistic_example_headers);
    tcase_add_test(tc, test_py_conversion_single_role_orgs);
    tcase_add_test(tc, test_py_conversion_multi_role_orgs);
    tcase_add_test(tc, test_py_conversion_active_org);
    tcase_add_test(tc, test_py_conversion_password_login_and_passthrough);
    tcase_add_test(tc, test_user_required_fields);
    tcase_add_test(tc, test_py_auth_fns_admin);
    tcase_add_test(tc, test_fastapi_org_matrix);
    tcase_add_test(tc, test_multi_role_org);
    tcase_add_test(tc, test_E48_exact_roles_and_permissions);
    tcase_add_test(tc, test_E49_user_role_null_dropped);
    tcase_add_test(tc, test_A18_malformed_org_claims);
    tcase_add_test(tc, test_E49_lookup_exact_and_proto_keys);
    tcase_add_test(tc, test_many_orgs_lookup);
    tcase_add_test(tc, test_F56_non_ascii_and_hostile_strings);
    tcase_add_test(tc, test_F56_large_values_and_numbers);
    tcase_add_test(tc, test_deep_metadata_refused);
    tcase_add_test(tc, test_big_integers_exact_in_x_user);
    tcase_add_test(tc, test_compat_strictness_orgs);
    tcase_add_test(tc, test_refcount_shared);
    tcase_add_test(tc, test_from_verified_token);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
