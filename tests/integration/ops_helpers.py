"""Helpers shared by the test_ops_* modules (issue 6): a gateway with an admin
listener that the test owns (started, signalled and stopped by the test), a
strict Prometheus text-format parser, and waiting on log lines.

Not a test module itself (run.py only discovers test_*.py)."""

import hashlib
import http.client
import json
import os
import re
import signal
import time

import harness as H


def policy_hash(path):
    """What authgate calls the policy hash: the first 16 hex digits of the
    SHA-256 of the file's exact bytes (docs/configuration.md)."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def write_atomically(path, text):
    """Write a new config the way operators are told to: a new file moved over
    the old one, so the daemon never reads half a file."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def base_config(echo, routes, admin_port=None, **top):
    cfg = {}
    if admin_port is not None:
        cfg["admin_listen"] = "127.0.0.1:%d" % admin_port
    cfg.update(top)
    cfg["auth"] = {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER}
    cfg["upstreams"] = {"app": {"url": echo.url, "connect_timeout_ms": 2000,
                                "timeout_ms": 10000}}
    cfg["routes"] = routes
    return cfg


def config_text(cfg, port):
    """The YAML the harness Gateway would write for cfg on `port`."""
    ordered = {"listen": "127.0.0.1:%d" % port}
    ordered.update({k: v for k, v in cfg.items() if k != "listen"})
    return H.to_yaml(ordered) + "\n"


class Admin:
    def __init__(self, port):
        self.port = port

    def get(self, path, method="GET", timeout=5):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path)
            r = c.getresponse()
            return H.Resp(r.status, r.reason, r.getheaders(), r.read())
        finally:
            c.close()

    def readyz(self):
        r = self.get("/readyz")
        return r.status, json.loads(r.body)

    def metrics(self):
        r = self.get("/metrics")
        if r.status != 200:
            raise AssertionError("/metrics answered %r" % r)
        return parse_prometheus(r.body.decode("utf-8"))


def wait_for(pred, timeout, what, interval=0.01):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def count_lines(path, needle):
    return sum(1 for l in read_text(path).splitlines() if needle in l)


def send_signal(proc, sig=signal.SIGHUP):
    os.kill(proc.pid, sig)


# ---------------------------------------------------------------------------
# Prometheus text exposition format 0.0.4, parsed strictly enough to catch a
# renderer bug: every sample belongs to a family declared by # TYPE before it,
# label values use only the three escapes, no duplicate series, and
# histograms are cumulative with +Inf == _count.

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(r"^(?P<name>%s)(?:\{(?P<labels>.*)\})? (?P<value>\S+)(?: (?P<ts>-?\d+))?$"
                     % _NAME)
_LABEL = re.compile(r'\s*(?P<k>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<v>(?:[^"\\\n]|\\[\\"n])*)"\s*(,|$)')
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class Metrics:
    def __init__(self):
        self.types = {}      # family -> type
        self.helps = {}
        self.samples = {}    # (name, frozenset(labels.items())) -> float
        self.order = []

    def get(self, name, default=None, **labels):
        return self.samples.get((name, frozenset(labels.items())), default)

    def value(self, name, **labels):
        key = (name, frozenset(labels.items()))
        if key not in self.samples:
            have = sorted(dict(l) for n, l in self.samples if n == name)
            raise AssertionError("no series %s%r; series of that name: %r" % (name, labels, have))
        return self.samples[key]

    def series(self, name):
        """[(labels dict, value)] for one sample name."""
        return [(dict(l), v) for (n, l), v in self.samples.items() if n == name]

    def total(self, name, **match):
        return sum(v for l, v in self.series(name) if all(l.get(k) == x for k, x in match.items()))


def _unescape(v):
    return re.sub(r"\\([\\\"n])", lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def _family_of(name, types):
    if name in types:
        return name
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and types.get(name[:-len(suf)]) in ("histogram", "summary"):
            return name[:-len(suf)]
    return None


def _float(s):
    if s in ("+Inf", "Inf"):
        return float("inf")
    if s == "-Inf":
        return float("-inf")
    if s == "NaN":
        return float("nan")
    return float(s)


def parse_prometheus(text):
    m = Metrics()
    if text and not text.endswith("\n"):
        raise AssertionError("exposition does not end with a newline")
    for i, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d %r" % (i, line)
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                if len(parts) != 4 or parts[3] not in _TYPES or not re.fullmatch(_NAME, parts[2]):
                    raise AssertionError("bad TYPE at " + where)
                if parts[2] in m.types:
                    raise AssertionError("second TYPE for %s at %s" % (parts[2], where))
                m.types[parts[2]] = parts[3]
            elif len(parts) >= 3 and parts[1] == "HELP":
                m.helps[parts[2]] = parts[3] if len(parts) > 3 else ""
            continue
        s = _SAMPLE.match(line)
        if not s:
            raise AssertionError("unparsable sample at " + where)
        labels = {}
        raw = s.group("labels")
        if raw:
            pos = 0
            while pos < len(raw):
                lm = _LABEL.match(raw, pos)
                if not lm or lm.end() == pos:
                    raise AssertionError("bad label set at " + where)
                if lm.group("k") in labels:
                    raise AssertionError("duplicate label at " + where)
                labels[lm.group("k")] = _unescape(lm.group("v"))
                pos = lm.end()
        name = s.group("name")
        if _family_of(name, m.types) is None:
            raise AssertionError("sample without a preceding # TYPE at " + where)
        try:
            val = _float(s.group("value"))
        except ValueError:
            raise AssertionError("bad value at " + where)
        key = (name, frozenset(labels.items()))
        if key in m.samples:
            raise AssertionError("duplicate series at " + where)
        m.samples[key] = val
        m.order.append(key)
    _check_histograms(m)
    return m


def _check_histograms(m):
    for fam, t in m.types.items():
        if t != "histogram":
            continue
        groups = {}
        for (n, l), v in m.samples.items():
            if n == fam + "_bucket":
                d = dict(l)
                le = d.pop("le", None)
                if le is None:
                    raise AssertionError("%s bucket without le" % fam)
                groups.setdefault(frozenset(d.items()), []).append((_float(le), v))
        for key, buckets in groups.items():
            buckets.sort()
            vals = [v for _, v in buckets]
            if vals != sorted(vals):
                raise AssertionError("%s%r buckets are not cumulative: %r" %
                                     (fam, dict(key), buckets))
            if buckets[-1][0] != float("inf"):
                raise AssertionError("%s%r has no +Inf bucket" % (fam, dict(key)))
            count = m.samples.get((fam + "_count", key))
            if count is None or m.samples.get((fam + "_sum", key)) is None:
                raise AssertionError("%s%r lacks _sum or _count" % (fam, dict(key)))
            if count != buckets[-1][1]:
                raise AssertionError("%s%r: +Inf bucket %s != _count %s" %
                                     (fam, dict(key), buckets[-1][1], count))
