"""`authgate run --pid-file` and `authgate reload`: the file is validated before
the daemon is signalled, a broken file never reaches it, and the pid file goes
away when the daemon stops."""

import os
import subprocess
import time
import unittest

import harness as H


def config(echo, extra_route=None):
    routes = [{"path": "/public/**", "policy": "public"}]
    if extra_route:
        routes.append(extra_route)
    return {
        "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
        "upstreams": {"app": {"url": echo.url}},
        "routes": routes,
    }


class ReloadCommand(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        miss = H.missing_binaries()
        if miss:
            raise unittest.SkipTest("not built: %s (run make)" % ", ".join(miss))
        H.keys("main")
        cls.echo = H.Echo()
        cls.pid_file = os.path.join(H.new_tmp("pidfile-"), "authgate.pid")
        cls.gw = H.Gateway(config(cls.echo), name="reloadcmd",
                           extra_args=["--pid-file", cls.pid_file])

    @classmethod
    def tearDownClass(cls):
        problems = cls.gw.stop()
        cls.echo.stop()
        if problems:
            raise AssertionError(problems)

    def write(self, cfg):
        cfg = dict(cfg)
        cfg["listen"] = "127.0.0.1:%d" % self.gw.port
        with open(self.gw.config, "w") as f:
            f.write(H.to_yaml(cfg) + "\n")

    def reload(self):
        return subprocess.run([H.authgate_bin(), "reload", "-c", self.gw.config, "--pid-file",
                               self.pid_file], capture_output=True, text=True, timeout=30)

    def wait_status(self, path, status, timeout=5.0):
        end = time.time() + timeout
        got = None
        while time.time() < end:
            got = self.gw.request("GET", path).status
            if got == status:
                return got
            time.sleep(0.05)
        return got

    def test_1_pid_file_written(self):
        with open(self.pid_file) as f:
            self.assertEqual(int(f.read().strip()), self.gw.proc.pid)

    def test_2_reload_applies_a_valid_file(self):
        self.assertEqual(self.gw.request("GET", "/added/x").status, 404)
        self.write(config(self.echo, {"path": "/added/**", "policy": "public"}))
        p = self.reload()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("reload requested: pid %d, policy " % self.gw.proc.pid, p.stdout)
        self.assertEqual(self.wait_status("/added/x", 200), 200)
        # The new policy serves a moment before the daemon logs "reloaded" (its
        # last step); wait for the line so the next test counts from a settled log.
        end = time.time() + 5
        while "authgate info: reloaded " not in open(self.gw.err).read():
            self.assertLess(time.time(), end, "no 'reloaded' line after the reload")
            time.sleep(0.02)

    def test_3_broken_file_is_not_signalled(self):
        before = open(self.gw.err).read().count("reload")
        text = open(self.gw.config).read() + "bogus_key: 1\n"
        with open(self.gw.config, "w") as f:
            f.write(text)
        p = self.reload()
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("bogus_key", p.stdout)
        self.assertIn("the running daemon was not signalled", p.stderr)
        time.sleep(0.3)
        self.assertEqual(open(self.gw.err).read().count("reload"), before,
                         "the daemon saw a reload for a file that does not load")
        self.assertEqual(self.gw.request("GET", "/public/x").status, 200)

    def test_4_usage_errors(self):
        p = subprocess.run([H.authgate_bin(), "reload", "-c", self.gw.config],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--pid-file", p.stderr)
        missing = os.path.join(H.new_tmp("nopid-"), "none.pid")
        write_ok = config(self.echo)
        self.write(write_ok)
        p = subprocess.run([H.authgate_bin(), "reload", "-c", self.gw.config, "--pid-file",
                            missing], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot read a pid", p.stderr)


class PidFileRemovedOnExit(unittest.TestCase):
    def test_pid_file_removed_on_exit(self):
        miss = H.missing_binaries()
        if miss:
            self.skipTest("not built")
        H.keys("main")
        echo = H.Echo()
        try:
            pid_file = os.path.join(H.new_tmp("pidfile2-"), "authgate.pid")
            gw = H.Gateway(config(echo), name="pidexit", extra_args=["--pid-file", pid_file])
            self.assertTrue(os.path.exists(pid_file))
            problems = gw.stop()
            self.assertEqual(problems, "")
            self.assertFalse(os.path.exists(pid_file), "pid file left behind after exit")
        finally:
            echo.stop()
