"""The forward-auth listener's own HTTP/1.1 server (src/hsrv.c, src/rqhead.c)
through the real daemon: the connection behaviour a calling proxy relies on
(keep-alive, pipelining, HTTP/1.0, HEAD, small bodies skipped), what it
refuses before any decision (bad request line, HTTP version, heads over the
budget), the request-head deadline, and trust judged on every request of an
open connection across a reload."""

import os
import signal
import socket
import time
import unittest

import fa_common as F
import harness as H
import sec_common as S


def check_req(target, tok=None, method="GET", version="HTTP/1.1", extra=(), body=b""):
    hdrs = [("X-Original-Method", "GET"), ("X-Original-URI", target)]
    if tok:
        hdrs.append(("Authorization", "Bearer " + tok))
    hdrs += list(extra)
    return S.req_bytes(method, "/_authgate", hdrs, body=body, version=version)


def access_lines(path):
    try:
        with open(path) as f:
            return [l for l in f.read().splitlines() if l.startswith('{"ts":')]
    except OSError:
        return []


class Listener(H.ServedCase):
    up = None
    upstream_attr = "up"

    @classmethod
    def start_upstream(cls):
        return S.Recorder()

    @classmethod
    def gateway_config(cls, upstream):
        cls.fa_port = H.free_port()
        cls.tok = F.tokens()
        cfg = F.config(upstream.url, cls.fa_port)
        cfg.setdefault("limits", {})["request_timeout_ms"] = 400
        return cfg

    def test_pipelined_checks_are_answered_in_order(self):
        good = self.tok["good"]
        data = (check_req("/api/me", good) + check_req("/api/me") +
                check_req(S.r4(F.ORG_A), good) + check_req("/nowhere", good))
        r = S.raw(self.fa_port, data, expect=4)
        self.assertEqual(r.statuses(), [200, 401, 403, 404], r)
        self.assertFalse(r.closed, r)
        self.assertEqual(self.up.requests, [], "a check reached the upstream")

    def test_head_sent_byte_by_byte(self):
        data = check_req("/api/me", self.tok["good"])
        r = S.raw(self.fa_port, data, chunks=[data[i:i + 1] for i in range(len(data))],
                  expect=1)
        self.assertEqual(r.statuses(), [200], r)

    def test_small_body_is_skipped_and_the_connection_goes_on(self):
        good = self.tok["good"]
        body = b"x" * 1000
        data = (check_req("/api/me", good, extra=[("Content-Length", str(len(body)))],
                          body=body) + check_req("/api/me"))
        r = S.raw(self.fa_port, data, expect=2)
        self.assertEqual(r.statuses(), [200, 401], r)

    def test_unreadable_bodies_close_after_the_answer(self):
        good = self.tok["good"]
        for extra, body in (([("Content-Length", str(70 * 1024))], b"y" * (70 * 1024)),
                            ([("Transfer-Encoding", "chunked")], b"5\r\nhello\r\n0\r\n\r\n"),
                            ([("Content-Length", "5"), ("Expect", "100-continue")], b"")):
            r = S.raw(self.fa_port, check_req("/public/x", good, extra=extra, body=body) +
                      check_req("/public/x"), timeout=3)
            self.assertTrue(r.closed, "%r: %r" % (extra, r))
            self.assertEqual(len(r.responses), 1, "%r: %r" % (extra, r))
            self.assertEqual(r.first.header("Connection"), "close", r)

    def test_http_10(self):
        good = self.tok["good"]
        r = S.raw(self.fa_port, check_req("/api/me", good, version="HTTP/1.0") +
                  check_req("/api/me", good, version="HTTP/1.0"))
        self.assertEqual(r.statuses(), [200], r)
        self.assertTrue(r.closed, r)
        ka = [("Connection", "keep-alive")]
        r = S.raw(self.fa_port, check_req("/api/me", good, version="HTTP/1.0", extra=ka) +
                  check_req("/api/me", version="HTTP/1.0", extra=ka), expect=2)
        self.assertEqual(r.statuses(), [200, 401], r)
        self.assertEqual(r.first.header("Connection"), "keep-alive", r)

    def test_head_check_has_no_body(self):
        s = socket.create_connection(("127.0.0.1", self.fa_port), timeout=5)
        try:
            s.sendall(check_req("/api/me", method="HEAD") + check_req("/api/me"))
            buf = b""
            deadline = time.time() + S.slack(5)
            while buf.count(b"HTTP/1.1 ") < 2 or not buf.rstrip().endswith(b"}"):
                if time.time() > deadline:
                    break
                d = s.recv(65536)
                if not d:
                    break
                buf += d
        finally:
            s.close()
        first, second = buf.split(b"HTTP/1.1 401", 2)[1:3]
        # The HEAD answer announces the JSON body's length and sends none:
        # the next answer starts right after its empty line.
        self.assertIn(b"Content-Length: ", first)
        self.assertTrue(first.endswith(b"\r\n\r\n"), buf)
        self.assertTrue(second.rstrip().endswith(b"}"), buf)

    def test_refusals_before_any_decision(self):
        cases = [
            (b"GET /_authgate HTTP/2.0\r\nHost: f\r\n\r\n", 505, "http_version"),
            (b"GET  /_authgate HTTP/1.1\r\nHost: f\r\n\r\n", 400, "bad_request_line"),
            (b"GET /_authgate HTTP/1.1\nHost: f\n\n", 400, None),
            (b"GET /_authgate HTTP/1.1\r\nHost : f\r\n\r\n", 400, "bad_header_name"),
            (b"GET /_authgate HTTP/1.1\r\nHost: f\r\n folded\r\n\r\n", 400, "bad_header_value"),
        ]
        for data, status, reason in cases:
            r = S.raw(self.fa_port, data)
            self.assertEqual(r.statuses(), [status], "%r: %r" % (data, r))
            self.assertTrue(r.closed, data)
            if reason:
                self.assertEqual(r.first.json()["reason"], reason, data)

    def test_head_over_the_budget(self):
        # Before the request line ends: 414; after it: 431 (as proxy mode).
        r = S.raw(self.fa_port, b"GET /" + b"a" * 60000 + b" HTTP/1.1\r\n\r\n")
        self.assertEqual(r.statuses(), [414], r)
        r = S.raw(self.fa_port, b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 60000 + b"\r\n\r\n")
        self.assertEqual(r.statuses(), [431], r)
        self.assertEqual(r.first.json()["reason"], "limit_headers")

    def test_request_head_deadline(self):
        before = len(access_lines(self.gw.out))
        t0 = time.time()
        r = S.raw(self.fa_port, b"GET /_authgate HTTP/1.1\r\nX-Original-Method: GET\r\n",
                  timeout=5)
        took = time.time() - t0
        self.assertTrue(r.closed, r)
        self.assertEqual(r.responses, [], r)
        self.assertLess(took, S.slack(3.0), "closed after %.2fs" % took)
        deadline = time.time() + S.slack(3)
        new = []
        while time.time() < deadline:
            new = [l for l in access_lines(self.gw.out)[before:] if "client_header_timeout" in l]
            if new:
                break
            time.sleep(0.05)
        self.assertTrue(new, "no access line for the aborted check")
        self.assertIn('"mode":"forward_auth"', new[0])
        self.assertIn('"decision":"aborted"', new[0])
        # A connection that never sends its first request is held for the
        # head deadline, not the idle timeout (60 s here).
        s = socket.create_connection(("127.0.0.1", self.fa_port), timeout=S.slack(5))
        try:
            t0 = time.time()
            self.assertEqual(s.recv(100), b"")
            self.assertLess(time.time() - t0, S.slack(3.0))
        finally:
            s.close()


class TrustOnOpenConnections(unittest.TestCase):
    def setUp(self):
        if H.missing_binaries():
            self.skipTest("not built")

    def test_reload_that_drops_a_peer_holds_for_open_connections(self):
        up = S.Recorder()
        port = H.free_port()
        gw = H.Gateway(F.config(up.url, port), name="fauth-trust-reload")
        s = None
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)

            def one():
                s.sendall(check_req("/public/x"))
                buf = b""
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        return None, buf
                    buf += d
                head, rest = buf.split(b"\r\n\r\n", 1)
                n = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        n = int(line.split(b":")[1])
                while len(rest) < n:
                    rest += s.recv(65536)
                return int(head.split(b" ")[1]), head

            self.assertEqual(one()[0], 200)
            cfg = F.config(up.url, port, trusted_peers=["10.0.0.0/8"])
            cfg["listen"] = "127.0.0.1:%d" % gw.port
            with open(gw.config, "w") as f:
                f.write(H.to_yaml({"listen": cfg.pop("listen"), **cfg}) + "\n")
            os.kill(gw.pid, signal.SIGHUP)
            deadline = time.time() + S.slack(5)
            st = 200
            while time.time() < deadline:
                st, head = one()
                if st != 200:
                    break
                time.sleep(0.05)
            self.assertEqual(st, 403, "the open connection kept its trust after the reload")
        finally:
            if s:
                s.close()
            problems = gw.stop()
            up.stop()
        self.assertEqual(problems, "")


if __name__ == "__main__":
    unittest.main()
