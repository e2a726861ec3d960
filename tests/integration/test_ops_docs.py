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
import time
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


# ---------------------------------------------------------------------------
# Issue 13: the reason codes, metric names and label values, and access-log
# fields that docs/ mentions are checked against the binary's own tables:
# `authgate reasons` (the reason table), a live /metrics scrape and a live
# access-log line.

ALL_DOCS = sorted(f for f in os.listdir(DOCS) if f.endswith(".md"))
# Backticked words with these prefixes are taken to be reason codes unless
# they are an access-log field, an `explain --json` key or listed here.
REASONISH = re.compile(r"`((?:upstream|token|path|query|framing|limit|auth_header|client|org_id|"
                       r"role|bad|keys|identity|method|not|no|missing|policy)_[a-z0-9_]*)`")
NOT_REASONS = {
    # config keys, claims, conformance names, /readyz fields and reasons,
    # metric names (without authgate_) and `explain --json` keys
    "org_id_from", "org_id_pattern", "org_id_to_org_member_info", "org_id_not_map_key",
    "token_cache_entries", "token_verification_metadata", "policy_hash", "policy_loaded_at",
    "policy_not_loaded", "keys_ready", "policy_loaded_timestamp_seconds",
    "token_cache_hits_total", "token_cache_misses_total", "upstream_duration_seconds",
    "missing_permissions", "token_reason",
}


def reason_table():
    r = subprocess.run([H.authgate_bin(), "reasons"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    if r.returncode != 0:
        raise AssertionError("authgate reasons: %s" % r.stderr.decode())
    rows = {}
    for line in r.stdout.decode().splitlines():
        name, status, error, level, label = line.split("\t")
        rows[name] = {"status": int(status), "error": error, "level": level, "label": label}
    return rows


def troubleshooting_reason_rows():
    """[(status cell, [reasons])] from troubleshooting.md's reason-code table."""
    md = read_doc("troubleshooting.md")
    start = md.index("### Reason codes")
    out = []
    for line in md[start:].splitlines()[1:]:
        if line.startswith("#"):
            break
        m = re.match(r"^\| (\d{3}|none) \| ([^|]*) \|", line)
        if m:
            out.append((m.group(1), re.findall(r"`([a-z0-9_*]+)`", m.group(2))))
    return out


class DocsMatchBinary(H.GatewayCase):
    maxDiff = None

    @classmethod
    def make_config(cls, echo):
        import ops_helpers as O
        cls.admin_port = H.free_port()
        return O.base_config(echo, [{"path": "/api/whoami", "policy": "require_user"},
                                    {"path": "/api/org/{org_id}",
                                     "policy": "require_org_member_with_minimum_role",
                                     "role": "Admin"}],
                             admin_port=cls.admin_port, workers=1)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.gw is None:
            return
        cls.reasons = reason_table()
        cls.docs = {f: read_doc(f) for f in ALL_DOCS}

    def test_reason_table_is_sane(self):
        self.assertIn("ok", self.reasons)
        self.assertEqual(self.reasons["limit_uri"]["status"], 414)
        self.assertGreater(len(self.reasons), 40)

    def test_reasons_in_json_and_label_samples_exist(self):
        for doc, md in self.docs.items():
            for name in re.findall(r'"reason":"([^"]*)"', md):
                self.assertTrue(name in self.reasons, "%s: \"reason\":\"%s\"" % (doc, name))
            for name in re.findall(r'\breason="([^"]*)"', md):
                self.assertIn(name, set(self.reasons) | {"none", "other"},
                              "%s: reason=\"%s\"" % (doc, name))

    def test_request_samples_agree_with_the_table(self):
        """authgate_requests_total samples: the reason's row gives the decision
        label (and the status, for the gateway's own answers)."""
        n = 0
        for doc, md in self.docs.items():
            for labels in re.findall(r'authgate_requests_total\{((?:[^"}]|"[^"]*")*)\}', md):
                l = dict(re.findall(r'(\w+)="([^"]*)"', labels))
                if "reason" not in l or l["reason"] == "other":
                    continue
                n += 1
                if l["reason"] == "none":
                    self.assertEqual(l.get("decision"), "aborted", "%s: {%s}" % (doc, labels))
                    continue
                row = self.reasons.get(l["reason"])
                self.assertIsNotNone(row, "%s: {%s}" % (doc, labels))
                self.assertEqual(l.get("decision"), row["label"], "%s: {%s}" % (doc, labels))
                if row["status"]:
                    self.assertEqual(l.get("status"), str(row["status"]),
                                     "%s: {%s}" % (doc, labels))
        self.assertGreater(n, 3)

    def test_status_and_reason_pairs_match(self):
        """`NNN reason` in prose and tables: the binary answers that reason
        with that status."""
        n = 0
        for doc, md in self.docs.items():
            for status, name in re.findall(r"\b([45]\d\d) `([a-z0-9_]+)`", md):
                if name not in self.reasons and not REASONISH.match("`%s`" % name):
                    continue
                n += 1
                self.assertTrue(name in self.reasons, "%s: %s `%s`" % (doc, status, name))
                self.assertEqual(self.reasons[name]["status"], int(status),
                                 "%s: %s `%s`, the binary answers %d" %
                                 (doc, status, name, self.reasons[name]["status"]))
        self.assertGreater(n, 3)

    def test_reasonish_words_are_known(self):
        fields = set(self.access_fields_documented())
        used = set()
        for doc, md in self.docs.items():
            if doc == "internals.md":
                continue  # for engineers: it names C functions, not reasons
            for name in REASONISH.findall(md):
                used.add(name)
                self.assertTrue(name in self.reasons or name in fields or name in NOT_REASONS,
                                "%s mentions `%s`: not a reason code of the binary" % (doc, name))
        self.assertEqual(NOT_REASONS - used, set(), "stale entries in NOT_REASONS")

    def test_troubleshooting_lists_every_reason_with_its_status(self):
        rows = troubleshooting_reason_rows()
        self.assertGreater(len(rows), 20)
        listed = {}
        for status, names in rows:
            for name in names:
                self.assertTrue(name in self.reasons, "troubleshooting.md lists `%s`" % name)
                got = self.reasons[name]["status"]
                want = 0 if status == "none" else int(status)
                ok = got == want or (name == "framing_bad_te" and want == 501)
                self.assertTrue(ok, "troubleshooting.md: %s `%s`, the binary answers %d" %
                                (status, name, got))
                listed[name] = want
        md = self.docs["troubleshooting.md"]
        for name, row in self.reasons.items():
            if row["label"] == "allow":
                self.assertIn("reason `%s`" % name, md, "allowed reason %s not explained" % name)
            else:
                self.assertIn(name, listed, "troubleshooting.md's table misses `%s`" % name)

    # metrics ---------------------------------------------------------------

    def scrape(self):
        import ops_helpers as O
        return O.Admin(self.admin_port).metrics()

    def test_metric_names_exist(self):
        families = set(self.scrape().types)
        self.assertIn("authgate_requests_total", families)
        for doc, md in self.docs.items():
            for name in set(re.findall(r"\bauthgate_[a-z0-9_]*[a-z0-9]\b", md)):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                self.assertTrue(name in families or base in families,
                                "%s names metric %s, which /metrics does not have" % (doc, name))
        md = self.docs["metrics.md"]
        for fam in families:
            self.assertIn(fam, md, "metrics.md does not describe %s" % fam)

    def test_metric_labels(self):
        """Label names of every documented series are the binary's, and the
        fixed-value labels (decision, result) only take values it exports."""
        m = self.scrape()
        live_names, live_values = {}, {}
        for (name, labels), _ in m.samples.items():
            fam = re.sub(r"_(bucket|sum|count)$", "", name) if name not in m.types else name
            d = dict(labels)
            d.pop("le", None)
            live_names.setdefault(fam, set()).update(d)
            for k, v in d.items():
                live_values.setdefault((fam, k), set()).add(v)
        checked = 0
        for doc, md in self.docs.items():
            for name, inner in re.findall(r'\b(authgate_[a-z_]+)\{((?:[^"}]|"[^"]*")*)\}', md):
                fam = re.sub(r"_(bucket|sum|count)$", "", name)
                if "=" in inner:
                    pairs = dict(re.findall(r'(\w+)="([^"]*)"', inner))
                else:
                    pairs = {k.strip(): None for k in inner.split(",") if k.strip()}
                pairs.pop("le", None)
                if fam in live_names:
                    checked += 1
                    self.assertLessEqual(set(pairs), live_names[fam],
                                         "%s: %s{%s}: labels" % (doc, name, inner))
                # decision values are checked against the histogram below
                if pairs.get("result") is not None:
                    self.assertIn(pairs["result"], live_values.get((fam, "result"), set()),
                                  "%s: %s{%s}" % (doc, name, inner))
        self.assertGreater(checked, 5)
        md = self.docs["metrics.md"]
        # The headline of each series in metrics.md names all of its labels.
        for name, inner in re.findall(r"\*\*`(authgate_[a-z_]+)\{([^}]*)\}`\*\*", md):
            if name in live_names:
                self.assertEqual({k.strip() for k in inner.split(",")}, live_names[name],
                                 "metrics.md: %s{%s}" % (name, inner))
        for fam in ("authgate_reloads_total", "authgate_key_refresh_total"):
            para = md[md.index("**`%s" % fam):]
            para = para[:para.index("\n\n")]
            self.assertEqual(set(re.findall(r'`result="(\w+)"`', para)),
                             live_values[(fam, "result")], "metrics.md: %s result values" % fam)

    def decision_values(self, doc, first_cell):
        md = self.docs[doc]
        row = [l for l in md.splitlines() if l.startswith("| `%s` |" % first_cell)]
        self.assertEqual(len(row), 1, "%s: one `%s` row" % (doc, first_cell))
        cell = row[0].split("|")[2]
        return set(re.findall(r"`([a-z]+)` \(", cell))

    def test_decision_label_values(self):
        m = self.scrape()
        live = {l["decision"] for l, _ in m.series("authgate_request_duration_seconds_count")}
        table = {r["label"] for r in self.reasons.values()}
        self.assertLessEqual(table, live)
        documented = self.decision_values("metrics.md", "decision")
        self.assertEqual(documented, live | {"other"}, "metrics.md decision values")
        self.assertEqual(self.decision_values("operations.md", "decision"), live,
                         "operations.md access-log decision values")

    # explain --json ----------------------------------------------------------

    def test_explain_json_keys(self):
        """The keys troubleshooting.md lists for `explain --json` are the ones
        it prints (top level, compared.token, compared.org)."""
        md = self.docs["troubleshooting.md"]
        start = md.index("- `--json` prints one object:")
        bullet = md[start:md.index("\n- ", start + 1)]
        start = md.index("In `--json`, `compared` is")
        para = md[start:md.index("\n\n", start)]
        top = set(re.findall(r"`([a-z_]+)`", bullet + para))
        sub = set(re.findall(r"`([a-z_]+)`", para)) - {"null", "compared", "x_user", "x_user_raw"}
        tok = H.mint("u-docs", orgs=["o1:Org One:Member"])
        r = subprocess.run([H.authgate_bin(), "explain", "-c", self.gw.config, "--json",
                            "--token", tok, "GET", "/api/org/o1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        j = json.loads(r.stdout)
        self.assertLessEqual(set(j), top, "explain --json keys troubleshooting.md lacks")
        printed = set(j["compared"]) | set(j["compared"]["token"]) | set(j["compared"]["org"])
        self.assertEqual(sub, printed, "troubleshooting.md's compared keys vs explain's")

    # access log ------------------------------------------------------------

    def access_fields_documented(self):
        md = self.docs["operations.md"]
        start = md.index("The fields, always in this order:")
        fields = []
        for line in md[start:].splitlines()[4:]:
            m = re.match(r"^\| `([a-z_]+)` \|", line)
            if not m:
                break
            fields.append(m.group(1))
        return fields

    def test_access_log_fields(self):
        documented = self.access_fields_documented()
        self.assertIn("reason", documented)
        before = O_lines(self.gw.out)
        self.req("GET", "/api/whoami")
        H_wait = time.time() + 5
        while len(O_lines(self.gw.out)) <= len(before) and time.time() < H_wait:
            time.sleep(0.02)
        line = O_lines(self.gw.out)[-1]
        keys = list(json.loads(line, object_pairs_hook=lambda p: [k for k, _ in p]))
        self.assertEqual(keys, [f for f in documented if f != "terminated"],
                         "access-log fields and order: %s" % line)
        self.assertEqual(documented[-1], "terminated")
        # every JSON access-log sample in the docs uses only these fields
        for doc, md in self.docs.items():
            for sample in re.findall(r'\{"ts":[^`]*?\}', md, re.S):
                for k in re.findall(r'"([a-z_]+)":', sample):
                    self.assertIn(k, documented, "%s: access-log sample has %s" % (doc, k))


def O_lines(path):
    try:
        with open(path) as f:
            return [l for l in f.read().splitlines() if l.startswith('{"ts":')]
    except OSError:
        return []
