"""CORS as configuration (issue 14): preflights on a route with cors are
answered by the gateway without a token and never forwarded (204, or 403 with
a cors_* reason); actual answers, proxied or the gateway's own errors, carry
Access-Control-Allow-Origin only for an allowed origin, and Vary: Origin."""

import os
import subprocess
import unittest

import harness as H
from test_policies import ORG_A, minted

ORIGIN = "https://app.example.com"
SUB = "https://a.b.example.com"


class Cors(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        return {
            "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
            "upstreams": {"app": {"url": echo.url}},
            "cors": {
                "allowed_origins": [ORIGIN, "https://*.example.com"],
                "allowed_methods": ["GET", "POST"],
                "allow_credentials": True,
                "exposed_headers": ["X-Echo-H0"],
                "max_age": 120,
            },
            "routes": [
                {"path": "/api/org/{org_id}/**", "policy": "require_org_member"},
                {"path": "/public/**", "policy": "public", "cors": {"allowed_origins": []}},
                {"path": "/open/**", "policy": "public",
                 "cors": {"allowed_origins": ["*"], "allow_credentials": False}},
            ],
        }

    def preflight(self, path, origin, method="GET", headers="authorization"):
        h = [("Origin", origin), ("Access-Control-Request-Method", method)]
        if headers is not None:
            h.append(("Access-Control-Request-Headers", headers))
        before = self.echo.count()
        r = self.req("OPTIONS", path, h)
        self.assertEqual(self.echo.count(), before, "a preflight reached the upstream")
        return r

    def test_preflight_allowed_without_token(self):
        for origin in (ORIGIN, SUB):
            with self.subTest(origin=origin):
                r = self.preflight("/api/org/%s/items" % ORG_A, origin, "POST",
                                   "authorization, content-type")
                self.assertEqual(r.status, 204, r)
                self.assertEqual(r.body, b"")
                self.assertEqual(r.header("Access-Control-Allow-Origin"), origin)
                self.assertEqual(r.header("Access-Control-Allow-Credentials"), "true")
                self.assertEqual(r.header("Access-Control-Allow-Methods"), "POST")
                self.assertEqual(r.header("Access-Control-Allow-Headers"),
                                 "authorization, content-type")
                self.assertEqual(r.header("Access-Control-Max-Age"), "120")
                self.assertIn("Origin", r.header_all("Vary"))

    def test_preflight_refusals(self):
        path = "/api/org/%s/items" % ORG_A
        cases = [
            ("https://evil-example.com", "GET", "authorization", "cors_origin_denied"),
            ("https://example.com.evil.net", "GET", None, "cors_origin_denied"),
            ("https://example.com", "GET", None, "cors_origin_denied"),
            ("http://app.example.com", "GET", None, "cors_origin_denied"),
            ("null", "GET", None, "cors_origin_denied"),
            (ORIGIN, "DELETE", None, "cors_method_denied"),
            (ORIGIN, "GET", "authorization, x-secret", "cors_headers_denied"),
        ]
        for origin, method, hdrs, reason in cases:
            with self.subTest(origin=origin, method=method, headers=hdrs):
                r = self.preflight(path, origin, method, hdrs)
                self.assertEqual(r.status, 403, r)
                self.assertEqual(r.json(), {"error": "forbidden", "reason": reason})
                self.assertIsNone(r.header("Access-Control-Allow-Origin"))

    def test_actual_request_allowed_origin(self):
        tok = minted("member_a")
        r, rec = self.expect_allow("GET", "/api/org/%s/__echo/headers/1" % ORG_A,
                                   {"Origin": ORIGIN}, token=tok)
        self.assertEqual(r.header_all("Access-Control-Allow-Origin"), [ORIGIN])
        self.assertEqual(r.header("Access-Control-Allow-Credentials"), "true")
        self.assertEqual(r.header("Access-Control-Expose-Headers"), "X-Echo-H0")
        self.assertIn("Origin", r.header_all("Vary"))
        self.assertEqual(rec["headers"].get("origin"), ORIGIN)

    def test_upstream_cors_headers_replaced(self):
        tok = minted("member_a")
        r, _ = self.expect_allow(
            "GET", "/api/org/%s/__echo/header/Access-Control-Allow-Origin/*" % ORG_A,
            {"Origin": ORIGIN}, token=tok)
        self.assertEqual(r.header_all("Access-Control-Allow-Origin"), [ORIGIN])

    def test_gateway_errors_readable_by_the_page(self):
        r = self.expect_deny("GET", "/api/org/%s/items" % ORG_A, 401, {"Origin": SUB},
                             reason="token_missing")
        self.assertEqual(r.header("Access-Control-Allow-Origin"), SUB)
        self.assertEqual(r.header("Access-Control-Allow-Credentials"), "true")

    def test_foreign_origin_never_reflected(self):
        tok = minted("member_a")
        for h in ({"Origin": "https://evil.test"}, [("Origin", ORIGIN), ("Origin", ORIGIN)], {}):
            with self.subTest(headers=h):
                r, _ = self.expect_allow("GET", "/api/org/%s/x" % ORG_A, h, token=tok)
                self.assertIsNone(r.header("Access-Control-Allow-Origin"))
                self.assertIsNone(r.header("Access-Control-Allow-Credentials"))
                self.assertIn("Origin", r.header_all("Vary"))

    def test_route_without_cors_forwards_options(self):
        # cors off for the route: an OPTIONS is an ordinary request (public here)
        before = self.echo.count()
        r = self.req("OPTIONS", "/public/x", [("Origin", ORIGIN),
                                              ("Access-Control-Request-Method", "GET")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(self.echo.wait_new(before, 1)), 1)
        self.assertIsNone(r.header("Access-Control-Allow-Origin"))

    def test_star_route(self):
        r = self.preflight("/open/x", "https://anyone.test", "GET", None)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "*")
        self.assertIsNone(r.header("Access-Control-Allow-Credentials"))
        r, _ = self.expect_allow("GET", "/open/x", {"Origin": "https://anyone.test"})
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "*")


class CorsCheck(unittest.TestCase):
    """authgate check refuses what would make CORS unsafe or unclear."""

    def setUp(self):
        miss = H.missing_binaries()
        if miss:
            self.skipTest("not built: %s (run make)" % ", ".join(miss))
        self.dir = H.new_tmp("corscheck-")

    def check(self, cors, route_extra=None):
        cfg = {
            "listen": "127.0.0.1:18080",
            "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
            "upstreams": {"app": {"url": "http://127.0.0.1:9000"}},
            "routes": [dict({"path": "/api/**", "policy": "public"}, **(route_extra or {}))],
        }
        if cors is not None:
            cfg["cors"] = cors
        p = os.path.join(self.dir, "c%d.yaml" % len(os.listdir(self.dir)))
        with open(p, "w") as f:
            f.write(H.to_yaml(cfg) + "\n")
        r = subprocess.run([H.authgate_bin(), "check", "-c", p], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        return r.returncode, r.stdout.decode()

    def test_refusals(self):
        cases = [
            ({"allowed_origins": ["*"], "allow_credentials": True}, None, "allow_credentials"),
            ({"allowed_origins": ["null"]}, None, "cannot be allowed"),
            ({"allowed_origins": ["https://app.example.com/"]}, None, "is not an origin"),
            ({"allowed_origins": ["https://a.*.example.com"]}, None, "is not an origin"),
            ({"allowed_origins": ["app.example.com"]}, None, "is not an origin"),
            ({"allowed_origins": [ORIGIN], "max_age": 100000}, None, "max_age"),
            ({"allowed_origins": [ORIGIN], "allowed_methods": ["FETCH"]}, None, "unknown method"),
            ({"allowed_origins": [ORIGIN], "allowed_headers": ["Bad Name"]}, None,
             "not a header name"),
            ({"alowed_origins": [ORIGIN]}, None, 'did you mean "allowed_origins"'),
            ({"allowed_origins": [ORIGIN], "allow_credentials": True},
             {"cors": {"allowed_origins": ["*"]}}, "allow_credentials"),
            ({"allowed_origins": [ORIGIN]},
             {"response_headers": {"set": {"Access-Control-Allow-Origin": "*"}}},
             "set by the route's cors"),
        ]
        for cors, extra, want in cases:
            with self.subTest(cors=cors, route=extra):
                rc, out = self.check(cors, extra)
                self.assertEqual(rc, 1, out)
                self.assertIn(want, out)

    def test_accepted(self):
        rc, out = self.check({"allowed_origins": [ORIGIN, "https://*.example.com",
                                                  "http://localhost:3000"],
                              "allowed_methods": ["GET", "POST"], "allow_credentials": True,
                              "allowed_headers": ["Authorization", "X-Trace"],
                              "exposed_headers": ["ETag"], "max_age": 0},
                             {"cors": {"allow_credentials": False, "allowed_origins": ["*"]}})
        self.assertEqual(rc, 0, out)
        # a route may set Access-Control-* itself when it has no cors
        rc, out = self.check(None, {"response_headers": {"set": {"Access-Control-Max-Age": "5"}}})
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main()
