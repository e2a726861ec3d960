"""The forward-auth listener (docs/forward-auth.md), called directly the way
each proxy calls it: every policy x {allow, 401, 403} through the nginx
dialect, the same decisions through Traefik's and Envoy's documented
subrequests, equivalence with proxy mode (status, error body, identity JSON),
trust, hostile input, reload, `authgate check` and the access log."""

import json
import os
import signal
import subprocess
import time
import unittest

import fa_common as F
import harness as H
import sec_common as S


def lines_of(path):
    try:
        with open(path) as f:
            return [l for l in f.read().splitlines() if l.startswith('{"ts":')]
    except OSError:
        return []


class ForwardAuth(F.ListenerCase):
    @classmethod
    def config(cls, url, fa_port):
        cls.admin_port = H.free_port()
        cfg = F.config(url, fa_port, dialects=["original", "forwarded", "envoy"],
                       envoy_path_prefix="/ext-authz")
        cfg["admin_listen"] = "127.0.0.1:%d" % cls.admin_port
        return cfg

    # every policy x {allow, 401, 403} ---------------------------------------

    def check_answer(self, a, want, what):
        self.assertEqual(a.status, want, "%s: %r" % (what, a))
        self.assertTrue(a.header("X-Request-Id"), what)
        self.assertEqual(a.header("Cache-Control"), "no-store", what)
        if want == 200:
            self.assertEqual(a.body, b"", what)
        else:
            j = a.json()
            self.assertEqual(set(j), {"error", "reason"}, what)
            self.assertIsNone(a.header("X-User"), what)
            self.assertIsNone(a.header("X-Org"), what)
        if want == 401:
            self.assertTrue(a.header("WWW-Authenticate").startswith("Bearer"), what)
        if want == 405:
            self.assertIn("GET", a.header("Allow"), what)

    def test_every_policy_nginx_dialect(self):
        seen = set()
        for method, target, tok, want in F.CASES:
            a = F.nginx_call(self.fa_port, method, target, self.tok[tok], F.SPOOF)
            self.check_answer(a, want, "%s %s %s" % (method, target, tok))
            seen.add(want)
            if want == 200 and tok in ("good", "owner") and "/feed" not in target \
                    and "/public" not in target:
                user = json.loads(a.header("X-User"))
                self.assertEqual(user["user_id"], "u2" if tok == "owner" else "u1")
                org = a.header("X-Org")
                if "/org/" in target or "org_id=" in target:
                    self.assertEqual(json.loads(org)["org_id"], F.ORG_B)
                else:
                    self.assertIsNone(org, target)
            if want == 200 and tok in ("none", "expired"):
                self.assertIsNone(a.header("X-User"), target)
        self.assertLessEqual({200, 401, 403, 400, 404, 405}, seen)

    def test_traefik_and_envoy_decide_as_nginx(self):
        for method, target, tok, want in F.CASES:
            what = "%s %s %s" % (method, target, tok)
            n = F.nginx_call(self.fa_port, method, target, self.tok[tok])
            t = F.traefik_call(self.fa_port, method, target, self.tok[tok])
            e = F.envoy_call(self.fa_port, method, target, self.tok[tok])
            for name, a in (("traefik", t), ("envoy", e)):
                self.assertEqual(a.status, n.status, "%s %s: %r vs %r" % (name, what, a, n))
                self.assertEqual(a.header("X-User"), n.header("X-User"), name + " " + what)
                self.assertEqual(a.header("X-Org"), n.header("X-Org"), name + " " + what)
                if a.status != 200:
                    self.assertEqual(a.json(), n.json(), name + " " + what)

    # equivalence with proxy mode ---------------------------------------------

    def test_same_decisions_and_identity_as_proxy_mode(self):
        for method, target, tok, want in F.CASES:
            what = "%s %s %s" % (method, target, tok)
            before = len(self.up.reqs())
            p = self.gw.request(method, target, F.auth_headers(self.tok[tok]) + F.SPOOF)
            a = F.nginx_call(self.fa_port, method, target, self.tok[tok], F.SPOOF)
            self.assertEqual(a.status, p.status, "%s: proxy %r, forward auth %r" % (what, p, a))
            if p.status == 200:
                deadline = time.time() + 3
                while len(self.up.reqs()) <= before and time.time() < deadline:
                    time.sleep(0.01)
                rec = self.up.reqs()[before]
                got = {k.lower(): v for k, v in rec["headers"]
                       if k.lower() in ("x-user", "x-org")}
                self.assertEqual(got.get("x-user"), a.header("X-User"), what)
                self.assertEqual(got.get("x-org"), a.header("X-Org"), what)
            else:
                self.assertEqual(a.json(), p.json(), what)
                self.assertEqual(a.header("WWW-Authenticate"), p.header("WWW-Authenticate"), what)

    def test_proxy_mode_still_strips_forwarded_uris(self):
        before = len(self.up.reqs())
        r = self.gw.request("GET", "/public/x", [("X-Original-URI", "/admin"),
                                                 ("X-Forwarded-Uri", "/admin"),
                                                 ("X-Original-URL", "http://x/admin")])
        self.assertEqual(r.status, 200)
        deadline = time.time() + 3
        while len(self.up.reqs()) <= before and time.time() < deadline:
            time.sleep(0.01)
        names = {k.lower() for k, _ in self.up.reqs()[before]["headers"]}
        self.assertFalse(names & {"x-original-uri", "x-forwarded-uri", "x-original-url"}, names)

    # hostile input -----------------------------------------------------------

    def test_missing_method(self):
        a = F.call(self.fa_port, "GET", "/", [("X-Original-URI", "/api/me")])
        self.assertEqual(a.status, 400, a)
        self.assertEqual(a.json(), {"error": "bad_request", "reason": "forward_auth_method_missing"})
        a = F.call(self.fa_port, "GET", "/", [("X-Forwarded-Method", "GET")])
        self.assertEqual(a.json()["reason"], "forward_auth_uri_missing")
        a = F.call(self.fa_port, "GET", "/")
        self.assertEqual(a.json()["reason"], "forward_auth_uri_missing")

    def test_forged_second_dialect_is_refused(self):
        a = F.traefik_call(self.fa_port, "GET", "/api/me", None,
                           [("X-Original-Method", "GET"), ("X-Original-URI", "/public/x")])
        self.assertEqual(a.status, 400, a)
        self.assertEqual(a.json()["reason"], "forward_auth_ambiguous")
        a = F.call(self.fa_port, "GET", "/",
                   [("X-Original-Method", "GET"), ("X-Original-URI", "/public/x"),
                    ("X-Original-URI", "/api/me")])
        self.assertEqual(a.json()["reason"], "forward_auth_ambiguous")

    def test_uri_tricks_answer_as_proxy_mode(self):
        tricks = ["/public/../api/me", "/public/%2e%2e/api/me", "/public/x%2F..%2Fapi",
                  "/public/x?a=1?b=2", "/api/me?x=1?y", "/public//x", "/public/x;a",
                  "/public/x#f", "http://evil/public/x", "*", "/public/%zz"]
        for t in tricks:
            p = self.gw.request("GET", t, [])
            a = F.nginx_call(self.fa_port, "GET", t, None)
            self.assertEqual(a.status, p.status, "%s: proxy %r, fa %r" % (t, p, a))
            if p.status != 200:
                self.assertEqual(a.json(), p.json(), t)

    def test_absurdly_long_forwarded_headers(self):
        long_uri = "/public/" + "a" * 20000
        p = self.gw.request("GET", "/public/" + "a" * 9000, [])
        a = F.nginx_call(self.fa_port, "GET", "/public/" + "a" * 9000, None)
        self.assertEqual(p.status, 414)
        self.assertEqual(a.status, 414, a)
        self.assertEqual(a.json()["reason"], "limit_uri")
        # Past the head budget too: answered as proxy mode answers that
        # original request.
        a = S.raw(self.fa_port, S.req_bytes("GET", "/", [("X-Original-Method", "GET"),
                                                          ("X-Original-URI", long_uri)]),
                  expect=1)
        p = S.raw(self.gw.port, S.req_bytes("GET", long_uri), expect=1)
        self.assertEqual(a.statuses()[:1], p.statuses()[:1], "%r / %r" % (a, p))
        self.assertIn(a.first.status, (414, 431))
        many = [("X-H%d" % i, "v") for i in range(150)]
        a = F.nginx_call(self.fa_port, "GET", "/public/x", None, many)
        p = self.gw.request("GET", "/public/x", many)
        self.assertEqual((a.status, a.json()), (p.status, p.json()))
        self.assertEqual(a.status, 431)
        a = F.call(self.fa_port, "GET", "/", [("X-Original-Method", "G" * 40000),
                                              ("X-Original-URI", "/public/x")])
        self.assertIn(a.status, (400, 431))

    def test_keep_alive_and_small_body(self):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.fa_port, timeout=5)
        try:
            for _ in range(3):
                a = F.call(self.fa_port, "GET", "/",
                           [("X-Original-Method", "POST"), ("X-Original-URI", S.r5(F.ORG_B)),
                            ("Authorization", "Bearer " + self.tok["good"])], conn=c,
                           body=b'{"x":1}')
                self.assertEqual(a.status, 200, a)
        finally:
            c.close()

    # access log --------------------------------------------------------------

    def test_access_log_mode(self):
        before = len(lines_of(self.gw.out))
        F.nginx_call(self.fa_port, "GET", S.r4(F.ORG_B), self.tok["good"])
        self.gw.request("GET", "/public/x", [])
        deadline = time.time() + 3
        while len(lines_of(self.gw.out)) < before + 2 and time.time() < deadline:
            time.sleep(0.02)
        new = [json.loads(l) for l in lines_of(self.gw.out)[before:]]
        fa = [l for l in new if l["mode"] == "forward_auth"]
        px = [l for l in new if l["mode"] == "proxy"]
        self.assertEqual(len(fa), 1, new)
        self.assertEqual(len(px), 1, new)
        self.assertEqual(list(fa[0]), list(px[0]))
        self.assertEqual((fa[0]["route"], fa[0]["decision"], fa[0]["status"], fa[0]["user_id"],
                          fa[0]["org_id"], fa[0]["upstream"]),
                         ("/api/org/{org_id}/billing", "allow", 200, "u1", F.ORG_B, None))


    def test_metrics_mode_label(self):
        import urllib.request
        F.nginx_call(self.fa_port, "GET", "/api/me", None)
        self.gw.request("GET", "/api/me", [])
        # The proxy's worker counts its request after the answer is out: poll.
        deadline = time.time() + S.slack(5)
        while True:
            text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin_port,
                                          timeout=5).read().decode()
            fa = [l for l in text.splitlines() if l.startswith("authgate_requests_total{")
                  and 'route="/api/me",status="401"' in l]
            if any('mode=' not in l for l in fa) or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertTrue(any(l.endswith(tuple("0123456789")) and 'mode="forward_auth"' in l
                            for l in fa), fa)
        self.assertTrue(any('mode=' not in l for l in fa), fa)


class Untrusted(unittest.TestCase):
    def setUp(self):
        if H.missing_binaries():
            self.skipTest("not built")

    def test_untrusted_peer_refused_and_logged(self):
        up = S.Recorder()
        port = H.free_port()
        gw = H.Gateway(F.config(up.url, port, trusted_peers=["10.0.0.0/8", "::1/128"]),
                       name="fauth-untrusted")
        try:
            for _ in range(5):
                a = F.nginx_call(port, "GET", "/public/x", F.tokens()["good"])
                self.assertEqual(a.status, 403, a)
                self.assertEqual(a.json(), {"error": "forbidden",
                                            "reason": "forward_auth_untrusted_peer"})
                self.assertIsNone(a.header("X-User"))
            time.sleep(0.1)
            with open(gw.err) as f:
                err = f.read()
            warn = [l for l in err.splitlines() if "forward_auth_untrusted_peer" in l]
            self.assertTrue(warn, err)
            self.assertLess(len(warn), 5, "not rate limited: %s" % warn)
            self.assertIn("127.0.0.1", warn[0])
            # the proxy listener is unaffected
            self.assertEqual(gw.request("GET", "/public/x", []).status, 200)
        finally:
            problems = gw.stop()
            up.stop()
        self.assertEqual(problems, "")


class Reload(unittest.TestCase):
    def setUp(self):
        if H.missing_binaries():
            self.skipTest("not built")

    def test_reload_reaches_the_listener(self):
        up = S.Recorder()
        port = H.free_port()
        gw = H.Gateway(F.config(up.url, port), name="fauth-reload")
        try:
            self.assertEqual(F.nginx_call(port, "GET", "/api/me", None).status, 401)
            routes = S.demo_routes()
            routes[1] = {"path": "/api/me", "methods": ["GET"], "policy": "public"}
            cfg = F.config(up.url, port)
            cfg["routes"] = routes
            cfg["listen"] = "127.0.0.1:%d" % gw.port
            text = H.to_yaml({"listen": cfg.pop("listen"), **cfg}) + "\n"
            with open(gw.config, "w") as f:
                f.write(text)
            os.kill(gw.pid, signal.SIGHUP)
            deadline = time.time() + 5
            st = None
            while time.time() < deadline:
                st = F.nginx_call(port, "GET", "/api/me", None).status
                if st == 200:
                    break
                time.sleep(0.05)
            self.assertEqual(st, 200)
        finally:
            problems = gw.stop()
            up.stop()
        self.assertEqual(problems, "")


class Check(unittest.TestCase):
    """`authgate check` validates the section."""

    def setUp(self):
        if H.missing_binaries():
            self.skipTest("not built")

    def check(self, fa):
        cfg = S.demo_config("http://127.0.0.1:9", forward_auth=fa)
        d = H.new_tmp("facheck-")
        p = os.path.join(d, "c.yaml")
        with open(p, "w") as f:
            f.write(H.to_yaml(cfg) + "\n")
        r = subprocess.run([H.authgate_bin(), "check", "-c", p], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        return r.returncode, (r.stdout + r.stderr).decode()

    def test_valid(self):
        rc, out = self.check({"listen": "127.0.0.1:9191", "trusted_peers": ["127.0.0.1", "::1/128"],
                              "dialects": ["forwarded"]})
        self.assertEqual(rc, 0, out)

    def test_refusals(self):
        bad = [
            ({"listen": "127.0.0.1:9191"}, "trusted_peers is required"),
            ({"listen": "127.0.0.1:9191", "trusted_peers": ["10.1.0.0/8"]}, "not an address"),
            ({"listen": "127.0.0.1:9191", "trusted_peers": []}, "non-empty"),
            ({"listen": "127.0.0.1:9191", "trusted_peers": ["127.0.0.1/32"],
              "dialects": ["nginx"]}, "not one of"),
            ({"listen": "127.0.0.1:9191", "trusted_peers": ["127.0.0.1/32"],
              "dialects": ["envoy"]}, "envoy_path_prefix"),
            ({"listen": "127.0.0.1:9191", "trusted_peers": ["127.0.0.1/32"],
              "envoy_path_prefix": "ext/"}, "leading slash"),
            ({"listen": "nowhere", "trusted_peers": ["127.0.0.1/32"]}, "HOST:PORT"),
            ({"listn": "127.0.0.1:9191"}, "listn"),
        ]
        for fa, msg in bad:
            rc, out = self.check(fa)
            self.assertNotEqual(rc, 0, "%r: %s" % (fa, out))
            self.assertIn(msg, out, fa)
            self.assertIn("forward_auth", out, fa)


if __name__ == "__main__":
    unittest.main()


class Preflight(unittest.TestCase):
    """A CORS preflight on a CORS route is let through without an identity (the
    calling proxy shows the browser only a 2xx or 401/403); a preflight from an
    origin the route does not allow is refused."""

    def test_preflight_through_forward_auth(self):
        if H.missing_binaries():
            self.skipTest("not built")
        up = S.Recorder()
        port = H.free_port()
        cfg = F.config(up.url, port)
        cfg["cors"] = {"allowed_origins": ["https://app.example.com"]}
        gw = H.Gateway(cfg, name="fauth-cors")
        try:
            route = S.R2  # require_user: a preflight never carries the token
            hdrs = [("X-Original-Method", "OPTIONS"), ("X-Original-URI", route),
                    ("Origin", "https://app.example.com"),
                    ("Access-Control-Request-Method", "GET"),
                    ("Access-Control-Request-Headers", "authorization")]
            a = F.call(port, "GET", "/", hdrs)
            self.assertEqual(a.status, 200, a)
            self.assertIsNone(a.header("X-User"), a)
            self.assertEqual(a.body, b"", a)
            bad = [(k, "https://evil.example.net" if k == "Origin" else v) for k, v in hdrs]
            b = F.call(port, "GET", "/", bad)
            self.assertEqual(b.status, 403, b)
            self.assertEqual(b.json()["reason"], "cors_origin_denied")
        finally:
            problems = gw.stop()
            up.stop()
            self.assertEqual(problems, "")
