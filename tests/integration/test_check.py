"""`authgate check -c FILE`: "ok" and exit 0 on a good file; every problem as
FILE:LINE:COL: message and exit 1 on a broken one (issue 2, "Config").

In the broken files below, lines ending in "# <-" are where the problem is;
a diagnostic must point at one of them (several are marked when reasonable
people could pick either, e.g. a route's first line or its policy key)."""

import os
import re
import subprocess
import unittest

import harness as H

DIAG = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$")


def header(key):
    return """listen: 127.0.0.1:18080
auth:
  verifier_key_file: %s
  issuer: https://auth.test.local
upstreams:
  app: { url: "http://127.0.0.1:9000", connect_timeout_ms: 2000, timeout_ms: 30000 }
""" % key


GOOD_ROUTES = """identity:
  user_header: X-User
  org_header: X-Org
  user_orgs: all
  forward_authorization: true
  strip_headers: [X-Internal]
routes:
  - path: /healthz
    methods: [GET]
    policy: public
  - path: /api/whoami
    policy: require_user
  - path: /api/feed
    policy: optional_user
  - path: /api/org/{org_id}/billing
    policy: require_org_member_with_permission
    permission: can_view_billing
  - path: /api/org/{org_id}/admin/**
    policy: require_org_member_with_minimum_role
    role: Admin
  - path: /api/org/{org_id}
    methods: [DELETE]
    policy: require_org_member_with_exact_role
    role: Owner
  - path: /api/reports
    org_id_from: query
    policy: require_org_member_with_all_permissions
    permissions: [can_view_billing, can_view_reports]
    upstream: app
  - path: /api/t/{tenant}/x
    org_id_from: path:tenant
    policy: require_org_member
  - path: /api/by-header
    org_id_from: header:X-Tenant-Id
    policy: require_org_member
  - path: /files/{id}
    policy: public
  - path: /files/special
    policy: public
  - path: /files/**
    policy: public
"""

BROKEN = {
    "unknown_top_level_key": """listn: 127.0.0.1:1  # <-
routes:
  - path: /x
    policy: public
""",
    "unknown_route_key": """routes:
  - path: /x
    polcy: public  # <-
    policy: public
""",
    "missing_role": """routes:
  - path: /api/org/{org_id}/admin  # <-
    policy: require_org_member_with_minimum_role  # <-
""",
    "empty_role": """routes:
  - path: /api/org/{org_id}/admin  # <-
    policy: require_org_member_with_exact_role  # <-
    role: ""  # <-
""",
    "missing_permission": """routes:
  - path: /api/org/{org_id}/billing  # <-
    policy: require_org_member_with_permission  # <-
""",
    "duplicate_route": """routes:
  - path: /api/whoami  # <-
    policy: require_user
  - path: /api/whoami  # <-
    policy: public
""",
    "ambiguous_route": """routes:
  - path: /files/{id}  # <-
    policy: public
  - path: /files/{name}  # <-
    methods: [GET]
    policy: require_user
""",
    "unknown_upstream": """routes:
  - path: /x  # <-
    policy: public
    upstream: nope  # <-
""",
    "org_policy_without_org_source": """routes:
  - path: /api/reports  # <-
    policy: require_org_member  # <-
""",
    # a look-alike of a name the gateway strips: refused like the name itself
    "org_source_stripped_lookalike": """routes:
  - path: /api/reports
    policy: require_org_member
    org_id_from: header:X_Forwarded_For  # <-
""",
    "identity_header_gateway_set": """identity:
  user_header: x.request.id  # <-
routes:
  - path: /x
    policy: public
""",
    "unknown_policy": """routes:
  - path: /x  # <-
    policy: require_superuser  # <-
""",
    "bad_template": """routes:
  - path: /a/**/b  # <-
    policy: public
""",
    "yaml_syntax_error": """routes:
  - path: /x
    policy: [public  # <-
  - path: /y  # <-
""",
}


def marked_lines(text):
    return {i + 1 for i, l in enumerate(text.split("\n")) if l.rstrip().endswith("# <-")}


class Check(unittest.TestCase):
    def setUp(self):
        if not os.access(H.authgate_bin(), os.X_OK):
            self.skipTest("not built: %s (run make)" % H.authgate_bin())
        self.dir = H.new_tmp("check-")

    def write(self, name, text):
        p = os.path.join(self.dir, name + ".yaml")
        with open(p, "w") as f:
            f.write(text)
        return p

    def check(self, path):
        r = subprocess.run([H.authgate_bin(), "check", "-c", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        return r.returncode, r.stdout.decode("utf-8", "replace"), \
            r.stderr.decode("utf-8", "replace")

    def diags(self, path, out, err):
        found = []
        for line in (out + err).splitlines():
            m = DIAG.match(line)
            if m and m.group("file") == path:
                found.append((int(m.group("line")), int(m.group("col")), m.group("msg")))
        return found

    def test_good_file_ok(self):
        p = self.write("good", header(H.keys("main").public) + GOOD_ROUTES)
        rc, out, err = self.check(p)
        self.assertEqual(rc, 0, "stdout=%r stderr=%r" % (out, err))
        self.assertRegex(out, r"\Aok: 12 routes, 1 upstream, policy [0-9a-f]{16}\n\Z")

    def broken(self, name):
        text = header(H.keys("main").public) + BROKEN[name]
        p = self.write(name, text)
        rc, out, err = self.check(p)
        self.assertEqual(rc, 1, "exit code for %s: stdout=%r stderr=%r" % (name, out, err))
        self.assertNotRegex(out, r"(?m)^ok", "broken file printed ok")
        ds = self.diags(p, out, err)
        self.assertTrue(ds, "no FILE:LINE:COL: message line for %s:\nstdout=%r\nstderr=%r" %
                        (name, out, err))
        want = marked_lines(text)
        hits = [d for d in ds if d[0] in want]
        self.assertTrue(hits, "%s: diagnostics %r point at none of lines %s" %
                        (name, ds, sorted(want)))
        for line, col, msg in ds:
            self.assertGreaterEqual(col, 1)
            self.assertTrue(msg.strip())
        H.log("%s -> %s" % (name, ds))
        return ds

    def test_unknown_top_level_key(self):
        ds = self.broken("unknown_top_level_key")
        self.assertTrue(any("listn" in m for _, _, m in ds), "message should name the key")

    def test_unknown_route_key(self):
        ds = self.broken("unknown_route_key")
        self.assertTrue(any("polcy" in m for _, _, m in ds), "message should name the key")

    def test_missing_role(self):
        self.broken("missing_role")

    def test_empty_role(self):
        self.broken("empty_role")

    def test_missing_permission(self):
        self.broken("missing_permission")

    def test_duplicate_route(self):
        self.broken("duplicate_route")

    def test_ambiguous_route(self):
        self.broken("ambiguous_route")

    def test_unknown_upstream(self):
        ds = self.broken("unknown_upstream")
        self.assertTrue(any("nope" in m for _, _, m in ds), "message should name the upstream")

    def test_org_policy_without_org_source(self):
        self.broken("org_policy_without_org_source")

    def test_org_source_stripped_lookalike(self):
        ds = self.broken("org_source_stripped_lookalike")
        self.assertTrue(any("X_Forwarded_For" in m and "stripped" in m for _, _, m in ds), ds)

    def test_identity_header_gateway_set(self):
        ds = self.broken("identity_header_gateway_set")
        self.assertTrue(any("x.request.id" in m and "reserved" in m for _, _, m in ds), ds)

    def test_unknown_policy(self):
        self.broken("unknown_policy")

    def test_bad_template(self):
        self.broken("bad_template")

    def test_yaml_syntax_error(self):
        self.broken("yaml_syntax_error")

    def test_every_problem_reported(self):
        text = header(H.keys("main").public) + """routes:
  - path: /a
    polcy: public
    policy: public
  - path: /api/org/{org_id}/x
    policy: require_org_member_with_minimum_role
  - path: /b
    policy: public
    upstream: nope
bogus: 1
"""
        p = self.write("many", text)
        rc, out, err = self.check(p)
        self.assertEqual(rc, 1)
        ds = self.diags(p, out, err)
        lines = {d[0] for d in ds}
        base = len(header("k").split("\n")) - 1
        groups = {"unknown route key": {base + 3},
                  "missing role": {base + 5, base + 6},
                  "unknown upstream": {base + 7, base + 9},
                  "unknown top-level key": {base + 10}}
        missing = [g for g, want in groups.items() if not (want & lines)]
        self.assertEqual(missing, [], "problems not reported (diagnostics %r)" % ds)

    def test_missing_file(self):
        rc, out, err = self.check(os.path.join(self.dir, "does-not-exist.yaml"))
        self.assertEqual(rc, 1)
        self.assertTrue((out + err).strip())

    def test_run_refuses_broken_file(self):
        p = self.write("run-broken", header(H.keys("main").public) + BROKEN["missing_role"])
        r = subprocess.run([H.authgate_bin(), "run", "-c", p], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(self.diags(p, r.stdout.decode(), r.stderr.decode()),
                        "run should print the same diagnostics: %r" % r.stderr[:500])
