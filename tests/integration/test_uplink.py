"""authgate's own HTTP/1.1 client for http:// upstreams (src/uplink.c): connect
timeout, pooled connections the upstream closed, the upstream URL's base path,
and bodiless / chunked / large responses on one client connection. Reuse of
upstream connections is covered in test_keepalive.py."""

import socket
import threading
import time

import harness as H


class BlackholeUpstream:
    """A listener whose accept queue is full: further connects hang in SYN."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(0)
        self.port = self.srv.getsockname()[1]
        self.fillers = []
        for _ in range(4):  # fill the (tiny) backlog so the next SYN is dropped
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(s)

    def close(self):
        for s in self.fillers:
            s.close()
        self.srv.close()


class ClosingUpstream:
    """Answers one request per connection with keep-alive headers, then closes
    the connection shortly after, the way short keep-alive servers do."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        self.conns = 0
        self.requests = 0
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        self.srv.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.srv.accept()
            except OSError:
                continue
            self.conns += 1
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        c.settimeout(5)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            self.requests += 1
            body = b'{"ok":true}'
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\nConnection: keep-alive\r\n\r\n%s" % (len(body), body))
            time.sleep(0.05)
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.srv.close()


class Uplink(H.GatewayCase):
    @classmethod
    def setUpClass(cls):
        cls.hole = BlackholeUpstream()
        cls.closing = ClosingUpstream()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.hole.close()
        cls.closing.close()

    @classmethod
    def make_config(cls, echo):
        return {
            "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
            "upstreams": {
                "app": {"url": echo.url},
                "hole": {"url": "http://127.0.0.1:%d" % cls.hole.port,
                         "connect_timeout_ms": 300, "timeout_ms": 10000},
                "closing": {"url": "http://127.0.0.1:%d" % cls.closing.port},
                "base": {"url": echo.url + "/prefix/"},
            },
            "routes": [
                {"path": "/public/**", "policy": "public", "upstream": "app"},
                {"path": "/hole/**", "policy": "public", "upstream": "hole"},
                {"path": "/closing/**", "policy": "public", "upstream": "closing"},
                {"path": "/based/**", "policy": "public", "upstream": "base"},
            ],
        }

    def test_connect_timeout_bounds_the_wait(self):
        t0 = time.time()
        r = self.req("GET", "/hole/x")
        dt = time.time() - t0
        self.assertEqual(r.status, 504, r)
        self.assertEqual(r.json()["reason"], "upstream_timeout")
        self.assertLess(dt, 2.5, "connect_timeout_ms=300 but the answer took %.1fs" % dt)

    def test_upstream_closing_pooled_connections_is_invisible(self):
        # Every upstream connection dies right after its response; the pooled
        # copy must be dropped (or the request retried), never surfaced as 502.
        c = self.gw.conn()
        try:
            for i in range(30):
                r = self.req("GET", "/closing/n%d" % i, conn=c)
                self.assertEqual(r.status, 200, "request %d: %r" % (i, r))
                time.sleep(0.01 if i % 2 else 0.08)
        finally:
            c.close()
        self.assertEqual(self.closing.requests, 30)

    def test_base_path_of_upstream_url_is_prefixed(self):
        _, rec = self.expect_allow("GET", "/based/x?y=1")
        self.assertEqual(rec["path"], "/prefix/based/x")
        self.assertEqual(rec["query"], "y=1")

    def test_head_and_chunked_response_then_next_request(self):
        c = self.gw.conn()
        try:
            r = self.req("HEAD", "/public/__echo/bytes/1000", conn=c)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, b"")
            r = self.req("GET", "/public/__echo/chunked", conn=c)
            self.assertEqual(r.status, 200)
            r = self.req("GET", "/public/__echo/bytes/70000", conn=c)
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), 70000)
        finally:
            c.close()
