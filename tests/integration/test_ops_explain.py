"""`authgate explain` (issue 6): the offline decision for allow, 401, 403, 404
and 405, in text and --json, with exit codes 0 allow / 1 deny / 2 usage; and
the same decision, reason and X-User / X-Org bytes as the running daemon gives
for the same request with the same file."""

import json
import os
import subprocess

import harness as H
import ops_helpers as O

ORG = "0a1b2c3d-1111-4000-8000-000000000011"
ORG2 = "0a1b2c3d-2222-4000-8000-000000000022"


def explain_routes():
    return [
        {"path": "/healthz", "methods": ["GET", "HEAD"], "policy": "public"},
        {"path": "/api/whoami", "policy": "require_user"},
        {"path": "/api/feed", "policy": "optional_user"},
        {"path": "/api/org/{org_id}", "methods": ["GET"], "policy": "require_org_member"},
        {"path": "/api/org/{org_id}", "methods": ["DELETE"],
         "policy": "require_org_member_with_exact_role", "role": "Owner"},
        {"path": "/api/org/{org_id}/admin/**", "policy": "require_org_member_with_minimum_role",
         "role": "Admin"},
        {"path": "/api/org/{org_id}/{page}", "policy": "require_org_member"},
        {"path": "/api/reports", "org_id_from": "query",
         "policy": "require_org_member_with_all_permissions",
         "permissions": ["can_view_billing", "can_view_reports"]},
        {"path": "/api/by-header", "org_id_from": "header:X-Tenant",
         "policy": "require_org_member_with_permission", "permission": "can_view_billing"},
    ]


class Explain(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        return O.base_config(echo, explain_routes())

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.gw is None:
            return
        cls.member = H.mint("u-member", email="m@example.com",
                            orgs=[ORG + ":Org One:Member", ORG2 + ":Org Two:Admin:can_view_billing"])
        cls.owner = H.mint("u-owner", email="o@example.com",
                           orgs=[ORG + ":Org One:Owner:can_view_billing,can_view_reports"])

    def explain(self, *args, token=None, headers=(), json_out=False, expect_rc=None):
        argv = [H.authgate_bin(), "explain", "-c", self.gw.config]
        if token is not None:
            argv += ["--token", token]
        for h in headers:
            argv += ["--header", h]
        if json_out:
            argv.append("--json")
        argv += list(args)
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        out, err = r.stdout.decode(), r.stderr.decode()
        if expect_rc is not None:
            self.assertEqual(r.returncode, expect_rc, "explain %s: rc %d\nstdout:\n%s\nstderr:\n%s"
                             % (args, r.returncode, out, err))
        if token is not None and len(token) > 20:
            self.assertNotIn(token, out + err, "explain printed the token")
            self.assertNotIn(token.split(".")[2], out + err, "explain printed the signature")
        return r.returncode, out, err

    def explain_json(self, method, target, token=None, headers=(), expect_rc=None):
        rc, out, _ = self.explain(method, target, token=token, headers=headers, json_out=True,
                                  expect_rc=expect_rc)
        lines = out.splitlines()
        self.assertEqual(len(lines), 1, "--json prints one line: %r" % out)
        return rc, json.loads(lines[0])

    # text ------------------------------------------------------------------

    def test_allow_text(self):
        rc, out, _ = self.explain("GET", "/api/org/%s" % ORG, token=self.member, expect_rc=0)
        self.assertIn("request:   GET /api/org/%s\n" % ORG, out)
        self.assertIn("canonical: /api/org/%s\n" % ORG, out)
        # both same-shaped routes are listed, the GET one chosen
        cands = [l for l in out.splitlines() if l.startswith("  ") and "/api/org/{org_id}" in l]
        self.assertEqual(len([l for l in cands if l.lstrip().startswith("=>")]), 1, out)
        chosen = [l for l in cands if l.lstrip().startswith("=>")][0]
        self.assertRegex(chosen, r"=> /api/org/\{org_id\} +GET +require_org_member \(.*:\d+\)$")
        self.assertTrue(any("DELETE" in l and "exact_role" in l for l in cands), out)
        self.assertRegex(out, r"\nroute:     /api/org/\{org_id\} \(.*config\.yaml:\d+:\d+\)\n")
        self.assertIn("policy:    require_org_member\n", out)
        self.assertIn("org id:    %s from path parameter {org_id}\n" % ORG, out)
        self.assertIn("token:     valid, user u-member\n", out)
        self.assertIn("  [pass] token valid\n", out)
        self.assertIn("  [pass] user is a member of the org\n", out)
        self.assertNotIn("[FAIL]", out)
        self.assertIn("decision:  ALLOW: forwarded to upstream app\n", out)
        claims = H.decode_claims(self.member)
        xu = [l for l in out.splitlines() if l.startswith("X-User: ")]
        xo = [l for l in out.splitlines() if l.startswith("X-Org: ")]
        self.assertEqual(len(xu), 1, out)
        self.assertEqual(json.loads(xu[0][8:]), H.expected_user(claims))
        orgs, _ = H.expected_orgs(claims)
        self.assertEqual(json.loads(xo[0][7:]), orgs[ORG])

    def test_401_text(self):
        rc, out, _ = self.explain("GET", "/api/whoami", expect_rc=1)
        self.assertIn("token:     none\n", out)
        self.assertIn("  [FAIL] bearer token present\n", out)
        self.assertIn("decision:  DENY: 401 unauthorized (token_missing)\n", out)
        self.assertNotIn("X-User:", out)
        # an expired token, by moving the clock with --now
        exp = H.decode_claims(self.member)["exp"]
        rc, out, _ = self.explain("--now", str(exp + 3600), "GET", "/api/whoami",
                                  token=self.member, expect_rc=1)
        self.assertIn("token:     rejected (token_expired)\n", out)
        self.assertIn("  [FAIL] token valid\n", out)
        self.assertIn("decision:  DENY: 401 unauthorized (token_expired)\n", out)

    def test_403_text(self):
        rc, out, _ = self.explain("GET", "/api/org/%s/admin/users" % ORG, token=self.member,
                                  expect_rc=1)
        self.assertIn("policy:    require_org_member_with_minimum_role role=Admin\n", out)
        self.assertIn("  [pass] token valid\n", out)
        self.assertIn("  [pass] user is a member of the org\n", out)
        self.assertRegex(out, r"\n  \[FAIL\] [^\n]*role[^\n]*\n")
        self.assertIn("decision:  DENY: 403 forbidden (role_below_minimum)\n", out)
        # not a member at all: the membership check is the one that fails
        rc, out, _ = self.explain("DELETE", "/api/org/%s" % ORG2, token=self.owner, expect_rc=1)
        self.assertIn("  [FAIL] user is a member of the org\n", out)
        self.assertIn("decision:  DENY: 403 forbidden (not_member)\n", out)

    def test_404_text(self):
        rc, out, _ = self.explain("GET", "/nothing/here", token=self.member, expect_rc=1)
        self.assertIn("routes matching the path (most specific first):\n  (none)\n", out)
        self.assertIn("decision:  DENY: 404 not_found (no_route)\n", out)
        self.assertNotIn("\nroute:", out)

    def test_405_text(self):
        rc, out, _ = self.explain("POST", "/healthz", expect_rc=1)
        self.assertRegex(out, r"\n     /healthz +GET, HEAD +public ")
        self.assertIn("decision:  DENY: 405 method_not_allowed (method_not_allowed)\n", out)
        self.assertIn("allow:     GET, HEAD\n", out)

    def test_org_from_query_and_header(self):
        rc, out, _ = self.explain("GET", "/api/reports?org_id=%s" % ORG, token=self.owner,
                                  expect_rc=0)
        self.assertIn("org id:    %s from query parameter org_id\n" % ORG, out)
        self.assertIn("permissions=can_view_billing,can_view_reports", out)
        rc, out, _ = self.explain("GET", "/api/reports?org_id=%s" % ORG, token=self.member,
                                  expect_rc=1)
        self.assertIn("(missing_permission)", out)
        rc, out, _ = self.explain("GET", "/api/by-header", token=self.member,
                                  headers=["X-Tenant: " + ORG2], expect_rc=0)
        self.assertIn("org id:    %s from header X-Tenant\n" % ORG2, out)
        rc, out, _ = self.explain("GET", "/api/by-header", token=self.member, expect_rc=1)
        self.assertIn("org id:    (absent) from header X-Tenant\n", out)
        self.assertIn("DENY: 403 forbidden (org_id_missing)", out)

    def test_token_file(self):
        path = os.path.join(H.new_tmp("tok-"), "token.txt")
        with open(path, "w") as f:
            f.write(self.owner + "\n")
        rc, out, _ = self.explain("--token-file", path, "DELETE", "/api/org/%s" % ORG,
                                  expect_rc=0)
        self.assertIn("token:     valid, user u-owner\n", out)
        self.assertIn("policy:    require_org_member_with_exact_role role=Owner\n", out)

    def test_compared_values_text(self):
        """Issue 13: explain shows the values each failed check compared."""
        exp = H.decode_claims(self.member)["exp"]
        now = exp + 3600
        rc, out, _ = self.explain("--now", str(now), "GET", "/api/whoami", token=self.member,
                                  expect_rc=1)
        self.assertIn("claims (now %d, leeway 60 s):\n" % now, out)
        self.assertRegex(out, r"\n  exp  %d \(\d{4}-\d\d-\d\dT[0-9:]+Z\) must be after now - "
                         r"leeway = %d: FAIL\n" % (exp, now - 60))
        self.assertRegex(out, r"\n  iat  \d+ .*: pass\n")
        # the issuer, against the configured one
        c = H.claims_for(user_id="u-iss", issuer="https://evil.example")
        rc, out, _ = self.explain("GET", "/api/whoami", token=H.craft(c), expect_rc=1)
        self.assertIn('  iss  "https://evil.example" vs configured "%s": FAIL\n' % H.ISSUER, out)
        self.assertIn("(token_issuer)", out)
        # nbf in the future, beyond the leeway
        c = H.claims_for(user_id="u-nbf", extra={"nbf": H.now() + 600})
        rc, out, _ = self.explain("GET", "/api/whoami", token=H.craft(c), expect_rc=1)
        self.assertRegex(out, r"\n  nbf  %d .*must be at most now \+ leeway = \d+: FAIL\n"
                         % c["nbf"])
        # roles: the user's role and inherited roles against the required one
        rc, out, _ = self.explain("GET", "/api/org/%s/admin/users" % ORG, token=self.member,
                                  expect_rc=1)
        self.assertIn("org %s:\n  role: Member\n  inherited roles plus current: Member\n"
                      "  required role: Admin (at least): FAIL\n" % ORG, out)
        rc, out, _ = self.explain("DELETE", "/api/org/%s" % ORG, token=self.member, expect_rc=1)
        self.assertIn("  required role: Owner (exactly): FAIL\n", out)
        # permissions: which are missing
        rc, out, _ = self.explain("GET", "/api/reports?org_id=%s" % ORG2, token=self.member,
                                  expect_rc=1)
        self.assertIn("  permissions: can_view_billing\n  missing: can_view_reports\n", out)
        rc, out, _ = self.explain("GET", "/api/reports?org_id=%s" % ORG, token=self.owner,
                                  expect_rc=0)
        self.assertIn("  missing: (none)\n", out)

    def test_compared_values_json(self):
        exp = H.decode_claims(self.member)["exp"]
        rc, j = self.explain_json("GET", "/api/reports?org_id=%s" % ORG2, token=self.member,
                                  expect_rc=1)
        t, o = j["compared"]["token"], j["compared"]["org"]
        self.assertEqual((t["exp"], t["exp_ok"], t["iss"], t["issuer"], t["iss_ok"], t["leeway"]),
                         (exp, True, H.ISSUER, H.ISSUER, True, 60))
        self.assertIsNone(t["nbf"])
        self.assertEqual(o["org_id"], ORG2)
        self.assertEqual(o["role"], "Admin")
        self.assertEqual(o["inherited_roles"], ["Admin", "Member"])
        self.assertEqual(o["permissions"], ["can_view_billing"])
        self.assertEqual(o["required_permissions"], ["can_view_billing", "can_view_reports"])
        self.assertEqual(o["missing_permissions"], ["can_view_reports"])
        rc, out, _ = self.explain("--now", str(exp + 3600), "GET", "/api/whoami",
                                  token=self.member, json_out=True, expect_rc=1)
        j = json.loads(out)
        self.assertEqual((j["compared"]["token"]["exp_ok"], j["compared"]["token"]["now"]),
                         (False, exp + 3600))
        self.assertIsNone(j["compared"]["org"])
        # no token, nothing compared
        rc, j = self.explain_json("GET", "/api/whoami", expect_rc=1)
        self.assertEqual(j["compared"], {"token": None, "org": None})

    def test_big_integers_in_x_user(self):
        c = H.claims_for(user_id="u-big", exp=99999999999999999999,
                         extra={"properties": {"n": 12345678901234567890}})
        rc, j = self.explain_json("GET", "/api/whoami", token=H.craft(c), expect_rc=0)
        self.assertIn('"properties":{"n":12345678901234567890}', j["x_user_raw"])
        self.assertEqual(j["compared"]["token"]["exp"], 2 ** 63 - 1)

    # --json ----------------------------------------------------------------

    def test_json_outcomes(self):
        claims = H.decode_claims(self.member)
        rc, j = self.explain_json("GET", "/api/org/%s" % ORG, token=self.member, expect_rc=0)
        self.assertEqual((j["decision"], j["reason"], j["route"], j["policy"], j["org_id"]),
                         ("allow", "ok", "/api/org/{org_id}", "require_org_member", ORG))
        self.assertEqual(j["x_user"], H.expected_user(claims))
        self.assertEqual(j["x_org"], H.expected_orgs(claims)[0][ORG])
        self.assertEqual(json.loads(j["x_user_raw"]), j["x_user"])
        rows = [
            (("GET", "/api/whoami", None), (401, "token_missing", "/api/whoami", "require_user")),
            (("GET", "/api/whoami", "x.y.z"), (401, "token_malformed", "/api/whoami",
                                               "require_user")),
            (("GET", "/api/org/%s/admin/x" % ORG, self.member),
             (403, "role_below_minimum", "/api/org/{org_id}/admin/**",
              "require_org_member_with_minimum_role")),
            (("DELETE", "/api/org/%s" % ORG, self.member),
             (403, "role_mismatch", "/api/org/{org_id}", "require_org_member_with_exact_role")),
            (("GET", "/nope", None), (404, "no_route", None, None)),
            (("PUT", "/healthz", None), (405, "method_not_allowed", None, None)),
        ]
        for (method, target, tok), want in rows:
            with self.subTest(target=target, method=method):
                rc, j = self.explain_json(method, target, token=tok, expect_rc=1)
                self.assertEqual(j["decision"], "deny")
                self.assertEqual((j["status"], j["reason"], j["route"], j["policy"]), want)
                self.assertIsNone(j["x_user"])
                self.assertIsNone(j["x_org"])
        rc, j = self.explain_json("GET", "/api/whoami", token="x.y.z", expect_rc=1)
        self.assertEqual(j["token_reason"], "token_malformed")

    def test_batch_matches_single_runs(self):
        reqs = [
            {"method": "GET", "target": "/api/org/%s" % ORG,
             "headers": [["Authorization", "Bearer " + self.member]]},
            {"method": "GET", "target": "/api/whoami"},
            {"method": "GET", "target": "/api/by-header",
             "headers": [["Authorization", "Bearer " + self.member], ["X-Tenant", ORG2]]},
            {"method": "POST", "target": "/healthz"},
            {"bad": "line"},
        ]
        inp = "".join(json.dumps(r) + "\n" for r in reqs)
        r = subprocess.run([H.authgate_bin(), "explain", "-c", self.gw.config, "--batch"],
                           input=inp.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=20)
        lines = [json.loads(l) for l in r.stdout.decode().splitlines()]
        self.assertEqual(len(lines), len(reqs))
        self.assertEqual(lines[-1], {"error": "bad input line"})
        self.assertEqual(r.returncode, 2, "a bad input line makes the batch exit 2")
        self.assertEqual([(l["decision"], l["status"], l["reason"]) for l in lines[:4]],
                         [("allow", 0, "ok"), ("deny", 401, "token_missing"),
                          ("allow", 0, "ok"), ("deny", 405, "method_not_allowed")])
        _, single = self.explain_json("GET", "/api/org/%s" % ORG, token=self.member)
        self.assertEqual(lines[0], single)

    # usage -----------------------------------------------------------------

    def test_usage_errors_exit_2(self):
        for args in (["GET"], ["GET", "/a", "extra"], ["--header", "no colon", "GET", "/a"],
                     ["--token-file", "/nonexistent/tok", "GET", "/a"]):
            with self.subTest(args=args):
                rc, out, err = self.explain(*args)
                self.assertEqual(rc, 2, "rc for %r: %s %s" % (args, out, err))
                self.assertEqual(out, "")
                self.assertNotEqual(err, "")
        r = subprocess.run([H.authgate_bin(), "explain", "GET", "/a"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 2, "no -c")
        bad = os.path.join(H.new_tmp("bad-"), "bad.yaml")
        with open(bad, "w") as f:
            f.write("routes: [\n")
        r = subprocess.run([H.authgate_bin(), "explain", "-c", bad, "GET", "/a"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 2, "broken config")
        self.assertRegex(r.stderr.decode(), r"bad\.yaml:\d+:\d+: ")

    # explain == daemon -----------------------------------------------------

    def test_explain_agrees_with_the_daemon(self):
        """Same file, same request: same status, same reason, and on allow the
        very bytes of X-User / X-Org the upstream received."""
        cases = [
            ("GET", "/healthz", self.member, []),
            ("GET", "/api/whoami", None, []),
            ("GET", "/api/whoami", self.member, []),
            ("GET", "/api/whoami", "x.y.z", []),
            ("GET", "/api/feed", None, []),
            ("GET", "/api/feed", self.member, []),
            ("GET", "/api/feed", "x.y.z", []),
            ("GET", "/api/org/%s" % ORG, self.member, []),
            ("GET", "/api/org/%s" % ORG2, self.owner, []),
            ("DELETE", "/api/org/%s" % ORG, self.owner, []),
            ("DELETE", "/api/org/%s" % ORG, self.member, []),
            ("GET", "/api/org/%s/admin/a/b" % ORG2, self.member, []),
            ("GET", "/api/org/%s/settings" % ORG, self.member, []),
            ("GET", "/api/reports?org_id=%s" % ORG, self.owner, []),
            ("GET", "/api/reports", self.owner, []),
            ("GET", "/api/by-header", self.member, ["X-Tenant: " + ORG2]),
            ("GET", "/api/by-header", self.member, ["X-Tenant: " + ORG]),
            ("GET", "/nope", None, []),
            ("PATCH", "/healthz", None, []),
        ]
        seen = []
        for method, target, tok, hdrs in cases:
            with self.subTest(method=method, target=target, token=tok is not None):
                rc, j = self.explain_json(method, target, token=tok, headers=hdrs)
                seen.append(j["status"])
                before = self.echo.count()
                h = [tuple(x.split(": ", 1)) for x in hdrs]
                r = self.req(method, target, headers=h, token=tok)
                if j["decision"] == "allow":
                    self.assertEqual(rc, 0)
                    self.assertEqual(r.status, 200, "explain allows, daemon says %r" % r)
                    rec = self.echo.wait_new(before, 1)[0]
                    self.assertEqual(rec["headers"].get("x-user"), j["x_user_raw"])
                    want_org = json.dumps(j["x_org"], separators=(",", ":")) \
                        if j["x_org"] is not None else None
                    got_org = rec["headers"].get("x-org")
                    self.assertEqual(json.loads(got_org) if got_org else None, j["x_org"])
                    if got_org:
                        self.assertEqual(got_org, want_org)
                else:
                    self.assertEqual(rc, 1)
                    self.assertEqual(r.status, j["status"])
                    self.assertEqual(r.json()["reason"], j["reason"])
        self.assertEqual(sorted(set(seen)), [0, 401, 403, 404, 405], "outcomes covered")
        self.assertGreaterEqual(seen.count(0), 8)
