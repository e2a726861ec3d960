"""Ported cases that test_library_rows.py does not hold: the libraries' own
user-conversion tests (propelauth-py tests/test_user_conversion.py, node-apis
test/conversion.ts) checked against the exact X-User the upstream receives,
and the active-org, `user_role: null` and additional-roles rows
(docs/semantics.md sections 2 and 3, docs/compatibility.md).

The expected identities are written out literally, as propelauth-fastapi
would encode the User (dataclasses.asdict), not computed from the claims, so
they do not share a model with the gateway or with harness.expected_user."""

import harness as H

O1 = "0f1e2d3c-0000-4000-8000-000000000001"
O2 = "0f1e2d3c-0000-4000-8000-000000000002"
O3 = "0f1e2d3c-0000-4000-8000-000000000003"
U = "9a8b7c6d-1111-4222-8333-444455556666"


def org(org_id, name, role, inherited, perms, structure=None, additional=None, legacy=None,
        metadata=None, url_safe=None):
    e = {"org_id": org_id, "org_name": name, "url_safe_org_name": url_safe or name.lower(),
         "org_metadata": {} if metadata is None else metadata, "user_role": role,
         "inherited_user_roles_plus_current_role": inherited, "user_permissions": perms}
    if structure is not None:
        e["org_role_structure"] = structure
    if additional is not None:
        e["additional_roles"] = additional
    if legacy is not None:
        e["legacy_org_id"] = legacy
    return e


def omi(org_id, name, role, inherited, perms, structure="single_role_in_hierarchy",
        additional=(), legacy=None, metadata=None, url_safe=None):
    """OrgMemberInfo as asdict gives it (field order as in the dataclass)."""
    return {"org_id": org_id, "org_name": name, "org_metadata": {} if metadata is None else metadata,
            "user_assigned_role": role, "user_inherited_roles_plus_current_role": inherited,
            "user_permissions": perms, "org_role_structure": structure,
            "assigned_additional_roles": list(additional),
            "url_safe_org_name": url_safe or name.lower(), "legacy_org_id": legacy}


def user(orgs=None, email=None, login=None, first=None, last=None, username=None, props=None,
         legacy=None, impersonator=None, active=None):
    return {"user_id": U, "org_id_to_org_member_info": orgs, "email": email,
            "login_method": login or {"login_method": "unknown"}, "first_name": first,
            "last_name": last, "username": username, "properties": props,
            "legacy_user_id": legacy, "impersonator_user_id": impersonator,
            "active_org_id": active}


def claims(**kw):
    t = H.now()
    c = {"user_id": U, "iat": t, "exp": t + 1800, "iss": H.ISSUER}
    c.update(kw)
    return c


SAML = {"login_method": "saml_sso", "provider": "Okta", "org_id": O1}
GOOGLE = {"login_method": "social_sso", "provider": "Google"}

# (name, claims factory, expected X-User)
CONVERSIONS = [
    # propelauth-py test_user_conversion: password login, no orgs claim at all
    ("py_password_no_orgs",
     lambda: claims(email="easteregg@propelauth.com", first_name="easter", last_name="egg",
                    username="easteregg", login_method={"login_method": "password"}),
     user(email="easteregg@propelauth.com", first="easter", last="egg", username="easteregg",
          login={"login_method": "password"})),
    # propelauth-py: no login_method -> unknown
    ("py_no_login_method_unknown",
     lambda: claims(email="a@example.com"),
     user(email="a@example.com")),
    # propelauth-py: three single-role orgs, SAML/Okta login, legacy org id, properties
    ("py_three_single_role_orgs_saml",
     lambda: claims(
         email="b@example.com", properties={"favoriteSport": "basketball", "n": [1, 2]},
         login_method=SAML,
         org_id_to_org_member_info={
             O1: org(O1, "orgA", "Owner", ["Owner", "Admin", "Member"], ["p1", "p2"],
                     legacy="legacy-a", metadata={"plan": {"tier": "pro"}}),
             O2: org(O2, "orgB", "Admin", ["Admin", "Member"], [], structure="single_role_in_hierarchy"),
             O3: org(O3, "orgC", "Member", ["Member"], ["p3"], additional=[])}),
     user(email="b@example.com", props={"favoriteSport": "basketball", "n": [1, 2]}, login=SAML,
          orgs={O1: omi(O1, "orgA", "Owner", ["Owner", "Admin", "Member"], ["p1", "p2"],
                        legacy="legacy-a", metadata={"plan": {"tier": "pro"}}),
                O2: omi(O2, "orgB", "Admin", ["Admin", "Member"], []),
                O3: omi(O3, "orgC", "Member", ["Member"], ["p3"])})),
    # propelauth-py / node-apis: active-org token with social Google login; the
    # map is replaced by org_member_info
    ("py_active_org_social_google",
     lambda: claims(
         email="c@example.com", login_method=GOOGLE,
         org_id_to_org_member_info={O1: org(O1, "orgA", "Owner", ["Owner"], [])},
         org_member_info=org(O2, "orgB", "Admin", ["Admin", "Member"], ["read"])),
     user(email="c@example.com", login=GOOGLE, active=O2,
          orgs={O2: omi(O2, "orgB", "Admin", ["Admin", "Member"], ["read"])})),
    # propelauth-py / node-apis: three multi-role orgs
    ("py_three_multi_role_orgs",
     lambda: claims(
         email="d@example.com", login_method={"login_method": "magic_link"},
         org_id_to_org_member_info={
             O1: org(O1, "orgA", "Role A", ["Role A"], [], structure="multi_role",
                     additional=["Billing", "Finance"]),
             O2: org(O2, "orgB", "Role B", ["Role B"], ["x"], structure="multi_role",
                     additional=["IT"]),
             O3: org(O3, "orgC", "Role C", ["Role C"], [], structure="multi_role",
                     additional=[])}),
     user(email="d@example.com", login={"login_method": "magic_link"},
          orgs={O1: omi(O1, "orgA", "Role A", ["Role A"], [], "multi_role", ["Billing", "Finance"]),
                O2: omi(O2, "orgB", "Role B", ["Role B"], ["x"], "multi_role", ["IT"]),
                O3: omi(O3, "orgC", "Role C", ["Role C"], [], "multi_role", [])})),
    # node-apis: without orgs, legacy_user_id and impersonator kept
    ("node_no_orgs_legacy_user_id",
     lambda: claims(email="e@example.com", legacy_user_id="legacy-u-7",
                    impersonator_user_id="imp-1",
                    login_method={"login_method": "impersonation"},
                    org_id_to_org_member_info={}),
     user(email="e@example.com", legacy="legacy-u-7", impersonator="imp-1",
          login={"login_method": "impersonation"}, orgs={})),
    # semantics 2: a user_role null entry is dropped from the user
    ("null_role_entry_dropped",
     lambda: claims(org_id_to_org_member_info={
         O1: org(O1, "orgA", "Member", ["Member"], []),
         O2: org(O2, "orgB", None, [], [])}),
     user(orgs={O1: omi(O1, "orgA", "Member", ["Member"], [])})),
    # semantics 2: org_member_info null means "no active org": the map is used
    ("active_org_null_uses_map",
     lambda: claims(org_member_info=None,
                    org_id_to_org_member_info={O1: org(O1, "orgA", "Admin", ["Admin"], [])}),
     user(orgs={O1: omi(O1, "orgA", "Admin", ["Admin"], [])})),
]

ACTIVE = lambda: claims(  # noqa: E731
    org_id_to_org_member_info={O1: org(O1, "orgA", "Owner", ["Owner", "Admin", "Member"], ["read"])},
    org_member_info=org(O2, "orgB", "Admin", ["Admin", "Member"], ["write"]))
NULLROLE = lambda: claims(org_id_to_org_member_info={  # noqa: E731
    O1: org(O1, "orgA", "Member", ["Member"], ["read"]),
    O2: org(O2, "orgB", None, ["Owner", "Admin", "Member"], ["read"])})
SINGLE_ADDL = lambda: claims(org_id_to_org_member_info={  # noqa: E731
    O1: org(O1, "orgA", "Member", ["Member"], [], structure="single_role_in_hierarchy",
            additional=["Role B", "Admin"])})
MULTI = lambda: claims(org_id_to_org_member_info={  # noqa: E731
    O1: org(O1, "orgA", "Role A", ["Role A", "Owner", "Admin", "Member"], [],
            structure="multi_role", additional=["Role B"])})

# (name, path, claims factory, expected status, X-Org expected on allow)
ROWS = [
    # active org (libraries 2.4; gap list in 6: a different org requested -> 403)
    ("active_org_member", "/org/member?org_id=" + O2, ACTIVE, 200,
     omi(O2, "orgB", "Admin", ["Admin", "Member"], ["write"])),
    ("active_org_min_member", "/org/min/member?org_id=" + O2, ACTIVE, 200,
     omi(O2, "orgB", "Admin", ["Admin", "Member"], ["write"])),
    ("active_org_min_owner_403", "/org/min/owner?org_id=" + O2, ACTIVE, 403, None),
    ("active_org_perm_write", "/org/perm/write?org_id=" + O2, ACTIVE, 200,
     omi(O2, "orgB", "Admin", ["Admin", "Member"], ["write"])),
    ("active_org_other_org_in_map_403", "/org/member?org_id=" + O1, ACTIVE, 403, None),
    ("active_org_other_org_perm_403", "/org/perm/read?org_id=" + O1, ACTIVE, 403, None),
    # user_role null: that org is not a membership, the others still are
    ("null_role_org_member_403", "/org/member?org_id=" + O2, NULLROLE, 403, None),
    ("null_role_org_min_member_403", "/org/min/member?org_id=" + O2, NULLROLE, 403, None),
    ("null_role_org_perm_read_403", "/org/perm/read?org_id=" + O2, NULLROLE, 403, None),
    ("null_role_other_org_ok", "/org/member?org_id=" + O1, NULLROLE, 200,
     omi(O1, "orgA", "Member", ["Member"], ["read"])),
    # additional_roles never count in a single-role org
    ("single_role_additional_ignored_exact", "/org/exact/role-b?org_id=" + O1, SINGLE_ADDL, 403,
     None),
    ("single_role_additional_ignored_min", "/org/min/admin?org_id=" + O1, SINGLE_ADDL, 403, None),
    ("single_role_member_exact_ok", "/org/exact/member?org_id=" + O1, SINGLE_ADDL, 200,
     omi(O1, "orgA", "Member", ["Member"], [], additional=["Role B", "Admin"])),
    # multi_role: the inherited list is ignored, additional roles count for both
    ("multi_role_inherited_owner_ignored", "/org/min/owner?org_id=" + O1, MULTI, 403, None),
    ("multi_role_additional_exact", "/org/exact/role-b?org_id=" + O1, MULTI, 200,
     omi(O1, "orgA", "Role A", ["Role A", "Owner", "Admin", "Member"], [], "multi_role",
         ["Role B"])),
    ("multi_role_additional_min", "/org/min/role-b?org_id=" + O1, MULTI, 200,
     omi(O1, "orgA", "Role A", ["Role A", "Owner", "Admin", "Member"], [], "multi_role",
         ["Role B"])),
]


class LibraryPorted(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        q = {"org_id_from": "query"}
        routes = [{"path": "/require_user", "policy": "require_user"},
                  dict(q, path="/org/member", policy="require_org_member")]
        for slug, role in (("owner", "Owner"), ("admin", "Admin"), ("member", "Member"),
                           ("role-b", "Role B")):
            routes.append(dict(q, path="/org/min/" + slug,
                               policy="require_org_member_with_minimum_role", role=role))
            routes.append(dict(q, path="/org/exact/" + slug,
                               policy="require_org_member_with_exact_role", role=role))
        for p in ("read", "write"):
            routes.append(dict(q, path="/org/perm/" + p,
                               policy="require_org_member_with_permission", permission=p))
        return {"auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
                "upstreams": {"app": {"url": echo.url}}, "routes": routes}


def _conversion(make, expected):
    def t(self):
        tok = H.craft(make())
        _, rec = self.expect_allow("GET", "/require_user", token=tok)
        H.check_identity_header(self, rec["headers"].get("x-user"), expected, H.USER_FIELDS,
                                "X-User")
        self.assertNotIn("x-org", rec["headers"])
    return t


def _row(path, make, status, xorg):
    def t(self):
        tok = H.craft(make())
        if status != 200:
            self.expect_deny("GET", path, status, token=tok)
            return
        _, rec = self.expect_allow("GET", path, token=tok)
        self.assertEqual(rec["path"], path.split("?")[0])
        H.check_identity_header(self, rec["headers"].get("x-org"), xorg, H.ORG_FIELDS, "X-Org")
    return t


for _n, _make, _exp in CONVERSIONS:
    setattr(LibraryPorted, "test_lib_ported_conversion_" + _n, _conversion(_make, _exp))
for _n, _path, _make, _status, _xorg in ROWS:
    _t = _row(_path, _make, _status, _xorg)
    _t.__doc__ = "%s -> %d" % (_path, _status)
    setattr(LibraryPorted, "test_lib_ported_" + _n, _t)
