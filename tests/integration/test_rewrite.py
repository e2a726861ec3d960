"""Per-route rewriting (issue 14): preserve_host, strip_prefix (the upstream's
base path still applies), request and response headers set/add/remove, as the
upstream (ag-echo) and the client see them; authgate check refuses rules on
the gateway's own identity and forwarding headers."""

import http.client
import os
import re
import subprocess

import harness as H
from test_policies import minted


class Rewrite(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        return {
            "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
            "upstreams": {"app": {"url": echo.url + "/base"}},
            "routes": [
                {"path": "/api/**", "policy": "require_user", "strip_prefix": "/api",
                 "preserve_host": True,
                 "request_headers": {"set": {"X-Env": "prod"}, "add": {"X-Extra": "one"},
                                     "remove": ["Cookie"]},
                 "response_headers": {"set": {"Cache-Control": "no-store"},
                                      "add": {"X-Added": "yes"}, "remove": ["X-Echo-H0"]}},
                {"path": "/plain/**", "policy": "public"},
            ],
        }

    def test_request_side(self):
        tok = minted("member_a")
        r, rec = self.expect_allow("GET", "/api/users/7?x=1",
                                   [("Cookie", "a=b"),
                                    ("X-Env", "client"), ("X_Env", "lookalike"),
                                    ("X-Extra", "client")], token=tok)
        self.assertEqual(rec["path"], "/base/users/7")
        self.assertEqual(rec["query"], "x=1")
        h = rec["headers"]
        gw_host = "127.0.0.1:%d" % self.gw.port  # what http.client sends as Host
        self.assertEqual(h.get("host"), gw_host)
        self.assertEqual(h.get("x-forwarded-host"), gw_host)
        self.assertEqual(h.get("x-env"), "prod")  # the client's copies (any spelling) replaced
        self.assertNotIn("x_env", h)
        self.assertEqual(sorted(h.get("x-extra")), ["client", "one"])
        self.assertNotIn("cookie", h)
        self.assertIsNotNone(h.get("x-user"))  # identity still the gateway's

    def test_prefix_alone_is_root(self):
        tok = minted("member_a")
        _, rec = self.expect_allow("GET", "/api", token=tok)
        self.assertEqual(rec["path"], "/base/")

    def test_response_side(self):
        tok = minted("member_a")
        r, _ = self.expect_allow("GET", "/api/__echo/headers/2/__echo/header/Cache-Control/public",
                                 token=tok)
        self.assertEqual(r.header_all("Cache-Control"), ["no-store"])
        self.assertEqual(r.header("X-Added"), "yes")
        self.assertIsNone(r.header("X-Echo-H0"))
        self.assertEqual(r.header("X-Echo-H1"), "v1")

    def test_route_without_rules_unchanged(self):
        r, rec = self.expect_allow("GET", "/plain/x/__echo/headers/1",
                                   [("Cookie", "a=b")])
        self.assertEqual(rec["path"], "/base/plain/x/__echo/headers/1")
        self.assertEqual(rec["headers"].get("host"), "127.0.0.1:%d" % self.echo.port)
        self.assertEqual(rec["headers"].get("cookie"), "a=b")
        self.assertEqual(r.header("X-Echo-H0"), "v0")


class RewriteCheck(H.GatewayCase):
    """The loader refuses rewrite rules on names the gateway owns."""

    @classmethod
    def setUpClass(cls):
        cls._skip = None
        miss = H.missing_binaries()
        if miss:
            cls._skip = "not built: %s (run make)" % ", ".join(miss)

    @classmethod
    def tearDownClass(cls):
        pass

    def check(self, route_extra):
        d = H.new_tmp("rwcheck-")
        cfg = {
            "listen": "127.0.0.1:18080",
            "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
            "identity": {"strip_headers": ["X-Internal"]},
            "upstreams": {"app": {"url": "http://127.0.0.1:9000"}},
            "routes": [dict({"path": "/api/**", "policy": "public"}, **route_extra)],
        }
        p = os.path.join(d, "c.yaml")
        with open(p, "w") as f:
            f.write(H.to_yaml(cfg) + "\n")
        r = subprocess.run([H.authgate_bin(), "check", "-c", p], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        return r.returncode, (r.stdout + r.stderr).decode()

    def test_gateway_names_refused(self):
        owned = ["X-User", "X_Org", "X-Forwarded-For", "x.forwarded.host", "Host",
                 "X-Request-Id", "Authorization", "Forwarded", "Connection", "X-Internal",
                 "Content-Length", "X-Authgate-Anything"]
        for name in owned:
            for side, kind in (("request_headers", "set"), ("request_headers", "remove")):
                with self.subTest(name=name, side=side, kind=kind):
                    rule = {kind: {name: "v"}} if kind == "set" else {kind: [name]}
                    rc, out = self.check({side: rule})
                    self.assertEqual(rc, 1, out)
                    self.assertIn("is the gateway's own", out)
        for name in ("X-Request-Id", "Transfer-Encoding", "Connection", "Content-Length"):
            with self.subTest(name=name, side="response_headers"):
                rc, out = self.check({"response_headers": {"set": {name: "v"}}})
                self.assertEqual(rc, 1, out)
                self.assertIn("is the gateway's own", out)

    def test_org_source_header_refused(self):
        for kind in ("set", "add", "remove"):
            for name in ("X-Tenant-Id", "x_tenant_id"):
                with self.subTest(kind=kind, name=name):
                    rule = {kind: [name]} if kind == "remove" else {kind: {name: "org_b"}}
                    rc, out = self.check({"policy": "require_org_member",
                                          "org_id_from": "header:X-Tenant-Id",
                                          "request_headers": rule})
                    self.assertEqual(rc, 1, out)
                    self.assertIn("org id source", out)

    def test_good_rules_and_bad_prefix(self):
        rc, out = self.check({"strip_prefix": "/api", "preserve_host": True,
                              "request_headers": {"set": {"X-Env": "prod"}, "remove": ["Cookie"]},
                              "response_headers": {"add": {"X-Frame-Options": "DENY"}}})
        self.assertEqual(rc, 0, out)
        for prefix in ("/ap", "/api/", "api", "/api/**"):
            with self.subTest(prefix=prefix):
                rc, out = self.check({"strip_prefix": prefix})
                self.assertEqual(rc, 1, out)
                self.assertIn("strip_prefix", out)
        rc, out = self.check({"request_headers": {"set": {"X-Env": ""}}})
        self.assertEqual(rc, 1, out)


if __name__ == "__main__":
    import unittest
    unittest.main()


class RewriteHttps(H.GatewayCase):
    """The same rules through libcurl (an https:// upstream with a base path)."""

    @classmethod
    def setUpClass(cls):
        from test_https_upstream import TlsUpstream
        cls.tls = TlsUpstream()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.tls.stop()

    @classmethod
    def make_config(cls, echo):
        return {
            "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
            "upstreams": {"tls": {"url": "https://127.0.0.1:%d/base" % cls.tls.port,
                                  "ca_file": cls.tls.cert}},
            "routes": [
                {"path": "/api/**", "policy": "require_user", "strip_prefix": "/api",
                 "preserve_host": True},
                {"path": "/plain/**", "policy": "public"},
            ],
        }

    def test_strip_prefix_and_host(self):
        r = self.req("GET", "/api/users/7?q=1", token=minted("member_a"))
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual(j["path"], "/base/users/7?q=1")
        self.assertEqual(j["host"], "127.0.0.1:%d" % self.gw.port)
        r = self.req("GET", "/plain/x")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["path"], "/base/plain/x")
        self.assertEqual(r.json()["host"], "127.0.0.1:%d" % self.tls.port)


def doc_block(heading):
    """The first ```yaml block after a heading line of docs/configuration.md."""
    with open(os.path.join(H.REPO, "docs", "configuration.md")) as f:
        md = f.read()
    start = md.index("\n" + heading + "\n")
    m = re.compile(r"^```yaml\n(.*?)^```\n", re.S | re.M).search(md, start)
    return m.group(1)


class DocsExamples(H.GatewayCase):
    """configuration.md's rewriting and cors examples, replayed: the first through
    the daemon (ag-echo as its upstream), the second by authgate check."""

    @classmethod
    def setUpClass(cls):
        cls._skip = None
        miss = H.missing_binaries()
        if miss:
            cls._skip = "not built: %s (run make)" % ", ".join(miss)
            return
        cls.echo = H.Echo()
        cls.dir = H.new_tmp("rwdocs-")
        cls.port = H.free_port()
        text = ("listen: 127.0.0.1:%d\nauth:\n  verifier_key_file: %s\n  issuer: %s\n" %
                (cls.port, H.keys("main").public, H.ISSUER))
        text += doc_block("### Rewriting (`preserve_host`, `strip_prefix`, headers)").replace(
            "http://127.0.0.1:9000", cls.echo.url)
        cls.config = os.path.join(cls.dir, "c.yaml")
        with open(cls.config, "w") as f:
            f.write(text)
        cls.err = os.path.join(cls.dir, "stderr")
        with open(cls.err, "wb") as ef:
            cls.proc = subprocess.Popen([H.authgate_bin(), "run", "-c", cls.config],
                                        stdout=subprocess.DEVNULL, stderr=ef,
                                        stdin=subprocess.DEVNULL)
        H._register(cls.proc)
        H.wait_port(cls.port, cls.proc, 15, "authgate run", cls.err)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "proc", None) is not None:
            H.stop_proc(cls.proc)
        if cls.echo is not None:
            cls.echo.stop()
            cls.echo = None

    def test_rewriting_example(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        before = self.echo.count()
        c.request("GET", "/api/users/7/__echo/header/Server/up",
                  headers={"Authorization": "Bearer " + minted("member_a"),
                           "Cookie": "s=1", "X-Env": "dev"})
        r = c.getresponse()
        r.read()
        c.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Cache-Control"), "no-store")
        self.assertIsNone(r.getheader("Server"))
        rec = self.echo.wait_new(before, 1)[0]
        self.assertEqual(rec["path"], "/internal/users/7/__echo/header/Server/up")
        h = rec["headers"]
        self.assertEqual(h.get("host"), "127.0.0.1:%d" % self.port)
        self.assertEqual(h.get("x-env"), "prod")
        self.assertEqual(h.get("x-via-gateway"), "1")
        self.assertNotIn("cookie", h)

    def test_cors_example_checks(self):
        p = os.path.join(self.dir, "cors.yaml")
        with open(p, "w") as f:
            f.write("listen: 127.0.0.1:18080\nauth:\n  verifier_key_file: %s\n  issuer: %s\n"
                    "upstreams:\n  app: { url: \"http://127.0.0.1:9000\" }\n" %
                    (H.keys("main").public, H.ISSUER) + doc_block("## 13. `cors`"))
        r = subprocess.run([H.authgate_bin(), "check", "-c", p], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        self.assertEqual(r.returncode, 0, r.stdout.decode())
