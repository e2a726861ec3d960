"""`authgate check` lint warnings (issue 6): an API key inline in the file, a
secret file readable by group or others, a writable config file, and a
public route under a protected prefix. Warnings are FILE:LINE:COL: warning:
..., never echo the secret, and never change the exit status."""

import os
import re
import subprocess
import unittest

import harness as H

API_KEY = "sk_live_0123456789abcdefSECRET"


def fetch_header(key_line):
    return ("listen: 127.0.0.1:18080\n"
            "auth:\n"
            "  auth_url: https://auth.example.com\n"
            "  %s\n"
            "upstreams:\n"
            "  app: http://127.0.0.1:9000\n") % key_line


def manual_header():
    return ("auth:\n"
            "  verifier_key_file: %s\n"
            "  issuer: https://auth.example.com\n"
            "upstreams:\n"
            "  app: http://127.0.0.1:9000\n") % H.keys("main").public


# The one-line summary of a passing check, and nothing else before it.
OK_LINE = r"\Aok: \d+ routes?, \d+ upstreams?, policy [0-9a-f]{16}\n\Z"
PUBLIC_ONLY = "routes:\n  - path: /x\n    policy: public\n"


class CheckLint(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._skip = None
        miss = H.missing_binaries()
        if miss:
            cls._skip = "not built: %s (run make)" % ", ".join(miss)

    def setUp(self):
        if self._skip:
            self.skipTest(self._skip)
        self.dir = H.new_tmp("lint-")

    def write(self, name, text, mode=0o644):
        p = os.path.join(self.dir, name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def check(self, path, env=None):
        r = subprocess.run([H.authgate_bin(), "check", "-c", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env)
        out = r.stdout.decode()
        warnings = [l for l in out.splitlines() if ": warning: " in l]
        for w in warnings:
            self.assertRegex(w, r"^%s:\d+:\d+: warning: \S" % re.escape(path))
        return r.returncode, out, warnings

    def assert_clean(self, path, env=None):
        rc, out, warnings = self.check(path, env)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, OK_LINE, "expected a clean check")

    def test_clean_file_prints_only_ok(self):
        self.assert_clean(self.write("clean.yaml", manual_header() + PUBLIC_ONLY))

    def test_inline_api_key(self):
        p = self.write("inline.yaml", fetch_header('api_key: "%s"' % API_KEY) + PUBLIC_ONLY)
        rc, out, warnings = self.check(p)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out.splitlines()[-1], r"^ok: 1 route, 1 upstream, policy [0-9a-f]{16}$")
        self.assertEqual(warnings, ["%s:4:12: warning: auth.api_key: secret written inline in the "
                                    "config file; prefer api_key_env or api_key_file" % p])
        self.assertNotIn("SECRET", out)
        self.assertNotIn(API_KEY[:12], out)
        # the recommended forms are silent
        # (check reads the variable as run would: it must be set where check runs)
        env = dict(os.environ, PROPELAUTH_API_KEY=API_KEY)
        self.assert_clean(self.write("env.yaml", fetch_header("api_key_env: PROPELAUTH_API_KEY") +
                                     PUBLIC_ONLY), env)

    def test_secret_file_permissions(self):
        key = self.write("api-key", API_KEY + "\n", mode=0o600)
        p = self.write("keyfile.yaml", fetch_header("api_key_file: api-key") + PUBLIC_ONLY)
        self.assert_clean(p)
        # run refuses to read a secret from such a file, so check refuses the
        # file that names it: an error, not a warning (issue 13)
        for mode in (0o644, 0o640, 0o604):
            with self.subTest(mode=oct(mode)):
                os.chmod(key, mode)
                rc, out, warnings = self.check(p)
                self.assertEqual(rc, 1, out)
                self.assertEqual(warnings, [], out)
                self.assertIn("%s:4:17: auth.api_key_file: %s holds a secret but is "
                              "accessible by group or others (mode %04o); chmod 600 it" %
                              (p, key, mode), out)
                self.assertNotIn(API_KEY[:12], out)
        os.chmod(key, 0o600)
        # the verifier key is public: no warning whatever its mode
        os.chmod(H.keys("main").public, 0o644)
        self.assert_clean(self.write("verifier.yaml", manual_header() + PUBLIC_ONLY))

    def test_writable_config_file(self):
        for mode, who in ((0o666, "others"), (0o664, "group")):
            with self.subTest(mode=oct(mode)):
                p = self.write("w.yaml", manual_header() + PUBLIC_ONLY, mode=mode)
                rc, out, warnings = self.check(p)
                self.assertEqual(rc, 0)
                self.assertEqual(warnings, ["%s:1:1: warning: file is writable by %s (mode %04o); "
                                            "whoever can write it controls who is let through" %
                                            (p, who, mode)])

    def test_public_route_under_protected_prefix(self):
        routes = ("routes:\n"                                        # line 6
                  "  - path: /api/org/{org_id}/**\n"                 # 7
                  "    policy: require_org_member\n"
                  "  - path: /api/org/{org_id}/logo\n"               # 9
                  "    policy: public\n"
                  "  - path: /files/**\n"                            # 11
                  "    policy: public\n"
                  "  - path: /files/private/**\n"                    # 13
                  "    policy: require_user\n"
                  "  - path: /docs/{id}\n"                           # 15
                  "    methods: [DELETE]\n"
                  "    policy: require_user\n"
                  "  - path: /docs/{id}\n"                           # 18
                  "    methods: [GET]\n"
                  "    policy: public\n"
                  "  - path: /feed/{x}\n"                            # 21
                  "    policy: require_user\n"
                  "  - path: /feed/open\n"                           # 23
                  "    policy: optional_user\n")
        p = self.write("carve.yaml", manual_header() + routes)
        rc, out, warnings = self.check(p)
        self.assertEqual(rc, 0, out)
        self.assertEqual(warnings, [
            '%s:9:5: warning: route "/api/org/{org_id}/logo" is public but lies under protected '
            'route "/api/org/{org_id}/**" (line 7); it is reachable without a token' % p])

    def test_warnings_do_not_hide_errors(self):
        p = self.write("both.yaml", fetch_header('api_key: "%s"' % API_KEY) +
                       "routes:\n  - path: /x\n    policy: public\n    upstream: nope\n")
        rc, out, warnings = self.check(p)
        self.assertEqual(rc, 1)
        self.assertEqual(len(warnings), 1, out)
        self.assertIn('%s:10:15: route "/x": unknown upstream "nope"' % p, out)
        self.assertNotRegex(out, r"(?m)^ok")
