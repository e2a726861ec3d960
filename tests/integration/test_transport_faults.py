"""The transport holes and faults of the "one house for the transport" work,
through the real daemon: a second instance on the same address (hole 3), one
connection budget for the process, a drain that loses no request of a
keep-alive client, and clients that leave in the middle of an upload."""

import os
import signal
import socket
import subprocess
import threading
import time
import unittest

import harness as H
import sec_common as S


def cfg_for(echo, policy, **top):
    cfg = {
        "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
        "upstreams": {"app": {"url": echo.url}},
        "routes": [{"path": "/api/**", "policy": policy}],
    }
    cfg.update(top)
    return cfg


class SecondInstance(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        miss = H.missing_binaries()
        if miss:
            raise unittest.SkipTest("not built: %s" % ", ".join(miss))
        H.keys("main")
        cls.echo = H.Echo()

    @classmethod
    def tearDownClass(cls):
        cls.echo.stop()

    def test_hole3_second_instance_on_the_same_address_refuses_to_start(self):
        a = H.Gateway(cfg_for(self.echo, "require_user", workers=2), name="hole3a")
        try:
            d = H.new_tmp("hole3b-")
            b_cfg = os.path.join(d, "b.yaml")
            cfg = cfg_for(self.echo, "public", workers=2)
            cfg["listen"] = "127.0.0.1:%d" % a.port
            with open(b_cfg, "w") as f:
                f.write(H.to_yaml(cfg) + "\n")
            p = subprocess.run([H.authgate_bin(), "run", "-c", b_cfg], capture_output=True,
                               text=True, timeout=20, stdin=subprocess.DEVNULL)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("address already in use: 127.0.0.1:%d" % a.port, p.stderr)
            # the first instance alone serves, with its own policy
            statuses = [a.request("GET", "/api/x").status for _ in range(10)]
            self.assertEqual(statuses, [401] * 10)
        finally:
            problems = a.stop()
            self.assertEqual(problems, "")


class OneBudget(unittest.TestCase):
    """max_connections holds for the process: with two workers, 98 of 100
    connections are all served (it used to be split 50/50 over the workers,
    and the kernel does not spread connections evenly)."""

    def test_fault_budget_is_not_split_over_workers(self):
        H.keys("main")
        echo = H.Echo()
        gw = H.Gateway(cfg_for(echo, "public", workers=2,
                               limits={"max_connections": 100, "idle_timeout_ms": 20000}),
                       name="budget")
        socks = []
        try:
            for _ in range(98):
                socks.append(socket.create_connection(("127.0.0.1", gw.port), timeout=5))
            for s in socks:
                s.sendall(b"GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n")
            served = 0
            for s in socks:
                s.settimeout(5)
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    served += 1
            self.assertEqual(served, 98)
        finally:
            for s in socks:
                s.close()
            problems = gw.stop()
            echo.stop()
            self.assertEqual(problems, "")


def read_response(f):
    """One HTTP/1.1 response from a file object: (status, headers dict) or None."""
    line = f.readline()
    if not line:
        return None
    status = int(line.split()[1])
    hdrs = {}
    while True:
        h = f.readline()
        if not h or h in (b"\r\n", b"\n"):
            break
        k, _, v = h.decode("latin-1").partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    body = f.read(n)
    if len(body) != n:
        return None
    return status, hdrs


class Drain(unittest.TestCase):
    def test_fault_drain_loses_no_keepalive_request(self):
        H.keys("main")
        echo = H.Echo()
        gw = H.Gateway(cfg_for(echo, "public", workers=2, shutdown_grace_ms=5000),
                       name="drainkeep")
        stats = {"sent": 0, "answered": 0, "lost": 0, "closed_by_header": 0}
        lock = threading.Lock()
        stop = threading.Event()

        def client():
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
            f = s.makefile("rb")
            try:
                while not stop.is_set():
                    try:
                        s.sendall(b"GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n")
                    except OSError:
                        return  # the server closed an idle connection: nothing was sent
                    with lock:
                        stats["sent"] += 1
                    try:
                        r = read_response(f)
                    except OSError:
                        r = None
                    with lock:
                        if r is None:
                            stats["lost"] += 1
                            return
                        stats["answered"] += 1
                    if r[1].get("connection", "").lower() == "close":
                        with lock:
                            stats["closed_by_header"] += 1
                        return
            finally:
                f.close()
                s.close()

        threads = [threading.Thread(target=client) for _ in range(16)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        os.kill(gw.pid, signal.SIGTERM)
        deadline = time.time() + 10
        while gw.alive() and time.time() < deadline:
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(10)
        rc = gw.proc.wait(5)
        echo.stop()
        self.assertEqual(rc, 0)
        self.assertGreater(stats["answered"], 100, stats)
        self.assertEqual(stats["lost"], 0, stats)
        self.assertEqual(stats["sent"], stats["answered"], stats)
        # every client was told to close by a response, none was cut off
        self.assertEqual(stats["closed_by_header"], 16, stats)


class AbandonedUpload(unittest.TestCase):
    """A client that sends part of a body and leaves, or leaves while the
    upstream is still working, releases both connections at once."""

    @classmethod
    def setUpClass(cls):
        H.keys("main")
        cls.up = S.Recorder()
        cls.gw = H.Gateway(cfg_for(cls.up, "public", workers=1,
                                   limits={"max_connections": 200, "idle_timeout_ms": 60000}),
                           name="abandon")

    @classmethod
    def tearDownClass(cls):
        problems = cls.gw.stop()
        cls.up.stop()
        if problems:
            raise AssertionError(problems)


    def test_fault_abandoned_upload_releases_both_connections(self):
        def hang(c, req):
            time.sleep(30)  # never answers in time; the gateway must not wait for it
            return False
        self.up.reset()
        self.up.respond = hang
        socks = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=5)
            s.sendall(b"POST /api/up HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n")
            try:
                s.sendall(b"x" * (256 * 1024))
            except OSError:
                pass
            socks.append(s)
        time.sleep(0.5)
        for s in socks:
            s.close()
        self.up.reset()
        # a normal request is served at once, and the gateway's connections
        # to the upstream for the abandoned uploads are gone within a second
        t0 = time.time()
        r = self.gw.request("GET", "/api/ok", timeout=5)
        self.assertLess(time.time() - t0, 2.0)
        self.assertEqual(r.status, 200)
        deadline = time.time() + S.slack(3)
        while time.time() < deadline and self.gw_upstream_conns() > 1:
            time.sleep(0.1)
        self.assertLessEqual(self.gw_upstream_conns(), 1)

    def gw_upstream_conns(self):
        """Established TCP connections from the gateway to the upstream port."""
        port = self.up.port
        n = 0
        for path in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(path) as f:
                    next(f)
                    for line in f:
                        parts = line.split()
                        local, remote, st = parts[1], parts[2], parts[3]
                        if st == "01" and int(local.split(":")[1], 16) == port:
                            n += 1
            except OSError:
                pass
        return n


if __name__ == "__main__":
    unittest.main()
