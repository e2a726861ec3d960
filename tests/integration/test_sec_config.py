"""docs/security.md group J (policy file and reload): hostile YAML and ambiguous
routes through `authgate check`, and reloads through SIGHUP on the real daemon
(the old policy keeps serving unless a new one loads completely). The wider
reload behaviour (metrics, readyz, load) is in test_ops_reload.py."""

import os
import signal
import threading
import time

import harness as H
import sec_check as C
import sec_common as S
from sec_common import ORG_B, R1, R2, r4

ROUTES_PERMISSION = [
    {"path": "/public/**", "methods": ["GET"], "policy": "public"},
    {"path": "/api/me", "methods": ["GET"], "policy": "require_user"},
    {"path": "/api/org/{org_id}/billing", "methods": ["GET"],
     "policy": "require_org_member_with_permission", "permission": "can_view_billing"},
]
ROUTES_OWNER = [dict(r) for r in ROUTES_PERMISSION]
ROUTES_OWNER[2] = {"path": "/api/org/{org_id}/billing", "methods": ["GET"],
                   "policy": "require_org_member_with_minimum_role", "role": "Owner"}


class SecReload(S.SecCase):
    @classmethod
    def config(cls, up):
        return S.demo_config(up.url, routes=ROUTES_PERMISSION)

    def billing_status(self):
        ex = self.send(S.req_bytes("GET", r4(ORG_B), [S.bearer()]), expect=1)
        return ex.first.status

    def write_config(self, text):
        tmp = self.gw.config + ".new"
        with open(tmp, "wb") as f:
            f.write(text)
        os.replace(tmp, self.gw.config)

    def reload(self, expect_ok):
        with open(self.gw.err, "rb") as f:
            before = f.read()
        os.kill(self.gw.pid, signal.SIGHUP)
        word = b"reloaded" if expect_ok else b"reload failed"
        deadline = time.time() + 5
        while time.time() < deadline:
            with open(self.gw.err, "rb") as f:
                now = f.read()
            if word in now[len(before):]:
                return now[len(before):].decode("utf-8", "replace")
            time.sleep(0.02)
        self.fail("no %r in the log after SIGHUP:\n%s" % (word, H.tail(self.gw.err)))

    def config_for(self, routes):
        cfg = S.demo_config(self.up.url, routes=routes)
        cfg["listen"] = "127.0.0.1:%d" % self.gw.port
        ordered = {"listen": cfg.pop("listen")}
        ordered.update(cfg)
        return (H.to_yaml(ordered) + "\n").encode()

    def tearDown(self):
        # leave the original policy loaded for the next test
        self.write_config(self.gw.config_text.encode())
        self.reload(True)

    def test_J86_invalid_policy_on_reload_keeps_the_old_one(self):
        self.assertEqual(self.billing_status(), 200)
        good = self.config_for(ROUTES_PERMISSION)
        broken = {
            "yaml_syntax": good + b"routes: [\n",
            "unknown_key": good.replace(b"routes:", b"routez: []\nroutes:"),
            "unknown_upstream": self.config_for(
                [dict(r, upstream="nowhere") for r in ROUTES_OWNER]),
            "missing_role": self.config_for(ROUTES_OWNER).replace(b"role: \"Owner\"", b""),
        }
        for name, text in broken.items():
            with self.subTest(file=name):
                self.write_config(text)
                log = self.reload(False)
                self.assertRegex(log, r":\d+:\d+: ", "no line:col in the reload error")
                self.assertEqual(self.billing_status(), 200, "old policy no longer served")

    def test_J87_empty_truncated_or_missing_file(self):
        good = self.config_for(ROUTES_OWNER)
        for name, text in (("empty", b""), ("truncated", good[:len(good) // 2]),
                           ("half_route", good[:good.rindex(b"role")])):
            with self.subTest(file=name):
                self.write_config(text)
                self.reload(False)
                self.assertEqual(self.billing_status(), 200)
                ex = self.send(S.req_bytes("GET", R2, []), expect=1)
                self.assertEqual(ex.first.status, 401, "reload emptied the routes")
        os.unlink(self.gw.config)
        self.reload(False)
        self.assertEqual(self.billing_status(), 200)

    def test_J88_every_request_under_one_policy_generation(self):
        permission = self.config_for(ROUTES_PERMISSION)
        owner = self.config_for(ROUTES_OWNER)
        stop = threading.Event()
        seen, bad = [], []

        def load():
            while not stop.is_set():
                try:
                    st = self.billing_status()
                except Exception as e:  # a dropped request is a failure too
                    bad.append(repr(e))
                    continue
                seen.append(st)
                if st not in (200, 403):
                    bad.append(st)
        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            for i in range(10):
                self.write_config(owner if i % 2 == 0 else permission)
                self.reload(True)
                time.sleep(0.05)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(bad, [])
        self.assertIn(200, seen)
        self.assertIn(403, seen)
        self.assertTrue(self.gw.alive())


class SecPolicyFile(S.unittest.TestCase):
    def setUp(self):
        if H.missing_binaries():
            self.skipTest("not built")

    def refused(self, text, needle=None, mode=0o600):
        p = C.write("j", text, mode)
        rc, out, diags = C.check(p)
        self.assertEqual(rc, 1, out)
        self.assertTrue(diags, "no FILE:LINE:COL: %r" % out)
        if needle:
            self.assertIn(needle, out)
        return diags

    def test_J89_hostile_yaml(self):
        bomb = "".join("l%d: &l%d [%s]\n" % (i, i, ",".join(["*l%d" % (i - 1)] * 9 if i else
                                                            ["x"] * 9)) for i in range(9))
        self.refused(C.base("  - { path: /a, policy: public }\n", extra=bomb))
        self.refused(C.base("  - { path: /a, policy: public }\n",
                            extra="x: \"%s\"\n" % ("a" * (1024 * 1024))))
        self.refused(C.base("  - { path: /a, policy: public }\n") +
                     "routes:\n  - { path: /b, policy: public }\n", "duplicate")
        self.refused(C.base("  - { path: /a, policy: public }\n"
                            "  - { path: /a, policy: require_user }\n"))
        self.refused(C.base("  - &r { path: /a, policy: public }\n  - <<: *r\n"))
        self.refused(C.base("  - !!python/object { path: /a, policy: public }\n"))
        self.refused(C.base("  - { path: !!str /a, policy: public }\n"))
        p = C.write("ww", C.base("  - { path: /a, policy: public }\n"), mode=0o666)
        rc, out, _ = C.check(p)
        self.assertIn("writable", out)

    def test_J90_overlapping_routes(self):
        # same shape, overlapping methods: refused, both lines named
        diags = self.refused(C.base("  - { path: \"/api/o/{id}/s\", policy: require_user }\n"
                                    "  - { path: \"/api/o/{name}/s\", policy: public }\n"))
        self.assertTrue(any("line" in m or "ambiguous" in m for _, _, m in diags), diags)
        # documented precedence (most specific wins) resolves these: they load
        p = C.write("ok", C.base(
            "  - { path: \"/api/org/{org_id}/settings\", policy: "
            "require_org_member_with_minimum_role, role: Admin }\n"
            "  - { path: \"/api/org/{org_id}/{page}\", policy: require_org_member }\n"
            "  - { path: /**, policy: public }\n"
            "  - { path: /api/me, policy: require_user }\n"))
        rc, out, _ = C.check(p)
        self.assertEqual(rc, 0, out)


class SecPrecedence(S.SecCase):
    """J90 on the daemon: the most specific route decides, whatever the order."""

    @classmethod
    def config(cls, up):
        routes = [{"path": "/**", "policy": "public"},
                  {"path": "/api/org/{org_id}/{page}", "policy": "require_org_member"},
                  {"path": "/api/org/{org_id}/settings", "policy":
                   "require_org_member_with_minimum_role", "role": "Owner"},
                  {"path": "/api/me", "policy": "require_user"}]
        return S.demo_config(up.url, routes=routes)

    def test_J90_most_specific_route_decides(self):
        def status(t, tok=True):
            self.up.reset()
            ex = self.send(S.req_bytes("GET", t, [S.bearer()] if tok else []), expect=1)
            return ex.first.status, ex.first.reason()
        self.assertEqual(status("/api/org/%s/settings" % ORG_B), (403, "role_below_minimum"))
        self.assertEqual(status("/api/org/%s/other" % ORG_B)[0], 200)
        self.assertEqual(status("/api/me", tok=False), (401, "token_missing"))
        self.assertEqual(status("/api/mex", tok=False)[0], 200)
        self.assertEqual(status(R1, tok=False)[0], 200)
