"""deploy/kubernetes (issue 14), without a cluster: the policy embedded in the
ConfigMap passes `authgate check`, and the manifests hang together: kinds,
selectors matching the pod labels, the Service and the probes naming real
container ports, probes on the admin listener's port, volumes mounted (the
config as a directory so ConfigMap updates arrive), the Secret feeding the
config's api_key_env, the app on loopback at the upstream's address, and
the security context and resources every container needs."""

import os
import re
import subprocess
import unittest
from urllib.parse import urlsplit

import harness as H

try:
    import yaml
except ImportError:  # pragma: no cover
    yaml = None

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
K8S = os.path.join(ROOT, "deploy", "kubernetes")


def port_of(spec):
    return int(spec.rsplit(":", 1)[1])


@unittest.skipIf(yaml is None, "python3-yaml is not installed (scripts/install-deps.sh)")
class Manifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(K8S, "kustomization.yaml")) as f:
            cls.kust = yaml.safe_load(f)
        cls.docs = []
        for name in cls.kust["resources"]:
            with open(os.path.join(K8S, name)) as f:
                cls.docs += [d for d in yaml.safe_load_all(f) if d]
        cls.by_kind = {}
        for d in cls.docs:
            cls.by_kind.setdefault(d["kind"], []).append(d)
        cls.dep = cls.one("Deployment")
        cls.pod = cls.dep["spec"]["template"]
        cls.containers = {c["name"]: c for c in cls.pod["spec"]["containers"]}
        cls.gw = cls.containers["authgate"]
        cls.cm = cls.one("ConfigMap")
        cls.cfg_text = cls.cm["data"]["authgate.yaml"]
        cls.cfg = yaml.safe_load(cls.cfg_text)

    @classmethod
    def one(cls, kind):
        docs = cls.by_kind.get(kind, [])
        assert len(docs) == 1, "want one %s, have %d" % (kind, len(docs))
        return docs[0]

    def test_every_file_is_a_resource(self):
        files = sorted(f for f in os.listdir(K8S) if f.endswith(".yaml") and
                       f != "kustomization.yaml")
        self.assertEqual(files, sorted(self.kust["resources"]))
        self.assertEqual(sorted(self.by_kind), sorted(["ConfigMap", "Secret", "Deployment",
                                                       "Service", "PodDisruptionBudget",
                                                       "NetworkPolicy"]))

    def test_selectors_match_pod_labels(self):
        labels = self.pod["metadata"]["labels"]
        sel = self.dep["spec"]["selector"]["matchLabels"]
        self.assertTrue(sel and all(labels.get(k) == v for k, v in sel.items()), sel)
        svc = self.one("Service")["spec"]["selector"]
        self.assertTrue(all(labels.get(k) == v for k, v in svc.items()), svc)
        for kind in ("PodDisruptionBudget",):
            s = self.one(kind)["spec"]["selector"]["matchLabels"]
            self.assertTrue(all(labels.get(k) == v for k, v in s.items()), (kind, s))
        np_sel = self.one("NetworkPolicy")["spec"]["podSelector"]["matchLabels"]
        self.assertTrue(all(labels.get(k) == v for k, v in np_sel.items()), np_sel)
        pdb = self.one("PodDisruptionBudget")["spec"]
        self.assertLess(pdb.get("maxUnavailable", 0), self.dep["spec"]["replicas"])

    def container_port(self, c, ref):
        for p in c.get("ports", []):
            if ref in (p.get("name"), p["containerPort"]):
                return p["containerPort"]
        self.fail("container %s has no port %r" % (c["name"], ref))

    def test_ports_match_config(self):
        svc_ports = self.one("Service")["spec"]["ports"]
        self.assertEqual(len(svc_ports), 1, "only the gateway's port is in the Service")
        self.assertEqual(self.container_port(self.gw, svc_ports[0]["targetPort"]),
                         port_of(self.cfg["listen"]))
        admin = port_of(self.cfg["admin_listen"])
        self.assertNotEqual(admin, port_of(self.cfg["listen"]))
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            g = self.gw[probe]["httpGet"]
            self.assertEqual(g["path"], path)
            self.assertEqual(self.container_port(self.gw, g["port"]), admin, probe)
        sp = self.gw.get("startupProbe", {}).get("httpGet")
        if sp:
            self.assertEqual(self.container_port(self.gw, sp["port"]), admin)
        ann = self.pod["metadata"].get("annotations", {})
        self.assertEqual(int(ann["prometheus.io/port"]), admin)
        np_ports = sorted(p["port"] for r in self.one("NetworkPolicy")["spec"]["ingress"]
                          for p in r["ports"])
        self.assertEqual(np_ports, sorted([port_of(self.cfg["listen"]), admin]))

    def test_app_on_loopback_at_the_upstream(self):
        up = urlsplit(self.cfg["upstreams"]["app"]["url"])
        self.assertEqual(up.hostname, "127.0.0.1")
        app = self.containers["app"]
        argv = app.get("command", []) + app.get("args", [])
        self.assertEqual(argv[argv.index("--listen") + 1], "127.0.0.1")
        self.assertEqual(int(argv[argv.index("--port") + 1]), up.port)
        self.assertNotIn("ports", app, "the app publishes no port on the pod IP")

    def test_config_mounted_as_directory_and_watched(self):
        vols = {v["name"]: v for v in self.pod["spec"]["volumes"]}
        run_cfg = self.gw["args"][self.gw["args"].index("-c") + 1]
        mounts = [m for m in self.gw["volumeMounts"]
                  if run_cfg.startswith(m["mountPath"].rstrip("/") + "/")]
        self.assertEqual(len(mounts), 1, "the -c file lies under one mount")
        m = mounts[0]
        self.assertNotIn("subPath", m, "a subPath mount never sees ConfigMap updates")
        self.assertEqual(vols[m["name"]]["configMap"]["name"], self.cm["metadata"]["name"])
        self.assertEqual(os.path.relpath(run_cfg, m["mountPath"]), "authgate.yaml")
        self.assertIs(self.cfg.get("watch_config"), True)
        for c in self.containers.values():
            for vm in c.get("volumeMounts", []):
                self.assertIn(vm["name"], vols)

    def test_secret_feeds_api_key_env(self):
        sec = self.one("Secret")
        env = {e["name"]: e for e in self.gw["env"]}
        ref = env[self.cfg["auth"]["api_key_env"]]["valueFrom"]["secretKeyRef"]
        self.assertEqual(ref["name"], sec["metadata"]["name"])
        self.assertIn(ref["key"], sec.get("stringData", {}) or sec.get("data", {}))

    def test_security_and_resources(self):
        pod_sc = self.pod["spec"]["securityContext"]
        self.assertIs(pod_sc["runAsNonRoot"], True)
        self.assertGreater(pod_sc["runAsUser"], 0)
        for c in self.containers.values():
            sc = c["securityContext"]
            self.assertIs(sc["readOnlyRootFilesystem"], True, c["name"])
            self.assertIs(sc["allowPrivilegeEscalation"], False, c["name"])
            self.assertEqual(sc["capabilities"]["drop"], ["ALL"], c["name"])
            self.assertIn("requests", c["resources"], c["name"])
            self.assertIn("memory", c["resources"]["limits"], c["name"])
        grace = self.cfg.get("shutdown_grace_ms", 10000) / 1000
        self.assertGreater(self.pod["spec"]["terminationGracePeriodSeconds"], grace + 5)

    def test_embedded_config_passes_check(self):
        if H.missing_binaries():
            self.skipTest("not built")
        path = os.path.join(H.new_tmp("k8s-"), "authgate.yaml")
        with open(path, "w") as f:
            f.write(self.cfg_text)
        env = dict(os.environ, **{self.cfg["auth"]["api_key_env"]: "k8s-test-dummy-key"})
        p = subprocess.run([H.authgate_bin(), "check", "--strict", "-c", path],
                           capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(re.match(r"ok: \d+ routes?", p.stdout.splitlines()[-1]), p.stdout)
        # and without the Secret's variable it must fail: the env var is checked
        env.pop(self.cfg["auth"]["api_key_env"])
        p = subprocess.run([H.authgate_bin(), "check", "-c", path], capture_output=True,
                           text=True, env=env)
        self.assertEqual(p.returncode, 1, p.stdout)
