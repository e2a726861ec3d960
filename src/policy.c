#include "policy.h"

#include <assert.h>
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

static void deny(pol_result *r, ag_reason code)
{
    assert(!reason_forwards(code));
    r->outcome = POL_DENY;
    r->code = code;
    r->inject_user = false;
    r->org = NULL;
}

static void allow(pol_result *r, bool inject_user, const id_org *org)
{
    r->outcome = POL_ALLOW;
    r->code = AR_OK;
    r->inject_user = inject_user;
    r->org = org;
}

/* The check order is the libraries': header -> token -> org lookup -> role or
 * permission. A bad token is therefore 401 even when the org would fail too. */
void pol_decide(const pol_spec *spec, const pol_input *in, pol_result *r)
{
    memset(r, 0, sizeof(*r)); /* POL_DENY, AR_INTERNAL until a branch decides */

    if (spec->kind == POL_PUBLIC) {
        note(r, "public: no token needed", true);
        allow(r, false, NULL);
        return;
    }
    if (spec->kind == POL_OPTIONAL_USER) {
        bool valid = in->token == POL_TOKEN_VALID && in->user;
        note(r,
             valid ? "optional_user: valid token, identity forwarded"
                   : "optional_user: no valid token, forwarded anonymously",
             true);
        allow(r, valid, NULL);
        return;
    }

    if (in->token == POL_KEYS_UNAVAILABLE) {
        note(r, "verifier key loaded", false);
        deny(r, AR_KEYS_UNAVAILABLE);
        return;
    }
    if (in->token == POL_TOKEN_NONE) {
        note(r, "bearer token present", false);
        deny(r, AR_TOKEN_MISSING);
        return;
    }
    if (in->token != POL_TOKEN_VALID || !in->user) {
        note(r, "token valid", false);
        /* Only a credential reason may explain a 401; anything else (unset,
         * or a VALID state without a user) is a caller bug: still 401. */
        deny(r, in->token == POL_TOKEN_INVALID && reason_status(in->token_reason) == 401
                    ? in->token_reason
                    : AR_TOKEN_INVALID);
        return;
    }
    note(r, "token valid", true);

    if (spec->kind == POL_REQUIRE_USER) {
        allow(r, true, NULL);
        return;
    }

    if (!in->org_id) {
        note(r, "org id supplied", false);
        deny(r, AR_ORG_ID_MISSING);
        return;
    }
    const id_org *org = id_user_get_org(in->user, in->org_id, in->org_id_len);
    if (!org) {
        note(r, "user is a member of the org", false);
        deny(r, AR_NOT_MEMBER);
        return;
    }
    note(r, "user is a member of the org", true);
    r->judged = org;

    bool ok = true;
    ag_reason reason = AR_OK;
    switch (spec->kind) {
    case POL_ORG_MEMBER:
        break;
    case POL_ORG_MIN_ROLE:
        ok = id_org_is_at_least_role(org, spec->role);
        note(r, "role is at least the required role", ok);
        reason = AR_ROLE_BELOW_MINIMUM;
        break;
    case POL_ORG_EXACT_ROLE:
        ok = id_org_is_role(org, spec->role);
        note(r, "role is exactly the required role", ok);
        reason = AR_ROLE_MISMATCH;
        break;
    case POL_ORG_PERMISSION:
        ok = id_org_has_permission(org, spec->permission);
        note(r, "has the required permission", ok);
        reason = AR_MISSING_PERMISSION;
        break;
    case POL_ORG_ALL_PERMISSIONS:
        ok = id_org_has_all_permissions(org, spec->permissions, spec->npermissions);
        note(r, "has all required permissions", ok);
        reason = AR_MISSING_PERMISSION;
        break;
    default:
        /* An unknown kind can only come from a bug; fail closed. */
        ok = false;
        reason = AR_POLICY_ERROR;
        break;
    }
    if (!ok) {
        deny(r, reason);
        return;
    }
    allow(r, true, org);
}
