"""`authgate check` is the whole pre-flight (issue 13): for every file in a
corpus, check accepts it exactly when `authgate run` starts with it, in the
same environment. The real daemon is started for each one.

Also here: --strict, the one-line summary, and errors that name the root
cause first (finding 2)."""

import os
import re
import signal
import subprocess
import time
import unittest

import harness as H

API_KEY = "sk_test_0123456789abcdefCHECKRUN"
ENV = "AG_CHECKRUN_API_KEY"


class CheckRunAgree(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._skip = None
        miss = H.missing_binaries()
        if miss:
            cls._skip = "not built: %s (run make)" % ", ".join(miss)

    def setUp(self):
        if self._skip:
            self.skipTest(self._skip)
        self.dir = H.new_tmp("agree-")
        self.env = dict(os.environ)
        self.env[ENV] = API_KEY

    def write(self, name, text, mode=0o600):
        p = os.path.join(self.dir, name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    # ---- the corpus -------------------------------------------------------

    def manual(self, key_line=None, listen="127.0.0.1:%(port)d", extra="", routes=None):
        key_line = key_line or "verifier_key_file: %s" % H.keys("main").public
        return ("listen: %s\n" % listen +
                "auth:\n  %s\n  issuer: https://auth.example.com\n" % key_line +
                "upstreams:\n  app: http://127.0.0.1:9\n" + extra +
                (routes or "routes:\n  - {path: /x, policy: public}\n"))

    def fetch(self, key_line, extra=""):
        # a closed loopback port: the first fetch fails transiently, so run
        # starts (not ready) rather than refusing
        return ("listen: 127.0.0.1:%(port)d\n"
                "auth:\n  auth_url: https://auth.example.com\n  " + key_line + "\n"
                "  api_base_url: http://127.0.0.1:" + str(H.closed_port()) + "\n"
                "  fetch_timeout_ms: 500\n"
                "upstreams:\n  app: http://127.0.0.1:9\n" + extra +
                "routes:\n  - {path: /x, policy: public}\n")

    def corpus(self):
        """(name, text, expect_ok). %(port)d is the listen port, %(admin)d a second one."""
        pub = H.keys("main").public
        with open(pub) as f:
            pem = f.read()
        inline = "verifier_key_pem: |\n" + "".join("    " + l + "\n" for l in pem.splitlines())
        garbage = self.write("garbage.pem", "this is not a key\n", 0o644)
        key_ok = self.write("api-key-600", API_KEY + "\n", 0o600)
        key_open = self.write("api-key-644", API_KEY + "\n", 0o644)
        logdir = H.new_tmp("agree-log-")
        return [
            ("manual_file", self.manual(), True),
            ("listen_host_name", self.manual(listen="localhost:%(port)d"), True),
            ("inline_pem", self.manual(key_line=inline.rstrip("\n")), True),
            ("fetch_env", self.fetch("api_key_env: " + ENV), True),
            ("fetch_key_file_0600", self.fetch("api_key_file: " + key_ok), True),
            ("fetch_inline_key_warns", self.fetch('api_key: "%s"' % API_KEY), True),
            ("admin_host_name", self.manual(extra="admin_listen: localhost:%(admin)d\n"), True),
            ("access_log_file",
             self.manual(extra="log: {access_log: %s/access.log}\n" % logdir), True),
            ("https_upstream", self.manual(extra="", routes=(
                "routes:\n  - {path: /x, policy: public, upstream: tls}\n"
                "  - {path: /y, policy: require_user, upstream: app}\n")).replace(
                "upstreams:\n  app: http://127.0.0.1:9\n",
                "upstreams:\n  app: http://127.0.0.1:9\n  tls: https://127.0.0.1:1/base\n"), True),
            ("verifier_is_private_key",
             self.manual(key_line="verifier_key_file: %s" % H.keys("main").private), False),
            ("verifier_is_garbage", self.manual(key_line="verifier_key_file: %s" % garbage),
             False),
            ("inline_pem_broken", self.manual(
                key_line='verifier_key_pem: "-----BEGIN PUBLIC KEY-----\\nnot base64!\\n'
                         '-----END PUBLIC KEY-----\\n"'), False),
            ("fetch_key_file_0644", self.fetch("api_key_file: " + key_open), False),
            ("fetch_env_unset", self.fetch("api_key_env: AG_CHECKRUN_NOT_SET"), False),
            ("listen_unresolvable", self.manual(listen="no-such-host.invalid:%(port)d"), False),
            ("admin_unresolvable",
             self.manual(extra="admin_listen: no-such-host.invalid:%(admin)d\n"), False),
            ("access_log_no_dir",
             self.manual(extra="log: {access_log: %s/missing/access.log}\n" % logdir), False),
            ("misspelt_upstreams", self.manual().replace("upstreams:", "upstream:"), False),
        ]

    def check(self, path, *extra):
        r = subprocess.run([H.authgate_bin(), "check", "-c", path] + list(extra),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env,
                           timeout=30)
        return r.returncode, r.stdout.decode() + r.stderr.decode()

    def starts(self, path, port):
        """Does `authgate run` start (listen on port) with this file?"""
        err = path + ".stderr"
        with open(err, "wb") as ef:
            proc = subprocess.Popen([H.authgate_bin(), "run", "-c", path],
                                    stdout=subprocess.DEVNULL, stderr=ef,
                                    stdin=subprocess.DEVNULL, env=self.env)
        H._register(proc)
        try:
            H.wait_port(port, proc, 15, "authgate run", err)
            ok = True
        except RuntimeError:
            ok = False
        rc = H.stop_proc(proc)
        if ok:
            self.assertEqual(rc, 0, "clean SIGTERM exit:\n" + H.tail(err))
        return ok, H.tail(err)

    def test_check_accepts_exactly_what_run_starts(self):
        corpus = self.corpus()
        self.assertGreaterEqual(len(corpus), 15)
        for name, text, expect_ok in corpus:
            with self.subTest(config=name):
                port, admin = H.free_port(), H.free_port()
                p = self.write(name + ".yaml", text % {"port": port, "admin": admin}, 0o644)
                rc, out = self.check(p)
                self.assertEqual(rc == 0, expect_ok, "%s: check said %d:\n%s" % (name, rc, out))
                ok, err = self.starts(p, port)
                self.assertEqual(ok, rc == 0, "%s: check rc %d but run %s:\ncheck: %s\nrun: %s" %
                                 (name, rc, "started" if ok else "refused", out, err))

    # ---- --strict and the summary -------------------------------------------

    def test_strict_and_summary(self):
        p = self.write("inline.yaml", self.fetch('api_key: "%s"' % API_KEY) %
                       {"port": H.free_port()}, 0o644)
        rc, out = self.check(p)
        self.assertEqual(rc, 0, out)
        self.assertIn("warning: auth.api_key: secret written inline", out)
        self.assertRegex(out.splitlines()[-1], r"^ok: 1 route, 1 upstream, policy [0-9a-f]{16}$")
        rc, out = self.check(p, "--strict")
        self.assertEqual(rc, 1, out)
        self.assertIn("1 warning, and --strict makes them fail the check", out)
        self.assertNotRegex(out, r"(?m)^ok")
        # no warnings: --strict passes
        clean = self.write("clean.yaml", self.manual() % {"port": H.free_port()}, 0o644)
        rc, out = self.check(clean, "--strict")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"\Aok: 1 route, 1 upstream, policy [0-9a-f]{16}\n\Z")

    # ---- root cause first ---------------------------------------------------

    def test_misspelt_section_is_reported_alone(self):
        text = ("auth:\n  verifier_key_file: %s\n  issuer: https://auth.example.com\n"
                "routes:\n  - {path: /x, policy: public}\n"
                "upstream:\n  app: http://127.0.0.1:9\n") % H.keys("main").public
        p = self.write("upstream.yaml", text, 0o644)
        rc, out = self.check(p)
        self.assertEqual(rc, 1)
        self.assertEqual(out.strip().splitlines(),
                         ['%s:6:1: unknown key "upstream" (did you mean "upstreams"?)' % p])

    def test_misspelt_issuer_is_reported_alone(self):
        text = ("auth:\n  verifier_key_file: %s\n  isuer: https://auth.example.com\n"
                "upstreams:\n  app: http://127.0.0.1:9\n"
                "routes:\n  - {path: /x, policy: public}\n") % H.keys("main").public
        p = self.write("isuer.yaml", text, 0o644)
        rc, out = self.check(p)
        self.assertEqual(rc, 1)
        self.assertEqual(out.strip().splitlines(),
                         ['%s:3:3: unknown key "isuer" in auth (did you mean "issuer"?)' % p])

    def test_route_with_error_gets_no_lint(self):
        text = self.manual(routes="routes:\n"
                                  "  - {path: \"/api/**\", policy: require_user}\n"
                                  "  - {path: /api/x, policy: Public}\n"
                                  "  - {path: \"/api/**\", policy: public}\n") % {"port": 1}
        p = self.write("lint.yaml", text, 0o644)
        rc, out = self.check(p)
        self.assertEqual(rc, 1)
        self.assertNotIn("warning", out)
        self.assertIn('unknown policy "Public" (did you mean "public"?)', out)
        self.assertIn("ambiguous", out)

    def test_yaml_trap_hints(self):
        cases = [
            ("tabs", "auth:\n\tissuer: x\n", "indent with spaces"),
            ("flow_template",
             "routes:\n  - { path: /api/org/{org_id}, policy: require_org_member }\n",
             'quote the template, e.g. path: "/api/org/{org_id}"'),
            ("ipv6", "listen: [::1]:8080\n", 'quote an IPv6 address, e.g. listen: "[::1]:8080"'),
        ]
        for name, text, hint in cases:
            with self.subTest(case=name):
                p = self.write(name + ".yaml", text, 0o644)
                rc, out = self.check(p)
                self.assertEqual(rc, 1)
                self.assertRegex(out, r"^%s:\d+:\d+: invalid YAML: " % re.escape(p))
                self.assertIn(hint, out)


if __name__ == "__main__":
    unittest.main()
