"""Keep-alive: many requests over one client connection, with denials
interleaved, and upstream connections reused (issue 2, "Forwarding")."""

import http.client
import os
import time
import unittest

import harness as H
from test_policies import ORG_A, ORG_B, ORG_X, minted, policy_config, route


class ClientKeepAlive(H.GatewayCase):
    N = 200

    @classmethod
    def make_config(cls, echo):
        return policy_config(echo, extra_routes=[route("/get-only", "public", methods=["GET"])])

    def test_200_requests_one_connection_with_denials(self):
        admin = minted("admin_b")
        member = minted("member_a")
        body = os.urandom(3000)
        plan = [
            ("GET", "/public/ka", None, None, 200),
            ("GET", "/api/whoami", admin, None, 200),
            ("GET", "/api/whoami", None, None, 401),
            ("GET", "/api/org/%s/billing" % ORG_B, admin, None, 200),
            ("GET", "/api/org/%s/member" % ORG_X, member, None, 403),
            ("GET", "/nope/nothing", None, None, 404),
            ("POST", "/public/ka-post", None, body, 200),
            ("GET", "/api/whoami", "junk.token.here", None, 401),
            ("GET", "/get-only", None, None, 200),
            ("DELETE", "/get-only", None, None, 405),
            ("GET", "/api/org/%s/min-admin" % ORG_A, member, None, 403),
        ]
        c = self.gw.conn()
        c.auto_open = 0  # never silently reconnect: a closed socket must fail the test
        c.connect()
        sock = c.sock
        local = sock.getsockname()
        before = self.echo.count()
        expected_forwarded = 0
        try:
            for i in range(self.N):
                method, path, tok, b, status = plan[i % len(plan)]
                try:
                    r = self.req(method, path, body=b, token=tok, conn=c)
                except (http.client.HTTPException, OSError) as e:
                    self.fail("request %d (%s %s) failed on the kept-alive connection: %r" %
                              (i, method, path, e))
                self.assertEqual(r.status, status, "request %d %s %s: %r" % (i, method, path, r))
                self.assertNotEqual((r.header("Connection") or "").lower(), "close",
                                    "request %d (%d) announced Connection: close" % (i, status))
                self.assertIs(c.sock, sock, "connection was closed after request %d (%s %s -> %d)"
                              % (i, method, path, status))
                if status == 200:
                    expected_forwarded += 1
                    if path.startswith("/public/ka-post"):
                        self.assertEqual(r.json()["body_bytes"], len(body))
            self.assertEqual(sock.getsockname(), local)
        finally:
            c.close()
        recs = self.echo.wait_new(before, expected_forwarded)
        self.assertEqual(len(recs), expected_forwarded,
                         "upstream saw %d requests, %d were allowed" %
                         (len(recs), expected_forwarded))
        H.log("%d requests over one connection (local port %d), %d forwarded" %
              (self.N, local[1], expected_forwarded))

    def test_denials_with_request_body_keep_connection(self):
        """A denied request that carries a body: the gateway must read the body
        (issue 2: answer after the request has been received) and keep the
        connection, so the next request on it works."""
        member = minted("member_a")
        body = os.urandom(3000)
        plan = [("POST", "/api/whoami", None, 401), ("POST", "/api/org/%s/min-admin" % ORG_A,
                                                     member, 403),
                ("POST", "/get-only", None, 405), ("POST", "/nope/x", None, 404)]
        for method, path, tok, status in plan:
            with self.subTest(path=path, status=status):
                c = self.gw.conn()
                c.auto_open = 0
                try:
                    c.connect()
                    sock = c.sock
                    r = self.req(method, path, body=body, token=tok, conn=c)
                    self.assertEqual(r.status, status, r)
                    self.assertNotEqual((r.header("Connection") or "").lower(), "close",
                                        "%d with a request body announced Connection: close" %
                                        status)
                    self.assertIs(c.sock, sock)
                    r2 = self.req("GET", "/public/after-denial", conn=c)
                    self.assertEqual(r2.status, 200)
                finally:
                    c.close()

    def test_http10_without_keepalive_closes(self):
        raw = b"GET /public/h10 HTTP/1.0\r\nHost: gw\r\n\r\n"
        t0 = time.time()
        resp = H.raw_exchange(self.gw.port, raw, timeout=5.0, read_until_close=True)
        self.assertLess(time.time() - t0, 4.0, "HTTP/1.0 connection was not closed")
        self.assertTrue(resp.startswith(b"HTTP/1."), resp[:100])
        self.assertIn(b" 200 ", resp.split(b"\r\n")[0])


class UpstreamKeepAlive(H.RawUpstreamCase):
    """Upstream connections are kept alive and reused: 40 client requests on
    fresh client connections must not open 40 upstream connections."""

    @classmethod
    def config(cls, up):
        return {
            "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
            "upstreams": {"app": {"url": up.url}},
            "routes": [{"path": "/public/**", "policy": "public"}],
        }

    def test_upstream_connections_reused(self):
        n = 40
        for i in range(n):
            r = self.gw.request("GET", "/public/%d" % i)
            self.assertEqual(r.status, 200, r)
        self.assertEqual(self.up.count(), n)
        conns = self.up.connections
        H.log("%d sequential requests used %d upstream connections" % (n, conns))
        self.assertLessEqual(conns, max(4, 2 * (os.cpu_count() or 1)),
                             "%d requests opened %d upstream connections" % (n, conns))
