"""Shared fixture for the docs/security.md modules (test_sec_*.py): a demo
policy (routes R1-R7), its users and orgs, a recording upstream that keeps every
byte per connection and can misbehave on purpose (group I), and a raw client
that sends exact bytes and reports every response plus whether the gateway
closed the socket.

Not a test module itself (no test_ prefix): run.py only discovers test_*.py.
"""

import json
import os
import re
import socket
import threading
import time
import unittest

import harness as H

# Upper time bounds are multiplied by this under valgrind (valgrind.sh sets
# AG_VALGRIND), where the daemon runs 20-50x slower.
SLACK = float(os.environ.get("AG_SLACK") or (8 if os.environ.get("AG_VALGRIND") else 1))


def slack(seconds):
    return seconds * SLACK


# The fixture's orgs. Lower-case UUIDs like PropelAuth's.
ORG_A = "0a1b2c3d-aaaa-4000-8000-00000000000a"   # u1 is Member, no permissions
ORG_B = "0a1b2c3d-bbbb-4000-8000-00000000000b"   # u1 is Admin, can_view_billing
ORG_X = "0a1b2c3d-dddd-4000-8000-00000000000d"   # u1 is not a member

R1 = "/public/x"
R2 = "/api/me"
R3 = "/api/feed"


def r4(org):
    return "/api/org/%s/billing" % org


def r5(org):
    return "/api/org/%s/settings" % org


def r6(org=None):
    return "/api/reports" + ("" if org is None else "?org_id=" + org)


def r7(org):
    return "/api/org/%s" % org


def u1_claims(**kw):
    orgs = [H.org_entry(ORG_A, "Member"),
            H.org_entry(ORG_B, "Admin", perms=["can_view_billing"])]
    return H.claims_for(user_id="u1", email="u1@example.com", orgs=orgs, **kw)


_TOKENS = {}


def good():
    if "good" not in _TOKENS:
        _TOKENS["good"] = H.craft(u1_claims())
    return _TOKENS["good"]


def expired():
    if "expired" not in _TOKENS:
        t = H.now()
        _TOKENS["expired"] = H.craft(u1_claims(iat=t - 7200, exp=t - 3600))
    return _TOKENS["expired"]


def demo_routes():
    return [
        {"path": "/public/**", "methods": ["GET"], "policy": "public"},
        {"path": "/api/me", "methods": ["GET"], "policy": "require_user"},
        {"path": "/api/feed", "methods": ["GET"], "policy": "optional_user"},
        {"path": "/api/org/{org_id}/billing", "methods": ["GET"],
         "policy": "require_org_member_with_permission", "permission": "can_view_billing"},
        {"path": "/api/org/{org_id}/settings", "methods": ["GET", "POST"],
         "policy": "require_org_member_with_minimum_role", "role": "Admin"},
        {"path": "/api/reports", "methods": ["GET"], "policy": "require_org_member",
         "org_id_from": "query"},
        {"path": "/api/org/{org_id}", "methods": ["DELETE"],
         "policy": "require_org_member_with_exact_role", "role": "Owner"},
    ]


def demo_config(upstream_url, limits=None, paths=None, upstream_extra=None, routes=None,
                **top):
    up = {"url": upstream_url, "connect_timeout_ms": 1000, "timeout_ms": 3000}
    up.update(upstream_extra or {})
    cfg = {
        "workers": 1,
        "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
        "upstreams": {"app": up},
        "routes": routes if routes is not None else demo_routes(),
    }
    if limits:
        cfg["limits"] = limits
    if paths:
        cfg["paths"] = paths
    cfg.update(top)
    return cfg


# ---------------------------------------------------------------------------
# Recording upstream

class Recorder(H.Listener):
    """A loopback HTTP/1.1 upstream that records, per connection, every byte it
    received and every request it parsed. `respond(sock, req)` answers one
    request; tests replace it to misbehave (group I). Returning False from it
    closes the connection."""

    def __init__(self):
        self.lock = threading.Lock()
        self.conns = []      # bytearray per accepted connection
        self.states = []     # {"closed": bool} per accepted connection
        self.requests = []   # dicts: method, target, version, headers [(k, v)], body, conn
        self.respond = default_respond
        self.listen(128)

    def reset(self):
        with self.lock:
            self.conns = []
            self.states = []
            self.requests = []
        self.respond = default_respond

    def accepted(self, c):
        st = {"closed": False}
        with self.lock:
            self.conns.append(bytearray())
            self.states.append(st)
            idx = len(self.conns) - 1
        threading.Thread(target=self._serve, args=(c, idx, st), daemon=True).start()

    def _recv(self, c, idx):
        d = c.recv(65536)
        if d:
            with self.lock:
                if idx < len(self.conns):
                    self.conns[idx] += d
        return d

    def _serve(self, c, idx, st):
        c.settimeout(20)
        buf = b""
        try:
            while True:
                got = H.read_request(lambda: self._recv(c, idx), buf)
                if got is None:
                    return
                head, hdrs, body, buf = got
                parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
                req = {"method": parts[0], "target": parts[1] if len(parts) > 1 else "",
                       "version": parts[2] if len(parts) > 2 else "", "headers": hdrs,
                       "body": body, "conn": idx, "raw_head": head}
                with self.lock:
                    self.requests.append(req)
                if self.respond(c, req) is False:
                    return
        except (OSError, ValueError):
            return
        finally:
            with self.lock:
                st["closed"] = True
            try:
                c.close()
            except OSError:
                pass

    def nclosed(self):
        """Connections accepted since the last reset() that have ended."""
        with self.lock:
            return sum(1 for st in self.states if st["closed"])

    def nconns(self):
        with self.lock:
            return len(self.conns)

    def reqs(self):
        with self.lock:
            return list(self.requests)

    def raw_bytes(self):
        with self.lock:
            return b"".join(bytes(b) for b in self.conns)



def default_respond(c, req):
    body = json.dumps({"target": req["target"]}).encode()
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(body))
    c.sendall(head if req["method"] == "HEAD" else head + body)
    return True


# ---------------------------------------------------------------------------
# Raw client

class Response(H.Resp):
    """H.Resp, but reason() is the reason code of a JSON error body; the status
    line's phrase is reason_phrase."""

    def __init__(self, status, reason, headers, body):
        super().__init__(status, reason, headers, body)
        del self.reason  # the instance attribute would hide the method
        self.reason_phrase = reason

    def reason(self):
        try:
            return json.loads(self.body).get("reason")
        except ValueError:
            return None


def parse_responses(buf):
    """Every complete response in buf (status line, headers, framed body), and
    the unparsed rest."""
    out = []
    while True:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if not sep:
            return out, buf
        lines = head.split(b"\r\n")
        m = re.match(rb"HTTP/1\.[01] (\d{3}) ?(.*)", lines[0])
        if not m:
            return out, buf
        status = int(m.group(1))
        hdrs = H.header_pairs(lines[1:])
        low = {k.lower(): v for k, v in hdrs}
        if status in (100, 101):
            out.append(Response(status, m.group(2).decode("latin-1"), hdrs, b""))
            buf = rest
            continue
        if "content-length" in low:
            n = int(low["content-length"])
            if len(rest) < n:
                return out, buf
            body, buf = rest[:n], rest[n:]
        elif low.get("transfer-encoding", "").lower() == "chunked":
            if not re.search(rb"(^|\r\n)0\r\n\r\n", rest):
                return out, buf
            body, buf = H.dechunk(rest)
        else:
            body, buf = rest, b""
        out.append(Response(status, m.group(2).decode("latin-1"), hdrs, body))


class Exchange:
    """The result of one raw conversation: responses in order, whether the
    gateway closed the connection, and the raw bytes."""

    def __init__(self, raw, closed):
        self.raw = raw
        self.closed = closed
        self.responses, self.rest = parse_responses(raw)

    @property
    def first(self):
        return self.responses[0] if self.responses else None

    def statuses(self):
        return [r.status for r in self.responses]

    def __repr__(self):
        return "<closed=%s %r rest=%r>" % (self.closed, self.responses, self.rest[:200])


def raw(port, data, timeout=3.0, expect=None, chunks=None, gap=0.0):
    """Send data (or the list `chunks` with `gap` seconds between them) and read
    until the gateway closes or `timeout` passes; with `expect`, stop early once
    that many responses arrived (the connection is then reported open)."""
    timeout = slack(timeout)
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    buf = b""
    closed = False
    try:
        try:
            for i, part in enumerate(chunks if chunks is not None else [data]):
                if i and gap:
                    time.sleep(gap)
                s.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.time() + timeout
        while time.time() < deadline:
            s.settimeout(max(0.01, deadline - time.time()))
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not d:
                closed = True
                break
            buf += d
            if expect is not None and len(parse_responses(buf)[0]) >= expect:
                break
    finally:
        s.close()
    return Exchange(buf, closed)


def req_bytes(method, target, headers=(), body=b"", host=True, version="HTTP/1.1"):
    """A request with exact bytes: headers are (name, value) pairs written as
    'name: value' lines, in order; no header is added except Host."""
    lines = ["%s %s %s" % (method, target, version)]
    if host:
        lines.append("Host: gw")
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body


def bearer(tok=None):
    return ("Authorization", "Bearer " + (tok or good()))


# ---------------------------------------------------------------------------
# Base case: one Recorder + one gateway per class

class SecCase(H.RawUpstreamCase):
    @classmethod
    def start_upstream(cls):
        return Recorder()

    @classmethod
    def config(cls, up):
        return demo_config(up.url)

    def setUp(self):
        super().setUp()
        self.up.reset()

    # assertions -----------------------------------------------------------

    def send(self, data, **kw):
        return raw(self.gw.port, data, **kw)

    def assert_error(self, resp, status, reason=None):
        self.assertIsNotNone(resp, "no response at all")
        self.assertEqual(resp.status, status, "expected %d: %r" % (status, resp))
        ctype = (resp.header("Content-Type") or "").split(";")[0].strip()
        self.assertEqual(ctype, "application/json", resp)
        obj = resp.json()
        self.assertIsInstance(obj.get("error"), str, obj)
        if reason is not None:
            self.assertEqual(obj.get("reason"), reason, "reason for %d: %r" % (status, obj))
        return obj

    def assert_closed_after(self, ex, status, reason=None):
        """A protocol error: the status (and reason), Connection: close, the
        socket closed, and nothing after the one response."""
        self.assertEqual(len(ex.responses), 1, "expected exactly one response: %r" % ex)
        self.assert_error(ex.first, status, reason)
        self.assertEqual((ex.first.header("Connection") or "").lower(), "close",
                         "protocol error %d without Connection: close: %r" % (status, ex.first))
        self.assertTrue(ex.closed, "the gateway kept the connection open after %d" % status)
        self.assertEqual(ex.rest, b"", "bytes after the error response: %r" % ex.rest[:200])

    def assert_upstream_nothing(self, settle=0.05):
        time.sleep(settle)
        self.assertEqual(self.up.nconns(), 0, "the upstream saw a connection: %r" %
                         self.up.raw_bytes()[:500])
        self.assertEqual(self.up.reqs(), [])

    def assert_upstream_targets(self, targets, settle=0.05):
        time.sleep(settle)
        got = [r["target"] for r in self.up.reqs()]
        self.assertEqual(got, list(targets), "upstream received %r" % got)
        return self.up.reqs()

    def upstream_header_names(self, req):
        return [k.lower() for k, _ in req["headers"]]
