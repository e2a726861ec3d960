#include "policy.h"

#include <stdlib.h>
#include <string.h>

#include "identity.h"

static const char *const kind_names[POL__COUNT] = {
    [POL_PUBLIC] = "public",
    [POL_OPTIONAL_USER] = "optional_user",
    [POL_REQUIRE_USER] = "require_user",
    [POL_ORG_MEMBER] = "require_org_member",
    [POL_ORG_MIN_ROLE] = "require_org_member_with_minimum_role",
    [POL_ORG_EXACT_ROLE] = "require_org_member_with_exact_role",
    [POL_ORG_PERMISSION] = "require_org_member_with_permission",
    [POL_ORG_ALL_PERMISSIONS] = "require_org_member_with_all_permissions",
};

int pol_kind_from_name(const char *name, pol_kind *out)
{
    for (int k = 0; k < POL__COUNT; k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            *out = (pol_kind)k;
            return 0;
        }
    }
    return -1;
}

const char *pol_kind_name(pol_kind k)
{
    return (k >= 0 && k < POL__COUNT) ? kind_names[k] : "unknown";
}

bool pol_needs_token(pol_kind k)
{
    return k != POL_PUBLIC && k != POL_OPTIONAL_USER;
}

bool pol_needs_org(pol_kind k)
{
    return k >= POL_ORG_MEMBER && k < POL__COUNT;
}

void pol_spec_free(pol_spec *s)
{
    free(s->role);
    free(s->permission);
    for (size_t i = 0; i < s->npermissions; i++)
        free(s->permissions[i]);
    free(s->permissions);
    memset(s, 0, sizeof(*s));
}

static void note(pol_result *r, const char *what, bool ok)
{
    if (r->nchecks < sizeof(r->checks) / sizeof(r->checks[0])) {
        r->checks[r->nchecks] = what;
        r->check_ok[r->nchecks] = ok;
        r->nchecks++;
    }
}

static void deny(pol_result *r, int status, const char *reason)
{
    r->status = status;
    r->reason = reason;
    r->inject_user = false;
    r->org = NULL;
}

/* The check order is the libraries': header -> token -> org lookup -> role or
 * permission. A bad token is therefore 401 even when the org would fail too. */
void pol_decide(const pol_spec *spec, const pol_input *in, pol_result *r)
{
    memset(r, 0, sizeof(*r));
    r->status = 0;
    r->reason = "ok";

    if (spec->kind == POL_PUBLIC) {
        note(r, "public: no token needed", true);
        return;
    }
    if (spec->kind == POL_OPTIONAL_USER) {
        bool valid = in->token == POL_TOKEN_VALID && in->user;
        note(r,
             valid ? "optional_user: valid token, identity forwarded"
                   : "optional_user: no valid token, forwarded anonymously",
             true);
        r->inject_user = valid;
        return;
    }

    if (in->token == POL_KEYS_UNAVAILABLE) {
        note(r, "verifier key loaded", false);
        deny(r, 503, "keys_unavailable");
        return;
    }
    if (in->token == POL_TOKEN_NONE) {
        note(r, "bearer token present", false);
        deny(r, 401, "token_missing");
        return;
    }
    if (in->token != POL_TOKEN_VALID || !in->user) {
        note(r, "token valid", false);
        deny(r, 401, in->token_reason ? in->token_reason : "token_invalid");
        return;
    }
    note(r, "token valid", true);

    if (spec->kind == POL_REQUIRE_USER) {
        r->inject_user = true;
        return;
    }

    if (!in->org_id) {
        note(r, "org id supplied", false);
        deny(r, 403, "org_id_missing");
        return;
    }
    const id_org *org = id_user_get_org(in->user, in->org_id, in->org_id_len);
    if (!org) {
        note(r, "user is a member of the org", false);
        deny(r, 403, "not_member");
        return;
    }
    note(r, "user is a member of the org", true);

    bool ok = true;
    const char *reason = "ok";
    switch (spec->kind) {
    case POL_ORG_MEMBER:
        break;
    case POL_ORG_MIN_ROLE:
        ok = id_org_is_at_least_role(org, spec->role);
        note(r, "role is at least the required role", ok);
        reason = "role_below_minimum";
        break;
    case POL_ORG_EXACT_ROLE:
        ok = id_org_is_role(org, spec->role);
        note(r, "role is exactly the required role", ok);
        reason = "role_mismatch";
        break;
    case POL_ORG_PERMISSION:
        ok = id_org_has_permission(org, spec->permission);
        note(r, "has the required permission", ok);
        reason = "missing_permission";
        break;
    case POL_ORG_ALL_PERMISSIONS:
        ok = id_org_has_all_permissions(org, spec->permissions, spec->npermissions);
        note(r, "has all required permissions", ok);
        reason = "missing_permission";
        break;
    default:
        /* An unknown kind can only come from a bug; fail closed. */
        ok = false;
        reason = "policy_error";
        break;
    }
    if (!ok) {
        deny(r, 403, reason);
        return;
    }
    r->inject_user = true;
    r->org = org;
}
