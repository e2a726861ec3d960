"""Hole 2 of the transport issue: `authgate explain` must refuse every request
head the daemon refuses before any policy (header grammar, Host, framing,
header and body limits), with the same status and reason. A corpus of heads
goes (a) as raw bytes over a socket to the real daemon and (b) to
`authgate explain --batch` with the same file; the verdicts must be equal for
every head. A few heads are answered by libmicrohttpd itself (no JSON body):
for those only the status is compared."""

import json
import subprocess

import harness as H
import ops_helpers as O

LIMITS = {"max_headers": 12, "max_header_bytes": 1024, "max_body_bytes": 100}
CHUNKED_BODY = b"5\r\nhello\r\n0\r\n\r\n"


def routes():
    return [
        {"path": "/pub/**", "policy": "public"},
        {"path": "/api/whoami", "policy": "require_user"},
    ]


def row(name, headers, method="POST", target="/pub/x", version="HTTP/1.1", body=b"",
        host=True, mhd=False):
    hs = ([("Host", "gw")] if host else []) + list(headers)
    return {"name": name, "method": method, "target": target, "version": version,
            "headers": hs, "body": body, "mhd": mhd}


CORPUS = [
    # admitted heads: explain says allow, the upstream answers 200
    row("plain get", [], method="GET"),
    row("content-length", [("Content-Length", "5")], body=b"hello"),
    row("content-length zero", [("Content-Length", "0")]),
    row("chunked", [("Transfer-Encoding", "chunked")], body=CHUNKED_BODY),
    row("CHUNKED", [("Transfer-Encoding", "CHUNKED")], body=CHUNKED_BODY),
    row("ipv6 host", [("Host", "[::1]:8080")], method="GET", host=False),
    row("http/1.0 without host", [], method="GET", version="HTTP/1.0", host=False),
    row("at max_headers", [("X-%d" % i, "v") for i in range(11)], method="GET"),
    row("body at the limit", [("Content-Length", "100")], body=b"x" * 100),
    # the two heads of the hole
    row("te and cl", [("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
        body=b"0\r\n\r\n"),
    row("bad header name (space)", [("Bad Name", "1")], method="GET"),
    # grammar
    row("cl and te", [("Content-Length", "6"), ("Transfer-Encoding", "chunked")],
        body=b"0\r\n\r\nG"),
    row("name with trailing space", [("Transfer-Encoding ", "chunked")], body=CHUNKED_BODY),
    row("name with parens", [("X(A)", "1")], method="GET"),
    row("name with tab", [("X-A\tb", "1")], method="GET"),
    row("control byte in value", [("X-Trace", "a\x01b")], method="GET"),
    row("DEL in value", [("X-Trace", "a\x7fb")], method="GET"),
    # Host
    row("missing host", [], method="GET", host=False),
    row("two hosts", [("Host", "other")], method="GET"),
    row("host with @", [("Host", "u@evil")], method="GET", host=False),
    row("host port too long", [("Host", "gw:123456")], method="GET", host=False),
    row("host with slash", [("Host", "a/b")], method="GET", host=False),
    row("unclosed ipv6 host", [("Host", "[::1")], method="GET", host=False),
    # framing
    row("http/1.0 with te", [("Transfer-Encoding", "chunked")], version="HTTP/1.0",
        body=CHUNKED_BODY),
    row("gzip, chunked", [("Transfer-Encoding", "gzip, chunked")], body=b"0\r\n\r\n"),
    row("chunked, chunked", [("Transfer-Encoding", "chunked, chunked")], body=b"0\r\n\r\n"),
    row("two te headers", [("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")],
        body=b"0\r\n\r\n"),
    row("te identity", [("Transfer-Encoding", "identity")], body=b"0\r\n\r\n"),
    row("chunked then identity", [("Transfer-Encoding", "chunked, identity")],
        body=b"0\r\n\r\n"),
    row("duplicate cl", [("Content-Length", "5"), ("Content-Length", "5")], body=b"hello"),
    row("different cl", [("Content-Length", "5"), ("Content-Length", "50")], body=b"hello"),
    # limits, and the count before the grammar
    row("too many headers", [("X-%d" % i, "v") for i in range(12)], method="GET"),
    row("too many headers, one bad", [("X-%d" % i, "v") for i in range(11)] + [("Bad Name", "1")],
        method="GET"),
    row("header bytes", [("X-Pad", "a" * 1100)], method="GET"),
    row("body over the limit", [("Content-Length", "101")]),
    # past admission, the policy decides (and both still agree)
    row("policy: token missing", [], method="GET", target="/api/whoami"),
    # answered by libmicrohttpd's own Content-Length parser: status only
    row("cl with plus", [("Content-Length", "+5")], body=b"hello", mhd=True),
    row("cl negative", [("Content-Length", "-5")], body=b"hello", mhd=True),
]


def raw_bytes(r):
    lines = ["%s %s %s" % (r["method"], r["target"], r["version"])]
    lines += ["%s: %s" % (k, v) for k, v in r["headers"]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + r["body"]


def batch_line(r):
    return json.dumps({"method": r["method"], "target": r["target"], "version": r["version"],
                       "headers": [[k, v] for k, v in r["headers"]], "default_host": False})


class Hole2ExplainAdmission(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        return O.base_config(echo, routes(), limits=LIMITS)

    def daemon_verdict(self, r):
        buf = H.raw_exchange(self.gw.port, raw_bytes(r), timeout=5)
        self.assertTrue(buf, "%s: no answer from the daemon" % r["name"])
        resp = H.parse_raw_response(buf)
        reason = None
        if (resp.header("Content-Type") or "").startswith("application/json") \
                and resp.status != 200:
            reason = resp.json().get("reason")
        return resp.status, reason

    def explain_batch(self, rows):
        inp = "".join(batch_line(r) + "\n" for r in rows)
        p = subprocess.run([H.authgate_bin(), "explain", "-c", self.gw.config, "--batch"],
                           input=inp.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        out = [json.loads(l) for l in p.stdout.decode().splitlines()]
        self.assertEqual(len(out), len(rows), p.stdout.decode())
        return out

    def test_same_verdict_for_every_head(self):
        self.assertGreaterEqual(len(CORPUS), 20)
        answers = self.explain_batch(CORPUS)
        stages = set()
        for r, j in zip(CORPUS, answers):
            with self.subTest(head=r["name"]):
                status, reason = self.daemon_verdict(r)
                stages.add(j["stage"])
                if j["decision"] == "allow":
                    self.assertEqual(status, 200, "%s: explain allows, daemon %d %s"
                                     % (r["name"], status, reason))
                    self.assertEqual(j["stage"], "policy")
                    continue
                self.assertEqual(j["status"], status, "%s: explain %d %s, daemon %d %s"
                                 % (r["name"], j["status"], j["reason"], status, reason))
                if r["mhd"]:
                    self.assertIsNone(reason, "%s: expected libmicrohttpd's own answer"
                                      % r["name"])
                else:
                    self.assertEqual(j["reason"], reason, r["name"])
        self.assertEqual(stages, {"admission", "policy"})

    def test_expected_refusals(self):
        """The corpus does reach every admission reason (so agreement is not
        agreement on ALLOW)."""
        answers = {r["name"]: j for r, j in zip(CORPUS, self.explain_batch(CORPUS))}
        want = {
            "te and cl": (400, "framing_te_and_cl"),
            "bad header name (space)": (400, "bad_header_name"),
            "control byte in value": (400, "bad_header_value"),
            "missing host": (400, "bad_host"),
            "http/1.0 with te": (400, "framing_bad_te"),
            "gzip, chunked": (501, "framing_bad_te"),
            "duplicate cl": (400, "framing_bad_content_length"),
            "too many headers": (431, "limit_headers"),
            "too many headers, one bad": (431, "limit_headers"),
            "header bytes": (431, "limit_headers"),
            "body over the limit": (413, "limit_body"),
            "policy: token missing": (401, "token_missing"),
        }
        for name, (status, reason) in want.items():
            with self.subTest(head=name):
                j = answers[name]
                self.assertEqual((j["decision"], j["status"], j["reason"]),
                                 ("deny", status, reason))
                self.assertEqual(j["stage"], "policy" if status == 401 else "admission")
                self.assertIsNone(j["route"] if status != 401 else None)

    def explain(self, *args):
        p = subprocess.run([H.authgate_bin(), "explain", "-c", self.gw.config] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def test_command_line_heads(self):
        # the two heads of the hole, as an operator would type them
        rc, out, err = self.explain("--header", "Transfer-Encoding: chunked", "--header",
                                    "Content-Length: 5", "POST", "/pub/x")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("admission: REFUSED: 400 bad_request (framing_te_and_cl): the daemon "
                      "answers this itself before any policy", out)
        self.assertIn("decision:  DENY: 400 bad_request (framing_te_and_cl)\n", out)
        self.assertNotIn("ALLOW", out)
        rc, out, err = self.explain("--json", "--header", "Bad Name: 1", "GET", "/pub/x")
        self.assertEqual(rc, 1, out + err)
        j = json.loads(out)
        self.assertEqual((j["decision"], j["status"], j["reason"], j["stage"], j["error"]),
                         ("deny", 400, "bad_header_name", "admission", "bad_request"))
        # no Host given: explain supplies one for HTTP/1.1 ...
        rc, out, _ = self.explain("--json", "GET", "/pub/x")
        self.assertEqual((rc, json.loads(out)["decision"]), (0, "allow"))
        # ... unless told not to, when it is the daemon's bad_host
        rc, out, _ = self.explain("--json", "--no-default-host", "GET", "/pub/x")
        self.assertEqual((rc, json.loads(out)["reason"]), (1, "bad_host"))
        rc, out, _ = self.explain("--json", "--no-default-host", "--http-version", "1.0",
                                  "GET", "/pub/x")
        self.assertEqual((rc, json.loads(out)["decision"]), (0, "allow"))
        rc, out, _ = self.explain("--json", "--http-version", "1.0", "--header",
                                  "Transfer-Encoding: chunked", "POST", "/pub/x")
        self.assertEqual((rc, json.loads(out)["reason"]), (1, "framing_bad_te"))
        # the supplied Host counts toward max_headers like a real one
        many = []
        for i in range(11):
            many += ["--header", "X-%d: v" % i]
        rc, out, _ = self.explain("--json", *many, "GET", "/pub/x")
        self.assertEqual((rc, json.loads(out)["decision"]), (0, "allow"))
        rc, out, _ = self.explain("--json", *many, "--header", "X-Last: v", "GET", "/pub/x")
        self.assertEqual((rc, json.loads(out)["reason"]), (1, "limit_headers"))
        rc, out, err = self.explain("--http-version", "2", "GET", "/pub/x")
        self.assertEqual((rc, out), (2, ""))
        self.assertIn("--http-version", err)
