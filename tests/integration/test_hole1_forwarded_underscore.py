"""Hole 1: look-alike spellings of the names the gateway sets or strips
("X_Forwarded_For", "X_Real_IP", "x_user", ...) never reach the upstream.
Rack/Puma (CVE-2024-45614), WSGI and CGI map '_' and '-' to the same
variable, so a client's "X_Forwarded_For: 6.6.6.6" would be read as the
gateway's X-Forwarded-For. The upstream is a raw recorder that keeps every
header line as it arrived, so odd spellings and duplicates are visible."""

import json
import re
import time
import unittest

import harness as H
from test_policies import minted

EVIL = "6.6.6.6"

# Every one of these normalises (lower-case letters and digits) to a name the
# gateway sets or strips.
SPOOFS = [
    ("X_Forwarded_For", EVIL), ("X-Forwarded_For", EVIL), ("x_forwarded_for", EVIL),
    ("X_Real_IP", EVIL), ("x_real_ip", EVIL), ("X.Real.IP", EVIL),
    ("X_Forwarded_Proto", "https-" + EVIL), ("X_Forwarded_Host", EVIL + ".example"),
    ("X_Forwarded_Port", EVIL), ("X_Forwarded_Prefix", "/" + EVIL),
    ("X_Original_URL", "/" + EVIL), ("X_Rewrite_URL", "/" + EVIL),
    ("X_Envoy_Original_Path", "/" + EVIL), ("X_Forwarded_Uri", "/" + EVIL),
    ("X_Client_IP", EVIL), ("True_Client_IP", EVIL), ("CF_Connecting_IP", EVIL),
    ("x_user", '{"user_id":"%s"}' % EVIL), ("X_USER", '{"user_id":"%s"}' % EVIL),
    ("X_Org", '{"org_id":"%s"}' % EVIL), ("X_Request_Id", EVIL),
    ("X_Authgate_Foo", EVIL), ("x-authgate-foo", EVIL), ("Keep_Alive", EVIL),
    ("Transfer_Encoding", EVIL), ("Content_Length", EVIL), ("Proxy", "http://" + EVIL),
]

GATEWAY_SET = {"xforwardedfor", "xforwardedproto", "xforwardedhost", "xrequestid", "xuser",
               "xorg"}


def norm(name):
    return re.sub(r"[^a-z0-9]", "", name.lower())


def spoof_names():
    return {norm(k) for k, _ in SPOOFS}


class _Base:
    """Shared cases; each subclass runs them against its own gateway (a
    RawUpstreamCase: the RawUpstream as `up`)."""
    TRUST = False

    @classmethod
    def config(cls, up):
        return {
            "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
            "upstreams": {"app": {"url": up.url}},
            "trust_forwarded_headers": cls.TRUST,
            "routes": [
                {"path": "/public/**", "policy": "public"},
                {"path": "/api/me", "policy": "require_user"},
            ],
        }

    def send(self, path, headers, tok=None):
        h = list(headers)
        if tok:
            h.append(("Authorization", "Bearer " + tok))
        before = self.up.count()
        r = self.gw.request("GET", path, h)
        self.assertEqual(r.status, 200, r)
        deadline = time.time() + 3
        while self.up.count() <= before and time.time() < deadline:
            time.sleep(0.005)
        recs = self.up.since(before)
        self.assertEqual(len(recs), 1, "upstream saw %d requests" % len(recs))
        return recs[0]["headers"]

    def assert_no_spoof(self, hdrs):
        leaked = [(k, v) for k, v in hdrs if EVIL in v]
        self.assertEqual(leaked, [], "client look-alike headers reached the upstream")
        # Only the gateway's own spellings of its names, each once.
        for k, _ in hdrs:
            if norm(k) in spoof_names() and norm(k) not in GATEWAY_SET:
                self.fail("%s reached the upstream: %r" % (k, hdrs))
        for n in ("xforwardedfor", "xforwardedproto", "xrequestid"):
            got = [k for k, _ in hdrs if norm(k) == n]
            self.assertEqual(len(got), 1, "%s spellings upstream: %r" % (n, got))
        self.assertEqual([v for k, v in hdrs if norm(k) == "xforwardedfor"], ["127.0.0.1"])
        self.assertEqual([v for k, v in hdrs if norm(k) == "xforwardedproto"], ["http"])

    def test_public_route(self):
        hdrs = self.send("/public/x", SPOOFS + [("X_Trace_Id", "t-1")])
        self.assert_no_spoof(hdrs)
        self.assertEqual([k for k, _ in hdrs if norm(k) in ("xuser", "xorg")], [])
        # names outside the table keep their spelling and pass
        self.assertIn(("X_Trace_Id", "t-1"), hdrs)

    def test_identity_route(self):
        hdrs = self.send("/api/me", SPOOFS, tok=minted("admin_b"))
        self.assert_no_spoof(hdrs)
        users = [(k, v) for k, v in hdrs if norm(k) == "xuser"]
        self.assertEqual(len(users), 1, users)
        self.assertEqual(users[0][0], "X-User")
        self.assertEqual(json.loads(users[0][1])["user_id"], "u-admin")

    def test_connection_listed_lookalike(self):
        # RFC 9110 7.6.1, compared in the same normal form: a client listing
        # "X_Drop_Me" removes its "X-Drop-Me"
        hdrs = self.send("/public/c", [("Connection", "keep-alive, X_Drop_Me"),
                                       ("X-Drop-Me", EVIL), ("X-Keep-Me", "kept")])
        self.assertEqual([k for k, v in hdrs if EVIL in v], [])
        self.assertIn(("X-Keep-Me", "kept"), hdrs)


class Hole1Untrusted(_Base, H.RawUpstreamCase):
    TRUST = False

    def test_exact_forwarded_replaced(self):
        hdrs = self.send("/public/e", [("X-Forwarded-For", EVIL), ("X-Real-IP", EVIL),
                                       ("Forwarded", "for=" + EVIL)])
        self.assert_no_spoof(hdrs)


class Hole1Trusted(_Base, H.RawUpstreamCase):
    """trust_forwarded_headers: a proxy in front rewrites X-Forwarded-For, not
    its look-alikes, so only the exact spelling is trusted."""
    TRUST = True

    def test_exact_spelling_trusted(self):
        hdrs = self.send("/public/t", [("X-Forwarded-For", "1.1.1.1"), ("X_Forwarded_For", EVIL),
                                       ("X-Real-IP", "2.2.2.2"), ("X_Real_IP", EVIL)])
        self.assertEqual([k for k, v in hdrs if EVIL in v], [])
        self.assertEqual([v for k, v in hdrs if norm(k) == "xforwardedfor"],
                         ["1.1.1.1", "127.0.0.1"])
        self.assertEqual([v for k, v in hdrs if norm(k) == "xrealip"], ["2.2.2.2"])


if __name__ == "__main__":
    unittest.main()
