"""Verifier keys fetched from PropelAuth (issue 5; docs/semantics.md
section 1; docs/security.md A19 key hygiene and A20 keys unavailable), through the
real daemon against fake_propelauth.py on loopback.

The fake is plain http on 127.0.0.1 (allowed for loopback only); the issuer is
derived from auth_url, which nobody ever connects to, so tokens are minted for
https://auth.acme-it.test:8443.
"""

import http.client
import json
import os
import secrets
import signal
import subprocess
import time
import unittest

import harness as H
from fake_propelauth import METADATA_PATH, FakePropelAuth

API_KEY = "pa_it_" + secrets.token_hex(24)
ENV = "AG_IT_PROPELAUTH_API_KEY"
AUTH_HOST = "auth.acme-it.test:8443"
AUTH_URL = "https://" + AUTH_HOST + "/some/path/"
ISSUER = "https://" + AUTH_HOST


def read(path):
    with open(path) as f:
        return f.read()


def fingerprint(public_pem_path):
    """First 16 hex of SHA-256 over the DER SPKI, as the daemon logs it."""
    der = H.run_ok(["openssl", "pkey", "-pubin", "-in", public_pem_path, "-outform", "DER"])
    return H.sha256_hex(der)[:16]


_EXTRA = {}


def extra_key(kind):
    """Keys the daemon must refuse: an EC key and a 1024-bit RSA key (PEM text)."""
    if kind not in _EXTRA:
        d = H.new_tmp("badkey-")
        priv, pub = os.path.join(d, "priv.pem"), os.path.join(d, "pub.pem")
        if kind == "ec":
            H.run_ok(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                      "ec_paramgen_curve:P-256", "-out", priv])
        else:
            H.run_ok(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                      "rsa_keygen_bits:1024", "-out", priv])
        H.run_ok(["openssl", "pkey", "-in", priv, "-pubout", "-out", pub])
        _EXTRA[kind] = read(pub)
    return _EXTRA[kind]


_CERT = {}


def tls_cert():
    """A self-signed certificate for 127.0.0.1: (cert path, key path)."""
    if not _CERT:
        d = H.new_tmp("tls-")
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        H.run_ok(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                  "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                  "subjectAltName=IP:127.0.0.1"])
        _CERT["cert"], _CERT["key"] = cert, key
    return _CERT["cert"], _CERT["key"]


def routes():
    return [
        {"path": "/public/**", "policy": "public"},
        {"path": "/api/whoami", "policy": "require_user"},
    ]


def fetch_config(echo, base_url, admin_port=None, **auth_extra):
    auth = {"auth_url": AUTH_URL, "api_key_env": ENV, "api_base_url": base_url,
            "fetch_timeout_ms": 2000}
    for k, v in auth_extra.items():
        if v is None:
            auth.pop(k, None)
        else:
            auth[k] = v
    cfg = {"auth": auth, "upstreams": {"app": {"url": echo.url}}, "routes": routes()}
    if admin_port:
        cfg["admin_listen"] = "127.0.0.1:%d" % admin_port
    return cfg


def mint(keyname="main", issuer=ISSUER):
    return H.mint("u-keys", email="keys@example.com", key=H.keys(keyname), issuer=issuer)


class KeysCase(unittest.TestCase):
    echo = None
    _skip = None

    @classmethod
    def setUpClass(cls):
        miss = H.missing_binaries()
        if miss:
            cls._skip = "not built: %s (run make)" % ", ".join(miss)
            return
        H.keys("main")
        H.keys("rotated")
        cls.echo = H.Echo()

    @classmethod
    def tearDownClass(cls):
        if cls.echo is not None:
            cls.echo.stop()
            cls.echo = None

    def setUp(self):
        if self._skip:
            self.skipTest(self._skip)
        self.fakes = []
        self.gws = []

    def tearDown(self):
        problems = []
        for gw in self.gws:
            p = gw.stop()
            if p:
                problems.append(p)
            for path in (gw.err, gw.out):
                if API_KEY in read(path):
                    problems.append("the API key appears in %s" % path)
        for f in self.fakes:
            f.stop()
        if problems:
            self.fail("\n".join(problems))

    # helpers --------------------------------------------------------------

    def new_fake(self, **kw):
        f = FakePropelAuth(**kw)
        self.fakes.append(f)
        return f

    def start_gw(self, config, env=None):
        e = {ENV: API_KEY}
        e.update(env or {})
        gw = H.Gateway(config, name=self.id().split(".")[-1], env_extra=e)
        self.gws.append(gw)
        return gw

    def whoami(self, gw, token):
        return gw.request("GET", "/api/whoami", {"Authorization": "Bearer " + token})

    def readyz(self, admin_port):
        c = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=5)
        try:
            c.request("GET", "/readyz")
            r = c.getresponse()
            return r.status, json.loads(r.read())
        finally:
            c.close()

    def wait_admin(self, admin_port, timeout=5.0):
        deadline = time.time() + timeout
        while True:
            try:
                return self.readyz(admin_port)
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def eventually(self, fn, timeout, what):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(0.05)
        self.fail("%s did not happen within %.1fs (last: %r)" % (what, timeout, last))

    def assert_allowed(self, gw, token, what):
        r = self.whoami(gw, token)
        self.assertEqual(r.status, 200, "%s: %r" % (what, r))
        return r

    def assert_denied(self, gw, token, status, reason, what):
        r = self.whoami(gw, token)
        self.assertEqual(r.status, status, "%s: %r" % (what, r))
        self.assertEqual(r.json().get("reason"), reason, "%s: %r" % (what, r))

    def run_to_exit(self, config, env=None, timeout=30):
        """authgate run that must fail at start-up: (exit code, stdout, stderr)."""
        d = H.new_tmp("keys-fatal-")
        cfg = {"listen": "127.0.0.1:%d" % H.free_port()}
        cfg.update(config)
        path = os.path.join(d, "config.yaml")
        with open(path, "w") as f:
            f.write(H.to_yaml(cfg) + "\n")
        e = dict(os.environ)
        e.pop(ENV, None)
        e.update(env if env is not None else {ENV: API_KEY})
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        p = subprocess.Popen([H.authgate_bin(), "run", "-c", path], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=e)
        H._register(p)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            H.stop_proc(p)
            self.fail("authgate kept running although start-up should have failed")
        out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        self.assertNotIn(API_KEY, out + err, "the API key was logged")
        san = [m for m in H.SANITIZER_MARKERS if m in err]
        self.assertFalse(san, "sanitizer report:\n" + err[-4000:])
        return p.returncode, out, err

    def expect_fatal(self, config, needle, env=None):
        rc, out, err = self.run_to_exit(config, env)
        self.assertNotEqual(rc, 0, "start-up should fail; stderr:\n" + err)
        lines = [l for l in err.splitlines() if needle in l]
        self.assertTrue(lines, "stderr lacks %r:\n%s" % (needle, err))
        return lines[0]


class StartupErrors(KeysCase):
    """Definitive answers stop `authgate run` with one clear line."""

    def fatal_answer(self, answer, needle):
        fake = self.new_fake()
        answer(fake)
        line = self.expect_fatal(fetch_config(self.echo, fake.url), needle)
        self.assertGreaterEqual(fake.count(), 1)
        return line

    def test_401_api_key_incorrect(self):
        fake = self.new_fake()
        fake.serve_status(401)
        line = self.expect_fatal(fetch_config(self.echo, fake.url),
                                 "API key is incorrect (401 from %s%s)" % (fake.url,
                                                                          METADATA_PATH))
        self.assertIn("auth: cannot fetch the verifier key", line)

    def test_404_auth_url_incorrect(self):
        self.fatal_answer(lambda f: f.serve_status(404), "auth_url is incorrect (404 from")

    def test_400_bad_request(self):
        self.fatal_answer(lambda f: f.serve_status(400), "bad request (400 from")

    def test_A19_garbage_json(self):
        self.fatal_answer(lambda f: f.serve_raw(200, b"<html>maintenance</html>"),
                          "response is not JSON")
        self.fatal_answer(lambda f: f.serve_raw(200, b'{"verifier_key": "x"}'),
                          "no verifier_key_pem string")

    def test_A19_huge_body(self):
        self.fatal_answer(lambda f: f.serve_raw(200, b"{" + b" " * (2 << 20) + b"}"),
                          "larger than 65536 bytes")

    def test_A19_endless_chunked_body(self):
        fake = self.new_fake()
        fake.serve_endless()
        t0 = time.time()
        self.expect_fatal(fetch_config(self.echo, fake.url, fetch_timeout_ms=20000),
                          "larger than 65536 bytes")
        self.assertLess(time.time() - t0, 10, "the cap should stop the read, not the timeout")
        self.eventually(lambda: fake.endless_finished, 5, "the fake noticing the client left")
        with fake.lock:
            sent = fake.endless_sent
        self.assertLess(sent, 64 << 20, "the client kept reading %d bytes" % sent)

    def test_A19_non_rsa_and_malformed_pem(self):
        self.fatal_answer(lambda f: f.serve_key(extra_key("ec")), "unusable response from")
        self.fatal_answer(lambda f: f.serve_key(extra_key("rsa1024")), "2048 bits")
        self.fatal_answer(lambda f: f.serve_key("-----BEGIN PUBLIC KEY-----\nnot base64\n"
                                                "-----END PUBLIC KEY-----\n"),
                          "verifier key:")
        two = read(H.keys("main").public) + read(H.keys("rotated").public)
        self.fatal_answer(lambda f: f.serve_key(two), "exactly one")

    def test_A19_plain_http_to_remote_host_refused(self):
        fake = self.new_fake()
        fake.serve_key(read(H.keys("main").public))
        self.expect_fatal(fetch_config(self.echo, "http://propelauth-api.invalid"),
                          "api_base_url must use https://")
        self.assertEqual(fake.count(), 0)

    def test_A19_tls_self_signed_refused_then_ca_file_trusted(self):
        cert, key = tls_cert()
        fake = self.new_fake(certfile=cert, keyfile=key)
        fake.serve_key(read(H.keys("main").public))
        self.expect_fatal(fetch_config(self.echo, fake.url),
                          "TLS verification of %s%s failed" % (fake.url, METADATA_PATH))
        gw = self.start_gw(fetch_config(self.echo, fake.url, ca_file=cert))
        self.assert_allowed(gw, mint(), "token after fetching over TLS with ca_file")

    def test_api_key_file_readable_by_others_refused(self):
        fake = self.new_fake()
        fake.serve_key(read(H.keys("main").public))
        d = H.new_tmp("apikey-")
        path = os.path.join(d, "api_key")
        with open(path, "w") as f:
            f.write(API_KEY + "\n")
        os.chmod(path, 0o644)
        cfg = fetch_config(self.echo, fake.url, api_key_env=None, api_key_file=path)
        line = self.expect_fatal(cfg, "accessible by group or others (mode 0644)", env={})
        self.assertIn("chmod 600", line)
        self.assertEqual(fake.count(), 0, "the key was sent although the file was refused")
        os.chmod(path, 0o600)
        gw = self.start_gw(cfg)
        self.assert_allowed(gw, mint(), "api_key_file form")
        hdrs = dict(fake.requests()[-1]["headers"])
        self.assertEqual(hdrs.get("Authorization"), "Bearer " + API_KEY)

    def test_api_key_env_missing(self):
        fake = self.new_fake()
        fake.serve_key(read(H.keys("main").public))
        self.expect_fatal(fetch_config(self.echo, fake.url),
                          "environment variable %s is not set" % ENV, env={})
        self.assertEqual(fake.count(), 0)


class FetchedKeys(KeysCase):
    def test_fetched_key_works_like_manual_form_and_headers(self):
        fake = self.new_fake()
        fake.serve_key(read(H.keys("main").public))
        admin = H.free_port()
        gw = self.start_gw(fetch_config(self.echo, fake.url, admin_port=admin))
        self.assert_allowed(gw, mint(), "token signed by the fetched key")
        rec = self.echo.lines()[-1]
        self.assertEqual(json.loads(rec["headers"]["x-user"])["user_id"], "u-keys")
        # issuer is https:// + host[:port] of auth_url, whatever else is in it
        self.assert_denied(gw, mint(issuer="http://" + AUTH_HOST), 401, "token_issuer",
                           "http:// issuer")
        self.assert_denied(gw, mint(issuer=AUTH_URL), 401, "token_issuer", "auth_url verbatim")
        self.assert_denied(gw, mint("rotated"), 401, "token_signature", "unknown key")

        reqs = fake.requests()
        self.assertEqual(len(reqs), 1, "one fetch at start-up: %r" % reqs)
        self.assertEqual(reqs[0]["path"], METADATA_PATH)
        hdrs = reqs[0]["headers"]
        auth = [v for k, v in hdrs if k.lower() == "authorization"]
        xurl = [v for k, v in hdrs if k.lower() == "x-propelauth-url"]
        self.assertEqual(auth, ["Bearer " + API_KEY])
        self.assertEqual(xurl, [AUTH_HOST])

        st, body = self.wait_admin(admin)
        self.assertEqual(st, 200, body)
        fp = fingerprint(H.keys("main").public)
        self.assertEqual(body.get("key_fingerprint"), fp)
        self.assertIn(fp, read(gw.err), "the key fingerprint is logged when loaded")

    def test_inline_api_key(self):
        fake = self.new_fake()
        fake.serve_key(read(H.keys("main").public))
        gw = self.start_gw(fetch_config(self.echo, fake.url, api_key_env=None, api_key=API_KEY),
                           env={ENV: ""})
        self.assert_allowed(gw, mint(), "inline api_key form")
        self.assertIn("Bearer " + API_KEY, dict(fake.requests()[0]["headers"]).values())


class Unavailable(KeysCase):
    """docs/security.md A20: no key yet means 503 keys_unavailable on token routes,
    public routes working, /readyz 503, and recovery without a restart."""

    def check_unavailable(self, gw, admin, err_needle):
        r = gw.request("GET", "/public/ping")
        self.assertEqual(r.status, 200, "public route while keys are unavailable: %r" % r)
        r = self.whoami(gw, mint())
        self.assertEqual(r.status, 503, "token route while keys are unavailable: %r" % r)
        self.assertEqual(r.json().get("reason"), "keys_unavailable")
        r = gw.request("GET", "/api/whoami")
        self.assertEqual(r.status, 503, "token route without a token, no keys: %r" % r)
        st, body = self.wait_admin(admin)
        self.assertEqual(st, 503, body)
        self.assertIn("keys_unavailable", body.get("reasons", []))
        self.assertIn(err_needle, body.get("key_error", ""), body)

    def recover(self, gw, admin, fake):
        fake.serve_key(read(H.keys("main").public))
        self.eventually(lambda: self.readyz(admin)[0] == 200, 8, "/readyz turning 200")
        self.assert_allowed(gw, mint(), "token after the keys arrived")

    def test_A20_500_then_recovers(self):
        fake = self.new_fake()
        fake.serve_status(500)
        admin = H.free_port()
        gw = self.start_gw(fetch_config(self.echo, fake.url, admin_port=admin))
        self.check_unavailable(gw, admin, "500 from")
        self.assertGreaterEqual(fake.wait_count(2, 5), 2, "no retry in the background")
        self.recover(gw, admin, fake)
        self.assertIn("no verifier key yet", read(gw.err))

    def test_A20_429_then_recovers(self):
        fake = self.new_fake()
        fake.serve_status(429)
        admin = H.free_port()
        gw = self.start_gw(fetch_config(self.echo, fake.url, admin_port=admin))
        self.check_unavailable(gw, admin, "rate limited (429")
        self.recover(gw, admin, fake)

    def test_A20_hang_then_recovers(self):
        fake = self.new_fake()
        fake.serve_hang()
        admin = H.free_port()
        gw = self.start_gw(fetch_config(self.echo, fake.url, admin_port=admin,
                                        fetch_timeout_ms=300))
        self.check_unavailable(gw, admin, "timed out")
        self.recover(gw, admin, fake)

    def test_A20_nothing_listening_then_recovers(self):
        port = H.closed_port()
        admin = H.free_port()
        gw = self.start_gw(fetch_config(self.echo, "http://127.0.0.1:%d" % port,
                                        admin_port=admin))
        self.check_unavailable(gw, admin, "cannot reach")
        fake = self.new_fake(port=port)
        self.recover(gw, admin, fake)


class Refresh(KeysCase):
    def test_rotation_on_SIGHUP_with_grace(self):
        grace = 4
        fake = self.new_fake()
        fake.serve_key(read(H.keys("main").public))
        admin = H.free_port()
        gw = self.start_gw(fetch_config(self.echo, fake.url, admin_port=admin,
                                        previous_key_grace=grace))
        old_tok, new_tok = mint("main"), mint("rotated")
        self.assert_allowed(gw, old_tok, "before rotation")
        self.assert_denied(gw, new_tok, 401, "token_signature", "new key before rotation")

        n = fake.count()
        fake.serve_key(read(H.keys("rotated").public))
        os.kill(gw.pid, signal.SIGHUP)
        self.assertGreater(fake.wait_count(n + 1, 5), n, "SIGHUP did not re-fetch")
        self.eventually(lambda: self.whoami(gw, new_tok).status == 200, 5, "new key accepted")
        rotated_at = time.time()
        self.assert_allowed(gw, old_tok, "old key during the grace period")
        st, body = self.readyz(admin)
        self.assertEqual(body.get("key_fingerprint"), fingerprint(H.keys("rotated").public))

        self.eventually(lambda: self.whoami(gw, old_tok).status == 401, grace + 4,
                        "old key rejected after the grace period")
        self.assertGreater(time.time() - rotated_at, grace - 1.5,
                           "old key dropped before its grace period ended")
        self.assert_denied(gw, old_tok, 401, "token_signature", "old key after grace")
        self.assert_allowed(gw, new_tok, "new key after grace")
        # The refresher logs the retirement just after the old key stops
        # verifying, so the 401s above can come before the line.
        self.eventually(lambda: "retired after its grace period" in read(gw.err), 3,
                        "the retirement logged")
        self.assertIn("verifier key changed: fingerprint %s" %
                      fingerprint(H.keys("rotated").public), read(gw.err))

    def test_A20_failed_refresh_keeps_last_key(self):
        fake = self.new_fake()
        fake.serve_key(read(H.keys("main").public))
        admin = H.free_port()
        gw = self.start_gw(fetch_config(self.echo, fake.url, admin_port=admin))
        tok = mint()
        self.assert_allowed(gw, tok, "before the endpoint broke")
        for answer in (lambda: fake.serve_status(500), lambda: fake.serve_status(401),
                       lambda: fake.serve_raw(200, b"garbage")):
            answer()
            n = fake.count()
            logged = read(gw.err).count("refresh failed")
            os.kill(gw.pid, signal.SIGHUP)
            self.assertGreater(fake.wait_count(n + 1, 5), n, "SIGHUP did not re-fetch")
            # this failure's own line (earlier rounds already left one each)
            self.eventually(lambda: read(gw.err).count("refresh failed") > logged, 3,
                            "failure logged")
            self.assert_allowed(gw, tok, "last good key after a failed refresh")
            st, body = self.readyz(admin)
            self.assertEqual(st, 200, "still ready with the last good key: %r" % body)
            self.assertTrue(gw.alive())
        self.assertIn("keeping key %s" % fingerprint(H.keys("main").public), read(gw.err))

    def test_periodic_refresh_picks_up_new_key(self):
        fake = self.new_fake()
        fake.serve_key(read(H.keys("main").public))
        gw = self.start_gw(fetch_config(self.echo, fake.url, refresh_interval=10,
                                        previous_key_grace=0))
        t0 = time.time()
        self.assertEqual(fake.count(), 1)
        fake.serve_key(read(H.keys("rotated").public))
        self.assertGreaterEqual(fake.wait_count(2, 15), 2, "no periodic refresh")
        self.assertGreater(time.time() - t0, 8, "refreshed long before refresh_interval")
        new_tok = mint("rotated")
        self.eventually(lambda: self.whoami(gw, new_tok).status == 200, 3, "new key accepted")
        # previous_key_grace: 0 drops the old key at once
        self.assert_denied(gw, mint("main"), 401, "token_signature", "old key without grace")
