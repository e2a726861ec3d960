"""Upstream failures reach the error log (operator-truth finding 4): a refused
connection, a timeout or a protocol error is a warning naming the upstream,
its address and the cause, at most one line per upstream per second (per
worker) with a count of the ones held back; the access line of the 502/504
names the upstream too."""

import json
import time
import unittest

import harness as H
import ops_helpers as O


class UpstreamWarnings(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        miss = H.missing_binaries()
        if miss:
            raise unittest.SkipTest("not built: %s" % ", ".join(miss))
        H.keys("main")
        cls.dead_port = H.closed_port()
        cls.log_dir = H.new_tmp("upwarn-")
        cls.access = cls.log_dir + "/access.log"
        cfg = {
            "workers": 1,
            "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
            "upstreams": {"backend_down": {"url": "http://127.0.0.1:%d" % cls.dead_port,
                                           "connect_timeout_ms": 500}},
            "routes": [{"path": "/x/**", "policy": "public", "upstream": "backend_down"}],
            "log": {"access_log": cls.access},
        }
        cls.gw = H.Gateway(cfg, name="upwarn")

    @classmethod
    def tearDownClass(cls):
        problems = cls.gw.stop()
        if problems:
            raise AssertionError(problems)

    def warnings(self):
        return [l for l in O.read_text(self.gw.err).splitlines()
                if "authgate warn: upstream backend_down" in l]

    def test_refused_connection_is_a_warning_with_name_address_cause(self):
        time.sleep(1.1)  # past any earlier line's second: this one is not held back
        r = self.gw.request("GET", "/x/1")
        self.assertEqual(r.status, 502)
        rid = r.header("x-request-id")
        self.assertTrue(rid)
        O.wait_for(lambda: [l for l in self.warnings() if rid in l], 3, "the upstream warning")
        line = [l for l in self.warnings() if rid in l][0]
        self.assertIn("upstream backend_down (127.0.0.1:%d): upstream_connect" % self.dead_port,
                      line)
        # the access line names the upstream of the failed exchange
        O.wait_for(lambda: O.read_text(self.access).strip(), 3, "the access line")
        rec = json.loads(O.read_text(self.access).strip().splitlines()[-1])
        self.assertEqual((rec["status"], rec["upstream"], rec["reason"]),
                         (502, "backend_down", "upstream_connect"))

    def test_rate_limited_with_a_count(self):
        time.sleep(1.1)  # a fresh second for this upstream
        before = len(self.warnings())
        for _ in range(20):
            self.assertEqual(self.gw.request("GET", "/x/2").status, 502)
        time.sleep(1.1)
        self.assertEqual(self.gw.request("GET", "/x/3").status, 502)
        O.wait_for(lambda: len(self.warnings()) >= before + 2, 3, "the second warning")
        new = self.warnings()[before:]
        # 21 failures, far fewer lines, and the held-back ones are counted
        self.assertLessEqual(len(new), 3, new)
        self.assertTrue(any("more since the last line" in l for l in new), new)


if __name__ == "__main__":
    unittest.main()
