"""Error responses: JSON {"error","reason"}, application/json, WWW-Authenticate
on 401, 404 for no route, 405 with Allow, and bodies that never echo request
bytes (issue 2, "Errors")."""

import json

import harness as H
from test_policies import ORG_A, ORG_B, ORG_X, minted, policy_config, route

MARK = "ZqXmarkerQ7"


class ErrorFormat(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        return policy_config(echo, extra_routes=[
            route("/get-only", "public", methods=["GET"]),
            route("/get-post", "require_user", methods=["GET", "POST"]),
        ])

    def assert_no_echo(self, r):
        self.assertNotIn(MARK.encode(), r.body, "error body echoes request bytes: %r" % r.body)
        for k, v in r.headers:
            self.assertNotIn(MARK, v, "response header %s echoes request bytes" % k)

    def test_401_no_token_format(self):
        r = self.expect_deny("GET", "/api/whoami", 401, reason="token_missing")
        www = r.header("WWW-Authenticate")
        self.assertNotIn("invalid_token", www, "no token was sent, so no error=invalid_token")

    def test_401_invalid_token_has_invalid_token_challenge(self):
        self.expect_deny("GET", "/api/whoami", 401, token="abc.def.ghi" + MARK)

    def test_401_expired_reason(self):
        self.expect_deny("GET", "/api/whoami", 401, token=minted("expired"),
                         reason="token_expired")

    def test_401_wrong_key_reason(self):
        self.expect_deny("GET", "/api/whoami", 401, token=minted("other_key"),
                         reason="token_signature")

    def test_401_wrong_issuer_reason(self):
        tok = H.token(user_id="u1", issuer="http://auth.test.local")
        self.expect_deny("GET", "/api/whoami", 401, token=tok, reason="token_issuer")

    def test_401_bad_scheme_reason(self):
        r = self.expect_deny("GET", "/api/whoami", 401,
                             headers={"Authorization": "token " + minted("admin_b")})
        self.assertIn(r.json()["reason"], ("auth_header_invalid", "token_missing"))

    def test_403_format_and_reasons(self):
        tok = minted("multi_orgs")
        self.expect_deny("GET", "/api/reports", 403, token=tok, reason="org_id_missing")
        self.expect_deny("GET", "/api/org/%s/member" % ORG_X, 403, token=tok, reason="not_member")
        r = self.expect_deny("GET", "/api/org/%s/member" % ORG_X, 403, token=tok)
        self.assertIsNone(r.header("WWW-Authenticate"), "403 must not carry a Bearer challenge")

    def test_bodies_never_echo_request_bytes(self):
        cases = [
            ("GET", "/api/whoami?q=" + MARK, {"X-Trace": MARK}, None, 401),
            ("GET", "/api/whoami", None, "bad" + MARK + ".x.y", 401),
            ("GET", "/api/org/%s/member" % (ORG_X + MARK), None, minted("member_a"), 403),
            ("GET", "/api/reports?org_id=" + ORG_X + "&" + MARK + "=1", None, minted("member_a"),
             403),
            ("GET", "/nope/" + MARK, None, None, 404),
            ("POST", "/get-only?" + MARK, None, None, 405),
        ]
        for method, path, hdrs, tok, status in cases:
            with self.subTest(path=path):
                r = self.req(method, path, headers=hdrs, token=tok)
                self.assertEqual(r.status, status, r)
                H.check_error_response(self, r, status, token_sent=tok is not None)
                self.assert_no_echo(r)

    def test_404_no_route(self):
        before = self.echo.count()
        for path in ("/nope", "/api", "/api/whoami/extra", "/api/org/%s" % ORG_A,
                     "/api/org/%s/member/x" % ORG_A):
            with self.subTest(path=path):
                r = self.req("GET", path)
                self.assertEqual(r.status, 404, r)
                H.check_error_response(self, r, 404)
        self.assertEqual(self.echo.count(), before)

    def test_405_with_allow(self):
        before = self.echo.count()
        r = self.req("POST", "/get-only", body=b"x")
        self.assertEqual(r.status, 405, r)
        H.check_error_response(self, r, 405)
        allow = [m.strip() for m in (r.header("Allow") or "").split(",") if m.strip()]
        self.assertIn("GET", allow, "Allow header: %r" % r.header("Allow"))
        self.assertNotIn("POST", allow)
        r = self.req("DELETE", "/get-post", token=minted("admin_b"))
        self.assertEqual(r.status, 405, r)
        allow = [m.strip() for m in (r.header("Allow") or "").split(",") if m.strip()]
        self.assertTrue({"GET", "POST"} <= set(allow), "Allow header: %r" % r.header("Allow"))
        self.assertEqual(self.echo.count(), before, "405 reached the upstream")

    def test_405_route_methods_allow_listed_ones(self):
        _, rec = self.expect_allow("POST", "/get-post", body=b"{}", token=minted("admin_b"))
        self.assertEqual(rec["method"], "POST")

    def test_error_bodies_are_small_json_objects(self):
        for method, path, status in (("GET", "/api/whoami", 401), ("GET", "/zzz", 404)):
            r = self.req(method, path)
            self.assertEqual(r.status, status)
            obj = json.loads(r.body)
            self.assertLessEqual(set(obj), {"error", "reason", "request_id", "message"},
                                 "unexpected keys in error body: %r" % obj)
            self.assertLess(len(r.body), 512)

    def test_404_unknown_path_even_with_valid_token(self):
        # routing happens before auth: an unknown path is 404 with or without a token
        r = self.req("GET", "/api/org/%s/unknown" % ORG_B, token=minted("admin_b"))
        self.assertEqual(r.status, 404, r)
