"""https:// upstreams go through libcurl with peer and host verification on:
a self-signed upstream is refused (502 upstream_tls) unless its CA is given in
the upstream's ca_file, and then the request and identity get through."""

import http.server
import json
import os
import ssl
import subprocess
import threading

import harness as H
from test_policies import minted


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({"path": self.path,
                           "x_user": self.headers.get("X-User"),
                           "host": self.headers.get("Host")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class TlsUpstream:
    def __init__(self):
        d = H.new_tmp("tls-")
        self.cert = os.path.join(d, "cert.pem")
        key = os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", self.cert],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, key)
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.port = self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class HttpsUpstream(H.GatewayCase):
    @classmethod
    def setUpClass(cls):
        cls.tls = TlsUpstream()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.tls.stop()

    @classmethod
    def make_config(cls, echo):
        url = "https://127.0.0.1:%d" % cls.tls.port
        return {
            "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
            "upstreams": {
                "trusted": {"url": url, "ca_file": cls.tls.cert},
                "untrusted": {"url": url},
            },
            "routes": [
                {"path": "/t/**", "policy": "require_user", "upstream": "trusted"},
                {"path": "/u/**", "policy": "public", "upstream": "untrusted"},
            ],
        }

    def test_self_signed_upstream_is_refused(self):
        r = self.req("GET", "/u/x")
        self.assertEqual(r.status, 502, r)
        self.assertEqual(r.json()["reason"], "upstream_tls")

    def test_upstream_ca_file_lets_it_through_with_identity(self):
        tok = minted("member_a")
        for i in range(3):  # a few, so a reused TLS connection is exercised too
            r = self.req("GET", "/t/item/%d?q=1" % i, token=tok)
            self.assertEqual(r.status, 200, r)
            got = r.json()
            self.assertEqual(got["path"], "/t/item/%d?q=1" % i)
            self.assertIsNotNone(got["x_user"])
            self.assertIn("user_id", json.loads(got["x_user"]))

    def test_ca_file_on_http_upstream_is_a_config_error(self):
        cfg = self.make_config(None)
        cfg["upstreams"]["trusted"]["url"] = "http://127.0.0.1:1"
        path = os.path.join(H.new_tmp("cafile-"), "c.yaml")
        with open(path, "w") as f:
            f.write(H.to_yaml(cfg))
        p = subprocess.run([H.authgate_bin(), "check", "-c", path], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("upstreams.trusted.ca_file: only used with an https:// url", p.stdout)
