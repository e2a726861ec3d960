"""CORS in a real browser (issue 14): headless Chromium loads a page from one
loopback origin (a python http.server) that calls an org route on the
gateway's origin (another port) with a bearer token. The browser sends the
preflight, then the real request, and the page writes what it saw into the
DOM (printed by --dump-dom). The same page loaded from a second origin
(localhost instead of 127.0.0.1) is blocked by the browser. Skips, saying
why, only where Chromium is not installed."""

import functools
import http.server
import os
import shutil
import subprocess
import threading

import harness as H
from test_policies import ORG_A, minted

PAGE = """<!doctype html><html><body><div id="out">pending</div><script>
fetch("%(api)s", {headers: {"Authorization": "Bearer %(token)s"}})
  .then(r => r.json().then(j => "ALLOWED " + r.status + " " + j.method + " " + j.path
                           + " user=" + (j.x_user ? j.x_user.user_id : "none")))
  .catch(e => "BLOCKED " + e.name)
  .then(t => { document.getElementById("out").textContent = t; });
</script></body></html>
"""


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class CorsBrowser(H.GatewayCase):
    @classmethod
    def setUpClass(cls):
        cls.browser = chromium()
        if not cls.browser:
            cls._skip = ("chromium is not installed (apt-get install chromium, or "
                         "scripts/install-deps.sh as root): browser CORS test skipped")
            return
        cls.page_port = H.free_port()
        cls.allowed_origin = "http://127.0.0.1:%d" % cls.page_port
        super().setUpClass()
        if cls._skip:
            return
        cls.site = H.new_tmp("cors-page-")
        api = "http://127.0.0.1:%d/api/org/%s/items" % (cls.gw.port, ORG_A)
        with open(os.path.join(cls.site, "index.html"), "w") as f:
            f.write(PAGE % {"api": api, "token": minted("member_a")})
        handler = functools.partial(_Quiet, directory=cls.site)
        cls.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", cls.page_port), handler)
        cls.thread = threading.Thread(target=cls.httpd.serve_forever, daemon=True)
        cls.thread.start()

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "httpd", None) is not None:
            cls.httpd.shutdown()
            cls.httpd.server_close()
        super().tearDownClass()

    @classmethod
    def make_config(cls, echo):
        return {
            "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
            "upstreams": {"app": {"url": echo.url}},
            "cors": {"allowed_origins": [cls.allowed_origin]},
            "routes": [{"path": "/api/org/{org_id}/**", "policy": "require_org_member"}],
        }

    def load(self, host):
        profile = H.new_tmp("chromium-")
        argv = [self.browser, "--headless", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--disable-extensions", "--user-data-dir=" + profile,
                "--virtual-time-budget=10000", "--dump-dom",
                "http://%s:%d/index.html" % (host, self.page_port)]
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90)
        dom = r.stdout.decode("utf-8", "replace")
        self.assertIn('<div id="out">', dom, "chromium printed no DOM (exit %d): %s" %
                      (r.returncode, r.stderr.decode("utf-8", "replace")[-2000:]))
        return dom.split('<div id="out">', 1)[1].split("</div>", 1)[0]

    def test_allowed_origin_sees_the_answer(self):
        before = self.echo.count()
        out = self.load("127.0.0.1")
        self.assertEqual(out, "ALLOWED 200 GET /api/org/%s/items user=u-member" % ORG_A)
        recs = self.echo.wait_new(before, 1)
        # the preflight was answered by the gateway: only the real request arrived
        self.assertEqual([r["method"] for r in recs], ["GET"])

    def test_other_origin_is_blocked(self):
        before = self.echo.count()
        out = self.load("localhost")
        self.assertTrue(out.startswith("BLOCKED"), out)
        self.assertEqual(self.echo.count(), before, "the blocked page's request reached the "
                         "upstream")


if __name__ == "__main__":
    import unittest
    unittest.main()
