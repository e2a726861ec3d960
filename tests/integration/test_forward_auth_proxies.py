"""Real proxies in front of a recording upstream, configured with the snippets
of docs/forward-auth.md as written there (only the addresses are replaced):
nginx (auth_request) and Caddy (forward_auth). Every policy x {allow, 401,
403}: the upstream receives exactly the identity headers authgate returned,
never a client-forged one, and denied requests never reach it. Skipped with a
message when nginx or caddy is not installed (scripts/install-deps.sh --test)."""

import os
import re
import shutil
import subprocess
import time
import unittest

import fa_common as F
import harness as H
import sec_common as S

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK)
                                  else None)
CADDY = shutil.which("caddy")

# Client-forged identity headers in several spellings.
FORGED = [("X-User", '{"user_id":"admin"}'), ("x-org", '{"org_id":"%s"}' % F.ORG_X),
          ("X_User", '{"user_id":"admin"}'), ("X-ORG", '{"org_id":"evil"}')]


def snippet(lang):
    """The fenced block of that language that docs/forward-auth.md marks as
    replayed by this file."""
    with open(os.path.join(ROOT, "docs", "forward-auth.md"), encoding="utf-8") as f:
        md = f.read()
    m = re.search(r"<!-- replayed by tests/integration/test_forward_auth_proxies.py -->\n"
                  r"```" + lang + r"\n(.*?)```", md, re.S)
    if not m:
        raise AssertionError("docs/forward-auth.md has no replayed %s block" % lang)
    return m.group(1)


def norm(name):
    return name.strip().lower().replace("_", "-")


def wait_port(port, proc, what, errfile):
    H.wait_port(port, proc, 15, what, errfile)


class ProxyCase:
    """Mixed into a fa_common.ListenerCase: start_proxy() (which sets
    cls.proxy) at proxy_port, in front of the daemon and the upstream."""
    proxy = None
    # statuses the proxy shows the client for authgate's answers
    passes_other_statuses = True

    @classmethod
    def config(cls, url, fa_port):
        return F.config(url, fa_port, dialects=[cls.dialect])

    @classmethod
    def setUpClass(cls):
        cls.gw_name = "fa-" + cls.name
        super().setUpClass()
        if cls.gw is None:
            return
        cls.dir = H.new_tmp(cls.name + "-")
        cls.proxy_port = H.free_port()
        try:
            cls.start_proxy()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.proxy:
            H.stop_proc(cls.proxy)
            cls.proxy = None
        super().tearDownClass()

    def through(self, method, target, tok, extra=(), body=None):
        before = len(self.up.reqs())
        h = list(F.auth_headers(tok)) + list(extra)
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.proxy_port, timeout=10)
        try:
            c.putrequest(method, target, skip_accept_encoding=True)
            for k, v in h:
                c.putheader(k, v)
            if body is not None:
                c.putheader("Content-Length", str(len(body)))
            c.endheaders()
            if body:
                c.send(body)
            r = c.getresponse()
            r.read()
            status = r.status
        finally:
            c.close()
        time.sleep(0.02)
        return status, self.up.reqs()[before:]

    def test_every_policy_identity_exactly_authgates(self):
        for i, (method, target, tok, want) in enumerate(F.CASES):
            what = "%s %s %s" % (method, target, tok)
            rid_sent = "fa-%s-%d" % (self.name, i)
            ref = F.nginx_call(self.fa_port, method, target, self.tok[tok]) \
                if self.dialect == "original" else \
                F.traefik_call(self.fa_port, method, target, self.tok[tok])
            self.assertEqual(ref.status, want, what)
            status, got = self.through(method, target, self.tok[tok],
                                       FORGED + [("X-Request-Id", rid_sent)])
            if want == 200:
                self.assertEqual(status, 200, what)
                self.assertEqual(len(got), 1, what)
                ident = [(norm(k), v) for k, v in got[0]["headers"]
                         if norm(k) in ("x-user", "x-org")]
                expect = [(n, v) for n, v in (("x-user", ref.header("X-User")),
                                              ("x-org", ref.header("X-Org"))) if v is not None]
                self.assertEqual(sorted(ident), sorted(expect), what)
                # authgate keeps a well-formed caller id, and the proxy copies it
                rid = [v for k, v in got[0]["headers"] if k.lower() == "x-request-id"]
                self.assertEqual(rid, [rid_sent], what)
            else:
                self.assertEqual(got, [], "%s reached the upstream" % what)
                if want in (401, 403) or self.passes_other_statuses:
                    self.assertEqual(status, want, what)
                else:
                    self.assertEqual(status, 500, what)

    def test_body_reaches_backend_after_allow(self):
        status, got = self.through("POST", S.r5(F.ORG_B), self.tok["good"], FORGED,
                                   body=b'{"name":"x"}')
        self.assertEqual(status, 200)
        self.assertEqual(got[0]["body"], b'{"name":"x"}')
        status, got = self.through("POST", S.r5(F.ORG_A), self.tok["good"], FORGED,
                                   body=b'{"name":"x"}')
        self.assertEqual((status, got), (403, []))


class Nginx(ProxyCase, F.ListenerCase):
    name = "nginx"
    dialect = "original"
    passes_other_statuses = False  # auth_request turns them into 500

    @classmethod
    def unavailable(cls):
        if not NGINX:
            return "nginx not installed (apt-get install nginx; scripts/install-deps.sh --test)"
        return None

    @classmethod
    def start_proxy(cls):
        d = cls.dir
        body = snippet("nginx")
        body = body.replace("127.0.0.1:9191", "127.0.0.1:%d" % cls.fa_port)
        body = body.replace("127.0.0.1:8000", "127.0.0.1:%d" % cls.up.port)
        body = body.replace("listen 80;", "listen 127.0.0.1:%d;" % cls.proxy_port)
        conf = ("daemon off;\nmaster_process off;\nworker_processes 1;\npid %s/nginx.pid;\n"
                "error_log %s/error.log;\nevents { worker_connections 256; }\n"
                "http {\n access_log off;\n client_body_temp_path %s/cb;\n"
                " proxy_temp_path %s/px;\n fastcgi_temp_path %s/fc;\n uwsgi_temp_path %s/uw;\n"
                " scgi_temp_path %s/sc;\n%s\n}\n") % ((d,) * 7 + (body,))
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        err = os.path.join(d, "stderr")
        with open(err, "wb") as ef:
            cls.proxy = subprocess.Popen([NGINX, "-p", d, "-c", path, "-e", d + "/error.log"],
                                         stdout=ef, stderr=ef, stdin=subprocess.DEVNULL)
        H._register(cls.proxy)
        wait_port(cls.proxy_port, cls.proxy, "nginx", err)


class Caddy(ProxyCase, F.ListenerCase):
    name = "caddy"
    dialect = "forwarded"

    @classmethod
    def unavailable(cls):
        if not CADDY:
            return "caddy not installed (apt-get install caddy; scripts/install-deps.sh --test)"
        return None

    @classmethod
    def start_proxy(cls):
        d = cls.dir
        body = snippet("caddy")
        body = body.replace("127.0.0.1:9191", "127.0.0.1:%d" % cls.fa_port)
        body = body.replace("127.0.0.1:8000", "127.0.0.1:%d" % cls.up.port)
        body = body.replace(":80 {", "http://127.0.0.1:%d {" % cls.proxy_port, 1)
        conf = "{\n\tadmin off\n\tauto_https off\n}\n\n" + body
        path = os.path.join(d, "Caddyfile")
        with open(path, "w") as f:
            f.write(conf)
        err = os.path.join(d, "stderr")
        env = dict(os.environ, HOME=d, XDG_DATA_HOME=d, XDG_CONFIG_HOME=d)
        with open(err, "wb") as ef:
            cls.proxy = subprocess.Popen([CADDY, "run", "--config", path, "--adapter",
                                          "caddyfile"], stdout=ef, stderr=ef,
                                         stdin=subprocess.DEVNULL, env=env)
        H._register(cls.proxy)
        wait_port(cls.proxy_port, cls.proxy, "caddy", err)


if __name__ == "__main__":
    unittest.main()
