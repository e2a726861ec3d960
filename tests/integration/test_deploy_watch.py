"""watch_config (issue 14): the daemon reloads by itself when its config file
changes, through the SIGHUP path: a file replaced by rename, a Kubernetes
ConfigMap-style `..data` symlink swap, a broken file that keeps the running
policy (logged, counted), and the default (off) that never reloads alone."""

import os
import time

import harness as H
import ops_helpers as O

BOUND = 5.0  # seconds: 500 ms debounce plus the reload, with room for a loaded machine


def routes_open():
    return [{"path": "/w/**", "policy": "public"}]


def routes_closed():
    return [{"path": "/w/**", "policy": "require_user"}]


class WatchCase(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        cls.admin_port = H.free_port()
        cls.cfg_open = O.base_config(echo, routes_open(), admin_port=cls.admin_port,
                                     watch_config=True)
        cls.cfg_closed = dict(cls.cfg_open, routes=routes_closed())
        return cls.cfg_open

    def status(self):
        return self.gw.request("GET", "/w/x").status

    def hash_now(self):
        return O.Admin(self.admin_port).readyz()[1]["policy_hash"]

    def reloads(self, ok):
        return O.Admin(self.admin_port).metrics().value(
            "authgate_reloads_total", result="ok" if ok else "error")

    def wait_status(self, want, what):
        O.wait_for(lambda: self.status() == want, BOUND, what, interval=0.05)

    def test_file_replace_symlink_swap_and_broken_file(self):
        text_open = O.config_text(self.cfg_open, self.gw.port)
        text_closed = O.config_text(self.cfg_closed, self.gw.port)
        self.assertEqual(self.status(), 200)
        ok0 = self.reloads(True)

        # 1. replaced by rename, as editors and `mv` do
        O.write_atomically(self.gw.config, text_closed)
        self.wait_status(401, "the closed policy after a rename")
        self.assertEqual(self.hash_now(), O.policy_hash(self.gw.config))
        self.assertGreaterEqual(O.count_lines(self.gw.err, "config watch: "), 1)

        # 2. a broken file keeps the running policy, logged and counted
        bad0 = self.reloads(False)
        hash_closed = self.hash_now()
        O.write_atomically(self.gw.config, text_closed + "routes: [\n")
        O.wait_for(lambda: self.reloads(False) == bad0 + 1, BOUND, "a failed reload counted",
                   interval=0.05)
        self.assertGreaterEqual(O.count_lines(self.gw.err, "reload failed, keeping the running "
                                              "policy"), 1)
        self.assertEqual(self.status(), 401)
        self.assertEqual(self.hash_now(), hash_closed)

        # 3. the ConfigMap layout: config.yaml -> ..data/config.yaml, ..data -> ..v1;
        # an update writes ..v2 and renames a new ..data symlink over the old one.
        d = self.gw.dir
        os.mkdir(os.path.join(d, "..v1"))
        with open(os.path.join(d, "..v1", "config.yaml"), "w") as f:
            f.write(text_closed)
        os.symlink("..v1", os.path.join(d, "..data"))
        tmp = os.path.join(d, "config.yaml.tmp")
        os.symlink("..data/config.yaml", tmp)
        ok1 = self.reloads(True)
        os.replace(tmp, self.gw.config)  # the running policy's bytes, after the broken ones
        O.wait_for(lambda: self.reloads(True) == ok1 + 1, BOUND, "the repaired file reloaded",
                   interval=0.05)
        self.assertEqual((self.hash_now(), self.status()), (hash_closed, 401))
        os.mkdir(os.path.join(d, "..v2"))
        with open(os.path.join(d, "..v2", "config.yaml"), "w") as f:
            f.write(text_open)
        os.symlink("..v2", os.path.join(d, "..data_tmp"))
        t0 = time.time()
        os.replace(os.path.join(d, "..data_tmp"), os.path.join(d, "..data"))
        self.wait_status(200, "the open policy after the ..data swap")
        self.assertLess(time.time() - t0, BOUND)
        self.assertEqual(self.hash_now(), O.policy_hash(self.gw.config))
        # one successful reload per good change: rename, repair, swap
        self.assertEqual(self.reloads(True), ok0 + 3)
        self.assertEqual(self.reloads(False), bad0 + 1)


class WatchOffByDefault(H.GatewayCase):
    @classmethod
    def make_config(cls, echo):
        cls.admin_port = H.free_port()
        cls.cfg_open = O.base_config(echo, routes_open(), admin_port=cls.admin_port)
        return cls.cfg_open

    def test_no_reload_without_sighup(self):
        closed = dict(self.cfg_open, routes=routes_closed())
        before = O.Admin(self.admin_port).readyz()[1]["policy_hash"]
        O.write_atomically(self.gw.config, O.config_text(closed, self.gw.port))
        time.sleep(2.0)  # four debounce periods: a watch would have reloaded by now
        self.assertEqual(self.gw.request("GET", "/w/x").status, 200)
        self.assertEqual(O.Admin(self.admin_port).readyz()[1]["policy_hash"], before)
        self.assertEqual(O.count_lines(self.gw.err, "config watch"), 0)
        # and the explicit way still works
        O.send_signal(self.gw.proc)
        O.wait_for(lambda: self.gw.request("GET", "/w/x").status == 401, BOUND, "SIGHUP reload")
