#!/usr/bin/env python3
"""The `make bench` harness (started by bench/run.sh, which installs the tools).

    bench/bench.py BUILD_DIR [--quick] [--only NAME[,NAME...]] [--no-write]

Starts, on loopback with free ports and a private temp dir: the fixed-reply
backend (BUILD/ag-echo --fixed), nginx as a plain reverse proxy, HAProxy 2.6
with jwt_verify + iss/exp/role ACLs, the Node peer (express +
@propelauth/express, skipped when npm cannot install it) and authgate; runs
every target of issue 3 with wrk the same way (median of 3 runs of DUR
seconds, keep-alive, one wrk thread); prints one table and writes it to
bench/results/latest.md. Everything it starts it stops, by pid.

Pinning (when there are >= 2 CPUs): the proxy under test on CPU 0, the
backend and wrk on CPU 1, so each proxy gets one core to itself and the
comparison is per core. Each proxy runs one worker.
"""

import argparse
import base64
import datetime
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ISSUER = "https://bench.local"
ORG = "7d9a1e2c-0b4f-4c55-9a3e-2f6b1c8d4e01"
TARGET_PATH = "/api/org/%s/items" % ORG
GROUPS = ["nginx", "authgate", "haproxy", "node", "orgs50", "forged", "garbage", "p99", "rss",
          "routes", "startup", "stream", "scaling", "forwardauth", "cors",
          "websocket", "bighead", "idle"]
CORS_ORIGIN = "https://app.example.com"  # what bench/cors.lua sends


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------
# Processes: everything started is remembered by pid and stopped at exit.

class Procs:
    def __init__(self, tmp):
        self.tmp = tmp
        self.live = []   # (name, Popen)
        self.multi_cpu = (os.cpu_count() or 1) >= 2

    def cpus(self, role):
        if not self.multi_cpu:
            return None
        return {0} if role == "proxy" else {1}

    def start(self, name, argv, role, env=None, cwd=None):
        cpus = self.cpus(role)

        def pin():
            # What `taskset -c N` does, without an extra exec in the timing.
            if cpus:
                os.sched_setaffinity(0, cpus)
            os.setpgrp()  # our own group: a terminal Ctrl-C reaches us, we stop them
        out = open(os.path.join(self.tmp, name + ".out"), "wb")
        err = open(os.path.join(self.tmp, name + ".err"), "wb")
        try:
            p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                 env=env, cwd=cwd, preexec_fn=pin)
        finally:
            out.close()
            err.close()
        self.live.append((name, p))
        return p

    def stop(self, p, grace=3.0):
        if p.poll() is None:
            try:
                p.terminate()
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            except ProcessLookupError:
                pass
        self.live = [(n, q) for n, q in self.live if q is not p]

    def stop_all(self):
        for _, p in reversed(list(self.live)):
            self.stop(p)

    def err_tail(self, name, n=1500):
        try:
            with open(os.path.join(self.tmp, name + ".err"), "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, name, procs, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError("%s exited with %s:\n%s" % (name, proc.returncode, procs.err_tail(name)))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise BenchError("%s did not listen on %d within %.0fs:\n%s"
                     % (name, port, timeout, procs.err_tail(name)))


def run(argv, timeout, cpu_role=None, procs=None, check=True):
    cpus = procs.cpus(cpu_role) if procs and cpu_role else None
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    if check and r.returncode != 0:
        raise BenchError("%s failed (%d): %s" % (argv[0], r.returncode,
                                                 r.stderr.decode("utf-8", "replace")[-1500:]))
    return r.stdout.decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# /proc readings

CLK = os.sysconf("SC_CLK_TCK")


def tree_pids(pid):
    out = [pid]
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                for c in f.read().split():
                    out.extend(tree_pids(int(c)))
    except OSError:
        pass
    return out


def cpu_seconds(pid):
    """utime+stime of a process and its descendants (nginx's worker is a child)."""
    total = 0
    for p in tree_pids(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK


def rss_kb(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise BenchError("no %s for pid %d" % (field, pid))


# ---------------------------------------------------------------------------
# wrk

UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_dur_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not m:
        raise BenchError("unparsable wrk latency %r" % text)
    return float(m.group(1)) * UNIT_MS[m.group(2)]


def parse_wrk(out):
    r = {"rps": None, "p50": None, "p99": None, "requests": 0, "non2xx": 0, "errors": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["errors"] = sum(int(x) for x in m.groups())
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % pct, out, re.M)
        if m:
            r[key] = parse_dur_ms(m.group(1))
    if r["rps"] is None:
        raise BenchError("wrk printed no Requests/sec:\n" + out[-1500:])
    return r


# ---------------------------------------------------------------------------
# keys and tokens

def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_keys(tmp):
    priv = os.path.join(tmp, "priv.pem")
    pub = os.path.join(tmp, "pub.pem")
    run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
         "-out", priv], 60)
    run(["openssl", "pkey", "-in", priv, "-pubout", "-out", pub], 30)
    return priv, pub


PERMS = ("can_view_billing,can_edit_billing,can_view_items,can_edit_items,can_invite_members,"
         "can_remove_members,can_manage_api_keys,can_view_audit_log,can_export_reports")


def org_args(n):
    """--org values: the bench org (Admin) first, then n-1 other memberships."""
    out = ["%s:Bench Org:Admin" % ORG]
    rnd = random.Random(42)
    for i in range(1, n):
        oid = "%08x-%04x-4%03x-8%03x-%012x" % (rnd.getrandbits(32), rnd.getrandbits(16),
                                               rnd.getrandbits(12), rnd.getrandbits(12),
                                               rnd.getrandbits(48))
        # Nine permissions each: ~745 bytes of header per org, as measured on
        # real PropelAuth tokens (docs/performance.md), so 50 orgs make ~38 KB.
        out.append("%s:Other Organization %d Incorporated:Member:%s" % (oid, i, PERMS))
    return out


def mint(build, priv, norgs, ttl=7200, extra=(), orgs=None, issuer=ISSUER):
    argv = [os.path.join(build, "authgate"), "mint", "--key", priv, "--issuer", issuer,
            "--user-id", "u1", "--email", "u1@bench.local", "--ttl", str(ttl)]
    for o in (orgs if orgs is not None else org_args(norgs)):
        argv += ["--org", o]
    argv += list(extra)
    tok = run(argv, 30).strip()
    if tok.count(".") != 2:
        raise BenchError("authgate mint printed something that is not a token: %r" % tok[:200])
    return tok


def py_mint(priv, norgs, ttl=7200):
    """Fallback minter (only while authgate is not built, to try the peers):
    the same claims `authgate mint` writes, signed with `openssl dgst`."""
    now = int(time.time())
    orgs = {}
    for spec in org_args(norgs):
        parts = spec.split(":")
        oid, name, role = parts[0], parts[1], parts[2]
        perms = parts[3].split(",") if len(parts) > 3 else []
        orgs[oid] = {"org_id": oid, "org_name": name,
                     "url_safe_org_name": name.lower().replace(" ", "-"), "org_metadata": {},
                     "user_role": role,
                     "inherited_user_roles_plus_current_role":
                         {"Owner": ["Owner", "Admin", "Member"], "Admin": ["Admin", "Member"]}
                         .get(role, [role]),
                     "user_permissions": perms, "org_role_structure": "single_role_in_hierarchy",
                     "additional_roles": []}
    claims = {"user_id": "u1", "email": "u1@bench.local", "org_id_to_org_member_info": orgs,
              "iat": now, "exp": now + ttl, "iss": ISSUER}
    hp = b64u(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode()) + \
        "." + b64u(json.dumps(claims, separators=(",", ":")).encode())
    r = subprocess.run(["openssl", "dgst", "-sha256", "-sign", priv], input=hp.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if r.returncode != 0:
        raise BenchError("openssl dgst -sign failed: " + r.stderr.decode()[-500:])
    return hp + "." + b64u(r.stdout)


def write_forged(path, valid, count, seed=1):
    """Valid header.payload, random signatures. The first signature byte is
    kept below 0x80 so the value is below the modulus (whose top bit is set):
    OpenSSL then has to do the full modular exponentiation, which is what an
    attacker would choose. The counter lands inside the signature."""
    rnd = random.Random(seed)
    hp = valid.rsplit(".", 1)[0]
    with open(path, "w") as f:
        for _ in range(count):
            sig = bytearray(rnd.getrandbits(8) for _ in range(256))
            sig[0] &= 0x7F
            f.write("%d %s.%s\n" % (len(hp) + 1 + 4, hp, b64u(bytes(sig))))


def write_garbage(path, count, seed=2):
    """Tokens that fail structure checks before any RSA work: wrong segment
    counts, header not base64url or not JSON, alg none/HS256, a signature of
    the wrong length. Each line's counter offset sits in a random region."""
    rnd = random.Random(seed)

    def rb(n):
        return bytes(rnd.getrandbits(8) for _ in range(n))
    good_hdr = b64u(b'{"alg":"RS256","typ":"JWT"}')
    payload = b64u(b'{"user_id":"u1","iss":"https://bench.local","exp":4102444800}')
    with open(path, "w") as f:
        for i in range(count):
            kind = i % 7
            if kind == 0:    # one segment
                tok = b64u(rb(200))
                off = 20
            elif kind == 1:  # two segments
                tok = b64u(rb(30)) + "." + b64u(rb(120))
                off = 10
            elif kind == 2:  # four segments
                tok = "%s.%s.%s.%s" % (good_hdr, payload, b64u(rb(256)), b64u(rb(16)))
                off = len(good_hdr) + len(payload) + 10
            elif kind == 3:  # header is not JSON
                junk = b64u(rb(24))
                tok = "%s.%s.%s" % (junk, payload, b64u(rb(256)))
                off = 3
            elif kind == 4:  # alg none, empty signature
                hdr = b64u(b'{"alg":"none","typ":"JWT","n":"' + b64u(rb(12)).encode() + b'"}')
                tok = "%s.%s." % (hdr, payload)
                off = len(hdr) + 10
            elif kind == 5:  # alg HS256
                hdr = b64u(b'{"alg":"HS256","typ":"JWT"}')
                tok = "%s.%s.%s" % (hdr, payload, b64u(rb(32)))
                off = len(hdr) + len(payload) + 3
            else:            # RS256 header, signature of the wrong length
                tok = "%s.%s.%s" % (good_hdr, payload, b64u(rb(40)))
                off = len(good_hdr) + len(payload) + 3
            f.write("%d %s\n" % (off, tok))


def lua_token(line, counter):
    """The token tokens.lua sends for this line and counter (for status checks)."""
    off, tok = line.split(" ", 1)
    off = int(off)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    enc = ""
    v = counter
    for _ in range(8):
        enc += alphabet[v % 64]
        v //= 64
    return tok[:off - 1] + enc + tok[off - 1 + 8:]


# ---------------------------------------------------------------------------
# tiny HTTP client (status checks, idle connections, startup polling)

def http_get(sock, path, token=None, host="127.0.0.1"):
    req = "GET %s HTTP/1.1\r\nHost: %s\r\n" % (path, host)
    if token:
        req += "Authorization: Bearer %s\r\n" % token
    sock.sendall((req + "\r\n").encode())
    return read_response(sock)


def read_response(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    clen = 0
    chunked = False
    for l in lines[1:]:
        k, _, v = l.partition(b":")
        if k.strip().lower() == b"content-length":
            clen = int(v.strip())
        elif k.strip().lower() == b"transfer-encoding" and b"chunked" in v.lower():
            chunked = True
    if chunked:
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    else:
        while len(rest) < clen:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    return status


def check_statuses(port, path, tokens, want):
    """Send each token on one keep-alive connection; return a list of mismatches."""
    bad = []
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        for t in tokens:
            try:
                st = http_get(s, path, t)
            except (OSError, ConnectionError):
                s.close()
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                st = http_get(s, path, t)
            if st != want:
                bad.append((st, t[:60]))
    finally:
        s.close()
    return bad


# ---------------------------------------------------------------------------
# configurations

NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
worker_rlimit_nofile 20000;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/ngx-body;
    proxy_temp_path {tmp}/ngx-proxy;
    fastcgi_temp_path {tmp}/ngx-fastcgi;
    uwsgi_temp_path {tmp}/ngx-uwsgi;
    scgi_temp_path {tmp}/ngx-scgi;
    # A 50-org token is ~38 KB; the default (8k) answers 400.
    large_client_header_buffers 4 64k;
    keepalive_timeout 65;
    keepalive_requests 100000000;
    upstream backend {{
        server 127.0.0.1:{backend};
        keepalive 256;
        keepalive_requests 100000000;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""

# forwardauth: nginx answering `return 200` itself (the decision endpoint's
# peer), and nginx with auth_request to authgate's forward-auth listener (the
# lines docs/forward-auth.md gives) in front of the backend.
NGINX_FA_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}-error.log warn;
worker_rlimit_nofile 20000;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/ngx-body;
    proxy_temp_path {tmp}/ngx-proxy;
    fastcgi_temp_path {tmp}/ngx-fastcgi;
    uwsgi_temp_path {tmp}/ngx-uwsgi;
    scgi_temp_path {tmp}/ngx-scgi;
    keepalive_timeout 65;
    keepalive_requests 100000000;
    upstream backend {{
        server 127.0.0.1:{backend};
        keepalive 256;
        keepalive_requests 100000000;
    }}
    upstream authgate_fa {{
        server 127.0.0.1:{fa};
        keepalive 256;
        keepalive_requests 100000000;
    }}
    server {{
        listen 127.0.0.1:{port};
{body}
    }}
}}
"""

NGINX_RETURN_200 = """\
        location / {
            return 200;
        }"""

NGINX_AUTH_REQUEST = """\
        location = /_authgate {
            internal;
            proxy_pass http://authgate_fa;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
        }
        location / {
            auth_request /_authgate;
            auth_request_set $ag_user $upstream_http_x_user;
            auth_request_set $ag_org $upstream_http_x_org;
            auth_request_set $ag_request_id $upstream_http_x_request_id;
            proxy_set_header X-User $ag_user;
            proxy_set_header X-Org $ag_org;
            proxy_set_header X-Request-Id $ag_request_id;
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }"""

# websocket: nginx as a plain WebSocket proxy (no auth), the relay's peer.
NGINX_WS_PROXY = """\
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 300s;
        }"""

HAPROXY_CONF = """\
global
    nbthread 1
    maxconn 8000
    # A 50-org token is ~38 KB; with the default 16 KB buffer HAProxy answers 400.
    tune.bufsize 65536

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 30s
    timeout http-keep-alive 60s
    http-reuse always

frontend fe
    bind 127.0.0.1:{port}
    # What HAProxy's own docs show: take the bearer, pin the algorithm, verify
    # the signature, then check iss, exp and the org role with ACLs. json_query
    # cannot index arrays (haproxy#2281), so the role check reads the scalar
    # user_role and accepts Admin or Owner (= min role Admin in the default
    # hierarchy). The org id is a config-time literal: HAProxy cannot take it
    # from the path as authgate does.
    http-request set-var(txn.bearer) http_auth_bearer
    http-request deny deny_status 401 unless {{ var(txn.bearer) -m found }}
    http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
    http-request deny deny_status 401 unless {{ var(txn.alg) -m str RS256 }}
    http-request deny deny_status 401 unless {{ var(txn.bearer),jwt_verify(txn.alg,"{cert}") -m int 1 }}
    http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('$.iss')
    http-request deny deny_status 401 unless {{ var(txn.iss) -m str {issuer} }}
    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
    http-request set-var(txn.now) date()
    http-request deny deny_status 401 unless {{ var(txn.exp),sub(txn.now) -m int gt 0 }}
    http-request set-var(txn.role) var(txn.bearer),jwt_payload_query('$.org_id_to_org_member_info.{org}.user_role')
    http-request deny deny_status 403 unless {{ path -m beg /api/org/{org}/ }} {{ var(txn.role) -m str Admin Owner }}
    default_backend be

backend be
    server s1 127.0.0.1:{backend}
"""


def authgate_config(port, backend, pub, nroutes, stream_backend=None, big_heads=False,
                    fa_port=None, cors=False, many_conns=False):
    """The bench route plus nroutes-1 others. The fillers are siblings of the
    bench route's literal segment (/api/org/{org_id}/rN) and separate trees
    (/sN/...), so a linear matcher would have to walk thousands of them."""
    lines = [
        "listen: 127.0.0.1:%d" % port,
        "workers: 1",
        "auth:",
        "  verifier_key_file: %s" % pub,
        "  issuer: %s" % ISSUER,
        "log:",
        "  access_log: \"off\"",
        "  level: warn",

    ]
    if fa_port:
        lines += ["forward_auth:", "  listen: 127.0.0.1:%d" % fa_port,
                  "  trusted_peers: [127.0.0.1/32]", "  dialects: [original]", "  threads: 1"]
    # big_heads: raised for the 50-org token (~38 KB) as for every other
    # contender (nginx large_client_header_buffers, HAProxy tune.bufsize, Node
    # --max-http-header-size); the default answers 431 to it. Its own instance,
    # so every row can be measured on both configs.
    limits = ["  max_header_bytes: 131072"] if big_heads else []
    if many_conns:
        # The idle-memory rows hold 10,000 connections from one address.
        limits.append("  max_connections: 20000")
    if limits:
        lines += ["limits:"] + limits
    if cors:
        lines += ["cors:", "  allowed_origins: [\"%s\"]" % CORS_ORIGIN]
    lines += [
        "upstreams:",
        "  app: { url: \"http://127.0.0.1:%d\" }" % backend,
    ]
    if stream_backend:
        lines.append("  stream: { url: \"http://127.0.0.1:%d\", timeout_ms: 600000 }"
                     % stream_backend)
    lines += [
        "routes:",
        "  - path: /api/org/{org_id}/items",
        "    methods: [GET]",
        "    policy: require_org_member_with_minimum_role",
        "    role: Admin",
    ]
    if stream_backend:
        lines.append("    upstream: app")
        lines += ["  - path: /stream/**", "    policy: require_user", "    upstream: stream"]
    for i in range(1, nroutes):
        if i % 2:
            lines += ["  - path: /api/org/{org_id}/r%d" % i,
                      "    policy: require_org_member_with_minimum_role",
                      "    role: Member"]
        else:
            lines += ["  - path: /s%d/v1/things/{thing_id}" % i,
                      "    policy: require_user"]
        if stream_backend:
            lines.append("    upstream: app")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# the bench

class Server:
    def __init__(self, name, port, proc):
        self.name, self.port, self.proc = name, port, proc

    @property
    def pid(self):
        return self.proc.pid


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.quick = args.quick
        self.dur = int(os.environ.get("DUR", "3" if args.quick else "10"))
        self.reps = 1 if args.quick else int(os.environ.get("REPS", "3"))
        only = set(args.only.split(",")) if args.only else set(GROUPS)
        unknown = only - set(GROUPS)
        if unknown:
            raise BenchError("unknown --only name(s): %s (known: %s)"
                             % (", ".join(sorted(unknown)), ", ".join(GROUPS)))
        self.only = only
        self.tmp = tempfile.mkdtemp(prefix="authgate-bench-")
        self.procs = Procs(self.tmp)
        self.servers = {}
        self.results = {}   # run name -> list of parsed wrk dicts
        self.cpu = {}       # run name -> list of CPU µs per request
        self.notes = []
        self.extra = {}     # scalar measurements
        self.tokens = {}
        self.skip = set()    # run names dropped after a failed precondition

    # -- helpers ----------------------------------------------------------
    def want(self, *groups):
        return any(g in self.only for g in groups)

    def url(self, server):
        return "http://127.0.0.1:%d%s" % (self.servers[server].port, TARGET_PATH)

    def wrk(self, server, conns, dur, token=None, script=None, script_arg=None, headers=()):
        argv = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % dur, "--timeout", "5s", "--latency"]
        if token:
            argv += ["-H", "Authorization: Bearer " + token]
        for h in headers:
            argv += ["-H", h]
        if script:
            argv += ["-s", script]
        argv.append(self.url(server))
        if script_arg:
            argv += ["--", script_arg]
        pid = self.servers[server].pid
        c0 = cpu_seconds(pid)
        out = run(argv, dur + 60, cpu_role="load", procs=self.procs)
        c1 = cpu_seconds(pid)
        r = parse_wrk(out)
        r["cpu_us"] = (c1 - c0) * 1e6 / r["requests"] if r["requests"] else None
        return r

    # -- servers ----------------------------------------------------------
    def start_backend(self, name="backend", fixed=True):
        port = free_port()
        # AG_ECHO: another backend binary with ag-echo's command line (for trying
        # a backend change without rebuilding); the table notes it.
        binary = os.environ.get("AG_ECHO") or os.path.join(self.build, "ag-echo")
        argv = [binary, "--threads", "1", "--port", str(port), "--quiet"]
        if fixed:
            argv.append("--fixed")
        p = self.procs.start(name, argv, "load")
        wait_port(port, p, name, self.procs)
        self.servers[name] = Server(name, port, p)
        return port

    def start_nginx(self, backend):
        port = free_port()
        conf = os.path.join(self.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=self.tmp, backend=backend, port=port))
        p = self.procs.start("nginx", ["nginx", "-p", self.tmp, "-c", conf, "-e",
                                       os.path.join(self.tmp, "nginx-error.log")], "proxy")
        wait_port(port, p, "nginx", self.procs)
        self.servers["nginx"] = Server("nginx", port, p)

    def start_nginx_named(self, name, backend, body, fa=0):
        port = free_port()
        conf = os.path.join(self.tmp, name + ".conf")
        with open(conf, "w") as f:
            f.write(NGINX_FA_CONF.format(tmp=self.tmp, name=name, backend=backend, port=port,
                                         fa=fa or backend, body=body))
        p = self.procs.start(name, ["nginx", "-p", self.tmp, "-c", conf, "-e",
                                    os.path.join(self.tmp, name + "-error.log")], "proxy")
        wait_port(port, p, name, self.procs)
        self.servers[name] = Server(name, port, p)

    def start_authgate_fa(self, name, backend):
        """authgate with a forward-auth listener (one thread); the server's port
        is the listener's."""
        fa = free_port()
        port = free_port()
        path = os.path.join(self.tmp, name + ".yaml")
        with open(path, "w") as f:
            f.write(authgate_config(port, backend, self.pub, 10, fa_port=fa))
        p = self.procs.start(name, [os.path.join(self.build, "authgate"), "run", "-c", path],
                             "proxy")
        wait_port(fa, p, name, self.procs, timeout=30)
        self.servers[name] = Server(name, fa, p)

    def fa_status(self, port, token):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            s.sendall(("GET /auth HTTP/1.1\r\nHost: b\r\nX-Original-Method: GET\r\n"
                       "X-Original-URI: %s\r\nAuthorization: Bearer %s\r\n"
                       "Connection: close\r\n\r\n" % (TARGET_PATH, token)).encode())
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        finally:
            s.close()
        return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0

    def start_haproxy(self, backend, pub):
        port = free_port()
        conf = os.path.join(self.tmp, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(HAPROXY_CONF.format(port=port, backend=backend, cert=pub, issuer=ISSUER,
                                        org=ORG))
        chk = subprocess.run(["haproxy", "-c", "-f", conf], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=30)
        if chk.returncode != 0:
            raise BenchError("haproxy -c rejected the config:\n" + chk.stdout.decode()[-2000:])
        p = self.procs.start("haproxy", ["haproxy", "-db", "-f", conf], "proxy")
        wait_port(port, p, "haproxy", self.procs)
        self.servers["haproxy"] = Server("haproxy", port, p)

    def start_node(self, backend, pub):
        peer = os.path.join(HERE, "node-peer")
        if not shutil.which("node") or not shutil.which("npm"):
            self.notes.append("Node peer skipped: node/npm not installed.")
            return False
        mods = os.path.join(peer, "node_modules")
        lock = os.path.join(peer, "package-lock.json")
        stamp = os.path.join(mods, ".package-lock.json")
        if not os.path.isfile(stamp) or os.path.getmtime(stamp) < os.path.getmtime(lock):
            log("npm ci (bench/node-peer)")
            try:
                r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                                   cwd=peer, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   timeout=300)
                ok = r.returncode == 0
                msg = r.stdout.decode("utf-8", "replace")[-300:]
            except subprocess.TimeoutExpired:
                ok, msg = False, "timed out after 300 s"
            if not ok:
                self.notes.append("Node peer skipped: `npm ci` failed (registry unreachable?): "
                                  + " ".join(msg.split())[:200])
                return False
        port = free_port()
        env = dict(os.environ, PORT=str(port), UPSTREAM="http://127.0.0.1:%d" % backend,
                   VERIFIER_KEY_FILE=pub, ISSUER=ISSUER, NODE_ENV="production")
        p = self.procs.start("node", ["node", "--max-http-header-size=65536", "server.js"],
                             "proxy", env=env, cwd=peer)
        wait_port(port, p, "node", self.procs, timeout=30)
        self.servers["node"] = Server("node", port, p)
        return True

    def write_authgate_config(self, name, backend, nroutes, stream_backend=None, port=None,
                              big_heads=False, cors=False, many_conns=False):
        port = port or free_port()
        path = os.path.join(self.tmp, name + ".yaml")
        with open(path, "w") as f:
            f.write(authgate_config(port, backend, self.pub, nroutes, stream_backend, big_heads,
                                    cors=cors, many_conns=many_conns))
        return path, port

    def start_authgate(self, name, backend, nroutes=10, stream_backend=None, big_heads=False,
                       cors=False):
        conf, port = self.write_authgate_config(name, backend, nroutes, stream_backend,
                                                big_heads=big_heads, cors=cors)
        chk = subprocess.run([os.path.join(self.build, "authgate"), "check", "-c", conf],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if chk.returncode != 0:
            raise BenchError("authgate check rejected %s:\n%s" % (conf, chk.stdout.decode()[-2000:]))
        p = self.procs.start(name, [os.path.join(self.build, "authgate"), "run", "-c", conf],
                             "proxy")
        wait_port(port, p, name, self.procs, timeout=30)
        self.servers[name] = Server(name, port, p)

    def soft_status(self, server, token, want, what):
        """Like expect_status, but a mismatch only drops dependent runs (with a note)."""
        bad = check_statuses(self.servers[server].port, TARGET_PATH, [token], want)
        if bad:
            self.notes.append("%s: %s answered %s instead of %d, so its runs are skipped%s"
                              % (what, server, bad[0][0], want,
                                 " (431 here usually comes from the backend: ag-echo --fixed "
                                 "must accept a request head of ~40-70 KB: the token, plus X-User behind authgate)"
                                 if bad[0][0] == 431 else ""))
            self.skip.add(what)
        return not bad

    def expect_status(self, server, token, want, what):
        bad = check_statuses(self.servers[server].port, TARGET_PATH, [token], want)
        if bad:
            raise BenchError("%s: %s answered %s, expected %d (is it configured right?)"
                             % (what, server, bad[0][0], want))

    # -- measurements -----------------------------------------------------
    def openssl_speed(self):
        out = run(["openssl", "speed", "-seconds", "3", "rsa2048"], 120, cpu_role="proxy",
                  procs=self.procs)
        m = re.search(r"^rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)\s*$", out, re.M)
        if not m:
            raise BenchError("cannot parse `openssl speed rsa2048` output:\n" + out[-800:])
        return float(m.group(2))

    def startup_once(self, conf, port, token):
        t0 = time.monotonic()
        p = self.procs.start("authgate-startup", [os.path.join(self.build, "authgate"), "run",
                                                  "-c", conf], "proxy")
        deadline = t0 + 10
        ms = None
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise BenchError("authgate exited during the startup test:\n"
                                 + self.procs.err_tail("authgate-startup"))
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=1)
            except OSError:
                time.sleep(0.0005)
                continue
            try:
                st = http_get(s, TARGET_PATH, token)
            except (OSError, ConnectionError):
                st = None
            finally:
                s.close()
            if st == 200:
                ms = (time.monotonic() - t0) * 1000
                break
            time.sleep(0.0005)
        if ms is None:
            self.procs.stop(p)
            raise BenchError("authgate did not serve a 200 within 10 s of starting")
        return p, ms

    def idle_rss(self, p, port, token, nconn=1000):
        """Open nconn keep-alive connections, one request each, then let them idle."""
        before = rss_kb(p.pid)
        socks = []
        try:
            for _ in range(nconn):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                socks.append(s)
                st = http_get(s, TARGET_PATH, token)
                if st != 200:
                    raise BenchError("idle-connection request answered %d" % st)
            time.sleep(1.0)
            # All still open? A closed socket reads EOF immediately.
            for s in socks:
                s.setblocking(False)
                try:
                    if s.recv(1) == b"":
                        raise BenchError("authgate closed an idle connection within 1 s")
                except BlockingIOError:
                    pass
            after = rss_kb(p.pid)
        finally:
            for s in socks:
                s.close()
        return before, after

    def stream_rss(self, port, token, nbytes):
        """RSS range of authgate while nbytes stream up and then down."""
        pid = self.servers["authgate-stream"].pid
        out = {}
        for direction in ("up", "down"):
            samples = []
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    try:
                        samples.append(rss_kb(pid))
                    except BenchError:
                        pass
                    time.sleep(0.02)
            th = threading.Thread(target=sample, daemon=True)
            base = rss_kb(pid)
            th.start()
            t0 = time.monotonic()
            s = socket.create_connection(("127.0.0.1", port), timeout=60)
            try:
                if direction == "up":
                    head = ("POST /stream/upload HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer %s"
                            "\r\nContent-Length: %d\r\nContent-Type: application/octet-stream"
                            "\r\n\r\n" % (token, nbytes))
                    s.sendall(head.encode())
                    chunk = b"\0" * (256 * 1024)
                    left = nbytes
                    while left > 0:
                        n = min(left, len(chunk))
                        s.sendall(chunk[:n])
                        left -= n
                    st = read_response(s)
                    got = nbytes
                else:
                    head = ("GET /stream/__echo/bytes/%d HTTP/1.1\r\nHost: b\r\n"
                            "Authorization: Bearer %s\r\n\r\n" % (nbytes, token))
                    s.sendall(head.encode())
                    buf = b""
                    while b"\r\n\r\n" not in buf:
                        c = s.recv(65536)
                        if not c:
                            raise BenchError("stream download: closed before head")
                        buf += c
                    headtxt, rest = buf.split(b"\r\n\r\n", 1)
                    st = int(headtxt.split()[1])
                    got = len(rest)
                    while got < nbytes:
                        c = s.recv(1 << 20)
                        if not c:
                            break
                        got += len(c)
            finally:
                s.close()
                stop.set()
                th.join()
            secs = time.monotonic() - t0
            if st != 200 or got < nbytes:
                raise BenchError("stream %s: status %s, %d of %d bytes" % (direction, st, got,
                                                                           nbytes))
            out[direction] = {"base": base, "min": min(samples + [base]),
                              "max": max(samples + [base]), "secs": secs}
        return out

    # -- main -------------------------------------------------------------
    def run(self):
        b = self.build
        if not os.access(os.path.join(b, "ag-echo"), os.X_OK):
            raise BenchError("%s/ag-echo is missing: run `make` first" % b)
        have_ag = os.access(os.path.join(b, "authgate"), os.X_OK)
        if not have_ag:
            self.notes.append("%s/authgate is missing: authgate rows skipped, tokens minted by "
                              "the harness's openssl fallback" % b)
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
        except (ValueError, OSError):
            pass
        log("temp dir %s; %s; %d × %d s per target%s"
            % (self.tmp, "proxies on CPU 0, backend + wrk on CPU 1" if self.procs.multi_cpu
               else "single CPU: no pinning", self.reps, self.dur,
               " (quick)" if self.quick else ""))
        self.extra["loadavg_start"] = os.getloadavg()
        self.priv, self.pub = make_keys(self.tmp)
        tok = {n: (mint(b, self.priv, n) if have_ag else py_mint(self.priv, n))
               for n in (1, 10, 50)}
        self.tokens = tok
        self.extra["token_bytes"] = {n: len(t) for n, t in tok.items()}
        if os.environ.get("AG_ECHO"):
            self.notes.append("backend binary overridden: AG_ECHO=%s" % os.environ["AG_ECHO"])
        backend = self.start_backend()
        # Every proxy must enforce the same policy, or the comparison is void.
        if have_ag:
            neg = [("expired", mint(b, self.priv, 1, extra=["--exp-offset", "-120"]), 401),
                   ("wrong issuer", mint(b, self.priv, 1, issuer="https://evil.local"), 401),
                   ("Member role", mint(b, self.priv, 1, orgs=["%s:Bench Org:Member" % ORG]),
                    403)]
        else:
            neg = []

        # Every server is started first and loaded one at a time.
        self.start_nginx(backend)
        self.expect_status("nginx", tok[1], 200, "nginx plain")
        if self.want("haproxy", "orgs50", "scaling"):
            self.start_haproxy(backend, self.pub)
            self.expect_status("haproxy", tok[1], 200, "haproxy valid token")
            self.soft_status("haproxy", tok[50], 200, "haproxy-50org")
            forged = tok[1].rsplit(".", 1)[0] + "." + b64u(os.urandom(256))
            self.expect_status("haproxy", forged, 401, "haproxy forged token")
            for what, t, st in neg:
                self.expect_status("haproxy", t, st, "haproxy " + what)
        if self.want("node"):
            if self.start_node(backend, self.pub):
                self.expect_status("node", tok[1], 200, "node valid token")
                for what, t, st in neg:
                    self.expect_status("node", t, st, "node " + what)
        if have_ag:
            self.start_authgate("authgate", backend, 10)
            self.expect_status("authgate", tok[1], 200, "authgate valid token")
            if self.want("orgs50", "scaling", "bighead"):
                self.start_authgate("authgate-big", backend, 10, big_heads=True)
                self.expect_status("authgate-big", tok[1], 200, "authgate-big valid token")
                self.soft_status("authgate-big", tok[50], 200, "authgate-50org")
            for what, t, st in neg:
                self.expect_status("authgate", t, st, "authgate " + what)
            if self.want("forged", "garbage"):
                self.start_authgate("authgate-reject", backend, 10)
            if self.want("routes", "scaling"):
                self.start_authgate("authgate-10k", backend, 10000)
                self.expect_status("authgate-10k", tok[1], 200, "authgate 10k routes")
            if self.want("scaling"):
                self.start_authgate("authgate-1k", backend, 1000)
            if self.want("cors"):
                self.start_authgate("authgate-cors", backend, 10, cors=True)
                self.expect_status("authgate-cors", tok[1], 200, "authgate with cors")

        if have_ag and self.want("forwardauth"):
            self.start_authgate_fa("authgate-fa", backend)
            for t, want in ((tok[1], 200), (neg[2][1], 403), (neg[0][1], 401)):
                got = self.fa_status(self.servers["authgate-fa"].port, t)
                if got != want:
                    raise BenchError("authgate forward-auth answered %d, expected %d" % (got, want))
            self.start_nginx_named("nginx-200", backend, NGINX_RETURN_200)
            self.start_nginx_named("nginx-authreq", backend, NGINX_AUTH_REQUEST,
                                   fa=self.servers["authgate-fa"].port)
            self.expect_status("nginx-authreq", tok[1], 200, "nginx auth_request valid token")
            self.expect_status("nginx-authreq", neg[2][1], 403, "nginx auth_request Member role")

        forged_file = os.path.join(self.tmp, "forged.txt")
        garbage_file = os.path.join(self.tmp, "garbage.txt")
        write_forged(forged_file, tok[1], 10000)
        write_garbage(garbage_file, 10000)
        script = os.path.join(HERE, "tokens.lua")

        # (run name, server, conns, token, script arg)
        runs = [("nginx", "nginx", 64, tok[1], None), ("authgate", "authgate", 64, tok[1], None)]
        if "haproxy" in self.servers:
            runs.append(("haproxy", "haproxy", 64, tok[1], None))
        if "node" in self.servers:
            runs.append(("node", "node", 64, tok[1], None))
        if self.want("orgs50", "scaling"):
            runs.append(("authgate-50org", "authgate-big", 64, tok[50], None))
            if "haproxy" in self.servers:
                runs.append(("haproxy-50org", "haproxy", 64, tok[50], None))
        if self.want("forged"):
            runs.append(("forged", "authgate-reject", 64, None, forged_file))
        if self.want("bighead"):
            # Every row of the shipped config again on the big-head config
            # (max_header_bytes 131072), and nginx forwarding the 50-org token.
            runs.append(("authgate-big-1org", "authgate-big", 64, tok[1], None))
            runs.append(("forged-big", "authgate-big", 64, None, forged_file))
            runs.append(("nginx-50org", "nginx", 64, tok[50], None))
            if "authgate-50org" not in [r[0] for r in runs]:
                runs.append(("authgate-50org", "authgate-big", 64, tok[50], None))
        if self.want("garbage"):
            runs.append(("garbage", "authgate-reject", 64, None, garbage_file))
        if self.want("p99", "scaling"):
            runs.append(("nginx-c8", "nginx", 8, tok[1], None))
            runs.append(("authgate-c8", "authgate", 8, tok[1], None))
        if self.want("routes", "scaling"):
            runs.append(("authgate-10k", "authgate-10k", 64, tok[1], None))
        if self.want("scaling"):
            runs.append(("authgate-1k", "authgate-1k", 64, tok[1], None))
            runs.append(("authgate-10org", "authgate", 64, tok[10], None))
            runs.append(("nginx-c256", "nginx", 256, tok[1], None))
            runs.append(("authgate-c256", "authgate", 256, tok[1], None))

        if self.want("forwardauth"):
            runs.append(("fa-decision", "authgate-fa", 64, tok[1], None))
            runs.append(("nginx-return200", "nginx-200", 64, None, None))
            runs.append(("nginx-authreq", "nginx-authreq", 64, tok[1], None))

        if self.want("cors"):
            runs.append(("cors", "authgate-cors", 64, tok[1], "actual"))
            runs.append(("cors-preflight", "authgate-cors", 64, None, "preflight"))
        runs = [r for r in runs if r[1] in self.servers and r[0] not in self.skip]
        fa_hdrs = ("X-Original-Method: GET", "X-Original-URI: " + TARGET_PATH)

        # Warm up every server once (caches, JIT, upstream pools).
        warmed = set()
        for name, server, conns, token, sarg in runs:
            if server in warmed:
                continue
            warmed.add(server)
            # 256 connections once, so that later peaks do not read as growth.
            scr = os.path.join(HERE, "cors.lua") if name.startswith("cors") else script
            self.wrk(server, 256 if server == "authgate" else 64, 1 if self.quick else 2, token,
                     scr if sarg else None, sarg,
                     headers=fa_hdrs if server == "authgate-fa" else ())
        ag_rss0 = rss_kb(self.servers["authgate"].pid) if have_ag else None
        ag_req0 = 0

        # Round-robin over the repetitions so drift hits every target alike.
        for rep in range(self.reps):
            for name, server, conns, token, sarg in runs:
                log("rep %d/%d: %s (-c%d)" % (rep + 1, self.reps, name, conns))
                scr = os.path.join(HERE, "cors.lua") if name.startswith("cors") else script
                r = self.wrk(server, conns, self.dur, token, scr if sarg else None, sarg,
                             headers=fa_hdrs if server == "authgate-fa" else ())
                self.results.setdefault(name, []).append(r)
                if server == "authgate":
                    ag_req0 += r["requests"]
        if have_ag and not self.quick and ag_req0 < 10 ** 6 and self.want("authgate"):
            # Top up to the 10⁶ requests of the growth target (bounded to 90 s).
            rate = med(self.results["authgate"], "rps") or 1
            secs = int(min(90, max(2, (10 ** 6 - ag_req0) / rate * 1.1 + 1)))
            log("growth top-up: %d s more on authgate (%d requests so far)" % (secs, ag_req0))
            r = self.wrk("authgate", 64, secs, tok[1])
            ag_req0 += r["requests"]
        if have_ag:
            self.extra["growth"] = {"requests": ag_req0, "rss0": ag_rss0,
                                    "rss1": rss_kb(self.servers["authgate"].pid)}

        # Status checks for the reject streams: wrk only counts "non-2xx".
        for name, path in (("forged", forged_file), ("garbage", garbage_file),
                           ("forged-big", forged_file)):
            if name not in self.results:
                continue
            with open(path) as f:
                lines = [l.rstrip("\n") for l in f]
            n = 500 if self.quick else 3000
            sample = [lua_token(lines[i % len(lines)], 10 ** 9 + i) for i in range(n)]
            server = "authgate-big" if name == "forged-big" else "authgate-reject"
            bad = check_statuses(self.servers[server].port, TARGET_PATH, sample, 401)
            self.extra[name + "_check"] = (n, len(bad), bad[:3])

        if self.want("forged", "garbage", "bighead") and have_ag:
            log("openssl speed rsa2048 (CPU 0)")
            self.extra["rsa_verify"] = self.openssl_speed()

        if self.want("startup", "rss") and have_ag:
            conf, port = self.write_authgate_config("authgate-startup", backend, 10)
            times = []
            p = None
            for i in range(3 if not self.quick else 2):
                if p is not None:
                    self.procs.stop(p)
                p, ms = self.startup_once(conf, port, tok[1])
                times.append(ms)
            self.extra["startup_ms"] = times
            if self.want("rss"):
                log("1000 idle keep-alive connections")
                self.extra["idle_rss"] = self.idle_rss(p, port, tok[1])
            self.procs.stop(p)

        if self.want("idle") and have_ag:
            # Idle keep-alive clients on both configs: each connection has
            # made one request (so its pool has been used) and then waits.
            self.extra["idle_rows"] = []
            for big in (False, True):
                for n in (1000, 10000):
                    name = "authgate-idle-%s-%d" % ("big" if big else "default", n)
                    conf, port = self.write_authgate_config(name, backend, 10, big_heads=big,
                                                            many_conns=True)
                    p, _ = self.startup_once(conf, port, tok[1])
                    try:
                        log("%d idle keep-alive connections (%s config)"
                            % (n, "big-head" if big else "default"))
                        before, after = self.idle_rss(p, port, tok[1], n)
                    finally:
                        self.procs.stop(p)
                    self.extra["idle_rows"].append((big, n, before, after))

        if self.want("stream") and have_ag:
            sb = self.start_backend("backend-stream", fixed=False)
            self.start_authgate("authgate-stream", backend, 10, stream_backend=sb)
            nbytes = (256 if self.quick else 1024) * 1024 * 1024
            log("streaming %d MiB up and down through authgate" % (nbytes >> 20))
            self.extra["stream"] = (nbytes, self.stream_rss(self.servers["authgate-stream"].port,
                                                            tok[1], nbytes))

        if self.want("websocket") and have_ag:
            self.websocket(tok[1])

    def websocket(self, token):
        """64 WebSocket clients (BUILD/ag-wsbench client) exchanging 32-byte binary
        messages in a closed loop with an echo server (ag-wsbench echo), straight and
        through authgate; authgate's CPU per round trip and RSS before and after. Echo
        and clients on the load CPU, authgate on the proxy CPU. Both peers are
        single-threaded C so the load CPU has room to spare and the ratio is the
        gateway's; a Python peer saturated that CPU and the ratio measured Python."""
        wsb = os.path.join(self.build, "ag-wsbench")
        if not os.access(wsb, os.X_OK):
            self.notes.append("websocket rows skipped: %s is missing (run `make`)" % wsb)
            return
        wport = free_port()
        p = self.procs.start("ws-backend", [wsb, "echo", "--listen", "127.0.0.1:%d" % wport],
                             "load")
        wait_port(wport, p, "ws-backend", self.procs)
        port = free_port()
        conf = os.path.join(self.tmp, "authgate-ws.yaml")
        with open(conf, "w") as f:
            f.write("listen: 127.0.0.1:%d\nworkers: 1\nauth:\n  verifier_key_file: %s\n"
                    "  issuer: %s\nlog:\n  access_log: \"off\"\n  level: warn\n"
                    "upstreams:\n  ws: { url: \"http://127.0.0.1:%d\" }\n"
                    "routes:\n  - path: /ws/**\n    policy: require_user\n"
                    "    websocket: true\n" % (port, self.pub, ISSUER, wport))
        ag = self.procs.start("authgate-ws", [os.path.join(self.build, "authgate"), "run", "-c",
                                              conf], "proxy")
        wait_port(port, ag, "authgate-ws", self.procs)
        targets = [("ws-direct", "ws://127.0.0.1:%d/ws/echo" % wport, []),
                   ("ws-authgate", "ws://127.0.0.1:%d/ws/echo" % port,
                    ["--header", "Authorization: Bearer " + token])]
        if shutil.which("nginx") or os.access("/usr/sbin/nginx", os.X_OK):
            self.start_nginx_named("nginx-ws", wport, NGINX_WS_PROXY)
            targets.append(("ws-nginx", "ws://127.0.0.1:%d/ws/echo"
                            % self.servers["nginx-ws"].port, []))
        # Interleaved runs, at least three even with --quick, compared by median.
        conns, secs, reps = 64, (3 if self.quick else self.dur), max(3, self.reps)
        out = {"rss": [rss_kb(ag.pid)]}
        for rep in range(reps):
            for name, url, hdr in targets:
                log("rep %d/%d: %s (%d WebSocket clients)" % (rep + 1, reps, name, conns))
                c0, e0 = cpu_seconds(ag.pid), cpu_seconds(p.pid)
                k0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                r = json.loads(run([wsb, "client", "--url", url] + hdr +
                                   ["--conns", str(conns), "--seconds", str(secs), "--size", "32"],
                                   secs + 60, cpu_role="load", procs=self.procs))
                c1, e1 = cpu_seconds(ag.pid), cpu_seconds(p.pid)
                k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                if r["errors"] or not r["round_trips"]:
                    raise BenchError("%s: %d of %d WebSocket clients failed, %d round trips"
                                     % (name, r["errors"], conns, r["round_trips"]))
                # How busy the load CPU was (echo + clients): well under 100% means
                # the peers did not set the pace.
                peer = (e1 - e0) + (k1.ru_utime + k1.ru_stime - k0.ru_utime - k0.ru_stime)
                res = out.setdefault(name, [])
                res.append({"rps": r["per_s"], "p50": r["p50_ms"], "p99": r["p99_ms"],
                            "load_cpu": peer / r["secs"]})
                if name == "ws-authgate":
                    out["rss"].append(rss_kb(ag.pid))
                    # Two messages relayed per round trip; the 64 handshakes are included.
                    res[-1]["cpu_us"] = (c1 - c0) * 1e6 / r["round_trips"]
        self.extra["websocket"] = out

    def stop(self):
        self.extra["loadavg_end"] = os.getloadavg()
        self.procs.stop_all()


# ---------------------------------------------------------------------------
# report

def med(rs, key):
    vals = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt_rps(v):
    return "—" if v is None else "{:,.0f}".format(v)


def fmt_ms(v):
    return "—" if v is None else "%.2f" % v


def fmt_x(v):
    return "—" if v is None else "%.2f×" % v


def yes(ok):
    return "—" if ok is None else ("yes" if ok else "**no**")


def report(bench):
    R = bench.results
    E = bench.extra
    rows = []
    detail = []

    def m(name, key="rps"):
        return med(R[name], key) if name in R else None

    ng = m("nginx")

    def ratio(v, base=None):
        base = ng if base is None else base
        return None if v is None or not base else v / base

    def row(target, name, measured, goal, ok):
        rps = m(name) if name else None
        cpu = m(name, "cpu_us") if name else None
        rows.append([target, fmt_rps(rps), fmt_ms(m(name, "p50") if name else None),
                     fmt_ms(m(name, "p99") if name else None),
                     "—" if cpu is None else "%.1f" % cpu, fmt_x(ratio(rps)), measured,
                     goal, yes(ok)])

    ag = m("authgate")
    row("nginx plain proxy_pass (no auth), 64 conns", "nginx", "baseline", "—", None)
    r = ratio(ag)
    row("authgate, valid 1-org token, min role Admin", "authgate", fmt_x(r), "≥ 1.0× nginx",
        None if r is None else r >= 1.0)
    if "haproxy" in R:
        hp = m("haproxy")
        x = ag / hp if ag and hp else None
        row("HAProxy 2.6 jwt_verify + iss/exp + role ACL", "haproxy",
            "authgate = %s this" % fmt_x(x), "authgate ≥ 2× this", None if x is None else x >= 2)
    if "node" in R:
        nd = m("node")
        x = ag / nd if ag and nd else None
        row("Node express + @propelauth/express", "node", "authgate = %s this" % fmt_x(x),
            "authgate ≥ 10× this", None if x is None else x >= 10)
    elif "node" in bench.only:
        rows.append(["Node express + @propelauth/express", "—", "—", "—", "—", "—",
                     "skipped (see notes)", "authgate ≥ 10× this", "—"])
    if "authgate-50org" in R:
        r50 = ratio(m("authgate-50org"))
        row("authgate, 50-org token (%d B)" % E["token_bytes"][50], "authgate-50org", fmt_x(r50),
            "≥ 0.8× nginx", None if r50 is None else r50 >= 0.8)
    if "haproxy-50org" in R:
        row("HAProxy jwt_verify, 50-org token (reference)", "haproxy-50org", "—", "—", None)
    for name, what in (("cors", "authgate with cors, valid token + allowed Origin"),
                       ("cors-preflight", "authgate answering CORS preflights (204, not forwarded)")):
        if name in R:
            rc = ratio(m(name), ag)
            all2xx = all(x["non2xx"] == 0 for x in R[name])
            row(what, name, "%s authgate; %s" % (fmt_x(rc), "all 2xx" if all2xx else "NOT all 2xx"),
                "≥ 0.95× authgate" if name == "cors" else "≥ 1.0× authgate",
                None if rc is None else all2xx and rc >= (0.95 if name == "cors" else 1.0))
    if "nginx-50org" in R:
        n50 = m("nginx-50org")
        row("nginx plain forwarding the same 50-org token", "nginx-50org", "baseline of the next row",
            "—", None)
        x = m("authgate-50org") / n50 if "authgate-50org" in R and n50 else None
        row("authgate, 50-org token, vs nginx with the same token", "authgate-50org",
            "%s nginx-50org" % fmt_x(x), "≥ 0.8× nginx-50org", None if x is None else x >= 0.8)
    if "authgate-big-1org" in R:
        r = ratio(m("authgate-big-1org"))
        row("authgate, max_header_bytes 131072, valid 1-org token", "authgate-big-1org", fmt_x(r),
            "≥ 1.0× nginx", None if r is None else r >= 1.0)
    rsa = E.get("rsa_verify")
    if "forged" in R:
        fr = m("forged")
        n, nbad, _ = E.get("forged_check", (0, 0, []))
        allrej = all(x["non2xx"] == x["requests"] for x in R["forged"]) and nbad == 0
        x = fr / rsa if rsa else None
        fc = med(R["forged"], "cpu_us")
        cap = " (by CPU/req: %s)" % fmt_x(1e6 / fc / rsa) if fc and rsa else ""
        row("authgate, distinct forged signatures (all 401)", "forged",
            "%s RSA verify/s%s; %s" % (fmt_x(x), cap, "all 401" if allrej else "NOT all 401"),
            "≥ 0.8× RSA verify rate", None if x is None else (x >= 0.8 and allrej))
    if "forged-big" in R:
        r = ratio(m("forged-big"))
        n, nbad, _ = E.get("forged-big_check", (0, 0, []))
        allrej = all(x["non2xx"] == x["requests"] for x in R["forged-big"]) and nbad == 0
        row("authgate, max_header_bytes 131072, distinct forged signatures", "forged-big",
            "%s nginx; %s" % (fmt_x(r), "all 401" if allrej else "NOT all 401"), "≥ 1.0× nginx",
            None if r is None else (r >= 1.0 and allrej))
    if "forged" in R:
        r = ratio(m("forged"))
        row("authgate, distinct forged signatures, vs nginx plain", "forged", fmt_x(r),
            "≥ 1.0× nginx", None if r is None else r >= 1.0)
    if rsa:
        rows.append(["`openssl speed rsa2048` verify, CPU 0", fmt_rps(rsa), "—", "—",
                     "%.1f" % (1e6 / rsa), fmt_x(ratio(rsa)), "%.1f µs/verify" % (1e6 / rsa), "reference", "—"])
    if "garbage" in R:
        g_cpu = med(R["garbage"], "cpu_us")
        f_cpu = med(R["forged"], "cpu_us") if "forged" in R else None
        n, nbad, _ = E.get("garbage_check", (0, 0, []))
        allrej = all(x["non2xx"] == x["requests"] for x in R["garbage"]) and nbad == 0
        ok = None
        meas = "%.1f µs CPU/req" % g_cpu if g_cpu is not None else "—"
        if g_cpu is not None and f_cpu is not None and rsa:
            # Skipping RSA shows as at least half a verify less CPU than a forged token.
            ok = allrej and (f_cpu - g_cpu) >= 0.5 * 1e6 / rsa
            meas += " vs forged %.1f" % f_cpu
        meas += "; all 401" if allrej else "; NOT all 401"
        row("authgate, structurally invalid tokens", "garbage", meas,
            "no RSA: ≥ ½ verify less CPU than forged", ok)
    if "authgate-c8" in R:
        p_ng, p_ag = m("nginx-c8", "p99"), m("authgate-c8", "p99")
        row("nginx plain, 8 conns", "nginx-c8", "p99 baseline", "—", None)
        d = p_ag - p_ng if p_ag is not None and p_ng is not None else None
        row("authgate, 8 conns", "authgate-c8", "p99 %+.3f ms vs nginx" % d if d is not None
            else "—", "p99 ≤ nginx + 0.2 ms", None if d is None else d <= 0.2)
    if "idle_rss" in E:
        before, after = E["idle_rss"]
        rows.append(["authgate RSS, 1,000 idle keep-alive conns", "—", "—", "—", "—", "—",
                     "%.1f MB (%.1f MB before)" % (after / 1024, before / 1024), "≤ 30 MB",
                     yes(after / 1024 <= 30)])
    for big, n, before, after in E.get("idle_rows", ()):
        goal = "≤ 30 MB" if n == 1000 else "—"
        rows.append(["authgate RSS, %s idle keep-alive conns, %s config"
                     % ("{:,}".format(n), "max_header_bytes 131072" if big else "default"),
                     "—", "—", "—", "—", "—",
                     "%.1f MB (%.1f MB before; %.1f KB/conn)"
                     % (after / 1024, before / 1024, (after - before) / n),
                     goal, yes(after / 1024 <= 30) if n == 1000 else "—"])
    if "stream" in E:
        nbytes, st = E["stream"]
        for d in ("up", "down"):
            s = st[d]
            spread = (s["max"] - s["min"]) / 1024
            rows.append(["authgate RSS while %d MiB stream %s" % (nbytes >> 20, d), "—", "—", "—",
                         "—", "—", "%.1f–%.1f MB (±%.1f), %.0f MB/s"
                         % (s["min"] / 1024, s["max"] / 1024, spread / 2,
                            nbytes / 1e6 / s["secs"]),
                         "flat ± 5 MB", yes(spread / 2 <= 5)])
    if "websocket" in E:
        w = E["websocket"]
        d, a = med(w["ws-direct"], "rps"), med(w["ws-authgate"], "rps")

        def busy(name):
            return "load CPU %.0f%% busy" % (100 * med(w[name], "load_cpu"))
        rows.append(["64 WebSocket clients, 32 B echo, straight to the backend", fmt_rps(d),
                     fmt_ms(med(w["ws-direct"], "p50")), fmt_ms(med(w["ws-direct"], "p99")),
                     "—", "—", "baseline (round trips/s); " + busy("ws-direct"), "—", "—"])
        if "ws-nginx" in w:
            n = med(w["ws-nginx"], "rps")
            rows.append(["64 WebSocket clients, 32 B echo, through nginx (no auth)", fmt_rps(n),
                         fmt_ms(med(w["ws-nginx"], "p50")), fmt_ms(med(w["ws-nginx"], "p99")),
                         "—", "—", "%s direct; authgate = %s this" % (fmt_x(n / d), fmt_x(a / n)),
                         "—", "—"])
        rss_spread = (max(w["rss"]) - min(w["rss"])) / 1024
        rows.append(["64 WebSocket clients, 32 B echo, through authgate", fmt_rps(a),
                     fmt_ms(med(w["ws-authgate"], "p50")), fmt_ms(med(w["ws-authgate"], "p99")),
                     "%.1f" % med(w["ws-authgate"], "cpu_us"), "—",
                     "%s direct; RSS %.1f–%.1f MB; %s" % (fmt_x(a / d), min(w["rss"]) / 1024,
                                                         max(w["rss"]) / 1024,
                                                         busy("ws-authgate")),
                     "≥ 0.8× direct, flat RSS", yes(a / d >= 0.8 and rss_spread <= 5)])
    if "growth" in E:
        g = E["growth"]
        dmb = (g["rss1"] - g["rss0"]) / 1024
        rows.append(["authgate RSS growth over the run", "—", "—", "—", "—", "—",
                     "%+.1f MB over %s requests" % (dmb, "{:,}".format(g["requests"])),
                     "no growth (≤ 5 MB) over 10⁶",
                     yes(dmb <= 5) if g["requests"] >= 10 ** 6 else "— (< 10⁶ requests)"])
    if "authgate-10k" in R:
        x = ratio(m("authgate-10k"), ag)
        c10, c10k = m("authgate", "cpu_us"), m("authgate-10k", "cpu_us")
        cx = c10 / c10k if c10 and c10k else None
        row("authgate, 10,000-route config", "authgate-10k",
            "%s the 10-route config (by CPU/req: %s)" % (fmt_x(x), fmt_x(cx)),
            "≥ 0.95× 10 routes", None if x is None else x >= 0.95)
    if "fa-decision" in R:
        r200 = m("nginx-return200")
        row("nginx `return 200`, 1 core", "nginx-return200", "decision peer", "—", None)
        x = ratio(m("fa-decision"), r200)
        row("authgate forward-auth decision alone, 1 thread", "fa-decision",
            "%s nginx return 200" % fmt_x(x), "≥ 0.8× nginx return 200",
            None if x is None else x >= 0.8)
        x = ratio(m("nginx-authreq"))
        row("nginx + auth_request + authgate (end to end)", "nginx-authreq",
            "%s nginx plain proxy" % fmt_x(x), "reported", None)
    if "startup_ms" in E:
        ms = statistics.median(E["startup_ms"])
        rows.append(["authgate start → first 200 (manual key)", "—", "—", "—", "—", "—",
                     "%.1f ms (median of %d)" % (ms, len(E["startup_ms"])), "≤ 50 ms",
                     yes(ms <= 50)])

    head = ["target", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "× nginx", "measured", "goal",
            "met?"]
    assert all(len(r) == len(head) for r in rows), [r[0] for r in rows if len(r) != len(head)]
    table = [head, ["---"] * len(head)] + rows

    # detail: every run with CPU per request and error counts
    for name, rs in R.items():
        detail.append([name, fmt_rps(med(rs, "rps")), fmt_ms(med(rs, "p50")),
                       fmt_ms(med(rs, "p99")),
                       "—" if med(rs, "cpu_us") is None else "%.1f" % med(rs, "cpu_us"),
                       "—" if not med(rs, "cpu_us") else fmt_rps(1e6 / med(rs, "cpu_us")),
                       " / ".join(fmt_rps(r["rps"]) for r in rs),
                       str(sum(r["non2xx"] for r in rs)), str(sum(r["errors"] for r in rs))])
    dhead = ["run", "req/s (median)", "p50 ms", "p99 ms", "server CPU µs/req",
             "1 core ÷ CPU/req", "each run",
             "non-2xx", "socket errors"]
    dtable = [dhead, ["---"] * len(dhead)] + detail
    return table, dtable


def md_table(t):
    return "\n".join("| " + " | ".join(r) + " |" for r in t)


def text_table(t):
    rows = [r for r in t if r[0] != "---"]
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for i, r in enumerate(rows):
        out.append("  ".join(c.ljust(w[j]) for j, c in enumerate(r)).rstrip())
        if i == 0:
            out.append("  ".join("-" * x for x in w))
    return "\n".join(out)


def scaling_tables(bench):
    R = bench.results
    E = bench.extra
    out = []

    def cell(name, key="rps"):
        return med(R[name], key) if name in R else None
    ag = cell("authgate")
    ng = cell("nginx")
    # token size
    t = [["orgs in token", "token bytes", "authgate req/s", "× nginx", "authgate CPU µs/req",
          "HAProxy req/s"], ["---"] * 6]
    for n, name, hname in ((1, "authgate", "haproxy"), (10, "authgate-10org", None),
                           (50, "authgate-50org", "haproxy-50org")):
        v = cell(name)
        if v is None:
            continue
        c = cell(name, "cpu_us")
        t.append([str(n), "{:,}".format(E["token_bytes"][n]), fmt_rps(v), fmt_x(v / ng if ng else None),
                  "—" if c is None else "%.1f" % c, fmt_rps(cell(hname)) if hname else "—"])
    if len(t) > 3:
        out.append(("Token size (authgate, 64 connections)", t))
    t = [["routes in config", "authgate req/s", "× 10 routes", "authgate CPU µs/req"], ["---"] * 4]
    for n, name in ((10, "authgate"), (1000, "authgate-1k"), (10000, "authgate-10k")):
        v = cell(name)
        if v is None:
            continue
        c = cell(name, "cpu_us")
        t.append(["{:,}".format(n), fmt_rps(v), fmt_x(v / ag if ag else None),
                  "—" if c is None else "%.1f" % c])
    if len(t) > 3:
        out.append(("Route count (1-org token, 64 connections)", t))
    t = [["connections", "nginx req/s", "nginx p50 / p99 ms", "authgate req/s",
          "authgate p50 / p99 ms", "× nginx"], ["---"] * 6]
    for c, ngn, agn in ((8, "nginx-c8", "authgate-c8"), (64, "nginx", "authgate"),
                        (256, "nginx-c256", "authgate-c256")):
        a, n_ = cell(agn), cell(ngn)
        if a is None or n_ is None:
            continue
        t.append([str(c), fmt_rps(n_), "%s / %s" % (fmt_ms(cell(ngn, "p50")), fmt_ms(cell(ngn, "p99"))),
                  fmt_rps(a), "%s / %s" % (fmt_ms(cell(agn, "p50")), fmt_ms(cell(agn, "p99"))),
                  fmt_x(a / n_)])
    if len(t) > 3:
        out.append(("Connection count (1-org token)", t))
    return out


def versions():
    def first(argv):
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
            return r.stdout.decode("utf-8", "replace").strip().splitlines()[0]
        except (OSError, subprocess.TimeoutExpired, IndexError):
            return "?"
    return {
        "nginx": first(["nginx", "-v"]),
        "haproxy": first(["haproxy", "-v"]),
        "wrk": first(["wrk", "-v"]),
        "node": first(["node", "--version"]),
        "openssl": first(["openssl", "version"]),
    }


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def git_rev():
    try:
        r = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10)
        return r.stdout.decode().strip() or "?"
    except OSError:
        return "?"


def write_markdown(bench, table, dtable, path):
    v = versions()
    lines = [
        "# authgate benchmark: latest run",
        "",
        "Written by `make bench` (bench/run.sh). Method: docs/performance.md.",
        "",
        "- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "- commit: %s; machine: %d CPUs, %s" % (git_rev(), os.cpu_count() or 0, cpu_model()),
        "- mode: %s; wrk -t1, keep-alive, %d s per run, median of %d run(s), round-robin order"
        % ("quick" if bench.quick else "full", bench.dur, bench.reps),
        "- pinning: %s; one worker per proxy" % ("proxy on CPU 0, backend + wrk on CPU 1"
                                               if bench.procs.multi_cpu else "none (1 CPU)"),
        "- %s" % "; ".join("%s: %s" % kv for kv in v.items()),
        "- load average (1/5/15 min) before: %s, after: %s — other work on the machine "
        "shows here and skews absolute figures; ratios within one run hold up better, "
        "and CPU µs/req (from /proc) best"
        % ("/".join("%.2f" % x for x in bench.extra.get("loadavg_start", ())),
           "/".join("%.2f" % x for x in bench.extra.get("loadavg_end", ()))),
        "",
        md_table(table),
        "",
    ]
    if bench.notes:
        lines += ["Notes:", ""] + ["- " + n for n in bench.notes] + [""]
    for title, t in scaling_tables(bench):
        lines += ["## " + title, "", md_table(t), ""]
    lines += ["## Every run", "", md_table(dtable), ""]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", help="build directory with authgate and ag-echo")
    ap.add_argument("--quick", action="store_true", help="1 run of 3 s per target")
    ap.add_argument("--only", help="comma-separated subset of: " + ", ".join(GROUPS))
    ap.add_argument("--no-write", action="store_true", help="do not write bench/results/latest.md")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, logs)")
    args = ap.parse_args()

    bench = None

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    rc = 0
    try:
        bench = Bench(args)
        bench.run()
    except BenchError as e:
        log("error: %s" % e)
        rc = 1
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    finally:
        if bench is not None:
            bench.stop()
    if bench is None:
        return rc or 1
    if bench.results:
        table, dtable = report(bench)
        print()
        print(text_table(table))
        for n in bench.notes:
            print("note: " + n)
        print()
        if rc == 0:
            if args.no_write:
                path = os.path.join(bench.tmp, "latest.md")
            else:
                path = os.path.join(HERE, "results", "latest.md")
                os.makedirs(os.path.dirname(path), exist_ok=True)
            write_markdown(bench, table, dtable, path)
            with open(path[:-3] + ".json", "w") as f:
                json.dump({"results": bench.results, "extra": bench.extra, "notes": bench.notes,
                           "dur": bench.dur, "reps": bench.reps}, f, indent=1, default=str)
            log("wrote %s (and .json)" % os.path.relpath(path, ROOT))
    if args.keep_tmp:
        log("kept %s" % bench.tmp)
    else:
        shutil.rmtree(bench.tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
