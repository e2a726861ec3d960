"""Policy reload on SIGHUP (issue 6): atomic swap under load with zero failed
requests, in-flight requests finishing under the policy they started with, a
broken file keeping the running policy (errors with line:col, counted in
/metrics), the policy hash in the log, /readyz and /metrics, and the systemd
notify messages around a reload."""

import http.client
import json
import os
import signal
import socket
import threading
import time

import harness as H
import ops_helpers as O


def routes_a():
    return [
        {"path": "/stable/**", "policy": "public"},
        {"path": "/load/**", "policy": "public"},
        {"path": "/flight/**", "policy": "public"},
    ]


def routes_b():
    # /load needs a token now, /flight is gone
    return [
        {"path": "/stable/**", "policy": "public"},
        {"path": "/load/**", "policy": "require_user"},
    ]


class ReloadCase(H.GatewayCase):
    """One gateway for the class; every test starts and ends on policy A."""

    @classmethod
    def make_config(cls, echo):
        cls.admin_port = H.free_port()
        cls.access_log = os.path.join(H.new_tmp("reload-log-"), "access.log")
        cls.cfg_a = O.base_config(echo, routes_a(), admin_port=cls.admin_port, workers=2,
                                  log={"access_log": cls.access_log})
        cls.cfg_b = dict(cls.cfg_a, routes=routes_b())
        return cls.cfg_a

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.gw is not None:
            cls.text_a = cls.gw.config_text
            cls.text_b = O.config_text(cls.cfg_b, cls.gw.port)
            assert cls.text_a == O.config_text(cls.cfg_a, cls.gw.port)

    def setUp(self):
        super().setUp()
        self.admin = O.Admin(self.admin_port)
        if O.policy_hash(self.gw.config) != self.admin.readyz()[1]["policy_hash"] or \
                O.read_text(self.gw.config) != self.text_a:
            self.load(self.text_a)

    def tearDown(self):
        if self.gw is not None and self.gw.alive() and \
                O.read_text(self.gw.config) != self.text_a:
            self.load(self.text_a)

    # helpers -------------------------------------------------------------

    def outcomes(self):
        return (O.count_lines(self.gw.err, "authgate info: reloaded "),
                O.count_lines(self.gw.err, "reload failed"))

    def load(self, text, expect_ok=True):
        """Write the file, SIGHUP, and wait until the daemon logged the result."""
        ok0, bad0 = self.outcomes()
        O.write_atomically(self.gw.config, text)
        O.send_signal(self.gw.proc, signal.SIGHUP)
        want = (ok0 + 1, bad0) if expect_ok else (ok0, bad0 + 1)
        O.wait_for(lambda: self.outcomes() == want, 5,
                   "reload outcome %r (have %r):\n%s" % (want, self.outcomes(),
                                                         H.tail(self.gw.err, 1500)))

    def access_records(self):
        return [json.loads(l) for l in O.read_text(self.access_log).splitlines() if l.strip()]


class ReloadUnderLoad(ReloadCase):
    THREADS = 4
    PER_THREAD = 500
    RELOADS = 10

    def test_reload_under_load_zero_failed_requests(self):
        before = self.admin.metrics()
        stop = threading.Event()
        results = [[] for _ in range(self.THREADS)]
        errors = []

        def client(i):
            c = self.gw.conn()
            c.auto_open = 0  # a dropped keep-alive connection is a failure, not a retry
            try:
                c.connect()
                n = 0
                while n < self.PER_THREAD or not stop.is_set():
                    path = "/%s/t%d/%d" % ("load" if n % 2 == 0 else "stable", i, n)
                    try:
                        r = self.gw.request("GET", path, conn=c)
                    except (OSError, http.client.HTTPException) as e:
                        errors.append("thread %d request %d %s: %r" % (i, n, path, e))
                        return
                    results[i].append((path, r.status, r.header("X-Request-Id"), r.body))
                    n += 1
                    if n > 20000:
                        errors.append("thread %d: runaway loop" % i)
                        return
            finally:
                c.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(self.THREADS)]
        for t in threads:
            t.start()
        try:
            for k in range(1, self.RELOADS + 1):
                time.sleep(0.04)
                self.load(self.text_b if k % 2 else self.text_a)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertEqual(errors, [], "requests failed during reloads")
        allr = [x for rs in results for x in rs]
        self.assertGreaterEqual(len(allr), self.THREADS * self.PER_THREAD)

        bad = []
        load_status = {200: 0, 401: 0}
        for path, status, rid, body in allr:
            if path.startswith("/stable/"):
                if status != 200:
                    bad.append((path, status, body[:100]))
            elif status == 200:
                load_status[200] += 1
            elif status == 401 and json.loads(body).get("reason") == "token_missing":
                load_status[401] += 1
            else:
                bad.append((path, status, body[:100]))
        self.assertEqual(bad, [], "responses that neither policy allows (%d of %d)" %
                         (len(bad), len(allr)))
        # Both policies really served part of the load.
        self.assertGreater(load_status[200], 0, load_status)
        self.assertGreater(load_status[401], 0, load_status)

        # Each response agrees with the policy its access-log line names: a
        # request was decided wholly under one policy, never half and half.
        by_id = {}
        O.wait_for(lambda: len(self.access_records()) >= len(allr), 5, "access log lines")
        for rec in self.access_records():
            by_id[rec["request_id"]] = rec
        mismatched = []
        for path, status, rid, _ in allr:
            rec = by_id.get(rid)
            if rec is None:
                mismatched.append((rid, path, "no access-log line"))
                continue
            want_policy = "public" if status == 200 else "require_user"
            if rec["status"] != status or rec["policy"] != want_policy or rec["path"] != path:
                mismatched.append((rid, path, status, rec))
        self.assertEqual(mismatched[:5], [], "%d responses disagree with their log line" %
                         len(mismatched))

        after = self.admin.metrics()
        self.assertEqual(after.value("authgate_reloads_total", result="ok") -
                         before.value("authgate_reloads_total", result="ok"), self.RELOADS)
        self.assertEqual(after.value("authgate_reloads_total", result="error"),
                         before.value("authgate_reloads_total", result="error"))
        st, ready = self.admin.readyz()
        self.assertEqual((st, ready["policy_hash"]), (200, O.policy_hash(self.gw.config)))

    def test_in_flight_request_finishes_under_its_policy(self):
        res = {}

        def slow():
            try:
                res["r"] = self.gw.request("GET", "/flight/__echo/sleep/800")
            except Exception as e:  # reported below
                res["r"] = e

        t = threading.Thread(target=slow)
        t.start()
        # wait until the upstream has the request (the echo records on arrival
        # of the whole request, then sleeps) or at least until it is in flight
        time.sleep(0.25)
        self.load(self.text_b)  # /flight is gone from B
        gone = self.gw.request("GET", "/flight/now")
        self.assertEqual(gone.status, 404, "new request after the reload: %r" % gone)
        t.join(10)
        r = res.get("r")
        self.assertIsInstance(r, H.Resp, "in-flight request failed: %r" % r)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["path"], "/flight/__echo/sleep/800")
        rid = r.header("X-Request-Id")
        O.wait_for(lambda: any(x["request_id"] == rid for x in self.access_records()), 3,
                   "access log line of the in-flight request")
        rec = [x for x in self.access_records() if x["request_id"] == rid][0]
        # logged after the swap, but with the route and policy of the old gate
        self.assertEqual((rec["route"], rec["policy"], rec["status"]), ("/flight/**", "public", 200))


class ReloadErrors(ReloadCase):
    def assert_still_a(self, before, hash_a):
        self.assertEqual(self.gw.request("GET", "/load/x").status, 200, "policy A no longer serves")
        self.assertEqual(self.gw.request("GET", "/flight/y").status, 200)
        st, ready = self.admin.readyz()
        self.assertEqual((st, ready["ready"], ready["policy_hash"]), (200, True, hash_a))
        after = self.admin.metrics()
        self.assertEqual(after.value("authgate_reloads_total", result="ok"),
                         before.value("authgate_reloads_total", result="ok"))
        self.assertEqual(after.value("authgate_build_info", version=after.series(
            "authgate_build_info")[0][0]["version"], policy_hash=hash_a), 1)
        return after

    def test_broken_files_keep_the_running_policy(self):
        hash_a = O.policy_hash(self.gw.config)
        lines_a = self.text_a.count("\n")
        cfg = self.gw.config
        cases = [
            ("unknown key",
             self.text_a + "  - path: /bad\n    polcy: public\n",
             ["%s:%d:5: unknown key \"polcy\" in route" % (cfg, lines_a + 2)]),
            ("invalid YAML",
             self.text_a + "  - path: [/x\n",
             ["%s:%d:" % (cfg, lines_a + 2), "invalid YAML"]),
            ("unknown upstream",
             self.text_a + "  - path: /u\n    policy: public\n    upstream: nowhere\n",
             ["%s:%d:15: route \"/u\": unknown upstream \"nowhere\"" % (cfg, lines_a + 3)]),
            ("ambiguous route",
             self.text_a + "  - path: /load/**\n    policy: require_user\n",
             ["%s:%d:" % (cfg, lines_a + 1), "ambiguous"]),
            ("empty file", "", ["%s:1:1:" % cfg, "empty"]),
        ]
        for what, text, needles in cases:
            with self.subTest(what):
                before = self.admin.metrics()
                mark = len(O.read_text(self.gw.err))
                self.load(text, expect_ok=False)
                new_err = O.read_text(self.gw.err)[mark:]
                self.assertIn("reload failed, keeping the running policy", new_err)
                for n in needles:
                    self.assertIn(n, new_err, "stderr after a failed reload")
                self.assertRegex(new_err, r"authgate error: .*:\d+:\d+: ",
                                 "no FILE:LINE:COL diagnostic")
                after = self.assert_still_a(before, hash_a)
                self.assertEqual(after.value("authgate_reloads_total", result="error") -
                                 before.value("authgate_reloads_total", result="error"), 1)
        # and a good file is taken again afterwards
        self.load(self.text_b)
        self.assertEqual(self.gw.request("GET", "/load/x").status, 401)

    def test_missing_file_keeps_the_running_policy(self):
        hash_a = O.policy_hash(self.gw.config)
        before = self.admin.metrics()
        moved = self.gw.config + ".away"
        os.rename(self.gw.config, moved)
        try:
            _, bad0 = self.outcomes()
            O.send_signal(self.gw.proc, signal.SIGHUP)
            O.wait_for(lambda: self.outcomes()[1] == bad0 + 1, 5, "failed reload")
            self.assertIn("%s:1:1: cannot open" % self.gw.config, O.read_text(self.gw.err))
        finally:
            os.rename(moved, self.gw.config)
        self.assert_still_a(before, hash_a)

    def test_warnings_of_a_reloaded_file_are_logged(self):
        text = self.text_a + ("  - path: /org/{org_id}/**\n    policy: require_org_member\n"
                              "  - path: /org/{org_id}/open\n    policy: public\n")
        mark = len(O.read_text(self.gw.err))
        self.load(text)
        new_err = O.read_text(self.gw.err)[mark:]
        self.assertRegex(new_err, r"authgate warn: .*config\.yaml:\d+:\d+: warning: route "
                         r"\"/org/\{org_id\}/open\" is public but lies under protected route")


class PolicyHashVisible(ReloadCase):
    def test_hash_in_log_readyz_and_metrics(self):
        hash_a = O.policy_hash(self.gw.config)
        O.wait_for(lambda: "listening on" in O.read_text(self.gw.err), 3, "the start-up line")
        self.assertRegex(O.read_text(self.gw.err), r"authgate info: listening on 127\.0\.0\.1:%d "
                         r"with \d+ workers \(policy %s\)" % (self.gw.port, hash_a))
        st, r1 = self.admin.readyz()
        self.assertEqual(r1["policy_hash"], hash_a)
        time.sleep(1.05)  # policy_loaded_at has one-second resolution
        mark = len(O.read_text(self.gw.err))
        self.load(self.text_b)
        hash_b = O.policy_hash(self.gw.config)
        self.assertNotEqual(hash_a, hash_b)
        new_err = O.read_text(self.gw.err)[mark:]
        self.assertRegex(new_err, r"authgate info: reloaded %s \(policy %s\)" %
                         (self.gw.config.replace(".", r"\."), hash_b))
        st, r2 = self.admin.readyz()
        self.assertEqual(r2["policy_hash"], hash_b)
        self.assertGreater(r2["policy_loaded_at"], r1["policy_loaded_at"])
        self.assertLessEqual(abs(r2["policy_loaded_at"] - time.time()), 5)
        m = self.admin.metrics()
        self.assertEqual([l["policy_hash"] for l, _ in m.series("authgate_build_info")], [hash_b])
        self.assertEqual(m.value("authgate_policy_loaded_timestamp_seconds"),
                         r2["policy_loaded_at"])


class NotifyAroundReload(H.GatewayCase):
    """systemd's notify protocol over a datagram socket we own."""

    @classmethod
    def gateway_env(cls):
        d = H.new_tmp("notify-")
        cls.notify_path = os.path.join(d, "notify.sock")
        cls.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        cls.notify.bind(cls.notify_path)
        cls.notify.settimeout(5)
        return {"NOTIFY_SOCKET": cls.notify_path}

    @classmethod
    def make_config(cls, echo):
        return O.base_config(echo, routes_a())

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.notify.close()

    def recv(self):
        return self.notify.recv(4096).decode()

    def test_ready_reloading_ready(self):
        first = self.recv()
        self.assertIn("READY=1", first.split("\n"))
        O.write_atomically(self.gw.config, self.gw.config_text.replace(
            '"/flight/**"', '"/flight2/**"'))
        O.send_signal(self.gw.proc, signal.SIGHUP)
        self.assertIn("RELOADING=1", self.recv().split("\n"))
        self.assertIn("READY=1", self.recv().split("\n"))
        # a failed reload still ends with READY=1 (the old policy serves on)
        O.write_atomically(self.gw.config, "")
        O.send_signal(self.gw.proc, signal.SIGHUP)
        self.assertIn("RELOADING=1", self.recv().split("\n"))
        msg = self.recv().split("\n")
        self.assertIn("READY=1", msg)
        self.assertTrue(any(l.startswith("STATUS=") and "failed" in l for l in msg), msg)
        O.write_atomically(self.gw.config, self.gw.config_text)
        O.send_signal(self.gw.proc, signal.SIGHUP)
        self.recv()
        self.recv()


class ReloadRestartOnlySettings(ReloadCase):
    def test_restart_only_settings_are_named_and_kept(self):
        tok = H.mint("u-restart")
        self.assertEqual(self.gw.request("GET", "/load/x").status, 200)
        text = self.text_a.replace("workers: 2", "workers: 3").replace(
            'issuer: "%s"' % H.ISSUER, 'issuer: "https://other.example"')
        self.assertNotEqual(text, self.text_a)
        text = text.replace('"/load/**"\n    policy: "public"', '"/load/**"\n    policy: "require_user"')
        mark = len(O.read_text(self.gw.err))
        self.load(text)
        new_err = O.read_text(self.gw.err)[mark:]
        for key in ("workers", "auth.issuer"):
            self.assertIn("authgate warn: reload: %s changed, but it only takes effect on restart"
                          % key, new_err)
        self.assertNotIn("reload: listen changed", new_err)
        # the routes changed; the issuer did not: the old issuer's token still works
        self.assertEqual(self.gw.request("GET", "/load/x").status, 401)
        r = self.req("GET", "/load/x", token=tok)
        self.assertEqual(r.status, 200, r)
