"""Shared fixture for the forward-auth tests (test_forward_auth*.py): the demo
policy of sec_common with a forward-auth listener, a request set that covers
every policy with an allowed, a 401 and a 403 answer where the policy has one,
and a client for the listener that speaks each proxy's dialect.

Not a test module itself (no test_ prefix); ListenerCase is reached as
F.ListenerCase, so discovery does not collect it."""

import http.client

import harness as H
import sec_common as S

ORG_A, ORG_B, ORG_X = S.ORG_A, S.ORG_B, S.ORG_X

_TOK = {}


def owner():
    """u2, Owner of ORG_B (the exact_role: Owner route's allowed user)."""
    if "owner" not in _TOK:
        _TOK["owner"] = H.craft(H.claims_for(user_id="u2", email="u2@example.com",
                                             orgs=[H.org_entry(ORG_B, "Owner")]))
    return _TOK["owner"]


def tokens():
    return {"none": None, "good": S.good(), "expired": S.expired(), "owner": owner()}


# (method, target, token name, expected status): every route of the demo
# policy, each with its allow / 401 / 403 where the policy can give one.
CASES = [
    ("GET", "/public/x", "none", 200),
    ("GET", "/public/x?a=1", "expired", 200),
    ("GET", "/api/me", "good", 200),
    ("GET", "/api/me", "none", 401),
    ("GET", "/api/me", "expired", 401),
    ("GET", "/api/feed", "none", 200),
    ("GET", "/api/feed", "good", 200),
    ("GET", "/api/feed", "expired", 200),
    ("GET", S.r4(ORG_B), "good", 200),
    ("GET", S.r4(ORG_B), "none", 401),
    ("GET", S.r4(ORG_A), "good", 403),
    ("GET", S.r4(ORG_X), "good", 403),
    ("GET", S.r5(ORG_B), "good", 200),
    ("POST", S.r5(ORG_B), "good", 200),
    ("GET", S.r5(ORG_A), "good", 403),
    ("GET", S.r5(ORG_B), "expired", 401),
    ("GET", S.r6(ORG_B), "good", 200),
    ("GET", S.r6(ORG_X), "good", 403),
    ("GET", S.r6(), "good", 403),
    ("GET", S.r6(ORG_B), "none", 401),
    ("DELETE", S.r7(ORG_B), "owner", 200),
    ("DELETE", S.r7(ORG_B), "good", 403),
    ("DELETE", S.r7(ORG_B), "none", 401),
    ("GET", "/nowhere", "good", 404),
    ("PUT", "/api/me", "good", 405),
    ("GET", "/api/../me", "good", 400),
    ("GET", "/api/org/%s%%2Fbilling" % ORG_B, "good", 400),
    ("GET", S.r6(ORG_B) + "&org_id=" + ORG_X, "good", 400),
]

SPOOF = [("X-User", '{"user_id":"admin"}'), ("X-Org", '{"org_id":"%s"}' % ORG_X)]


def config(upstream_url, fa_port, **fa):
    f = {"listen": "127.0.0.1:%d" % fa_port, "trusted_peers": ["127.0.0.1/32"]}
    f.update(fa)
    return S.demo_config(upstream_url, forward_auth=f)


def call(port, method, target, headers=(), conn=None, body=None):
    """One check request to the forward-auth listener; returns harness.Resp."""
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        has_host = any(k.lower() == "host" for k, _ in headers)
        c.putrequest(method, target, skip_host=has_host, skip_accept_encoding=True)
        for k, v in headers:
            c.putheader(k, v)
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders()
        if body:
            c.send(body)
        r = c.getresponse()
        return H.Resp(r.status, r.reason, r.getheaders(), r.read())
    finally:
        if own:
            c.close()


def auth_headers(tok):
    return [("Authorization", "Bearer " + tok)] if tok else []


def nginx_call(port, method, target, tok, extra=()):
    """What nginx's auth_request subrequest looks like with docs/forward-auth.md's
    lines: GET, the client's headers, X-Original-Method and -URI."""
    return call(port, "GET", "/_authgate",
                [("Host", "forward_auth"), ("X-Original-Method", method),
                 ("X-Original-URI", target)] + auth_headers(tok) + list(extra))


def traefik_call(port, method, target, tok, extra=()):
    """Traefik ForwardAuth (its documented subrequest): GET to the address with
    the client's headers and X-Forwarded-Method/-Proto/-Host/-Uri/-For."""
    return call(port, "GET", "/",
                [("Host", "127.0.0.1:%d" % port), ("X-Forwarded-Method", method),
                 ("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", "app.example.com"),
                 ("X-Forwarded-Uri", target), ("X-Forwarded-For", "192.0.2.7")] +
                auth_headers(tok) + list(extra))


def envoy_call(port, method, target, tok, extra=(), prefix="/ext-authz"):
    """Envoy ext_authz HTTP service: the original method, path_prefix + the
    original path, Host, Authorization, Content-Length: 0 and the allowed
    headers."""
    return call(port, method, prefix + target,
                [("Host", "app.example.com"), ("Content-Length", "0"),
                 ("X-Envoy-Internal", "true")] + auth_headers(tok) + list(extra))


class ListenerCase(H.ServedCase):
    """A recording upstream (sec_common.Recorder) as `up` and the daemon with a
    forward-auth listener at fa_port: config(url, fa_port) is the daemon's
    config, gw_name its name; tok holds tokens()."""
    up = None
    upstream_attr = "up"
    gw_name = "fauth"

    @classmethod
    def config(cls, url, fa_port):
        raise NotImplementedError

    @classmethod
    def start_upstream(cls):
        return S.Recorder()

    @classmethod
    def gateway_config(cls, upstream):
        cls.fa_port = H.free_port()
        return cls.config(upstream.url, cls.fa_port)

    @classmethod
    def start_gateway(cls, config):
        return H.Gateway(config, name=cls.gw_name)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.gw is not None:
            cls.tok = tokens()
