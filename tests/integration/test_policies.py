"""Every policy x {allow, 401, 403} through the real daemon
(docs/semantics.md section 3), with the exact X-User / X-Org JSON the
upstream received on allow (section 4) and nothing at all upstream on deny.

Ordinary tokens come from `authgate mint`; tokens with claims mint cannot
express (active org, null roles, multi-role, rich user fields) are built here.
"""

import functools

import harness as H

ORG_A = "0a1b2c3d-aaaa-4000-8000-00000000000a"   # u-member: Member, no permissions
ORG_B = "0a1b2c3d-bbbb-4000-8000-00000000000b"   # u-admin: Admin, can_view_billing + permA
ORG_O = "0a1b2c3d-cccc-4000-8000-00000000000c"   # u-owner: Owner, permA + permB
ORG_X = "0a1b2c3d-dddd-4000-8000-00000000000d"   # nobody's org
ORG_M = "0a1b2c3d-eeee-4000-8000-00000000000e"   # multi-role org


def route(path, policy, **kw):
    r = {"path": path}
    r.update(kw)
    r["policy"] = policy
    return r


def policy_config(echo, extra_routes=()):
    routes = [
        route("/healthz", "public", methods=["GET"]),
        route("/public/**", "public"),
        route("/api/whoami", "require_user"),
        route("/api/feed", "optional_user"),
        route("/api/org/{org_id}/member", "require_org_member"),
        route("/api/org/{org_id}/min-admin", "require_org_member_with_minimum_role", role="Admin"),
        route("/api/org/{org_id}/min-member", "require_org_member_with_minimum_role",
              role="Member"),
        route("/api/org/{org_id}/exact-owner", "require_org_member_with_exact_role", role="Owner"),
        route("/api/org/{org_id}/exact-admin", "require_org_member_with_exact_role", role="Admin"),
        route("/api/org/{org_id}/exact-member", "require_org_member_with_exact_role",
              role="Member"),
        route("/api/org/{org_id}/billing", "require_org_member_with_permission",
              permission="can_view_billing"),
        route("/api/org/{org_id}/all-ab", "require_org_member_with_all_permissions",
              permissions=["permA", "permB"]),
        route("/api/reports", "require_org_member", org_id_from="query"),
        route("/api/reports-tenant", "require_org_member", org_id_from="query:tenant"),
        route("/api/by-header", "require_org_member", org_id_from="header:X-Tenant-Id"),
        route("/api/t/{tenant}/x", "require_org_member", org_id_from="path:tenant"),
    ]
    for r in ("Role A", "Role B", "Role C", "Role D", "Owner"):
        slug = r.replace(" ", "-").lower()
        routes.append(route("/mr/min/" + slug, "require_org_member_with_minimum_role",
                            org_id_from="query", role=r))
        routes.append(route("/mr/exact/" + slug, "require_org_member_with_exact_role",
                            org_id_from="query", role=r))
    routes.extend(extra_routes)
    return {
        "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
        "upstreams": {"app": {"url": echo.url, "connect_timeout_ms": 2000, "timeout_ms": 10000}},
        "routes": routes,
    }


@functools.lru_cache(maxsize=None)
def minted(name):
    if name == "member_a":
        return H.mint("u-member", email="member@example.com", orgs=[ORG_A + ":Org A:Member"])
    if name == "admin_b":
        return H.mint("u-admin", email="admin@example.com",
                      orgs=[ORG_B + ":Org B:Admin:can_view_billing,permA"])
    if name == "owner_o":
        return H.mint("u-owner", email="owner@example.com",
                      orgs=[ORG_O + ":Org O:Owner:permA,permB"])
    if name == "multi_orgs":
        return H.mint("u-multi", email="multi@example.com",
                      orgs=[ORG_A + ":Org A:Member", ORG_B + ":Org B:Admin:can_view_billing",
                            ORG_O + ":Org O:Owner:permA,permB"])
    if name == "no_orgs":
        return H.mint("u-noorgs", email="noorgs@example.com")
    if name == "other_key":
        return H.mint("u-admin", orgs=[ORG_B + ":Org B:Admin:can_view_billing,permA"],
                      key=H.keys("other"))
    if name == "expired":
        return H.token(user_id="u-admin", orgs=[H.org_entry(ORG_B, "Admin",
                                                            perms=["can_view_billing"])],
                       iat=H.now() - 7200, exp=H.now() - 3600)
    raise KeyError(name)


BAD_TOKENS = ("garbage", "other_key", "expired")


def bad_token(kind):
    if kind == "garbage":
        return "whatisthis"
    return minted(kind)


class PolicyMatrix(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        return policy_config(echo)

    # -- helpers -----------------------------------------------------------

    def allow_identity(self, path, tok, org_id=None, method="GET"):
        _, rec = self.expect_allow(method, path, token=tok)
        self.assertEqual(rec["method"], method)
        self.assertEqual(rec["path"], path.split("?")[0])
        self.assert_identity(rec, H.decode_claims(tok), org_id)
        return rec

    def deny_all_bad_tokens(self, path):
        self.expect_deny("GET", path, 401, reason="token_missing")
        for kind in BAD_TOKENS:
            with self.subTest(bad=kind):
                self.expect_deny("GET", path, 401, token=bad_token(kind))

    # -- public ------------------------------------------------------------

    def test_public_no_token_forwarded_anonymous(self):
        _, rec = self.expect_allow("GET", "/public/anything/at/all")
        self.assert_anonymous(rec)
        _, rec = self.expect_allow("GET", "/healthz")
        self.assert_anonymous(rec)

    def test_public_invalid_token_forwarded_anonymous(self):
        for kind in BAD_TOKENS:
            with self.subTest(bad=kind):
                _, rec = self.expect_allow("GET", "/public/x", token=bad_token(kind))
                self.assert_anonymous(rec)

    # -- optional_user -----------------------------------------------------

    def test_optional_user_allow_with_identity(self):
        self.allow_identity("/api/feed", minted("multi_orgs"))

    def test_optional_user_no_token_forwarded_anonymous(self):
        _, rec = self.expect_allow("GET", "/api/feed")
        self.assert_anonymous(rec)

    def test_optional_user_invalid_token_forwarded_anonymous(self):
        for kind in BAD_TOKENS:
            with self.subTest(bad=kind):
                _, rec = self.expect_allow("GET", "/api/feed", token=bad_token(kind))
                self.assert_anonymous(rec)
        for hdr in ("token " + minted("admin_b"), "Basic dXNlcjpw", "Bearer"):
            with self.subTest(header=hdr[:12]):
                _, rec = self.expect_allow("GET", "/api/feed", headers={"Authorization": hdr})
                self.assert_anonymous(rec)

    # -- require_user ------------------------------------------------------

    def test_require_user_allow_identity(self):
        rec = self.allow_identity("/api/whoami", minted("admin_b"))
        self.assertEqual(rec["x_user"]["user_id"], "u-admin")

    def test_require_user_allow_identity_without_orgs(self):
        rec = self.allow_identity("/api/whoami", minted("no_orgs"))
        self.assertIn(rec["x_user"]["org_id_to_org_member_info"], (None, {}))

    def test_require_user_401(self):
        self.deny_all_bad_tokens("/api/whoami")

    # -- require_org_member ------------------------------------------------

    def test_org_member_allow_path(self):
        self.allow_identity("/api/org/%s/member" % ORG_A, minted("member_a"), ORG_A)
        self.allow_identity("/api/org/%s/member" % ORG_B, minted("multi_orgs"), ORG_B)

    def test_org_member_401(self):
        self.deny_all_bad_tokens("/api/org/%s/member" % ORG_B)

    def test_org_member_401_before_403_for_bad_token_and_foreign_org(self):
        # check order header -> token -> org: a bad token on a foreign org is 401
        self.expect_deny("GET", "/api/org/%s/member" % ORG_X, 401, token=minted("expired"))
        self.expect_deny("GET", "/api/org/%s/member" % ORG_X, 401)

    def test_org_member_403_not_member(self):
        self.expect_deny("GET", "/api/org/%s/member" % ORG_X, 403, token=minted("member_a"),
                         reason="not_member")

    def test_org_member_403_token_without_orgs(self):
        self.expect_deny("GET", "/api/org/%s/member" % ORG_A, 403, token=minted("no_orgs"),
                         reason="not_member")

    def test_org_member_403_org_id_case_sensitive(self):
        self.expect_deny("GET", "/api/org/%s/member" % ORG_A.upper(), 403,
                         token=minted("member_a"))

    # -- minimum role ------------------------------------------------------

    def test_min_role_allow_exact_holder(self):
        self.allow_identity("/api/org/%s/min-admin" % ORG_B, minted("admin_b"), ORG_B)

    def test_min_role_allow_through_inherited(self):
        self.allow_identity("/api/org/%s/min-admin" % ORG_O, minted("owner_o"), ORG_O)
        self.allow_identity("/api/org/%s/min-member" % ORG_B, minted("admin_b"), ORG_B)

    def test_min_role_403_below(self):
        self.expect_deny("GET", "/api/org/%s/min-admin" % ORG_A, 403, token=minted("member_a"),
                         reason="role_below_minimum")

    def test_min_role_403_not_member(self):
        self.expect_deny("GET", "/api/org/%s/min-admin" % ORG_X, 403, token=minted("admin_b"),
                         reason="not_member")

    def test_min_role_401(self):
        self.deny_all_bad_tokens("/api/org/%s/min-admin" % ORG_B)

    # -- exact role --------------------------------------------------------

    def test_exact_role_allow(self):
        self.allow_identity("/api/org/%s/exact-owner" % ORG_O, minted("owner_o"), ORG_O)
        self.allow_identity("/api/org/%s/exact-admin" % ORG_B, minted("admin_b"), ORG_B)

    def test_exact_role_403_higher_role_is_not_exact(self):
        self.expect_deny("GET", "/api/org/%s/exact-member" % ORG_B, 403, token=minted("admin_b"),
                         reason="role_mismatch")
        self.expect_deny("GET", "/api/org/%s/exact-admin" % ORG_O, 403, token=minted("owner_o"),
                         reason="role_mismatch")

    def test_exact_role_403_lower_role(self):
        self.expect_deny("GET", "/api/org/%s/exact-owner" % ORG_B, 403, token=minted("admin_b"),
                         reason="role_mismatch")

    def test_exact_role_401(self):
        self.deny_all_bad_tokens("/api/org/%s/exact-owner" % ORG_O)

    # -- permission --------------------------------------------------------

    def test_permission_allow(self):
        self.allow_identity("/api/org/%s/billing" % ORG_B, minted("admin_b"), ORG_B)

    def test_permission_403_missing(self):
        self.expect_deny("GET", "/api/org/%s/billing" % ORG_O, 403, token=minted("owner_o"),
                         reason="missing_permission")

    def test_permission_403_not_member(self):
        self.expect_deny("GET", "/api/org/%s/billing" % ORG_O, 403, token=minted("admin_b"),
                         reason="not_member")

    def test_permission_401(self):
        self.deny_all_bad_tokens("/api/org/%s/billing" % ORG_B)

    # -- all permissions ---------------------------------------------------

    def test_all_permissions_allow(self):
        self.allow_identity("/api/org/%s/all-ab" % ORG_O, minted("owner_o"), ORG_O)

    def test_all_permissions_403_one_missing(self):
        self.expect_deny("GET", "/api/org/%s/all-ab" % ORG_B, 403, token=minted("admin_b"),
                         reason="missing_permission")

    def test_all_permissions_401(self):
        self.deny_all_bad_tokens("/api/org/%s/all-ab" % ORG_O)

    # -- org id sources ----------------------------------------------------

    def test_org_from_query_allow(self):
        tok = minted("multi_orgs")
        rec = self.allow_identity("/api/reports?org_id=%s&x=1" % ORG_B, tok, ORG_B)
        self.assertEqual(rec["query"], "org_id=%s&x=1" % ORG_B)

    def test_org_from_query_absent_403(self):
        self.expect_deny("GET", "/api/reports", 403, token=minted("multi_orgs"),
                         reason="org_id_missing")
        self.expect_deny("GET", "/api/reports?other=1", 403, token=minted("multi_orgs"),
                         reason="org_id_missing")

    def test_org_from_query_absent_no_token_401(self):
        self.expect_deny("GET", "/api/reports", 401)

    def test_org_from_query_not_member_403(self):
        self.expect_deny("GET", "/api/reports?org_id=%s" % ORG_X, 403, token=minted("multi_orgs"),
                         reason="not_member")

    def test_org_from_named_query_param(self):
        tok = minted("multi_orgs")
        self.allow_identity("/api/reports-tenant?tenant=%s" % ORG_O, tok, ORG_O)
        self.expect_deny("GET", "/api/reports-tenant?org_id=%s" % ORG_O, 403, token=tok,
                         reason="org_id_missing")

    def test_org_from_header_allow(self):
        tok = minted("multi_orgs")
        _, rec = self.expect_allow("GET", "/api/by-header", token=tok,
                                   headers={"X-Tenant-Id": ORG_A})
        self.assert_identity(rec, H.decode_claims(tok), ORG_A)

    def test_org_from_header_absent_403(self):
        self.expect_deny("GET", "/api/by-header", 403, token=minted("multi_orgs"),
                         reason="org_id_missing")

    def test_org_from_header_not_member_403(self):
        self.expect_deny("GET", "/api/by-header", 403, token=minted("multi_orgs"),
                         headers={"X-Tenant-Id": ORG_X}, reason="not_member")

    def test_org_from_header_lookalike_is_the_same_header(self):
        # A backend may read "X_Tenant_Id" as X-Tenant-Id: a look-alike copy is
        # a second copy of the source (ambiguous), and a lone one is the source.
        tok = minted("multi_orgs")
        self.expect_deny("GET", "/api/by-header", 400, token=tok,
                         headers=[("X-Tenant-Id", ORG_A), ("X_Tenant_Id", ORG_X)],
                         reason="org_id_ambiguous")
        _, rec = self.expect_allow("GET", "/api/by-header", token=tok,
                                   headers=[("X_Tenant_Id", ORG_A)])
        self.assert_identity(rec, H.decode_claims(tok), ORG_A)

    def test_org_from_named_path_param(self):
        tok = minted("owner_o")
        self.allow_identity("/api/t/%s/x" % ORG_O, tok, ORG_O)
        self.expect_deny("GET", "/api/t/%s/x" % ORG_X, 403, token=tok, reason="not_member")

    # -- multi-role (crafted) ------------------------------------------------

    def multi_token(self, inherited=("Role D", "Owner")):
        return H.token(user_id="u-mr", orgs=[H.org_entry(
            ORG_M, "Role A", multi=True, additional=["Role B", "Role C"],
            inherited=list(inherited))])

    def test_multi_role_min_and_exact_pass_for_held_roles(self):
        tok = self.multi_token()
        for r in ("role-a", "role-b", "role-c"):
            for kind in ("min", "exact"):
                with self.subTest(kind=kind, role=r):
                    self.allow_identity("/mr/%s/%s?org_id=%s" % (kind, r, ORG_M), tok, ORG_M)

    def test_multi_role_fails_for_inherited_only_roles(self):
        # the inherited list says Role D and Owner; multi-role orgs ignore it
        tok = self.multi_token()
        for r in ("role-d", "owner"):
            with self.subTest(kind="min", role=r):
                self.expect_deny("GET", "/mr/min/%s?org_id=%s" % (r, ORG_M), 403, token=tok,
                                 reason="role_below_minimum")
            with self.subTest(kind="exact", role=r):
                self.expect_deny("GET", "/mr/exact/%s?org_id=%s" % (r, ORG_M), 403, token=tok,
                                 reason="role_mismatch")

    def test_single_role_additional_roles_never_count(self):
        tok = H.token(user_id="u-sr", orgs=[H.org_entry(
            ORG_M, "Role A", additional=["Role B"], inherited=["Role A"])])
        self.allow_identity("/mr/exact/role-a?org_id=%s" % ORG_M, tok, ORG_M)
        self.expect_deny("GET", "/mr/exact/role-b?org_id=%s" % ORG_M, 403, token=tok)
        self.expect_deny("GET", "/mr/min/role-b?org_id=%s" % ORG_M, 403, token=tok)

    # -- active-org tokens and null roles (crafted) ---------------------------

    def active_org_token(self):
        a = H.org_entry(ORG_A, "Member")
        b = H.org_entry(ORG_B, "Admin", perms=["can_view_billing"])
        return H.token(user_id="u-active", orgs=[a, b], extra={"org_member_info": b})

    def test_active_org_token_allow_active_org(self):
        tok = self.active_org_token()
        rec = self.allow_identity("/api/org/%s/billing" % ORG_B, tok, ORG_B)
        self.assertEqual(rec["x_user"]["active_org_id"], ORG_B)
        self.assertEqual(list(rec["x_user"]["org_id_to_org_member_info"]), [ORG_B])

    def test_active_org_token_other_org_403(self):
        # the map is replaced by the active org: ORG_A in the map no longer counts
        self.expect_deny("GET", "/api/org/%s/member" % ORG_A, 403, token=self.active_org_token(),
                         reason="not_member")

    def test_active_org_minted(self):
        tok = H.mint("u-active2", email="a2@example.com",
                     orgs=[ORG_A + ":Org A:Member", ORG_B + ":Org B:Admin:can_view_billing"],
                     active_org=ORG_B)
        claims = H.decode_claims(tok)
        self.assertTrue(claims.get("org_member_info"), "mint --active-org made no "
                        "org_member_info: %r" % claims)
        self.allow_identity("/api/org/%s/member" % ORG_B, tok, ORG_B)
        self.expect_deny("GET", "/api/org/%s/member" % ORG_A, 403, token=tok)

    def test_user_role_null_entry_is_not_membership(self):
        a = H.org_entry(ORG_A, "Member")
        n = H.org_entry(ORG_X, "Owner")
        n["user_role"] = None
        tok = H.token(user_id="u-null", orgs=[a, n])
        self.expect_deny("GET", "/api/org/%s/member" % ORG_X, 403, token=tok, reason="not_member")
        rec = self.allow_identity("/api/org/%s/member" % ORG_A, tok, ORG_A)
        self.assertNotIn(ORG_X, rec["x_user"]["org_id_to_org_member_info"])

    # -- identity content ----------------------------------------------------

    def test_identity_full_user_fields(self):
        b = H.org_entry(ORG_B, "Admin", name="Acme \"Inc\"", perms=["can_view_billing", "read"],
                        metadata={"plan": "pro", "n": 3}, url_safe="acme-inc", legacy="legacy-9")
        tok = H.token(user_id="31c41c16-c281-44ae-9602-8a047e3bf33d", email="alice@example.com",
                      orgs=[b], extra={
                          "first_name": "Alice", "last_name": "Ng", "username": None,
                          "properties": {"tier": "gold", "nested": {"a": [1, 2]}},
                          "legacy_user_id": "legacy-u", "impersonator_user_id": "imp-1",
                          "login_method": {"login_method": "saml_sso", "provider": "Okta",
                                           "org_id": ORG_B},
                          "metadata": {"ignored": True}, "aud": "whatever", "sub": "s",
                          "jti": "j"})
        self.allow_identity("/api/org/%s/billing" % ORG_B, tok, ORG_B)
        self.allow_identity("/api/whoami", tok)

    def test_identity_without_email_or_login_method(self):
        tok = H.token(user_id="u-bare", email=None, orgs=None)
        rec = self.allow_identity("/api/whoami", tok)
        self.assertIsNone(rec["x_user"]["email"])
        self.assertIsNone(rec["x_user"]["org_id_to_org_member_info"])
        self.assertEqual(rec["x_user"]["login_method"], {"login_method": "unknown"})

    def test_identity_org_map_null_is_null(self):
        c = H.claims_for(user_id="u-nullmap")
        c["org_id_to_org_member_info"] = None
        tok = H.craft(c)
        rec = self.allow_identity("/api/whoami", tok)
        self.assertIsNone(rec["x_user"]["org_id_to_org_member_info"])

    def test_F56_identity_escaping_stays_one_clean_header(self):
        nasty = "q\"uote \\ back\nnew\rline \u00e9 \U0001F600 </script>"
        b = H.org_entry(ORG_B, "Admin", name=nasty, perms=["can_view_billing"],
                        metadata={"k": nasty})
        tok = H.token(user_id="u-esc", email="e@example.com", orgs=[b],
                      extra={"first_name": nasty, "properties": {"big": "x" * 2000}})
        self.allow_identity("/api/org/%s/billing" % ORG_B, tok, ORG_B)
