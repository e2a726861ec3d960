"""WebSocket tunnels (issue 11), through the real daemon with a real WebSocket
client and server (Debian's python3-websockets): the handshake is decided like
any request (401/403 never reach the upstream, identity headers stripped and
injected), then frames of every kind cross the tunnel both ways; either side
closing or dying closes the other; limits, idle timeout, token expiry, drain,
metrics and the access-log line."""

import asyncio
import http
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

import harness as H
import ops_helpers as O

try:
    import websockets
except ImportError:
    # The Debian package installs for the system interpreter; the suite may run
    # under another Python 3 of the same minor version.
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import websockets
    except ImportError:
        websockets = None

if websockets is not None:
    from websockets.exceptions import ConnectionClosed, InvalidStatusCode


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Backend:
    """A websockets server on its own event loop thread. Paths:
    /.../echo echoes; /.../close/CODE closes with CODE after the first message;
    /.../die drops the TCP connection after the first message; /.../idle waits;
    /.../partial sends the start of a frame it never finishes, then waits;
    /.../refuse answers the handshake 403."""

    def __init__(self):
        self.handshakes = []  # request headers, one dict per handshake seen
        self.closed = []      # (path, close code) when a server-side connection ends
        self.open = 0
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)
        self.url = "http://127.0.0.1:%d" % self.port

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)

        async def process_request(path, headers):
            with self.lock:
                self.handshakes.append({k.lower(): v for k, v in headers.raw_items()})
            if path.endswith("/refuse"):
                return (http.HTTPStatus.FORBIDDEN, [("Content-Type", "text/plain"), ("X-Backend", "said-no")],
                        b"backend refuses\n")
            return None

        async def handler(ws, path=None):
            path = ws.path
            with self.lock:
                self.open += 1
            try:
                if path.endswith("/echo"):
                    async for m in ws:
                        await ws.send(m)
                elif "/close/" in path:
                    await ws.recv()
                    await ws.close(int(path.rsplit("/", 1)[1]), "bye from backend")
                elif path.endswith("/die"):
                    await ws.recv()
                    ws.transport.abort()
                elif path.endswith("/partial"):
                    # a binary frame announced as 4096 bytes, 100 sent
                    ws.transport.write(b"\x82\x7e\x10\x00" + b"p" * 100)
                    await ws.wait_closed()
                else:
                    await ws.wait_closed()
            except ConnectionClosed:
                pass
            finally:
                with self.lock:
                    self.open -= 1
                    self.closed.append((path, ws.close_code))

        async def start():
            self.server = await websockets.serve(handler, "127.0.0.1", 0,
                                                 process_request=process_request, max_size=None,
                                                 ping_interval=None, close_timeout=2)
            self.port = self.server.sockets[0].getsockname()[1]

        self.loop.run_until_complete(start())
        ready.set()
        self.loop.run_forever()

    def count(self):
        with self.lock:
            return len(self.handshakes)

    def stop(self):
        async def close():
            self.server.close()
            await self.server.wait_closed()
        try:
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_for(cond, timeout, step=0.02):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def handshake_bytes(port, path, headers):
    lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]
    lines += ["%s: %s" % h for h in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class WebSocketBase(unittest.TestCase):
    backend = None
    gw = None

    @classmethod
    def setUpClass(cls):
        cls._skip = None
        miss = H.missing_binaries()
        if miss:
            cls._skip = "not built: %s (run make)" % ", ".join(miss)
            return
        if websockets is None:
            cls._skip = ("python3-websockets is not installed "
                         "(apt-get install python3-websockets)")
            return
        raise_fd_limit(8192)
        H.keys("main")
        cls.backend = Backend()
        cls.admin = O.Admin(H.free_port())
        routes = [
            {"path": "/ws/**", "policy": "require_user", "websocket": True},
            {"path": "/org/{org_id}/ws/**", "policy": "require_org_member", "websocket": True},
            {"path": "/plain/**", "policy": "require_user"},
        ]
        cfg = O.base_config(cls.backend, routes, admin_port=cls.admin.port, workers=2)
        cfg["websocket"] = {"max_tunnels": 1100}
        cls.gw = H.Gateway(cfg, name="ws")
        cls.tok = H.mint("u-ws", email="ws@example.com", orgs=["o1:Org One:Member"])

    @classmethod
    def tearDownClass(cls):
        problems = cls.gw.stop() if cls.gw is not None else ""
        if cls.backend is not None:
            cls.backend.stop()
        if problems:
            raise AssertionError(problems)

    def setUp(self):
        if self._skip:
            self.skipTest(self._skip)

    def uri(self, path):
        return "ws://127.0.0.1:%d%s" % (self.gw.port, path)

    def connect(self, path, tok=True, headers=(), **kw):
        h = list(headers)
        if tok:
            h.append(("Authorization", "Bearer " + (tok if isinstance(tok, str) else self.tok)))
        kw.setdefault("max_size", None)
        kw.setdefault("ping_interval", None)
        kw.setdefault("close_timeout", 2)
        return websockets.connect(self.uri(path), extra_headers=h, open_timeout=5, **kw)

    def run_async(self, coro, timeout=60):
        return asyncio.run(asyncio.wait_for(coro, timeout))

    def access_lines(self):
        with open(self.gw.out) as f:
            return [json.loads(l) for l in f.read().splitlines() if l.startswith('{"ts":')]

    def tunnel_lines(self, request_id=None):
        return [l for l in self.access_lines() if l.get("event") == "tunnel_close" and
                (request_id is None or l["request_id"] == request_id)]


class Tunnel(WebSocketBase):
    def test_text_and_binary_frames_and_identity(self):
        before = self.backend.count()

        async def go():
            async with self.connect("/ws/echo", headers=[("X-User", '{"user_id":"admin"}'),
                                                         ("X-Org", "forged")]) as ws:
                await ws.send("hello, tunnel")
                self.assertEqual(await ws.recv(), "hello, tunnel")
                blob = bytes(range(256)) * 4
                await ws.send(blob)
                self.assertEqual(await ws.recv(), blob)
                return ws.response_headers
        resp = self.run_async(go())
        self.assertIn("X-Request-Id", resp)
        self.assertEqual(self.backend.count(), before + 1)
        seen = self.backend.handshakes[-1]
        self.assertEqual(json.loads(seen["x-user"])["user_id"], "u-ws")
        self.assertNotIn("x-org", seen)  # not an org route: the forged one is stripped
        self.assertEqual(seen["upgrade"], "websocket")
        self.assertEqual(seen["connection"], "Upgrade")
        self.assertEqual(seen["sec-websocket-version"], "13")
        self.assertIn("sec-websocket-key", seen)
        self.assertEqual(seen["x-request-id"], resp["X-Request-Id"])

    def test_org_route_injects_x_org(self):
        async def go():
            async with self.connect("/org/o1/ws/echo") as ws:
                await ws.send("x")
                self.assertEqual(await ws.recv(), "x")
        self.run_async(go())
        self.assertEqual(json.loads(self.backend.handshakes[-1]["x-org"])["org_id"], "o1")

    def test_one_mib_message_and_a_thousand_in_a_row(self):
        async def go():
            async with self.connect("/ws/echo") as ws:
                big = os.urandom(1 << 20)
                await ws.send(big)
                self.assertEqual(await ws.recv(), big)
                for i in range(1000):
                    await ws.send("m%d" % i)
                got = [await ws.recv() for _ in range(1000)]
                self.assertEqual(got, ["m%d" % i for i in range(1000)])
        self.run_async(go())

    def test_ping_pong(self):
        async def go():
            async with self.connect("/ws/echo") as ws:
                for _ in range(3):
                    waiter = await ws.ping(b"are you there")
                    await asyncio.wait_for(waiter, 5)
        self.run_async(go())

    def test_close_code_from_client(self):
        async def go():
            async with self.connect("/ws/echo") as ws:
                await ws.send("x")
                await ws.recv()
                await ws.close(4001, "client done")
        self.run_async(go())
        self.assertTrue(wait_for(lambda: any(p == "/ws/echo" and c == 4001
                                             for p, c in self.backend.closed), 5),
                        self.backend.closed)

    def test_close_code_from_upstream(self):
        async def go():
            async with self.connect("/ws/close/4002") as ws:
                await ws.send("x")
                with self.assertRaises(ConnectionClosed) as cm:
                    await ws.recv()
                return cm.exception
        e = self.run_async(go())
        self.assertEqual(e.rcvd.code, 4002)
        self.assertEqual(e.rcvd.reason, "bye from backend")

    def test_401_and_403_never_reach_the_upstream(self):
        before = self.backend.count()

        async def refused(path, tok):
            with self.assertRaises(InvalidStatusCode) as cm:
                async with self.connect(path, tok=tok):
                    pass
            return cm.exception.status_code
        self.assertEqual(self.run_async(refused("/ws/echo", False)), 401)
        self.assertEqual(self.run_async(refused("/ws/echo", "not.a.token")), 401)
        self.assertEqual(self.run_async(refused("/org/o2/ws/echo", True)), 403)
        self.assertEqual(self.backend.count(), before)

    def test_route_without_websocket_is_403_websocket_not_allowed(self):
        before = self.backend.count()
        raw = H.raw_exchange(self.gw.port, handshake_bytes(
            self.gw.port, "/plain/x", [("Authorization", "Bearer " + self.tok)]))
        r = H.parse_raw_response(raw)
        self.assertEqual(r.status, 403, raw)
        self.assertEqual(r.json()["reason"], "websocket_not_allowed")
        self.assertEqual(self.backend.count(), before)

    def test_handshake_with_a_body_or_h2c_is_not_tunnelled(self):
        before = self.backend.count()
        auth = ("Authorization", "Bearer " + self.tok)
        rids = ["wsbody%d" % os.getpid(), "wsh2c%d" % os.getpid()]
        for rid, (extra, body) in zip(rids, (([auth, ("Content-Length", "3")], b"abc"),
                                             ([auth], b""))):
            extra = extra + [("X-Request-Id", rid)]
            data = handshake_bytes(self.gw.port, "/ws/echo", extra) + body
            if not body:
                data = data.replace(b"Upgrade: websocket", b"Upgrade: h2c")
            r = H.parse_raw_response(H.raw_exchange(self.gw.port, data))
            self.assertNotEqual(r.status, 101)
            seen = self.backend.handshakes[-1]
            self.assertNotIn("upgrade", seen)  # forwarded without the upgrade
        self.assertEqual(self.backend.count(), before + 2)
        self.assertTrue(wait_for(lambda: sum(l["request_id"] in rids
                                             for l in self.access_lines()) == 2, 5))
        reasons = [l["reason"] for l in self.access_lines() if l["request_id"] in rids]
        self.assertEqual(reasons, ["upgrade_not_tunnelled"] * 2)

    def test_upstream_refusing_the_upgrade_is_relayed(self):
        raw = H.raw_exchange(self.gw.port, handshake_bytes(
            self.gw.port, "/ws/refuse", [("Authorization", "Bearer " + self.tok)]))
        r = H.parse_raw_response(raw)
        self.assertEqual(r.status, 403, raw)
        self.assertEqual(r.body, b"backend refuses\n")
        self.assertEqual(r.header("X-Backend"), "said-no")

    def test_upstream_dying_closes_the_client(self):
        async def go():
            async with self.connect("/ws/die") as ws:
                await ws.send("x")
                t0 = time.time()
                with self.assertRaises(ConnectionClosed) as cm:
                    await ws.recv()
                return time.time() - t0, cm.exception
        took, e = self.run_async(go())
        self.assertLess(took, H_slack(2.0))
        self.assertIsNone(e.rcvd)  # no close frame: the connection just ended (1006)

    def test_client_vanishing_closes_the_upstream(self):
        async def go():
            ws = await self.connect("/ws/idle")
            self.assertTrue(wait_for(lambda: self.backend.open >= 1, 5))
            ws.transport.abort()
        n_closed = len(self.backend.closed)
        self.run_async(go())
        self.assertTrue(wait_for(lambda: len(self.backend.closed) > n_closed, 5),
                        "the backend never saw the tunnel close")
        self.assertEqual(self.backend.closed[-1][0], "/ws/idle")

    def test_metrics_and_access_log(self):
        async def go():
            async with self.connect("/ws/echo") as ws:
                await ws.send("12345")
                await ws.recv()
                return ws.response_headers["X-Request-Id"]
        rid = self.run_async(go())
        self.assertTrue(wait_for(lambda: self.tunnel_lines(rid), 5), "no tunnel_close line")
        line = self.tunnel_lines(rid)[0]
        self.assertEqual(line["route"], "/ws/**")
        self.assertEqual(line["user_id"], "u-ws")
        self.assertEqual(line["upstream"], "app")
        self.assertIn(line["closed_by"], ("client", "upstream"))
        self.assertGreater(line["bytes_up"], 5)    # a masked 5-byte frame and the close
        self.assertGreater(line["bytes_down"], 5)
        self.assertGreaterEqual(line["duration_ms"], 0)
        hs = [l for l in self.access_lines() if l["request_id"] == rid and "event" not in l]
        self.assertEqual(hs[0]["status"], 101)
        self.assertEqual(hs[0]["decision"], "allow")
        m = self.admin.get("/metrics").body.decode()
        self.assertRegex(m, r'authgate_tunnel_bytes_total\{direction="up"\} [1-9]')
        self.assertRegex(m, r'authgate_tunnel_closes_total\{cause="(client|upstream)"\} [1-9]')
        self.assertTrue(wait_for(lambda: "authgate_tunnels_open 0" in
                                 self.admin.get("/metrics").body.decode(), 5))

    def test_many_idle_tunnels_bounded_rss(self):
        n = 1000 if raise_fd_limit(8192) >= 4500 else 200
        r0 = rss_kib(self.gw.pid)

        async def go():
            conns = []
            for i in range(0, n, 50):
                conns += await asyncio.gather(*[self.connect("/ws/idle") for _ in range(50)])
            self.assertTrue(wait_for(lambda: self.backend.open >= n, 10), self.backend.open)
            m = self.admin.get("/metrics").body.decode()
            self.assertIn("authgate_tunnels_open %d" % n, m)
            r1 = rss_kib(self.gw.pid)
            # with all of them open, one more tunnel still carries messages
            async with self.connect("/ws/echo") as ws:
                await ws.send("one more")
                self.assertEqual(await ws.recv(), "one more")
            await asyncio.gather(*[c.close() for c in conns])
            return r1
        r1 = self.run_async(go(), timeout=120)
        per = (r1 - r0) * 1024 / n
        sys.stderr.write("\n  %d idle tunnels: RSS %d -> %d KiB (%.1f KiB per tunnel)\n" %
                         (n, r0, r1, per / 1024))
        # libmicrohttpd keeps the connection's memory pool (about 22 KiB with
        # the default header limits) for an upgraded connection; the tunnel
        # itself holds no buffer while idle.
        self.assertLess(per, (4 if H.is_sanitizer_build() else 1) * 48 * 1024,
                        "RSS per idle tunnel")
        self.assertTrue(wait_for(lambda: "authgate_tunnels_open 0" in
                                 self.admin.get("/metrics").body.decode(), 10))


def H_slack(s):
    return s * (4 if H.is_sanitizer_build() else 1)


class OwnGateway(H.OwnGatewayCase):
    """Tests that need a gateway of their own (limits, signals)."""

    @classmethod
    def setUpClass(cls):
        cls._skip = None
        miss = H.missing_binaries()
        if miss:
            cls._skip = "not built: %s (run make)" % ", ".join(miss)
            return
        if websockets is None:
            cls._skip = "python3-websockets is not installed"
            return
        H.keys("main")
        cls.backend = Backend()

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "backend", None) is not None:
            cls.backend.stop()

    def start(self, ws=None, **top):
        routes = [{"path": "/ws/**", "policy": "require_user", "websocket": True}]
        cfg = O.base_config(self.backend, routes, workers=1, **top)
        if ws:
            cfg["websocket"] = ws
        self.gw = H.Gateway(cfg, name="ws-own")
        return self.gw

    def connect(self, path, tok=None, **kw):
        tok = tok or H.mint("u-ws")
        return websockets.connect("ws://127.0.0.1:%d%s" % (self.gw.port, path),
                                  extra_headers=[("Authorization", "Bearer " + tok)],
                                  ping_interval=None, close_timeout=2, open_timeout=5, **kw)

    def lines(self):
        with open(self.gw.out) as f:
            return [json.loads(l) for l in f.read().splitlines() if l.startswith('{"ts":')]

    def closed_by(self):
        with open(self.gw.out) as f:
            return [json.loads(l)["closed_by"] for l in f.read().splitlines()
                    if '"event":"tunnel_close"' in l]

    def test_max_tunnels(self):
        self.start(ws={"max_tunnels": 2})

        async def go():
            a = await self.connect("/ws/idle")
            b = await self.connect("/ws/idle")
            with self.assertRaises(InvalidStatusCode) as cm:
                await self.connect("/ws/idle")
            self.assertEqual(cm.exception.status_code, 503)
            await a.close()
            await asyncio.sleep(0.3)
            c = await self.connect("/ws/idle")  # a slot freed
            await b.close()
            await c.close()
        asyncio.run(asyncio.wait_for(go(), 30))

    def backend_close(self, before, path):
        """The close code the backend's side of the one tunnel since before saw."""
        self.assertTrue(wait_for(lambda: len(self.backend.closed) > before, 5),
                        "the backend's connection did not end")
        self.assertEqual(len(self.backend.closed), before + 1, self.backend.closed[before:])
        self.assertEqual(self.backend.closed[before][0], path)
        return self.backend.closed[before][1]

    def test_idle_timeout(self):
        self.start(ws={"idle_timeout_ms": 1000})
        before = len(self.backend.closed)

        async def go():
            async with self.connect("/ws/echo") as ws:
                await ws.send("x")
                await ws.recv()
                t0 = time.time()
                with self.assertRaises(ConnectionClosed):
                    await ws.recv()
                return time.time() - t0, ws.close_code, ws.close_reason
        took, code, reason = asyncio.run(asyncio.wait_for(go(), 30))
        self.assertGreater(took, 0.8)
        self.assertLess(took, H_slack(3.0))
        # the gateway's own close frame, not a dropped connection (1006)
        self.assertEqual((code, reason), (1001, "idle timeout"))
        self.assertEqual(self.backend_close(before, "/ws/echo"), 1001)
        self.assertTrue(wait_for(lambda: self.closed_by() == ["idle_timeout"], 5),
                        self.closed_by())

    def test_keepalive_idle_timeout_does_not_cut_a_tunnel(self):
        # limits.idle_timeout_ms is for idle HTTP connections; a tunnel has its own.
        self.start(limits={"idle_timeout_ms": 1000, "request_timeout_ms": 1000})

        async def go():
            async with self.connect("/ws/echo") as ws:
                await asyncio.sleep(2.5)
                await ws.send("still open")
                self.assertEqual(await ws.recv(), "still open")
        asyncio.run(asyncio.wait_for(go(), 30))
        # one tunnel, ended by the WebSocket close at the end of the block
        self.assertTrue(wait_for(lambda: len(self.closed_by()) == 1, 5), self.closed_by())
        self.assertIn(self.closed_by()[0], ("client", "upstream"))
        # The tunnel's line has its 2.5 s; the handshake's ends at the 101, so
        # tunnels do not stretch the request latency figures.
        self.assertTrue(wait_for(lambda: len(self.lines()) == 2, 5), self.lines())
        hs = [l for l in self.lines() if "event" not in l][0]
        tl = [l for l in self.lines() if "event" in l][0]
        self.assertEqual(hs["status"], 101)
        self.assertGreaterEqual(tl["duration_ms"], 2400)
        self.assertLess(hs["duration_ms"], 1000)

    def test_close_on_token_expiry(self):
        self.start(ws={"close_on_token_expiry": True, "idle_timeout_ms": 60000})
        tok = H.mint("u-ws", ttl=3)
        before = len(self.backend.closed)

        async def go():
            async with self.connect("/ws/echo", tok=tok) as ws:
                t0 = time.time()
                with self.assertRaises(ConnectionClosed):
                    while True:
                        await ws.send("still here")
                        await ws.recv()
                        await asyncio.sleep(0.2)
                return time.time() - t0, ws.close_code, ws.close_reason
        took, code, reason = asyncio.run(asyncio.wait_for(go(), 30))
        self.assertLess(took, H_slack(5.0))
        self.assertEqual((code, reason), (1008, "token expired"))
        self.assertEqual(self.backend_close(before, "/ws/echo"), 1008)
        self.assertTrue(wait_for(lambda: self.closed_by() == ["token_expired"], 5),
                        self.closed_by())

    def test_drain_keeps_tunnels_until_the_grace_ends(self):
        # The close handshake takes the last second of the grace.
        gw = self.start(shutdown_grace_ms=3000)
        before = len(self.backend.closed)

        async def go():
            async with self.connect("/ws/echo") as ws:
                await ws.send("before")
                self.assertEqual(await ws.recv(), "before")
                t0 = time.time()
                os.kill(gw.pid, signal.SIGTERM)
                await asyncio.sleep(0.8)
                # still tunnelling during the grace
                await ws.send("during")
                self.assertEqual(await ws.recv(), "during")
                with self.assertRaises(ConnectionClosed):
                    await ws.recv()
                return time.time() - t0, ws.close_code, ws.close_reason
        took, code, reason = asyncio.run(asyncio.wait_for(go(), 30))
        self.assertGreater(took, 1.5)
        self.assertEqual((code, reason), (1001, "going away"))
        rc = gw.proc.wait(H_slack(5))
        self.assertEqual(rc, 0)
        self.assertEqual(self.closed_by(), ["drain"])
        self.assertEqual(self.backend_close(before, "/ws/echo"), 1001)

    def test_drain_mid_message_from_the_client(self):
        """A client in the middle of a long fragmented message: the upstream cannot
        get a close frame and is cut off; the client, between frames the other way,
        gets 1001 and no answer is waited for beyond the grace."""
        gw = self.start(shutdown_grace_ms=1500)
        before = len(self.backend.closed)
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        try:
            s.sendall(handshake_bytes(gw.port, "/ws/idle",
                                      [("Authorization", "Bearer " + H.mint("u-ws"))]))
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                self.assertTrue(chunk, head)
                head += chunk
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
            data = head.split(b"\r\n\r\n", 1)[1]
            key = b"\x01\x02\x03\x04"
            first = bytes(c ^ key[i % 4] for i, c in enumerate(b"hello"))
            # a whole first fragment (FIN 0), then a continuation of 100000 bytes, 1000 sent
            s.sendall(bytes([0x01, 0x85]) + key + first +
                      bytes([0x00, 0xff]) + (100000).to_bytes(8, "big") + key + b"\0" * 1000)
            time.sleep(0.3)
            t0 = time.time()
            os.kill(gw.pid, signal.SIGTERM)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            took = time.time() - t0
        finally:
            s.close()
        self.assertEqual(data, b"\x88\x0c\x03\xe9going away")  # unmasked, 1001
        self.assertLess(took, H_slack(3.0))
        rc = gw.proc.wait(H_slack(5))
        self.assertEqual(rc, 0)
        self.assertEqual(self.closed_by(), ["drain"])
        self.assertEqual(self.backend_close(before, "/ws/idle"), 1006)

    def test_drain_mid_frame_toward_the_client(self):
        """The backend stopped in the middle of a frame: the client cannot get a
        close frame (it sees the connection drop, 1006) while the backend, between
        frames, gets 1001."""
        gw = self.start(shutdown_grace_ms=1500)
        before = len(self.backend.closed)

        async def go():
            async with self.connect("/ws/partial") as ws:
                await asyncio.sleep(0.3)
                t0 = time.time()
                os.kill(gw.pid, signal.SIGTERM)
                with self.assertRaises(ConnectionClosed):
                    await ws.recv()
                return time.time() - t0, ws.close_code
        took, code = asyncio.run(asyncio.wait_for(go(), 30))
        self.assertEqual(code, 1006)
        self.assertLess(took, H_slack(3.0))
        rc = gw.proc.wait(H_slack(5))
        self.assertEqual(rc, 0)
        self.assertEqual(self.closed_by(), ["drain"])
        self.assertEqual(self.backend_close(before, "/ws/partial"), 1001)

    def test_upstream_switching_to_another_protocol_is_502(self):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)

        def serve():
            c, _ = srv.accept()
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += c.recv(65536)
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n"
                      b"Connection: Upgrade\r\n\r\nh2c bytes")
            time.sleep(2)
            c.close()
        th = threading.Thread(target=serve, daemon=True)
        th.start()

        class Up:
            url = "http://127.0.0.1:%d" % srv.getsockname()[1]
        routes = [{"path": "/ws/**", "policy": "require_user", "websocket": True}]
        self.gw = H.Gateway(O.base_config(Up, routes, workers=1), name="ws-h2c")
        raw = H.raw_exchange(self.gw.port, handshake_bytes(
            self.gw.port, "/ws/x", [("Authorization", "Bearer " + H.mint("u-ws"))]))
        srv.close()
        r = H.parse_raw_response(raw)
        self.assertEqual(r.status, 502, raw)
        self.assertEqual(r.json()["reason"], "upstream_protocol")
        self.assertNotIn(b"h2c bytes", raw)

    def test_check_refuses_websocket_on_https_upstream(self):
        d = H.new_tmp("ws-check-")
        path = os.path.join(d, "c.yaml")
        with open(path, "w") as f:
            f.write("listen: 127.0.0.1:1\n"
                    "auth:\n  verifier_key_file: %s\n  issuer: %s\n"
                    "upstreams:\n  app: https://127.0.0.1:9443\n"
                    "routes:\n  - path: /ws\n    policy: require_user\n    websocket: true\n"
                    % (H.keys("main").public, H.ISSUER))
        r = subprocess.run([H.authgate_bin(), "check", "-c", path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        out = r.stdout.decode()
        self.assertNotEqual(r.returncode, 0, out)
        self.assertRegex(out, r"c\.yaml:\d+:\d+: .*websocket: true needs an http:// upstream")


class LoadTool(unittest.TestCase):
    """BUILD/ag-wsbench (the websocket bench row's peers) against a gateway: its
    handshake, masking and echo work through a real tunnel, and a refused
    handshake counts as an error rather than a round trip."""

    def test_ag_wsbench_through_the_gateway(self):
        wsb = os.path.join(H.BUILD, "ag-wsbench")
        miss = H.missing_binaries() + ([] if os.access(wsb, os.X_OK) else [wsb])
        if miss:
            self.skipTest("not built: %s (run make)" % ", ".join(miss))
        H.keys("main")
        wport = H.free_port()
        echo = subprocess.Popen([wsb, "echo", "--listen", "127.0.0.1:%d" % wport,
                                 "--seconds", "60"], stderr=subprocess.DEVNULL)
        gw = None
        try:
            H.wait_port(wport, echo, 10, "ag-wsbench echo", os.devnull)
            up = type("Up", (), {"url": "http://127.0.0.1:%d" % wport})
            routes = [{"path": "/ws/**", "policy": "require_user", "websocket": True}]
            gw = H.Gateway(O.base_config(up, routes, workers=1), name="ws-load")

            def client(*hdr):
                argv = [wsb, "client", "--url", "ws://127.0.0.1:%d/ws/echo" % gw.port,
                        "--conns", "4", "--seconds", "1", "--size", "200"]
                for h in hdr:
                    argv += ["--header", h]
                r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   timeout=30, check=True)
                return json.loads(r.stdout), r.stderr.decode()

            ok, _ = client("Authorization: Bearer " + H.mint("u-ws"))
            self.assertEqual(ok["errors"], 0, ok)
            self.assertGreater(ok["round_trips"], 0, ok)
            refused, err = client()
            self.assertEqual((refused["errors"], refused["round_trips"]), (4, 0), refused)
            self.assertIn("handshake refused: HTTP/1.1 401", err)
        finally:
            problems = gw.stop() if gw is not None else ""
            H.stop_proc(echo)
        self.assertFalse(problems, problems)


if __name__ == "__main__":
    unittest.main()
