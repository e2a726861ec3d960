"""Logs (issue 6): one JSON access-log line per request with the documented
fields and never a token; a file log reopened on SIGUSR1 without losing or
splitting a line; stdout by default, `off` for none; the error log levelled
on stderr, with journald priority prefixes under systemd."""

import json
import os
import re
import signal
import threading
import time

import harness as H
import ops_helpers as O

ORG = "0a1b2c3d-4444-4000-8000-000000000044"
ORG_OTHER = "0a1b2c3d-5555-4000-8000-000000000055"

FIELDS = ["ts", "request_id", "peer", "method", "path", "route", "policy", "decision", "reason",
          "status", "user_id", "org_id", "upstream", "upstream_status", "duration_ms",
          "upstream_ms"]


def log_routes():
    return [
        {"path": "/pub/**", "policy": "public"},
        {"path": "/me", "policy": "require_user"},
        {"path": "/org/{org_id}/x", "policy": "require_org_member"},
    ]


def read_records(path):
    text = O.read_text(path)
    if text and not text.endswith("\n"):
        raise AssertionError("access log ends in the middle of a line: %r" % text[-200:])
    out = []
    for i, l in enumerate(text.splitlines(), 1):
        try:
            out.append(json.loads(l))
        except ValueError:
            raise AssertionError("access log line %d is not JSON: %r" % (i, l[:300]))
    return out


class FileAccessLog(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        cls.log_dir = H.new_tmp("access-")
        cls.log_path = os.path.join(cls.log_dir, "access.log")
        return O.base_config(echo, log_routes(), workers=2, log={"access_log": cls.log_path})

    def wait_records(self, n, path=None):
        path = path or self.log_path
        return O.wait_for(lambda: (lambda r: r if len(r) >= n else None)(read_records(path)), 3,
                          "%d access-log lines in %s" % (n, path))

    def test_one_line_per_request_with_fields_and_no_token(self):
        tok = H.mint("u-log", email="log@example.com", orgs=[ORG + ":Org L:Member"])
        garbage = "eyJhbGciOiJSUzI1NiJ9.SECRETPAYLOADxyz.SECRETSIGxyz"
        start = len(read_records(self.log_path))
        plan = [
            ("GET", "/pub/a%2Db?access_token=QUERYSECRET", None, 200),
            ("POST", "/me", tok, 200),
            ("GET", "/me", None, 401),
            ("GET", "/me", garbage, 401),
            ("GET", "/org/%s/x" % ORG, tok, 200),
            ("GET", "/org/%s/x" % ORG_OTHER, tok, 403),
            ("GET", "/nowhere", tok, 404),
        ]
        resps = []
        for method, target, t, status in plan:
            r = self.req(method, target, token=t, body=b"x" if method == "POST" else None)
            self.assertEqual(r.status, status, "%s %s: %r" % (method, target, r))
            resps.append(r)
        recs = self.wait_records(start + len(plan))[start:]
        time.sleep(0.05)
        self.assertEqual(len(read_records(self.log_path)), start + len(plan),
                         "more lines than requests")
        for rec in recs:
            self.assertEqual(list(rec)[:len(FIELDS)], FIELDS, "field names and order: %r" % rec)
            self.assertIsInstance(rec["ts"], float)
            self.assertLess(abs(rec["ts"] - time.time()), 60)
            self.assertEqual(rec["peer"], "127.0.0.1")
            self.assertGreaterEqual(rec["duration_ms"], 0)
        by = {r.header("X-Request-Id"): i for i, r in enumerate(resps)}
        self.assertEqual(sorted(by.values()), list(range(len(plan))), "distinct request ids")
        got = {rec["request_id"]: rec for rec in recs}
        self.assertEqual(set(got), set(by), "request ids in the log vs X-Request-Id")

        def rec_of(i):
            return got[resps[i].header("X-Request-Id")]

        r0 = rec_of(0)
        # canonical path: %2D is unreserved, so it is decoded; the query is not logged
        self.assertEqual((r0["method"], r0["path"], r0["route"], r0["policy"], r0["decision"],
                          r0["reason"], r0["status"], r0["upstream"], r0["upstream_status"]),
                         ("GET", "/pub/a-b", "/pub/**", "public", "allow", "ok", 200, "app", 200))
        self.assertIsNone(r0["user_id"])
        self.assertGreaterEqual(r0["duration_ms"], r0["upstream_ms"])
        r1 = rec_of(1)
        self.assertEqual((r1["method"], r1["user_id"], r1["org_id"], r1["status"]),
                         ("POST", "u-log", None, 200))
        self.assertEqual((rec_of(2)["reason"], rec_of(2)["decision"], rec_of(2)["upstream"],
                          rec_of(2)["upstream_status"]), ("token_missing", "deny", None, None))
        self.assertEqual(rec_of(3)["reason"], "token_signature")  # signature checked first
        self.assertIsNone(rec_of(3)["user_id"])
        r4 = rec_of(4)
        self.assertEqual((r4["user_id"], r4["org_id"], r4["route"], r4["policy"]),
                         ("u-log", ORG, "/org/{org_id}/x", "require_org_member"))
        r5 = rec_of(5)
        self.assertEqual((r5["status"], r5["reason"], r5["user_id"]), (403, "not_member", "u-log"))
        r6 = rec_of(6)
        self.assertEqual((r6["route"], r6["policy"], r6["reason"], r6["status"]),
                         (None, "", "no_route", 404))

        everything = O.read_text(self.log_path) + O.read_text(self.gw.err) + \
            O.read_text(self.gw.out)
        for secret in (tok, tok.split(".")[2], tok.split(".")[1], "SECRETPAYLOADxyz",
                       "SECRETSIGxyz", "QUERYSECRET"):
            self.assertNotIn(secret, everything, "a token part or query secret was logged")

    def test_concurrent_requests_whole_lines(self):
        start = len(read_records(self.log_path))
        n_threads, per = 8, 40
        errors = []

        def run(i):
            c = self.gw.conn()
            try:
                for k in range(per):
                    r = self.gw.request("GET", "/pub/c%d/%d" % (i, k), conn=c)
                    if r.status != 200:
                        errors.append(r)
            except Exception as e:  # reported below
                errors.append(e)
            finally:
                c.close()

        ts = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        self.assertEqual(errors, [])
        recs = self.wait_records(start + n_threads * per)[start:]
        self.assertEqual(len(recs), n_threads * per)
        self.assertEqual(sorted(r["path"] for r in recs),
                         sorted("/pub/c%d/%d" % (i, k) for i in range(n_threads)
                                for k in range(per)))
        self.assertEqual(len({r["request_id"] for r in recs}), len(recs))

    def test_sigusr1_reopens_for_logrotate(self):
        # Lines are written when a response is complete, which can be a moment
        # after the client has read it: track requests by id, not by counts.
        def ids_in(path):
            return [r["request_id"] for r in read_records(path)]

        before = [self.req("GET", "/pub/before").header("X-Request-Id") for _ in range(3)]
        O.wait_for(lambda: set(before) <= set(ids_in(self.log_path)), 3, "the first lines")
        rotated = self.log_path + ".1"
        os.rename(self.log_path, rotated)
        os.kill(self.gw.pid, signal.SIGUSR1)
        during = []
        deadline = time.time() + 3
        while not os.path.exists(self.log_path) or not read_records(self.log_path):
            r = self.req("GET", "/pub/during")
            self.assertEqual(r.status, 200)
            during.append(r.header("X-Request-Id"))
            self.assertLess(time.time(), deadline, "no new access.log after SIGUSR1")
            time.sleep(0.01)
        after = [self.req("GET", "/pub/after").header("X-Request-Id") for _ in range(5)]
        everything = set(before + during + after)
        O.wait_for(lambda: everything <= set(ids_in(rotated) + ids_in(self.log_path)), 3,
                   "every request in one of the two files")
        old, new = ids_in(rotated), ids_in(self.log_path)
        both = set(old) & set(new)
        self.assertEqual(both, set(), "lines written to both files")
        self.assertEqual(len(old), len(set(old)))
        self.assertEqual(len(new), len(set(new)))
        self.assertTrue(set(before) <= set(old))
        self.assertTrue(set(after) <= set(new), "requests after the reopen went to the old file")
        mode = os.stat(self.log_path).st_mode & 0o777
        self.assertEqual(mode & 0o007, 0, "new access log readable by others (%o)" % mode)
        self.assertNotIn("cannot reopen", O.read_text(self.gw.err))


class StdoutAccessLog(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        return O.base_config(echo, log_routes())

    def test_stdout_by_default(self):
        r = self.req("GET", "/pub/on-stdout")
        self.assertEqual(r.status, 200)
        recs = O.wait_for(lambda: [x for x in read_records(self.gw.out)
                                   if x["request_id"] == r.header("X-Request-Id")], 3,
                          "the line on stdout")
        self.assertEqual(recs[0]["path"], "/pub/on-stdout")
        # nothing but JSON lines on stdout; diagnostics go to stderr
        self.assertNotIn("authgate info", O.read_text(self.gw.out))
        self.assertNotIn('"request_id"', O.read_text(self.gw.err))


class AccessLogOffAndErrorLog(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        return O.base_config(echo, log_routes(), log={"access_log": "off", "level": "info"})

    def test_off_writes_nothing(self):
        for _ in range(3):
            self.assertEqual(self.req("GET", "/pub/quiet").status, 200)
        time.sleep(0.1)
        self.assertEqual(O.read_text(self.gw.out), "")

    def test_error_log_lines_are_levelled(self):
        # the port opens a moment before the start-up line is written
        O.wait_for(lambda: "listening on" in O.read_text(self.gw.err), 3, "the start-up line")
        lines = O.read_text(self.gw.err).splitlines()
        self.assertGreaterEqual(len(lines), 2)
        for l in lines:
            self.assertRegex(l, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z authgate "
                                r"(error|warn|info|debug): \S")


class JournalLog(H.GatewayCase):
    @classmethod
    def gateway_env(cls):
        return {"JOURNAL_STREAM": "8:12345"}

    @classmethod
    def make_config(cls, echo):
        routes = log_routes() + [{"path": "/org/{org_id}/y/**",
                                  "policy": "require_org_member"},
                                 {"path": "/org/{org_id}/y/open", "policy": "public"}]
        return O.base_config(echo, routes, log={"level": "warn"})

    def test_priority_prefixes_and_level(self):
        O.wait_for(lambda: "is public but lies under" in O.read_text(self.gw.err), 3,
                   "the lint warning")
        lines = O.read_text(self.gw.err).splitlines()
        # level warn: the lint warning about the public route is there, the
        # info lines (listening, key loaded) are not
        self.assertTrue(lines, "no stderr at all")
        for l in lines:
            self.assertRegex(l, r"^<[34]>authgate (error|warn): ")
        self.assertTrue(any(l.startswith("<4>authgate warn: ") and "is public but lies under"
                            in l for l in lines), lines)
        self.assertFalse(any(re.match(r"^\d{4}-", l) for l in lines),
                         "timestamps under journald (it adds its own)")


class RejectedTargetsInTheLog(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        cls.log_path = os.path.join(H.new_tmp("access-rej-"), "access.log")
        return O.base_config(echo, log_routes(), log={"access_log": cls.log_path})

    def test_query_of_a_refused_path_is_not_logged(self):
        """A path refused before canonicalization is logged raw (there is no
        canonical form), but still without its query string."""
        r = H.parse_raw_response(H.raw_exchange(
            self.gw.port, b"GET /pub/a/../b?access_token=DOTSECRET HTTP/1.1\r\nHost: x\r\n\r\n"))
        self.assertEqual(r.status, 400)
        recs = O.wait_for(lambda: read_records(self.log_path), 3, "the access-log line")
        self.assertEqual(len(recs), 1)
        self.assertEqual((recs[0]["status"], recs[0]["decision"], recs[0]["reason"]),
                         (400, "reject", "path_dot_segment"))
        self.assertEqual(recs[0]["path"], "/pub/a/../b")
        self.assertNotIn("DOTSECRET", O.read_text(self.log_path) + O.read_text(self.gw.err))
