"""Admin listener (issue 6): /healthz, /readyz, /metrics on their own port,
never on the public one; /metrics parsed with a strict Prometheus text parser
and its counters checked to move by exactly the requests sent."""

import json
import os
import time
import unittest

import harness as H
import ops_helpers as O

ORG = "0a1b2c3d-aaaa-4000-8000-0000000000a1"
OTHER_ORG = "0a1b2c3d-bbbb-4000-8000-0000000000b2"


def admin_routes():
    return [
        {"path": "/pub/**", "policy": "public"},
        {"path": "/me", "policy": "require_user"},
        {"path": "/api/org/{org_id}/admin", "policy": "require_org_member_with_minimum_role",
         "role": "Admin"},
        {"path": "/get-only", "methods": ["GET"], "policy": "public"},
        {"path": "/dead/**", "policy": "public", "upstream": "dead"},
    ]


class ParserSelfTest(unittest.TestCase):
    """The parser must refuse what Prometheus would refuse, or the scrape
    tests below prove nothing."""

    GOOD = ('# HELP x_total a\n# TYPE x_total counter\nx_total{a="q\\"\\\\\\n"} 3\n'
            '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 0.5\n'
            'h_count 2\n')

    def test_good(self):
        m = O.parse_prometheus(self.GOOD)
        self.assertEqual(m.value("x_total", a='q"\\\n'), 3)
        self.assertEqual(m.value("h_count"), 2)

    def test_rejects(self):
        bad = {
            "no TYPE": "x 1\n",
            "bad escape": '# TYPE x gauge\nx{a="\\t"} 1\n',
            "duplicate": "# TYPE x gauge\nx 1\nx 2\n",
            "not cumulative": '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\n'
                              'h_sum 1\nh_count 2\n',
            "inf != count": '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n',
            "no newline": "# TYPE x gauge\nx 1",
            "bad value": "# TYPE x gauge\nx one\n",
        }
        for what, text in bad.items():
            with self.subTest(what):
                with self.assertRaises(AssertionError):
                    O.parse_prometheus(text)


class AdminEndpoints(H.GatewayCase):
    maxDiff = None
    admin_port = None

    @classmethod
    def make_config(cls, echo):
        cls.admin_port = H.free_port()
        cls.dead_port = H.closed_port()
        cfg = O.base_config(echo, admin_routes(), admin_port=cls.admin_port, workers=1)
        cfg["upstreams"]["dead"] = {"url": "http://127.0.0.1:%d" % cls.dead_port,
                                    "connect_timeout_ms": 500, "timeout_ms": 2000}
        for r in cfg["routes"]:
            r.setdefault("upstream", "app")
        return cfg

    def setUp(self):
        super().setUp()
        self.admin = O.Admin(self.admin_port)

    # endpoints -----------------------------------------------------------

    def test_healthz(self):
        r = self.admin.get("/healthz")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(json.loads(r.body), {"status": "alive"})
        self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertEqual(self.admin.get("/healthz", method="HEAD").status, 200)

    def test_readyz_fields_match_running_policy(self):
        st, body = self.admin.readyz()
        self.assertEqual(st, 200, body)
        self.assertIs(body["ready"], True)
        self.assertEqual(body["policy_hash"], O.policy_hash(self.gw.config))
        self.assertIsInstance(body["policy_loaded_at"], int)
        self.assertLessEqual(abs(body["policy_loaded_at"] - time.time()), 600)
        self.assertRegex(body["key_fingerprint"], r"^[0-9a-f]{16}$")
        self.assertNotIn("reasons", body)

    def test_metrics_content_type_and_build_info(self):
        r = self.admin.get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        m = O.parse_prometheus(r.body.decode())
        info = m.series("authgate_build_info")
        self.assertEqual(len(info), 1, info)
        labels, v = info[0]
        self.assertEqual(v, 1)
        self.assertEqual(labels["policy_hash"], O.policy_hash(self.gw.config))
        self.assertRegex(labels["version"], r"^\d+\.\d+\.\d+")
        for fam, typ in [("authgate_requests_total", "counter"),
                         ("authgate_request_duration_seconds", "histogram"),
                         ("authgate_upstream_duration_seconds", "histogram"),
                         ("authgate_upstream_errors_total", "counter"),
                         ("authgate_token_cache_hits_total", "counter"),
                         ("authgate_token_cache_misses_total", "counter"),
                         ("authgate_open_connections", "gauge"),
                         ("authgate_reloads_total", "counter"),
                         ("authgate_keys_ready", "gauge"),
                         ("authgate_key_age_seconds", "gauge"),
                         ("authgate_key_refresh_total", "counter"),
                         ("authgate_policy_loaded_timestamp_seconds", "gauge")]:
            self.assertEqual(m.types.get(fam), typ, "family %s" % fam)
        self.assertEqual(m.value("authgate_keys_ready"), 1)
        self.assertGreaterEqual(m.value("authgate_key_age_seconds"), 0)
        st, ready = self.admin.readyz()
        self.assertEqual(m.value("authgate_policy_loaded_timestamp_seconds"),
                         ready["policy_loaded_at"])
        for d in ("allow", "deny", "reject", "error", "aborted"):
            self.assertIsNotNone(m.get("authgate_request_duration_seconds_count", decision=d),
                                 "decision %s not exported at zero" % d)

    def test_unknown_path_and_method(self):
        r = self.admin.get("/nope")
        self.assertEqual(r.status, 404)
        self.assertEqual(json.loads(r.body), {"error": "not_found"})
        for p in ("/metrics", "/readyz", "/healthz"):
            r = self.admin.get(p, method="POST")
            self.assertEqual(r.status, 405, p)
            self.assertEqual(r.header("Allow"), "GET, HEAD")

    def test_admin_and_public_ports_are_separate(self):
        # The public port routes /metrics like any path: no route, 404, and
        # certainly no metrics text.
        for p in ("/metrics", "/readyz", "/healthz"):
            r = self.gw.request("GET", p)
            self.assertEqual(r.status, 404, "%s on the public port: %r" % (p, r))
            self.assertNotIn(b"authgate_", r.body)
        # The admin port proxies nothing.
        before = self.echo.count()
        r = self.admin.get("/pub/x")
        self.assertEqual(r.status, 404)
        self.assertEqual(self.echo.count(), before)

    # counters ------------------------------------------------------------

    def settle(self, pred_total_delta, before_total):
        """Requests are counted when the response is complete, which may be a
        moment after the client read it: wait for the expected count, then
        scrape once more so that over-counting would still be seen."""
        O.wait_for(lambda: self.admin.metrics().total("authgate_requests_total") >=
                   before_total + pred_total_delta, 3, "request counters to move")
        time.sleep(0.05)
        return self.admin.metrics()

    def delta(self, before, after, name):
        out = {}
        for labels, v in after.series(name):
            old = before.get(name, 0, **labels)
            if v != old:
                out[tuple(sorted(labels.items()))] = v - old
        return out

    def test_requests_counted_exactly(self):
        tok = H.mint("u-metrics-1", orgs=[ORG + ":Org M:Admin"])
        stranger = H.mint("u-metrics-2", orgs=[OTHER_ORG + ":Other:Member"])
        before = self.admin.metrics()
        plan = [("GET", "/pub/a", None, 200)] * 3 + [
            ("GET", "/me", None, 401),
            ("GET", "/me", "not.a.token", 401),
            ("GET", "/me", tok, 200),
            ("GET", "/api/org/%s/admin" % ORG, tok, 200),
            ("GET", "/api/org/%s/admin" % ORG, stranger, 403),
            ("GET", "/nothing/here", None, 404),
            ("DELETE", "/get-only", None, 405),
            ("GET", "/dead/x", None, 502),
        ]
        for method, path, t, status in plan:
            r = self.req(method, path, token=t)
            self.assertEqual(r.status, status, "%s %s: %r" % (method, path, r))
        after = self.settle(len(plan), before.total("authgate_requests_total"))

        def key(route, status, decision, reason):
            return (("decision", decision), ("reason", reason), ("route", route),
                    ("status", str(status)))

        expected = {
            key("/pub/**", 200, "allow", "ok"): 3,
            key("/me", 401, "deny", "token_missing"): 1,
            key("/me", 401, "deny", "token_malformed"): 1,
            key("/me", 200, "allow", "ok"): 1,
            key("/api/org/{org_id}/admin", 200, "allow", "ok"): 1,
            key("/api/org/{org_id}/admin", 403, "deny", "not_member"): 1,
            key("none", 404, "deny", "no_route"): 1,
            # a 405 matched no route for that method, so it counts under "none"
            key("none", 405, "deny", "method_not_allowed"): 1,
            key("/dead/**", 502, "error", "upstream_connect"): 1,
        }
        self.assertEqual(self.delta(before, after, "authgate_requests_total"), expected)

        hist = self.delta(before, after, "authgate_request_duration_seconds_count")
        self.assertEqual(hist, {(("decision", "allow"),): 5, (("decision", "deny"),): 5,
                                (("decision", "error"),): 1})
        # only the five allowed requests got an upstream response
        self.assertEqual(after.value("authgate_upstream_duration_seconds_count") -
                         before.value("authgate_upstream_duration_seconds_count"), 5)
        self.assertEqual(self.delta(before, after, "authgate_upstream_errors_total"),
                         {(("reason", "upstream_connect"), ("upstream", "dead")): 1})
        # one worker, so one cache: tok's first use misses, its second hits;
        # the stranger's token misses once, and so does the garbage token (it
        # is looked up before it is parsed); no token at all is neither
        hits = after.value("authgate_token_cache_hits_total") - \
            before.value("authgate_token_cache_hits_total")
        misses = after.value("authgate_token_cache_misses_total") - \
            before.value("authgate_token_cache_misses_total")
        self.assertEqual((hits, misses), (1, 3), "token cache (hits, misses)")

    def test_latency_sum_grows_with_a_slow_request(self):
        before = self.admin.metrics()
        r = self.req("GET", "/pub/__echo/sleep/300")
        self.assertEqual(r.status, 200)
        after = self.settle(1, before.total("authgate_requests_total"))
        d_sum = after.value("authgate_request_duration_seconds_sum", decision="allow") - \
            before.value("authgate_request_duration_seconds_sum", decision="allow")
        u_sum = after.value("authgate_upstream_duration_seconds_sum") - \
            before.value("authgate_upstream_duration_seconds_sum")
        self.assertGreaterEqual(d_sum, 0.29)
        self.assertLess(d_sum, 5)
        self.assertGreaterEqual(u_sum, 0.29)
        self.assertLessEqual(u_sum, d_sum)
        # the 0.25 s bucket did not get it, the 0.5 s bucket did
        for le, moved in (("0.25", 0), ("0.5", 1)):
            d = after.value("authgate_request_duration_seconds_bucket", decision="allow", le=le) \
                - before.value("authgate_request_duration_seconds_bucket", decision="allow", le=le)
            self.assertEqual(d, moved, "bucket le=%s" % le)

    def test_open_connections_gauge(self):
        base = self.admin.metrics().value("authgate_open_connections")
        conns = []
        try:
            for _ in range(3):
                c = self.gw.conn()
                r = self.req("GET", "/pub/keep", conn=c)
                self.assertEqual(r.status, 200)
                conns.append(c)
            O.wait_for(lambda: self.admin.metrics().value("authgate_open_connections") ==
                       base + 3, 3, "open_connections == %d" % (base + 3))
        finally:
            for c in conns:
                c.close()
        O.wait_for(lambda: self.admin.metrics().value("authgate_open_connections") == base, 3,
                   "open_connections back to %d" % base)

    def test_label_values_bounded_by_templates(self):
        # Many distinct raw paths under one template add no series.
        before = self.admin.metrics()
        n_before = len(before.series("authgate_requests_total"))
        for i in range(20):
            self.assertEqual(self.req("GET", "/pub/x%d/%d" % (i, i * 7)).status, 200)
            self.assertEqual(self.req("GET", "/zz%d" % i).status, 404)
        after = self.settle(40, before.total("authgate_requests_total"))
        new = [l for l, _ in after.series("authgate_requests_total")
               if before.get("authgate_requests_total", None, **l) is None]
        self.assertLessEqual(len(after.series("authgate_requests_total")), n_before + 2, new)
        for l in new:
            self.assertIn(l["route"], ("/pub/**", "none"), l)


class AdminOffByDefault(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        return O.base_config(echo, admin_routes()[:1])

    def test_no_admin_listener_without_admin_listen(self):
        text = O.read_text(self.gw.err)
        self.assertNotIn("admin listener", text)
        # the public listener (one SO_REUSEPORT socket per worker) is all
        listening = _listening_ports(self.gw.pid)
        self.assertEqual(listening, {self.gw.port}, "ports authgate listens on")


def _listening_ports(pid):
    """TCP ports in LISTEN state owned by pid (from /proc, no tools needed)."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/%d/net/tcp" % pid, "/proc/%d/net/tcp6" % pid):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:
                ports.add(int(cols[1].split(":")[1], 16))
    return ports


if __name__ == "__main__":
    unittest.main()
