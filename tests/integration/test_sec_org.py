"""docs/security.md groups D (org id sources, parameter pollution) and E
(authorization semantics under attack) through the real daemon: raw targets,
exact status and reason, and what the upstream received."""

import harness as H
import sec_check as C
import sec_common as S
from sec_common import ORG_A, ORG_B, ORG_X, r4, r5, r6, r7


class SecOrg(S.SecCase):
    def decide(self, target, status, reason=None, tok=None, method="GET"):
        hdrs = [S.bearer(tok)] if tok is not False else []
        with self.subTest(target=target, status=status):
            self.up.reset()
            data = S.req_bytes(method, target, hdrs)
            if status == 400:
                ex = self.send(data)
                self.assert_closed_after(ex, 400, reason)
                self.assert_upstream_nothing()
            elif status == 200:
                ex = self.send(data, expect=1)
                self.assertEqual(ex.statuses(), [200], ex)
                self.assert_upstream_targets([target])
            else:
                ex = self.send(data, expect=1)
                self.assertEqual(len(ex.responses), 1, ex)
                self.assert_error(ex.first, status, reason)
                self.assert_upstream_nothing()
            return ex

    # -- D ---------------------------------------------------------------------

    def test_D41_repeated_org_id(self):
        self.decide("/api/reports?org_id=%s&org_id=%s" % (ORG_B, ORG_X), 400, "org_id_ambiguous")
        self.decide("/api/reports?org_id=%s&org_id=%s" % (ORG_X, ORG_B), 400, "org_id_ambiguous")
        self.decide("/api/reports?org_id=%s&org_id=%s" % (ORG_B, ORG_B), 400, "org_id_ambiguous")
        self.decide("/api/reports?org_id=%s;org_id=%s" % (ORG_B, ORG_X), 400, "org_id_ambiguous")

    def test_D42_case_variant_keys(self):
        self.decide("/api/reports?ORG_ID=%s&org_id=%s" % (ORG_B, ORG_X), 400, "org_id_ambiguous")
        self.decide("/api/reports?org_id=%s&Org_Id=%s" % (ORG_B, ORG_X), 400, "org_id_ambiguous")
        self.decide("/api/reports?Org_Id=%s" % ORG_B, 403, "org_id_missing")

    def test_D43_encoded_and_degenerate_query_forms(self):
        self.decide("/api/reports?org%%5Fid=%s" % ORG_X, 403, "not_member")
        self.decide("/api/reports?org%%5Fid=%s" % ORG_B, 200)
        self.decide("/api/reports?org%%5Fid=%s&org_id=%s" % (ORG_X, ORG_B), 400,
                    "org_id_ambiguous")
        self.decide("/api/reports?org_id=%s%%26org_id%%3D%s" % (ORG_B, ORG_X), 400,
                    "org_id_invalid")
        self.decide("/api/reports?org_id=+%s" % ORG_B, 400, "org_id_invalid")
        self.decide("/api/reports?org_id=%s%%00" % ORG_B, 400, "org_id_invalid")
        self.decide("/api/reports?org_id", 403, "org_id_missing")
        self.decide("/api/reports?org_id=", 403, "org_id_missing")
        self.decide("/api/reports?org_id=%s&org_id" % ORG_B, 400, "org_id_ambiguous")
        self.decide("/api/reports?&&&org_id=%s" % ORG_B, 200)
        # the token is checked before the org id
        self.decide("/api/reports?org_id=", 401, "token_missing", tok=False)
        self.decide("/api/reports?org_id=%s&org_id=%s" % (ORG_B, ORG_X), 401, "token_missing",
                    tok=False)

    def test_D44_path_and_query_disagree(self):
        self.decide(r4(ORG_B) + "?org_id=" + ORG_X, 400, "org_id_ambiguous")
        self.decide(r4(ORG_B) + "?org%5Fid=" + ORG_X, 400, "org_id_ambiguous")
        self.decide(r4(ORG_B) + "?org_id=" + ORG_B, 200)

    def test_D45_query_never_chooses_the_route(self):
        self.decide(r5(ORG_X) + "?/public/", 403, "not_member")
        self.decide("/public/x?/../../api/org/%s/settings" % ORG_X, 200, tok=False)
        self.decide("/api/me?x=/public", 401, "token_missing", tok=False)

    def test_D47_query_forwarded_byte_for_byte(self):
        self.decide(r6(ORG_B) + "&q=a+b%20c%2B&x=%E2%82%AC&e=&bare&x=%e2%82%ac", 200)

    # -- E ---------------------------------------------------------------------

    def tok_with(self, org_entry, extra_orgs=()):
        claims = H.claims_for(user_id="u-e", orgs=[org_entry] + list(extra_orgs))
        return H.craft(claims)

    def test_E48_near_miss_roles_and_permissions(self):
        for role in ("admin", "Admin ", "ADMIN"):
            t = self.tok_with(H.org_entry(ORG_B, role, inherited=[role]))
            self.decide(r5(ORG_B), 403, "role_below_minimum", tok=t)
        for role in ("owner", "Owner ", "OWNER"):
            t = self.tok_with(H.org_entry(ORG_B, role, inherited=[role, "Admin", "Member"]))
            self.decide(r7(ORG_B), 403, "role_mismatch", tok=t, method="DELETE")
        for perm in ("can_view_billing ", "CAN_VIEW_BILLING", "can_view_billing_x", "can_view",
                     ""):
            t = self.tok_with(H.org_entry(ORG_B, "Admin", perms=[perm]))
            self.decide(r4(ORG_B), 403, "missing_permission", tok=t)
        # multi-role org: the wanted role only in the inherited list is not enough
        t = self.tok_with(H.org_entry(ORG_B, "Member", inherited=["Member", "Admin"],
                                      multi=True, additional=[]))
        self.decide(r5(ORG_B), 403, "role_below_minimum", tok=t)
        # controls: the exact strings pass
        t = self.tok_with(H.org_entry(ORG_B, "Admin", perms=["can_view_billing"]))
        self.decide(r4(ORG_B), 200, tok=t)
        self.decide(r5(ORG_B), 200, tok=t)

    def test_E49_missing_org_id_and_non_members(self):
        self.decide(r6(), 403, "org_id_missing")
        self.decide(r6(ORG_X), 403, "not_member")
        self.decide(r6(ORG_X), 401, "token_missing", tok=False)
        self.decide(r6(), 401, "token_missing", tok=False)
        no_map = H.craft(H.claims_for(user_id="u-e", orgs=None, drop=("org_id_to_org_member_info",)))
        self.decide(r6(ORG_B), 403, "not_member", tok=no_map)
        null_map = H.craft(H.claims_for(user_id="u-e", orgs=None,
                                        extra={"org_id_to_org_member_info": None}))
        self.decide(r6(ORG_B), 403, "not_member", tok=null_map)
        null_role = H.org_entry(ORG_B, "Admin", perms=["can_view_billing"])
        null_role["user_role"] = None
        self.decide(r4(ORG_B), 403, "not_member", tok=self.tok_with(null_role))


class SecPolicyValues(S.unittest.TestCase):
    """E50 through `authgate check`: a policy whose check would be vacuous
    refuses to load with FILE:LINE:COL."""

    def setUp(self):
        if H.missing_binaries():
            self.skipTest("not built")

    def refused(self, routes, needle=None):
        p = C.write("e50", C.base(routes))
        rc, out, diags = C.check(p)
        self.assertEqual(rc, 1, out)
        self.assertTrue(diags, "no FILE:LINE:COL diagnostic: %r" % out)
        if needle:
            self.assertIn(needle, out)
        return out

    def test_E50_vacuous_policy_values_refused(self):
        self.refused("  - path: /api/org/{org_id}/s\n"
                     "    policy: require_org_member_with_minimum_role\n    role: \"\"\n")
        self.refused("  - path: /api/org/{org_id}/s\n"
                     "    policy: require_org_member_with_exact_role\n")
        self.refused("  - path: /api/org/{org_id}/b\n"
                     "    policy: require_org_member_with_permission\n    permission:\n")
        self.refused("  - path: /api/org/{org_id}/b\n"
                     "    policy: require_org_member_with_permission\n    permission: \"\"\n")
        self.refused("  - path: /api/x\n    policy: require_org_member\n")
        self.refused("  - path: /api/x\n    policy: require_org_member\n"
                     "    org_id_from: path:tenant\n")
        self.refused("  - path: /api/x\n    policy: require_user\n    role: Admin\n")

    def test_E50_empty_all_permissions_warns(self):
        p = C.write("e50w", C.base("  - path: /api/org/{org_id}/r\n"
                                   "    policy: require_org_member_with_all_permissions\n"
                                   "    permissions: []\n"))
        rc, out, diags = C.check(p)
        self.assertEqual(rc, 0, out)
        self.assertIn("warning", out)
        self.assertTrue(diags, out)
