"""Shared machinery for the integration suite: build paths, processes, keys,
tokens, HTTP helpers and the expected identity headers.

Everything started here runs on loopback with random free ports and temp
dirs, and is registered so that run.py can kill it by pid even when a test
blows up half way.
"""

import base64
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Set by run.py before any test module runs.
BUILD = os.environ.get("AG_BUILD", os.path.join(REPO, "build"))
VERBOSE = False

ISSUER = "https://auth.test.local"


def set_build(path):
    global BUILD
    BUILD = path if os.path.isabs(path) else os.path.join(REPO, path)


def authgate_bin():
    return os.path.join(BUILD, "authgate")


def echo_bin():
    return os.path.join(BUILD, "ag-echo")


def missing_binaries():
    return [p for p in (authgate_bin(), echo_bin()) if not os.access(p, os.X_OK)]


def is_sanitizer_build():
    return os.path.basename(os.path.normpath(BUILD)) == "san"


def log(msg):
    if VERBOSE:
        print("    # " + msg, flush=True)


# ---------------------------------------------------------------------------
# Temp dirs and process registry

_TMP = None


def tmpdir():
    global _TMP
    if _TMP is None:
        _TMP = tempfile.mkdtemp(prefix="ag-it-")
    return _TMP


def new_tmp(prefix):
    return tempfile.mkdtemp(prefix=prefix, dir=tmpdir())


_PROCS = []
_PROCS_LOCK = threading.Lock()


def _register(proc):
    with _PROCS_LOCK:
        _PROCS.append(proc)


def stop_proc(proc, timeout=5.0):
    """Stop one process we started, by its pid: TERM, then KILL."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return proc.wait(timeout)


def kill_all():
    with _PROCS_LOCK:
        procs = list(_PROCS)
        _PROCS.clear()
    for p in procs:
        try:
            stop_proc(p, 3.0)
        except Exception:  # cleanup must go on for the others
            pass


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def closed_port():
    """A loopback port that nothing listens on (best effort)."""
    return free_port()


def wait_port(port, proc, timeout, what, errfile):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s before listening on %d:\n%s" %
                               (what, proc.returncode, port, tail(errfile)))
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
            s.close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("%s did not listen on %d within %.0fs:\n%s" %
                       (what, port, timeout, tail(errfile)))


def tail(path, n=4000):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return "(no output file)"
    return data[-n:].decode("utf-8", "replace")


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: UndefinedBehaviorSanitizer", "ERROR: ThreadSanitizer",
                     "definitely lost in", "Invalid read of size", "Invalid write of size",
                     "Conditional jump or move depends on uninitialised")


def sanitizer_findings(path):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    hits = [m for m in SANITIZER_MARKERS if m in text]
    return text[-6000:] if hits else ""


# ---------------------------------------------------------------------------
# Keys and tokens

class KeyPair:
    def __init__(self, name):
        d = new_tmp("key-" + name + "-")
        self.private = os.path.join(d, "private.pem")
        self.public = os.path.join(d, "public.pem")
        run_ok(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                "-out", self.private])
        run_ok(["openssl", "pkey", "-in", self.private, "-pubout", "-out", self.public])


_KEYS = {}


def keys(name="main"):
    """Fresh per-run RSA key pairs: "main" is trusted by every gateway, "other" never."""
    if name not in _KEYS:
        _KEYS[name] = KeyPair(name)
    return _KEYS[name]


def run_ok(argv, input=None):
    r = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), r.returncode,
                                                   r.stderr.decode("utf-8", "replace")))
    return r.stdout


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s):
    s = s + "=" * (-len(s) % 4)
    return base64.urlsafe_b64decode(s)


def rs256_sign(signing_input, key_path):
    return run_ok(["openssl", "dgst", "-sha256", "-sign", key_path], input=signing_input.encode())


def craft(claims, header=None, key=None, raw_header=None, raw_payload=None, signature=None):
    """Build a compact JWS by hand. header/claims may be dicts (JSON-encoded
    compactly) or raw strings via raw_header/raw_payload; the signature is a
    real RS256 signature with `key` (default: the trusted key) unless given."""
    if raw_header is None:
        raw_header = json.dumps(header if header is not None else {"alg": "RS256", "typ": "JWT"},
                                separators=(",", ":"))
    if raw_payload is None:
        raw_payload = json.dumps(claims, separators=(",", ":"))
    signing_input = b64url(raw_header) + "." + b64url(raw_payload)
    if signature is None:
        signature = rs256_sign(signing_input, (key or keys("main")).private)
    if isinstance(signature, bytes):
        signature = b64url(signature)
    return signing_input + "." + signature


def decode_claims(token):
    return json.loads(b64url_decode(token.split(".")[1]))


def now():
    return int(time.time())


def align_to_second_start():
    """Sleep until early in a wall-clock second, so that a token built with
    now+-N and the gateway's own clock read agree on `now` (clock-edge rows)."""
    while True:
        frac = time.time() % 1.0
        if 0.02 <= frac < 0.4:
            return
        time.sleep((1.0 - frac) + 0.03 if frac >= 0.4 else 0.02 - frac)


def org_entry(org_id, role, name=None, perms=(), inherited=None, multi=False, additional=None,
              metadata=None, url_safe=None, legacy=None, structure=None):
    """An org entry in token form (docs/semantics.md section 6)."""
    hierarchy = ["Owner", "Admin", "Member"]
    if inherited is None:
        inherited = hierarchy[hierarchy.index(role):] if role in hierarchy else [role]
    e = {
        "org_id": org_id,
        "org_name": name or ("Org " + org_id),
        "url_safe_org_name": url_safe or ("org-" + org_id.lower()),
        "org_metadata": metadata if metadata is not None else {},
        "user_role": role,
        "inherited_user_roles_plus_current_role": list(inherited),
        "user_permissions": list(perms),
    }
    if structure is not None:
        e["org_role_structure"] = structure
    elif multi:
        e["org_role_structure"] = "multi_role"
    if additional is not None:
        e["additional_roles"] = list(additional)
    if legacy is not None:
        e["legacy_org_id"] = legacy
    return e


def claims_for(user_id="u1", orgs=None, email="u1@example.com", iat=None, exp=None,
               issuer=ISSUER, extra=None, drop=()):
    t = now()
    c = {"user_id": user_id}
    if email is not None:
        c["email"] = email
    if orgs is not None:
        c["org_id_to_org_member_info"] = {o["org_id"]: o for o in orgs} if isinstance(orgs, list) \
            else orgs
    c["iat"] = t if iat is None else iat
    c["exp"] = t + 1800 if exp is None else exp
    c["iss"] = issuer
    if extra:
        c.update(extra)
    for k in drop:
        c.pop(k, None)
    return c


def token(**kw):
    key = kw.pop("key", None)
    header = kw.pop("header", None)
    return craft(claims_for(**kw), header=header, key=key)


def mint(user_id, email=None, orgs=(), ttl=None, inherited=None, iat_offset=None,
         exp_offset=None, claims_json=None, multi_role=None, active_org=None, key=None,
         issuer=ISSUER):
    """Mint a token with `authgate mint`. orgs: "ID:NAME:ROLE[:perm,perm]" strings.

    AG_MINT=python builds the same layout in the harness instead, to tell a
    mint bug from a daemon bug."""
    if os.environ.get("AG_MINT") == "python":
        return _mint_python(user_id, email, orgs, ttl, inherited, iat_offset, exp_offset,
                            claims_json, multi_role, active_org, key, issuer)
    argv = [authgate_bin(), "mint", "--key", (key or keys("main")).private, "--issuer", issuer,
            "--user-id", user_id]
    if email is not None:
        argv += ["--email", email]
    for o in orgs:
        argv += ["--org", o]
    if ttl is not None:
        argv += ["--ttl", str(ttl)]
    if inherited is not None:
        argv += ["--inherited", inherited]
    if iat_offset is not None:
        argv += ["--iat-offset", str(iat_offset)]
    if exp_offset is not None:
        argv += ["--exp-offset", str(exp_offset)]
    if claims_json is not None:
        argv += ["--claims-json", json.dumps(claims_json)]
    if multi_role is not None:
        argv += ["--multi-role", multi_role]
    if active_org is not None:
        argv += ["--active-org", active_org]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise AssertionError("authgate mint failed (%d): %s\nargv: %s" %
                             (r.returncode, r.stderr.decode("utf-8", "replace"), argv))
    tok = r.stdout.decode().strip()
    if tok.count(".") != 2 or "\n" in tok:
        raise AssertionError("authgate mint printed something that is not one token: %r" % tok)
    return tok


def _mint_python(user_id, email, orgs, ttl, inherited, iat_offset, exp_offset, claims_json,
                 multi_role, active_org, key, issuer):
    t = now()
    entries = []
    for spec in orgs:
        parts = spec.split(":")
        perms = parts[3].split(",") if len(parts) > 3 and parts[3] else []
        inh = inherited.split(",") if inherited else None
        e = org_entry(parts[0], parts[2], name=parts[1], perms=perms, inherited=inh)
        e["url_safe_org_name"] = parts[1].lower().replace(" ", "-")
        e["org_role_structure"] = "single_role_in_hierarchy"
        e["additional_roles"] = []
        if multi_role:
            e["org_role_structure"] = "multi_role"
            e["additional_roles"] = multi_role.split(",")
        entries.append(e)
    c = {"user_id": user_id}
    if email is not None:
        c["email"] = email
    c["org_id_to_org_member_info"] = {e["org_id"]: e for e in entries}
    if active_org is not None:
        c["org_member_info"] = c["org_id_to_org_member_info"][active_org]
    c["iat"] = t + (iat_offset or 0)
    c["exp"] = t + (exp_offset if exp_offset is not None else (ttl or 1800))
    c["iss"] = issuer
    if claims_json:
        c.update(claims_json)
    return craft(c, key=key)


# ---------------------------------------------------------------------------
# Expected identity headers (docs/semantics.md section 4)

USER_FIELDS = ["user_id", "org_id_to_org_member_info", "email", "login_method", "first_name",
               "last_name", "username", "properties", "legacy_user_id", "impersonator_user_id",
               "active_org_id"]
ORG_FIELDS = ["org_id", "org_name", "org_metadata", "user_assigned_role",
              "user_inherited_roles_plus_current_role", "user_permissions", "org_role_structure",
              "assigned_additional_roles", "url_safe_org_name", "legacy_org_id"]


def expected_org(e):
    return {
        "org_id": e["org_id"],
        "org_name": e["org_name"],
        "org_metadata": e["org_metadata"],
        "user_assigned_role": e["user_role"],
        "user_inherited_roles_plus_current_role": e["inherited_user_roles_plus_current_role"],
        "user_permissions": e["user_permissions"],
        "org_role_structure": e.get("org_role_structure", "single_role_in_hierarchy"),
        "assigned_additional_roles": e.get("additional_roles", []),
        "url_safe_org_name": e["url_safe_org_name"],
        "legacy_org_id": e.get("legacy_org_id"),
    }


def expected_orgs(claims):
    """(map of OrgMemberInfo or None, active_org_id)."""
    active = claims.get("org_member_info")
    if active:
        return {active["org_id"]: expected_org(active)}, active["org_id"]
    m = claims.get("org_id_to_org_member_info")
    if m is None:
        return None, None
    return {k: expected_org(v) for k, v in m.items() if v.get("user_role") is not None}, None


def expected_user(claims):
    orgs, active = expected_orgs(claims)
    return {
        "user_id": claims["user_id"],
        "org_id_to_org_member_info": orgs,
        "email": claims.get("email"),
        "login_method": claims.get("login_method", {"login_method": "unknown"}),
        "first_name": claims.get("first_name"),
        "last_name": claims.get("last_name"),
        "username": claims.get("username"),
        "properties": claims.get("properties"),
        "legacy_user_id": claims.get("legacy_user_id"),
        "impersonator_user_id": claims.get("impersonator_user_id"),
        "active_org_id": active,
    }


def parse_ordered(text):
    """JSON with key order kept (lists of pairs inside an OrderedPairs marker)."""
    return json.loads(text, object_pairs_hook=lambda pairs: _Ordered(pairs))


class _Ordered(dict):
    def __init__(self, pairs):
        super().__init__(pairs)
        self.order = [k for k, _ in pairs]
        if len(self.order) != len(set(self.order)):
            raise ValueError("duplicate keys in identity JSON: %r" % self.order)


def check_identity_header(tc, raw, expected, fields, what):
    """Assert a raw X-User / X-Org value: printable ASCII, compact JSON, the
    documented field order, and values equal to the expected dict."""
    tc.assertIsNotNone(raw, "%s header missing at the upstream" % what)
    tc.assertNotIsInstance(raw, list, "upstream received %d %s headers: %r" %
                           (len(raw) if isinstance(raw, list) else 0, what, raw))
    tc.assertTrue(all(0x20 <= ord(c) < 0x7f for c in raw),
                  "%s is not printable ASCII: %r" % (what, raw[:200]))
    try:
        obj = parse_ordered(raw)
    except ValueError as e:
        tc.fail("%s is not valid JSON (%s): %r" % (what, e, raw[:300]))
    tc.assertEqual(obj.order, fields, "%s field order/names differ" % what)
    tc.assertEqual(json.loads(raw), expected, "%s content differs" % what)
    orgs = obj.get("org_id_to_org_member_info")
    if what == "X-User" and isinstance(orgs, dict):
        for k, v in orgs.items():
            tc.assertEqual(v.order, ORG_FIELDS, "X-User org %s field order/names differ" % k)


# ---------------------------------------------------------------------------
# YAML writing (just enough for our configs)

def _scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))


def to_yaml(obj, indent=0):
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict) and v:
                out.append("%s%s:" % (pad, k))
                out.append(to_yaml(v, indent + 1))
            elif isinstance(v, list) and v and isinstance(v[0], dict):
                out.append("%s%s:" % (pad, k))
                out.append(to_yaml(v, indent + 1))
            elif isinstance(v, list):
                out.append("%s%s: [%s]" % (pad, k, ", ".join(_scalar(x) for x in v)))
            elif isinstance(v, dict):
                out.append("%s%s: {}" % (pad, k))
            else:
                out.append("%s%s: %s" % (pad, k, _scalar(v)))
    elif isinstance(obj, list):
        for item in obj:
            sub = to_yaml(item, indent + 1).split("\n")
            out.append("%s- %s" % (pad, sub[0].lstrip()))
            out.extend(sub[1:])
    return "\n".join(out)


# ---------------------------------------------------------------------------
# Processes

class Echo:
    """BUILD/ag-echo with a record file (one JSON line per request)."""

    def __init__(self):
        self.dir = new_tmp("echo-")
        self.port = free_port()
        self.record = os.path.join(self.dir, "record.jsonl")
        self.err = os.path.join(self.dir, "stderr")
        open(self.record, "w").close()
        with open(self.err, "wb") as ef, open(os.path.join(self.dir, "stdout"), "wb") as of:
            self.proc = subprocess.Popen([echo_bin(), "--port", str(self.port), "--record",
                                          self.record], stdout=of, stderr=ef,
                                         stdin=subprocess.DEVNULL)
        _register(self.proc)
        wait_port(self.port, self.proc, 10, "ag-echo", self.err)
        self.url = "http://127.0.0.1:%d" % self.port

    def lines(self):
        with open(self.record, "rb") as f:
            return [json.loads(l) for l in f.read().splitlines() if l.strip()]

    def count(self):
        with open(self.record, "rb") as f:
            return sum(1 for l in f.read().splitlines() if l.strip())

    def wait_new(self, before, n=1, timeout=3.0):
        """Records beyond the first `before`, waiting until at least n exist."""
        deadline = time.time() + timeout
        while True:
            recs = self.lines()
            if len(recs) >= before + n or time.time() > deadline:
                return recs[before:]
            time.sleep(0.01)

    def stop(self):
        stop_proc(self.proc)


class Gateway:
    """BUILD/authgate run -c CONFIG, with a config dict written as YAML.
    Subclasses that run the daemon elsewhere (harness_dns.NsGateway) replace
    spawn() and say where in `where`."""

    where = ""

    def __init__(self, config, name="gw", start_timeout=15, env_extra=None, extra_args=()):
        self.dir = new_tmp(name + "-")
        self.port = free_port()
        cfg = dict(config)
        cfg["listen"] = "127.0.0.1:%d" % self.port
        # listen first, for readability of the written file
        ordered = {"listen": cfg.pop("listen")}
        ordered.update(cfg)
        self.config_text = to_yaml(ordered) + "\n"
        self.config = os.path.join(self.dir, "config.yaml")
        with open(self.config, "w") as f:
            f.write(self.config_text)
        self.err = os.path.join(self.dir, "stderr")
        self.out = os.path.join(self.dir, "stdout")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.update(env_extra or {})
        # AG_WRAP="valgrind --leak-check=full ..." prefixes the daemon command
        # (tests/integration/valgrind.sh); the wrapper's report lands in stderr.
        wrap = os.environ.get("AG_WRAP", "").split()
        argv = wrap + [authgate_bin(), "run", "-c", self.config] + list(extra_args)
        with open(self.err, "wb") as ef, open(self.out, "wb") as of:
            self.proc = self.spawn(argv, stdout=of, stderr=ef, env=env)
        try:
            wait_port(self.port, self.proc, start_timeout * (8 if wrap else 1),
                      "authgate run -c %s%s" % (self.config, self.where), self.err)
        except RuntimeError as e:
            stop_proc(self.proc)
            raise RuntimeError("%s\n--- config ---\n%s" % (e, self.config_text))

    def spawn(self, argv, **kw):
        """The daemon's process, registered for cleanup."""
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **kw)
        _register(proc)
        return proc

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """Stop and return a problem description ("" when clean)."""
        problems = []
        if not self.alive():
            problems.append("authgate exited during the tests with %s" % self.proc.returncode)
        was_alive = self.alive()
        rc = stop_proc(self.proc, 120.0 if os.environ.get("AG_WRAP") else 5.0)
        if was_alive and rc != 0:
            # a clean SIGTERM shutdown exits 0; anything else (and under ASan,
            # a leak report's exit code) is a finding
            problems.append("authgate exited with %s on SIGTERM" % rc)
        san = sanitizer_findings(self.err)
        if san:
            problems.append("sanitizer report in authgate stderr:\n" + san)
        if problems:
            problems.append("stderr tail:\n" + tail(self.err, 2000))
        return "\n".join(problems)

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, headers=None, body=None, conn=None, timeout=10):
        """One request; returns Resp. Uses a fresh connection unless conn is given."""
        own = conn is None
        c = conn or self.conn(timeout)
        try:
            c.putrequest(method, path, skip_accept_encoding=True)
            hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
            if body is not None and not any(k.lower() in ("content-length", "transfer-encoding")
                                            for k, _ in hdrs):
                hdrs.append(("Content-Length", str(len(body))))
            for k, v in hdrs:
                c.putheader(k, v)
            c.endheaders()
            if body:
                c.send(body)
            r = c.getresponse()
            data = r.read()
            return Resp(r.status, r.reason, r.getheaders(), data)
        finally:
            if own:
                c.close()


class Resp:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name):
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        return vals[0] if vals else None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %s %r>" % (self.status, self.headers, self.body[:300])


def raw_exchange(port, data, timeout=5.0, read_until_close=False):
    """Send raw bytes, return what came back (until close or a full response)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            if not read_until_close and _complete_response(buf):
                break
        return buf
    finally:
        s.close()


def _complete_response(buf):
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    if m:
        return len(body) >= int(m.group(1))
    if re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
        return body.endswith(b"0\r\n\r\n")
    return False


def header_pairs(lines):
    """Raw header lines as (name, value) pairs, in order, values trimmed."""
    out = []
    for l in lines:
        k, _, v = l.partition(b":")
        out.append((k.decode("latin-1"), v.strip().decode("latin-1")))
    return out


def parse_raw_response(buf):
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    return Resp(status, "", header_pairs(lines[1:]), body)


def read_request(recv, buf):
    """One request off an upstream-side connection. recv() returns the next
    bytes (b"" at EOF); buf is what was read before. Returns (head, headers,
    body, rest): head without the blank line, headers as header_pairs, the body
    framed by Content-Length or chunked (dechunked), rest what follows it. None
    when the peer closes first. A malformed head raises ValueError."""
    while b"\r\n\r\n" not in buf:
        d = recv()
        if not d:
            return None
        buf += d
    head, _, buf = buf.partition(b"\r\n\r\n")
    hdrs = header_pairs(head.split(b"\r\n")[1:])
    lower = {k.lower(): v for k, v in hdrs}
    body = b""
    if "content-length" in lower:
        n = int(lower["content-length"])
        while len(buf) < n:
            d = recv()
            if not d:
                return None
            buf += d
        body, buf = buf[:n], buf[n:]
    elif lower.get("transfer-encoding", "").lower() == "chunked":
        while not re.search(rb"(^|\r\n)0\r\n\r\n", buf):
            d = recv()
            if not d:
                return None
            buf += d
        body, buf = dechunk(buf)
    return head, hdrs, body, buf


# ---------------------------------------------------------------------------
# A raw recording upstream in Python: keeps every header line exactly as it
# arrived, so duplicates and odd spellings are visible (the echo merges them
# into a dict).

class Listener:
    """A loopback TCP listener on a free port; each accepted connection goes to
    accepted(c), on the accept thread. Subclasses call listen() last in their
    __init__, once accepted() can run."""

    def listen(self, backlog):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted(c)

    def accepted(self, c):
        raise NotImplementedError

    def stop(self):
        self._stop = True
        try:
            self.sock.close()
        except OSError:
            pass


class RawUpstream(Listener):
    def __init__(self):
        self.requests = []  # dicts: method, target, headers [(name, value)], body
        self.connections = 0
        self.lock = threading.Lock()
        self.listen(64)

    def accepted(self, c):
        with self.lock:
            self.connections += 1
        threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(30)
        buf = b""
        try:
            while True:
                got = read_request(lambda: c.recv(65536), buf)
                if got is None:
                    return
                head, hdrs, body, buf = got
                method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
                with self.lock:
                    self.requests.append({"method": method, "target": target, "headers": hdrs,
                                          "body": body})
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                          b"Content-Length: 2\r\n\r\nok")
        except (OSError, ValueError):
            return
        finally:
            c.close()

    def count(self):
        with self.lock:
            return len(self.requests)

    def since(self, n):
        with self.lock:
            return list(self.requests[n:])


def dechunk(buf):
    """(body, rest) of a complete chunked body at the start of buf."""
    body = b""
    while True:
        line, _, buf = buf.partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        if size == 0:
            _, _, buf = buf.partition(b"\r\n")
            return body, buf
        body += buf[:size]
        buf = buf[size + 2:]


# ---------------------------------------------------------------------------
# Base test cases: one upstream + one gateway per class, skipping cleanly when
# the binaries have not been built.

class OwnGatewayCase(unittest.TestCase):
    """Each test starts a gateway of its own as self.gw (or none); tearDown
    stops it and fails the test on a sanitizer report. setUpClass sets _skip
    when the tests cannot run."""
    _skip = None

    def setUp(self):
        if self._skip:
            self.skipTest(self._skip)
        self.gw = None

    def tearDown(self):
        if self.gw is not None:
            stop_proc(self.gw.proc)
            san = sanitizer_findings(self.gw.err)
            if san:
                self.fail("sanitizer report in authgate stderr:\n" + san)


class ServedCase(unittest.TestCase):
    """One upstream and one authgate in front of it per class. A subclass says
    in which class attribute the upstream lives (upstream_attr), starts it
    (start_upstream) and builds the daemon's config for it (gateway_config);
    unavailable() is a reason to skip besides missing binaries. Each test
    needs the daemon still running; after the class it must stop cleanly."""
    gw = None
    _skip = None
    upstream_attr = None

    @classmethod
    def unavailable(cls):
        return None

    @classmethod
    def start_upstream(cls):
        raise NotImplementedError

    @classmethod
    def gateway_config(cls, upstream):
        raise NotImplementedError

    @classmethod
    def gateway_env(cls):
        return {}

    @classmethod
    def start_gateway(cls, config):
        return Gateway(config, name=cls.__name__, env_extra=cls.gateway_env())

    @classmethod
    def setUpClass(cls):
        miss = missing_binaries()
        if miss:
            cls._skip = "not built: %s (run make)" % ", ".join(miss)
            return
        why = cls.unavailable()
        if why:
            cls._skip = why
            return
        keys("main")
        upstream = cls.start_upstream()
        setattr(cls, cls.upstream_attr, upstream)
        try:
            cls.gw = cls.start_gateway(cls.gateway_config(upstream))
        except Exception:
            upstream.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        problems = ""
        if cls.gw is not None:
            problems = cls.gw.stop()
            cls.gw = None
        upstream = getattr(cls, cls.upstream_attr)
        if upstream is not None:
            upstream.stop()
            setattr(cls, cls.upstream_attr, None)
        if problems:
            raise AssertionError(problems)

    def setUp(self):
        if self._skip:
            self.skipTest(self._skip)
        if self.gw is not None and not self.gw.alive():
            self.fail("authgate is no longer running (exit %s):\n%s" %
                      (self.gw.proc.returncode, tail(self.gw.err)))


class RawUpstreamCase(ServedCase):
    """A RawUpstream (or what start_upstream returns) as `up`; config(up) is
    the daemon's config."""
    up = None
    upstream_attr = "up"

    @classmethod
    def start_upstream(cls):
        return RawUpstream()

    @classmethod
    def config(cls, up):
        raise NotImplementedError

    @classmethod
    def gateway_config(cls, upstream):
        return cls.config(upstream)


class GatewayCase(ServedCase):
    """ag-echo as the upstream (`echo`); make_config(echo) is the daemon's
    config."""
    echo = None
    upstream_attr = "echo"
    _start_error = None

    @classmethod
    def make_config(cls, echo):
        raise NotImplementedError

    @classmethod
    def start_upstream(cls):
        keys("other")
        return Echo()

    @classmethod
    def gateway_config(cls, upstream):
        return cls.make_config(upstream)

    # helpers -------------------------------------------------------------

    def req(self, method, path, headers=None, body=None, token=None, conn=None):
        h = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if token is not None:
            h.append(("Authorization", "Bearer " + token))
        return self.gw.request(method, path, h, body, conn=conn)

    def expect_allow(self, method, path, headers=None, body=None, token=None, status=200):
        """Request that must be forwarded; returns (response, upstream record)."""
        before = self.echo.count()
        r = self.req(method, path, headers, body, token)
        self.assertEqual(r.status, status, "expected %d from upstream for %s %s, got %r" %
                         (status, method, path, r))
        recs = self.echo.wait_new(before, 1)
        self.assertEqual(len(recs), 1, "upstream should have seen exactly one request for %s %s,"
                         " saw %d" % (method, path, len(recs)))
        return r, recs[0]

    def expect_deny(self, method, path, status, headers=None, token=None, reason=None):
        before = self.echo.count()
        r = self.req(method, path, headers, None, token)
        self.assertEqual(r.status, status, "%s %s: expected %d, got %r" %
                         (method, path, status, r))
        check_error_response(self, r, status, token_sent=token is not None, reason=reason)
        time.sleep(0.005)
        after = self.echo.count()
        self.assertEqual(after, before, "a denied request (%d) reached the upstream: %r" %
                         (status, self.echo.lines()[before:]))
        return r

    def assert_identity(self, rec, claims, org_id=None):
        hdrs = rec["headers"]
        check_identity_header(self, hdrs.get("x-user"), expected_user(claims), USER_FIELDS,
                              "X-User")
        if org_id is None:
            self.assertNotIn("x-org", hdrs, "X-Org must only be sent on org routes")
        else:
            orgs, _ = expected_orgs(claims)
            check_identity_header(self, hdrs.get("x-org"), orgs[org_id], ORG_FIELDS, "X-Org")

    def assert_anonymous(self, rec):
        hdrs = rec["headers"]
        self.assertNotIn("x-user", hdrs, "anonymous request carried X-User: %r" %
                         hdrs.get("x-user"))
        self.assertNotIn("x-org", hdrs, "anonymous request carried X-Org: %r" %
                         hdrs.get("x-org"))
        self.assertIsNone(rec.get("x_user"))
        self.assertIsNone(rec.get("x_org"))


ERROR_CLASS = {401: "unauthorized", 403: "forbidden"}


def check_error_response(tc, r, status, token_sent=False, reason=None):
    """The documented error format: JSON {"error","reason"}, application/json,
    and WWW-Authenticate on 401."""
    ctype = (r.header("Content-Type") or "").split(";")[0].strip().lower()
    tc.assertEqual(ctype, "application/json", "error %d without application/json: %r" %
                   (status, r))
    try:
        obj = json.loads(r.body)
    except ValueError:
        tc.fail("error body is not JSON: %r" % r.body[:300])
    tc.assertIsInstance(obj, dict)
    tc.assertIsInstance(obj.get("error"), str, "error body lacks \"error\": %r" % obj)
    tc.assertIsInstance(obj.get("reason"), str, "error body lacks \"reason\": %r" % obj)
    if status in ERROR_CLASS:
        tc.assertEqual(obj["error"], ERROR_CLASS[status], "error class for %d: %r" % (status, obj))
    if reason is not None:
        tc.assertEqual(obj["reason"], reason, "reason code for %d: %r" % (status, obj))
    if status == 401:
        www = r.header_all("WWW-Authenticate")
        tc.assertEqual(len(www), 1, "401 needs exactly one WWW-Authenticate: %r" % r.headers)
        tc.assertTrue(re.match(r"(?i)^bearer(\s|$)", www[0]), "WWW-Authenticate: %r" % www[0])
        if token_sent:
            tc.assertIn('error="invalid_token"', www[0],
                        "401 for a sent token must say error=\"invalid_token\"")
    return obj


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()
