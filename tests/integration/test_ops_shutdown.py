"""Graceful shutdown (issue 6): SIGTERM/SIGINT stop accepting, let in-flight
requests finish for up to shutdown_grace_ms, then exit 0; a second signal
exits at once. Each test owns (and ends) its gateway."""

import errno
import os
import signal
import socket
import threading
import time

import harness as H
import ops_helpers as O


class Drain(H.OwnGatewayCase):
    echo = None

    @classmethod
    def setUpClass(cls):
        cls._skip = None
        miss = H.missing_binaries()
        if miss:
            cls._skip = "not built: %s (run make)" % ", ".join(miss)
            return
        H.keys("main")
        cls.echo = H.Echo()

    @classmethod
    def tearDownClass(cls):
        if cls.echo is not None:
            cls.echo.stop()

    def start(self, grace_ms, env=None):
        self.admin = O.Admin(H.free_port())
        cfg = O.base_config(self.echo, [{"path": "/p/**", "policy": "public"}],
                            admin_port=self.admin.port, workers=2, shutdown_grace_ms=grace_ms)
        self.gw = H.Gateway(cfg, name="drain", env_extra=env)
        return self.gw

    def slow_request(self, ms):
        """Start GET /p/__echo/sleep/MS in a thread and return once authgate
        has it in flight (the open-connections gauge says so)."""
        res = {}

        def run():
            try:
                res["r"] = self.gw.request("GET", "/p/__echo/sleep/%d" % ms, timeout=30)
            except Exception as e:  # the test looks at it
                res["r"] = e
            res["t"] = time.time()

        # the harness's port probe may still be counted for a moment
        O.wait_for(lambda: self.admin.metrics().value("authgate_open_connections") == 0, 3,
                   "no open connections before the slow request")
        t = threading.Thread(target=run)
        t.start()
        O.wait_for(lambda: self.admin.metrics().value("authgate_open_connections") == 1, 3,
                   "the slow request to be open")
        time.sleep(0.1)  # let it reach the upstream
        return t, res

    def wait_exit(self, timeout):
        try:
            return self.gw.proc.wait(timeout)
        except Exception:
            self.fail("authgate still running %.1fs after the signal:\n%s" %
                      (timeout, H.tail(self.gw.err)))

    def assert_new_connections_refused(self):
        """The workers close their listeners when they see the stop flag, a
        moment after the signal: poll (bounded) rather than probe once."""
        def probe():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(1.0)
            try:
                return s.connect_ex(("127.0.0.1", self.gw.port))
            finally:
                s.close()
        deadline = time.time() + 2.0
        rc = probe()
        while rc != errno.ECONNREFUSED and time.time() < deadline and self.gw.alive():
            time.sleep(0.02)
            rc = probe()
        self.assertEqual(rc, errno.ECONNREFUSED,
                         "a new connection during the drain was %s, not refused (a client would "
                         "wait for the whole grace period, then see a reset)" %
                         ("accepted" if rc == 0 else os.strerror(rc)))

    # tests -----------------------------------------------------------------

    def test_drain_completes_in_flight_slow_request(self):
        self.start(grace_ms=5000)
        t, res = self.slow_request(1500)
        t0 = time.time()
        os.kill(self.gw.pid, signal.SIGTERM)
        # the signal is handled by the main thread a moment later
        st, ready = O.wait_for(lambda: (lambda r: r if r[0] == 503 else None)(self.admin.readyz()),
                               3, "/readyz to turn 503 after SIGTERM")
        self.assertEqual((st, ready["ready"], ready.get("reasons")), (503, False, ["draining"]))
        self.assertTrue(self.gw.alive(), "exited before the in-flight request finished")
        self.assert_new_connections_refused()
        rc = self.wait_exit(5)
        t_exit = time.time() - t0
        t.join(5)
        r = res.get("r")
        self.assertIsInstance(r, H.Resp, "in-flight request failed: %r" % r)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["path"], "/p/__echo/sleep/1500")
        self.assertEqual(rc, 0, H.tail(self.gw.err))
        self.assertLess(t_exit, 4.0, "exit took longer than needed")
        self.assertLessEqual(res["t"], t0 + t_exit + 0.05, "response arrived after exit?")
        err = O.read_text(self.gw.err)
        self.assertIn("shutting down: draining in-flight requests (up to 5000 ms)", err)
        self.assertIn("authgate info: stopped", err)

    def test_grace_period_bounds_the_drain(self):
        self.start(grace_ms=400)
        t, res = self.slow_request(5000)
        t0 = time.time()
        os.kill(self.gw.pid, signal.SIGTERM)
        rc = self.wait_exit(4)
        took = time.time() - t0
        self.assertEqual(rc, 0)
        self.assertGreaterEqual(took, 0.3, "did not wait for the in-flight request at all")
        self.assertLess(took, 2.0, "grace of 400 ms exceeded")
        t.join(5)
        self.assertNotIsInstance(res.get("r"), H.Resp,
                                 "a 5 s request cannot have completed: %r" % res.get("r"))

    def test_second_signal_exits_at_once(self):
        self.start(grace_ms=20000)
        t, res = self.slow_request(8000)
        os.kill(self.gw.pid, signal.SIGTERM)
        time.sleep(0.3)
        self.assertTrue(self.gw.alive(), "first SIGTERM must drain, not exit")
        t1 = time.time()
        os.kill(self.gw.pid, signal.SIGTERM)
        rc = self.wait_exit(3)
        self.assertLess(time.time() - t1, 1.0, "second SIGTERM did not exit at once")
        self.assertGreaterEqual(rc, 0, "killed by a signal instead of exiting")
        t.join(5)

    def test_idle_keepalive_connection_does_not_hold_the_drain(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig.name):
                self.start(grace_ms=10000)
                c = self.gw.conn()
                self.assertEqual(self.gw.request("GET", "/p/x", conn=c).status, 200)
                t0 = time.time()
                os.kill(self.gw.pid, sig)
                rc = self.wait_exit(3)
                c.close()
                self.assertEqual(rc, 0)
                self.assertLess(time.time() - t0, 1.5, "idle connections held up the exit")
                H.stop_proc(self.gw.proc)

    def test_notify_stopping(self):
        d = H.new_tmp("notify-")
        path = os.path.join(d, "n.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(5)
        try:
            self.start(grace_ms=2000, env={"NOTIFY_SOCKET": path})
            self.assertIn("READY=1", sock.recv(4096).decode().split("\n"))
            os.kill(self.gw.pid, signal.SIGTERM)
            self.assertIn("STOPPING=1", sock.recv(4096).decode().split("\n"))
            self.assertEqual(self.wait_exit(3), 0)
        finally:
            sock.close()
