"""`authgate healthcheck -c FILE` (issue 14): the container health check
reads its addresses from the config instead of assuming 127.0.0.1:9901.
Checked against configs with and without admin_listen, daemon up and down,
a listener that accepts but never answers (bounded time), and the
Dockerfile's HEALTHCHECK replayed against a config without admin_listen
(the old `curl 127.0.0.1:9901/healthz` could never pass there)."""

import os
import re
import socket
import subprocess
import time
import unittest

import harness as H
import ops_helpers as O

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROUTES = [{"path": "/pub/**", "policy": "public"}]


def healthcheck(config, *extra, timeout=10):
    t0 = time.time()
    p = subprocess.run([H.authgate_bin(), "healthcheck", "-c", config] + list(extra),
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stderr, time.time() - t0


def write_config(text):
    path = os.path.join(H.new_tmp("hc-"), "authgate.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


class HealthcheckCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        miss = H.missing_binaries()
        if miss:
            raise unittest.SkipTest("not built: %s (run make)" % ", ".join(miss))
        H.keys("main")
        cls.echo = H.Echo()

    @classmethod
    def tearDownClass(cls):
        cls.echo.stop()

    def start(self, admin):
        port = H.free_port() if admin else None
        gw = H.Gateway(O.base_config(self.echo, ROUTES, admin_port=port), name="hc")
        self.addCleanup(gw.stop)
        if admin:
            O.wait_for(lambda: O.Admin(port).get("/healthz").status == 200, 5, "admin up")
        return gw

    def assert_down(self, config, what):
        rc, err, took = healthcheck(config)
        self.assertEqual(rc, 1, "%s: healthcheck said healthy: %r" % (what, err))
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, "one line on stderr, got %r" % err)
        self.assertTrue(lines[0].startswith("unhealthy: "), lines[0])
        self.assertLess(took, 3.5)

    def test_with_admin_listen_up_then_down(self):
        gw = self.start(admin=True)
        rc, err, _ = healthcheck(gw.config)
        self.assertEqual((rc, err), (0, ""))
        gw.stop()
        self.assert_down(gw.config, "admin config, daemon stopped")

    def test_without_admin_listen_up_then_down(self):
        gw = self.start(admin=False)
        self.assertNotIn("admin_listen", gw.config_text)
        rc, err, _ = healthcheck(gw.config)
        self.assertEqual((rc, err), (0, ""))
        # the probe is answered by the gateway itself: the upstream saw nothing
        self.assertEqual(self.echo.count(), 0)
        gw.stop()
        self.assert_down(gw.config, "no-admin config, daemon stopped")

    def test_wildcard_listen_is_probed_on_loopback(self):
        gw = self.start(admin=False)
        wild = write_config(O.config_text(O.base_config(self.echo, ROUTES), gw.port)
                            .replace("127.0.0.1:%d" % gw.port, "0.0.0.0:%d" % gw.port))
        self.assertIn("0.0.0.0:", O.read_text(wild))
        self.assertEqual(healthcheck(wild)[:2], (0, ""))

    def test_admin_answering_not_200_is_unhealthy(self):
        # The main listener answers, but it is not the admin endpoint: pointing
        # admin_listen at it must fail, /healthz there is not a 200 from admin.
        gw = self.start(admin=False)
        text = O.config_text(O.base_config(self.echo, ROUTES, admin_port=gw.port),
                             H.free_port())
        rc, err, _ = healthcheck(write_config(text))
        self.assertEqual(rc, 1, err)
        self.assertIn("answered /healthz with", err)

    def test_silent_listener_is_bounded(self):
        # accepts (the kernel backlog) but never answers: must not hang
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        self.addCleanup(s.close)
        port = s.getsockname()[1]
        text = O.config_text(O.base_config(self.echo, ROUTES), port)
        cfg = write_config(text)
        rc, err, took = healthcheck(cfg)
        self.assertEqual(rc, 1)
        self.assertIn("no answer within the time limit", err)
        self.assertGreater(took, 1.5)
        self.assertLess(took, 3.5)
        rc, err, took = healthcheck(cfg, "--timeout-ms", "300")
        self.assertEqual(rc, 1)
        self.assertLess(took, 1.5)

    def test_broken_config_is_unhealthy_with_location(self):
        rc, err, _ = healthcheck(write_config("listen: [\n"))
        self.assertEqual(rc, 1)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("does not load", err)

    def test_usage(self):
        p = subprocess.run([H.authgate_bin(), "healthcheck"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)


class DockerfileHealthcheck(unittest.TestCase):
    """The image's HEALTHCHECK must be the config-driven command, pointed at
    the same file the default CMD runs; replayed here with that path mapped
    to a config on another port and without admin_listen."""

    def dockerfile(self):
        return O.read_text(os.path.join(ROOT, "docker", "Dockerfile"))

    def json_argv(self, directive):
        import json
        m = re.search(r"^%s\s+(?:.*\\\n\s*)*?(?:CMD\s+)?(\[.*\])\s*$" % directive,
                      self.dockerfile(), re.M)
        self.assertIsNotNone(m, "no %s [..] in docker/Dockerfile" % directive)
        return json.loads(m.group(1))

    def test_healthcheck_uses_the_run_config(self):
        hc = self.json_argv("HEALTHCHECK")
        cmd = self.json_argv("CMD")
        entry = self.json_argv("ENTRYPOINT")
        self.assertEqual(os.path.basename(hc[0]), "authgate")
        self.assertEqual(hc[0], entry[0])
        self.assertEqual(hc[1], "healthcheck")
        self.assertNotIn("curl", self.dockerfile().split("HEALTHCHECK", 1)[1].split("\n")[1])
        self.assertEqual(hc[hc.index("-c") + 1], cmd[cmd.index("-c") + 1])

    def test_replay_against_config_without_admin(self):
        if H.missing_binaries():
            self.skipTest("not built")
        H.keys("main")
        echo = H.Echo()
        self.addCleanup(echo.stop)
        gw = H.Gateway(O.base_config(echo, ROUTES), name="hc-docker")
        self.addCleanup(gw.stop)
        hc = self.json_argv("HEALTHCHECK")
        run_cfg = hc[hc.index("-c") + 1]
        argv = [H.authgate_bin()] + [gw.config if a == run_cfg else a for a in hc[1:]]
        self.assertEqual(subprocess.run(argv, timeout=10).returncode, 0)
        gw.stop()
        self.assertEqual(subprocess.run(argv, timeout=10, capture_output=True).returncode, 1)


class ComposeCheckLine(unittest.TestCase):
    """`docker compose run --rm authgate check` also starts depends_on
    services; every place that tells users to run it must say --no-deps."""

    def test_no_deps_everywhere(self):
        found = 0
        for d in ("docker", "docs", "deploy"):
            for dirpath, _, files in os.walk(os.path.join(ROOT, d)):
                for name in files:
                    if not name.endswith((".md", ".yml", ".yaml")):
                        continue
                    for line in O.read_text(os.path.join(dirpath, name)).splitlines():
                        if re.search(r"docker[ -]compose run\b", line):
                            found += 1
                            self.assertIn("--no-deps", line, "%s: %s" % (name, line))
        self.assertGreater(found, 0, "the docs show the compose check line somewhere")
