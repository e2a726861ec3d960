"""The docs' YAML is real (issue 6): every ```yaml block of the policy
cookbook and the troubleshooting guide passes `authgate check` (with no
warning unless a `<!-- check: warns TEXT -->` comment before it gives one), and every
`<!-- expect: METHOD TARGET | WHO | [header=N: v |] [multi=R,R |] STATUS [REASON] -->`
comment after a block is what `authgate explain` decides for it.

WHO is anonymous, user, expired, garbage, or orgs=ORG:ROLE[:PERM,PERM].
Blocks without a top-level `auth:` are recipes: they are checked under the
cookbook's base file (its first block, minus its routes)."""

import functools
import json
import os
import re
import subprocess
import unittest

import harness as H

DOCS = os.path.join(H.REPO, "docs")
FILES = ["policy-cookbook.md", "troubleshooting.md"]
DOC_ISSUER = "https://auth.example.com"
DOC_KEY = "/etc/authgate/verifier.pem"

BLOCK = re.compile(r"^```yaml\n(.*?)^```\n", re.S | re.M)
WARN = re.compile(r"<!-- check: warns (.+?) -->")
EXPECT = re.compile(r"<!-- expect: (.*?) -->")


def blocks(md):
    """[(line, yaml text, warn text or None, [expect strings])]."""
    out = []
    matches = list(BLOCK.finditer(md))
    for i, m in enumerate(matches):
        prev_end = matches[i - 1].end() if i else 0
        nxt = matches[i + 1].start() if i + 1 < len(matches) else len(md)
        w = WARN.findall(md[prev_end:m.start()])
        out.append((md.count("\n", 0, m.start()) + 1, m.group(1), w[-1] if w else None,
                    EXPECT.findall(md[m.end():nxt])))
    return out


def read_doc(name):
    with open(os.path.join(DOCS, name)) as f:
        return f.read()


@functools.lru_cache(maxsize=None)
def token_for(who, multi):
    uid = "u-docs"
    if who == "anonymous":
        return None
    if who == "garbage":
        return "not.a.token"
    if who == "user":
        return H.mint(uid, email="docs@example.com", issuer=DOC_ISSUER)
    if who == "expired":
        return H.mint(uid, issuer=DOC_ISSUER, iat_offset=-7200, exp_offset=-3600)
    if who.startswith("orgs="):
        orgs = []
        for spec in who[5:].split(";"):
            parts = spec.split(":")
            org = "%s:Org %s:%s" % (parts[0], parts[0], parts[1])
            if len(parts) > 2:
                org += ":" + parts[2]
            orgs.append(org)
        return H.mint(uid, email="docs@example.com", orgs=orgs, issuer=DOC_ISSUER,
                      multi_role=multi)
    raise ValueError("unknown WHO %r" % who)


class DocsYaml(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._skip = None
        miss = H.missing_binaries()
        if miss:
            cls._skip = "not built: %s (run make)" % ", ".join(miss)
            return
        cls.dir = H.new_tmp("docs-")

    def setUp(self):
        if self._skip:
            self.skipTest(self._skip)

    def materialize(self, doc, line, text, header):
        if not re.search(r"^auth:", text, re.M):
            text = header + text
        text = text.replace(DOC_KEY, H.keys("main").public)
        path = os.path.join(self.dir, "%s-%d.yaml" % (doc.replace(".md", ""), line))
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def check_doc(self, doc):
        md = read_doc(doc)
        bs = blocks(md)
        self.assertGreater(len(bs), 0, "%s has no yaml blocks" % doc)
        cook = blocks(read_doc("policy-cookbook.md"))
        base = cook[0][1]
        header = base[:base.index("\nroutes:") + 1]
        n_expect = 0
        for line, text, warn, expects in bs:
            with self.subTest(doc=doc, line=line):
                path = self.materialize(doc, line, text, header)
                r = subprocess.run([H.authgate_bin(), "check", "-c", path],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                out = r.stdout.decode()
                self.assertEqual(r.returncode, 0, "%s:%d: authgate check:\n%s%s" %
                                 (doc, line, out, r.stderr.decode()))
                warnings = [l for l in out.splitlines() if ": warning: " in l]
                if warn is None:
                    self.assertEqual(warnings, [], "%s:%d: unexpected warnings" % (doc, line))
                else:
                    self.assertTrue(any(warn in w for w in warnings),
                                    "%s:%d: expected a warning with %r, got %r" %
                                    (doc, line, warn, warnings))
                for e in expects:
                    n_expect += 1
                    self.run_expect(doc, line, path, e)
        return n_expect

    def run_expect(self, doc, line, path, spec):
        parts = [p.strip() for p in spec.split("|")]
        method, target = parts[0].split(" ", 1)
        who = parts[1]
        headers, multi = [], None
        for p in parts[2:-1]:
            if p.startswith("header="):
                headers.append(p[7:])
            elif p.startswith("multi="):
                multi = p[6:]
            else:
                self.fail("%s:%d: bad expect field %r" % (doc, line, p))
        want = parts[-1].split()
        argv = [H.authgate_bin(), "explain", "-c", path, "--json"]
        tok = token_for(who, multi)
        if tok is not None:
            argv += ["--token", tok]
        for h in headers:
            argv += ["--header", h]
        argv += [method, target]
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertIn(r.returncode, (0, 1), "%s:%d: explain failed: %s" %
                      (doc, line, r.stderr.decode()))
        j = json.loads(r.stdout)
        status = 200 if j["decision"] == "allow" else j["status"]
        got = [str(status)] + ([j["reason"]] if len(want) > 1 else [])
        self.assertEqual(got, want, "%s:%d: expect %r; explain said %r" % (doc, line, spec, j))

    def test_policy_cookbook(self):
        n = self.check_doc("policy-cookbook.md")
        self.assertGreaterEqual(n, 40, "the cookbook lost its expectations")

    def test_troubleshooting(self):
        self.check_doc("troubleshooting.md")

    def test_every_policy_has_a_recipe(self):
        md = read_doc("policy-cookbook.md")
        for p in ("public", "optional_user", "require_user", "require_org_member",
                  "require_org_member_with_minimum_role", "require_org_member_with_exact_role",
                  "require_org_member_with_permission",
                  "require_org_member_with_all_permissions"):
            self.assertRegex(md, r"policy: %s\n" % p)
        for src in ("org_id_from: path:", "org_id_from: query", "org_id_from: header:"):
            self.assertIn(src, md)
