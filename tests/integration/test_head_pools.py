"""Two libmicrohttpd pools per worker (issue 15): a connection is given the
small or the big pool by its first request head, read with MSG_PEEK before
libmicrohttpd sees it. Big first heads, heads that arrive in pieces, a later
head that outgrows a small-pool connection (431 and close; a new connection is
served), and a client that sends nothing (closed at request_timeout_ms)."""

import socket
import struct
import time

import harness as H
from test_policies import policy_config

BIG_LIMIT = 131072


def head(path, pad=0, extra=b""):
    h = b"GET " + path.encode() + b" HTTP/1.1\r\nHost: gw\r\n"
    if pad:
        h += b"X-Pad: " + b"p" * pad + b"\r\n"
    return h + extra + b"\r\n"


def read_response(s, timeout=5.0):
    """One response (status, headers, closed-after) read from s."""
    s.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return None, buf, True
        buf += chunk
    hdr, _, rest = buf.partition(b"\r\n\r\n")
    lines = hdr.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        fields[k.strip().lower()] = v.strip()
    n = int(fields.get("content-length", "0"))
    while len(rest) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, fields, False


def closed_soon(s, timeout=3.0):
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


class HeadPools(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        cfg = policy_config(echo)
        cfg["limits"] = {"max_header_bytes": BIG_LIMIT, "request_timeout_ms": 800}
        return cfg

    def sock(self):
        return socket.create_connection(("127.0.0.1", self.gw.port), timeout=5)

    def test_small_and_big_first_heads_served(self):
        for pad in (0, 5000, 11000, 13000, 40000, 90000):
            s = self.sock()
            try:
                s.sendall(head("/public/pools", pad))
                st, _, _ = read_response(s)
                self.assertEqual(st, 200, "first head with %d pad bytes" % pad)
                # the same connection keeps its pool for an equal head
                s.sendall(head("/public/pools", pad))
                st, _, _ = read_response(s)
                self.assertEqual(st, 200, "second head with %d pad bytes" % pad)
            finally:
                s.close()

    def test_heads_in_pieces(self):
        """Classification waits for more bytes without blocking other clients."""
        for pad in (3000, 60000):
            data = head("/public/pieces", pad)
            s = self.sock()
            try:
                s.sendall(data[:2000])
                time.sleep(0.15)
                # another client is served meanwhile
                self.assertEqual(self.gw.request("GET", "/public/other").status, 200)
                s.sendall(data[2000:2100])
                time.sleep(0.15)
                s.sendall(data[2100:])
                st, _, _ = read_response(s)
                self.assertEqual(st, 200, "head of %d pad bytes in pieces" % pad)
            finally:
                s.close()

    def test_later_head_outgrowing_small_pool(self):
        s = self.sock()
        try:
            s.sendall(head("/public/first"))
            self.assertEqual(read_response(s)[0], 200)
            s.sendall(head("/public/later", 30000))
            st, fields, _ = read_response(s)
            self.assertEqual(st, 431)
            self.assertEqual(fields.get("connection", "").lower(), "close")
            self.assertTrue(closed_soon(s), "connection left open after the 431")
        finally:
            s.close()
        # the client reconnects: its first head now chooses the big pool
        s = self.sock()
        try:
            s.sendall(head("/public/later", 30000))
            self.assertEqual(read_response(s)[0], 200)
        finally:
            s.close()

    def test_over_the_limit_still_refused(self):
        s = self.sock()
        try:
            s.sendall(head("/public/over", BIG_LIMIT + 100))
            st, _, closed = read_response(s)
            self.assertEqual(st, 431)
        finally:
            s.close()

    def test_silent_client_closed_at_head_deadline(self):
        t0 = time.monotonic()
        s = self.sock()
        try:
            s.sendall(b"GET /public/slow HTTP/1.1\r\n")
            self.assertTrue(closed_soon(s, 4.0), "a client that never finishes its head stays")
            took = time.monotonic() - t0
            self.assertGreater(took, 0.6)
            self.assertLess(took, 3.0)
        finally:
            s.close()
        self.assertEqual(self.gw.request("GET", "/public/after").status, 200)

    def test_client_gone_before_a_byte(self):
        for i in range(50):
            s = self.sock()
            if i % 2:
                # reset instead of an orderly close
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        self.assertEqual(self.gw.request("GET", "/public/after-gone").status, 200)

    def test_heads_at_the_small_pool_edge(self):
        """Heads judged small must fit the small pool: near the edge in bytes,
        and with many short lines (each costs libmicrohttpd a record)."""
        base = len(head("/public/edge", 1))
        for pad in range(10800, 11400, 37):
            s = self.sock()
            try:
                s.sendall(head("/public/edge", pad))
                self.assertEqual(read_response(s)[0], 200, "head of %d bytes" % (base + pad))
            finally:
                s.close()
        for n in (60, 95):
            extra = b"".join(b"X-H%03d: %s\r\n" % (i, b"v" * 30) for i in range(n))
            s = self.sock()
            try:
                s.sendall(head("/public/lines", 0, extra))
                self.assertEqual(read_response(s)[0], 200, "%d header lines" % n)
            finally:
                s.close()


class DefaultLimitPools(H.GatewayCase):
    """The shipped 16 KiB limit also runs two pools: heads up to it are served."""

    @classmethod
    def make_config(cls, echo):
        return policy_config(echo)

    def test_heads_up_to_the_default_limit(self):
        for pad in (100, 11000, 15000):
            r = self.gw.request("GET", "/public/dflt", headers={"X-Pad": "q" * pad})
            self.assertEqual(r.status, 200, "pad %d" % pad)
        r = self.gw.request("GET", "/public/dflt", headers={"X-Pad": "q" * 17000})
        self.assertEqual(r.status, 431)
