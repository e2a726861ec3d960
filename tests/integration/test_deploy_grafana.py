"""deploy/grafana/authgate.json (issue 14): every metric and label name a
panel's PromQL uses exists in a live /metrics scrape of the real daemon, and
every exact label value it selects on is one the daemon exports. A renamed
metric or label would leave a panel silently empty; this fails instead."""

import json
import os
import re

import harness as H
import ops_helpers as O

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASH = os.path.join(ROOT, "deploy", "grafana", "authgate.json")
# Added by Prometheus to every scraped series (the scrape target), not by authgate.
TARGET_LABELS = {"instance", "job"}

METRIC = re.compile(r"\b(authgate_[a-zA-Z0-9_]+)\s*(\{[^}]*\})?")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


def dashboard_exprs():
    """[(panel title, expr, legendFormat)] over all panels and rows, plus the
    template variables' queries."""
    with open(DASH) as f:
        d = json.load(f)
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                out.append((p["title"], t["expr"], t.get("legendFormat", "")))
            walk(p.get("panels", []))

    walk(d["panels"])
    for v in d.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if v.get("type") == "query":
            m = re.fullmatch(r"label_values\((authgate_\w+),\s*(\w+)\)", q or "")
            assert m, "template %s: unexpected query %r" % (v["name"], q)
            out.append(("$" + v["name"], "%s{%s=~\".*\"}" % m.groups(), ""))
    return d, out


class DashboardAgainstScrape(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        cls.admin_port = H.free_port()
        cfg = O.base_config(echo, [{"path": "/pub/**", "policy": "public"},
                                   {"path": "/me", "policy": "require_user"},
                                   {"path": "/dead/**", "policy": "public", "upstream": "dead"}],
                            admin_port=cls.admin_port)
        cfg["upstreams"]["dead"] = {"url": "http://127.0.0.1:%d" % H.closed_port(),
                                    "connect_timeout_ms": 500}
        for r in cfg["routes"]:
            r.setdefault("upstream", "app")
        return cfg

    def scrape(self):
        # one of each kind of outcome, so the labelled series exist
        for method, path, want in (("GET", "/pub/a", 200), ("GET", "/me", 401),
                                   ("GET", "/nope", 404), ("GET", "/dead/x", 502),
                                   ("OPTIONS", "*", 400)):
            self.assertEqual(self.gw.request(method, path).status, want, path)
        return O.Admin(self.admin_port).metrics()

    def test_every_metric_and_label_exists(self):
        d, exprs = dashboard_exprs()
        m = self.scrape()
        names = {n for n, _ in m.samples}
        labels_of = {}
        values_of = {}
        for n, ls in m.samples:
            for k, v in ls:
                labels_of.setdefault(n, set()).add(k)
                values_of.setdefault((n, k), set()).add(v)
        self.assertGreaterEqual(len([e for e in exprs if not e[0].startswith("$")]), 12)
        used = set()
        for title, expr, legend in exprs:
            where = "%s: %s" % (title, expr)
            found = METRIC.findall(expr)
            self.assertTrue(found, "no authgate metric in " + where)
            expr_labels = set(TARGET_LABELS)
            for name, sel in found:
                used.add(name)
                self.assertIn(name, names, "metric not in the scrape: " + where)
                have = labels_of.get(name, set())
                expr_labels |= have
                for k, op, v in MATCHER.findall(sel or ""):
                    if k in TARGET_LABELS:
                        continue
                    self.assertIn(k, have, "label %s not on %s: %s" % (k, name, where))
                    if op == "=":
                        self.assertIn(v, values_of[(name, k)],
                                      "%s=%r never exported: %s" % (k, v, where))
                    elif op == "=~":
                        for alt in v.split("|"):
                            self.assertIn(alt, values_of[(name, k)],
                                          "%s=~ alternative %r never exported: %s"
                                          % (k, alt, where))
            grouped = set()
            for g in GROUPING.findall(expr):
                for k in (x.strip() for x in g.split(",") if x.strip()):
                    self.assertIn(k, expr_labels, "grouping label %s unknown: %s" % (k, where))
                    grouped.add(k)
            for k in LEGEND.findall(legend):
                self.assertIn(k, grouped or expr_labels,
                              "legend {{%s}} is not a label of the result: %s" % (k, where))
        # what the issue asks the dashboard to show
        for want in ("authgate_requests_total", "authgate_request_duration_seconds_bucket",
                     "authgate_upstream_errors_total", "authgate_key_age_seconds",
                     "authgate_key_refresh_total", "authgate_reloads_total",
                     "authgate_open_connections"):
            self.assertIn(want, used)

    def test_checker_catches_a_wrong_name(self):
        # the checks above must be able to fail: a misspelt metric and label
        m = self.scrape()
        names = {n for n, _ in m.samples}
        (name, sel), = METRIC.findall('rate(authgate_request_total{decison="allow"}[5m])')
        self.assertNotIn(name, names)
        labels = {k for n, ls in m.samples if n == "authgate_requests_total" for k, _ in ls}
        self.assertNotIn(MATCHER.findall(sel)[0][0], labels)

    def test_dashboard_shape(self):
        d, _ = dashboard_exprs()
        self.assertEqual(d["uid"], "authgate-overview")
        ids = [v["name"] for v in d["templating"]["list"]]
        self.assertIn("datasource", ids)
        for p in d["panels"]:
            if p["type"] == "row":
                continue
            self.assertEqual(p["datasource"]["uid"], "${datasource}", p["title"])
            for t in p["targets"]:
                self.assertIn('instance=~"$instance"', t["expr"], p["title"])
