"""docs/deployment.md (issue 14) replayed: the healthcheck example against a
daemon up and down, the watch_config example config served and reloaded by
the documented validate-then-mv line, and the Kubernetes and dashboard
tables naming exactly the shipped files and metrics."""

import json
import os
import re
import subprocess
import unittest

import harness as H
import ops_helpers as O

try:
    import yaml
except ImportError:  # pragma: no cover
    yaml = None

ROOT = H.REPO
DOC = os.path.join(ROOT, "docs", "deployment.md")


def replay_block(name):
    """The fenced block right after `<!-- replay: NAME -->`."""
    md = O.read_text(DOC)
    m = re.search(r"<!-- replay: %s -->\n```(\w+)\n(.*?)^```\n" % re.escape(name), md,
                  re.S | re.M)
    assert m, "docs/deployment.md has no replay block %r" % name
    return m.group(1), m.group(2)


def run_sh(text, config):
    """Runs a documented shell line with the binary and the config path of
    this test in place of the installed ones."""
    text = text.replace("/etc/authgate/authgate.yaml", config)
    bindir = os.path.dirname(H.authgate_bin())
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
    return subprocess.run(["bash", "-c", text], capture_output=True, text=True, env=env,
                          timeout=20)


class HealthcheckExample(unittest.TestCase):
    def test_replay(self):
        if H.missing_binaries():
            self.skipTest("not built")
        H.keys("main")
        echo = H.Echo()
        self.addCleanup(echo.stop)
        gw = H.Gateway(O.base_config(echo, [{"path": "/pub/**", "policy": "public"}]),
                       name="doc-hc")
        self.addCleanup(gw.stop)
        lang, text = replay_block("healthcheck")
        self.assertEqual(lang, "sh")
        p = run_sh(text, gw.config)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "alive"), p.stderr)
        gw.stop()
        p = run_sh(text, gw.config)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        self.assertIn("unhealthy", p.stderr)


@unittest.skipIf(yaml is None, "python3-yaml is not installed (scripts/install-deps.sh)")
class WatchConfigExample(unittest.TestCase):
    def test_example_config_served_and_mv_reloads(self):
        if H.missing_binaries():
            self.skipTest("not built")
        lang, text = replay_block("watch-config")
        self.assertEqual(lang, "yaml")
        cfg = yaml.safe_load(text)
        self.assertIs(cfg["watch_config"], True)
        H.keys("main")
        echo = H.Echo()
        self.addCleanup(echo.stop)
        admin = H.free_port()
        # the example, pointed at this test's key, issuer, ports and upstream
        cfg["admin_listen"] = "127.0.0.1:%d" % admin
        cfg["auth"] = {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER}
        cfg["upstreams"]["app"]["url"] = echo.url
        gw = H.Gateway(cfg, name="doc-watch")
        self.addCleanup(gw.stop)
        self.assertEqual(gw.request("GET", "/api/x").status, 401)
        new = dict(cfg, routes=[{"path": "/api/**", "policy": "public"}])
        with open(gw.config + ".new", "w") as f:
            f.write(O.config_text(new, gw.port))
        lang, line = replay_block("mv-into-place")
        p = run_sh(line.replace("/etc/authgate/authgate.yaml.new", gw.config + ".new"),
                   gw.config)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertFalse(os.path.exists(gw.config + ".new"))
        O.wait_for(lambda: gw.request("GET", "/api/x").status == 200, 5,
                   "the moved-in policy served")
        self.assertEqual(O.Admin(admin).readyz()[1]["policy_hash"], O.policy_hash(gw.config))


class Tables(unittest.TestCase):
    def test_kubernetes_table_names_every_file(self):
        md = O.read_text(DOC)
        sec = md[md.index("## Kubernetes sidecar"):md.index("## Grafana dashboard")]
        listed = set(re.findall(r"^\| `([\w.-]+\.yaml)` \|", sec, re.M))
        shipped = set(os.listdir(os.path.join(ROOT, "deploy", "kubernetes")))
        self.assertEqual(listed, shipped)

    def test_dashboard_table_matches_the_json(self):
        md = O.read_text(DOC)
        sec = md[md.index("## Grafana dashboard"):md.index("## Scaling out")]
        with open(os.path.join(ROOT, "deploy", "grafana", "authgate.json")) as f:
            d = json.load(f)
        titles = [p["title"] for p in d["panels"] if p["type"] != "row"]
        exprs = " ".join(t["expr"] for p in d["panels"] for t in p.get("targets", []))
        rows = re.findall(r"^\| ([^|`]+?) \| (.*) \|$", sec, re.M)[1:]  # skip the header
        self.assertEqual(len(rows), len(titles))
        for title, query in rows:
            self.assertIn(title, titles)
            for name in re.findall(r"authgate_\w+", query):
                self.assertIn(name, exprs, "%s: %s not in the dashboard" % (title, name))
