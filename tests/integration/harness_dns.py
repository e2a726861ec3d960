"""Host names for integration tests without a DNS server: a command runs in a
private mount namespace where /etc/hosts is a bind mount of a temp file with
extra entries. Only that process (and its children) sees the names; the real
/etc/hosts is never written.

    hosts = HostsFile({"multi.authgate.test": ["127.0.0.1", "127.0.0.3"]})
    order = hosts.order("multi.authgate.test")     # getaddrinfo order, in the namespace
    proc = hosts.popen([authgate, "run", "-c", cfg], stdout=..., stderr=...)
    gw = NsGateway(config, hosts)                   # harness.Gateway, inside the namespace

Needs root (or CAP_SYS_ADMIN) for unshare -m and mount; unavailable() says why
not, so a test can skip instead of fail. `unshare` without --fork execs its
command, and the shell execs the target, so Popen.pid is the target's own pid
and harness.stop_proc / run.py's cleanup stop it by pid as usual.

getaddrinfo sorts the addresses of one name (RFC 6724 rules, e.g. 127.0.0.1
before 127.0.0.3 whatever the file order), so tests must ask for the order at
runtime (order()) instead of assuming the file's order.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import harness as H

# $0 is the hosts file, "$@" the command: no quoting of either is needed.
_NS_SCRIPT = 'mount --bind "$0" /etc/hosts && exec "$@"'


def unavailable():
    """None when private /etc/hosts namespaces work here, else the reason."""
    for tool in ("unshare", "mount", "getent"):
        if shutil.which(tool) is None:
            return "%s not installed" % tool
    try:
        r = subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "unshare -m failed: %s" % e
    if r.returncode != 0:
        return "unshare -m needs root or CAP_SYS_ADMIN: %s" % r.stderr.decode(errors="replace")
    return None


class HostsFile:
    """A copy of /etc/hosts plus {name: [address, ...]}, in a temp file."""

    def __init__(self, names, base="/etc/hosts"):
        self.dir = tempfile.mkdtemp(prefix="hosts-", dir=H.tmpdir())
        self.path = os.path.join(self.dir, "hosts")
        try:
            with open(base) as f:
                text = f.read()
        except OSError:
            text = "127.0.0.1 localhost\n::1 localhost\n"
        if text and not text.endswith("\n"):
            text += "\n"
        for name, addrs in names.items():
            for a in addrs:
                text += "%s %s\n" % (a, name)
        with open(self.path, "w") as f:
            f.write(text)

    def argv(self, argv):
        """argv wrapped to run in a namespace that sees this file as /etc/hosts."""
        return ["unshare", "-m", "sh", "-c", _NS_SCRIPT, self.path] + list(argv)

    def popen(self, argv, **kw):
        """subprocess.Popen of argv in the namespace, registered for cleanup."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(self.argv(argv), **kw)
        H._register(proc)
        return proc

    def order(self, name):
        """The addresses getaddrinfo returns for name inside the namespace, in
        its order (TCP entries of `getent ahosts`, duplicates removed)."""
        r = subprocess.run(self.argv(["getent", "ahosts", name]), capture_output=True,
                           timeout=10)
        if r.returncode != 0:
            raise RuntimeError("getent ahosts %s in the namespace: exit %d %s" %
                               (name, r.returncode, r.stderr.decode(errors="replace")))
        out = []
        for line in r.stdout.decode().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1] == "STREAM" and parts[0] not in out:
                out.append(parts[0])
        return out


def free_port_on(*addrs):
    """A TCP port that is free on every one of the given IPv4 loopback addresses
    (so one can be served and the others refuse)."""
    for _ in range(50):
        port = H.free_port()
        ok = True
        for a in addrs:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((a, port))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return port
    raise RuntimeError("no port free on all of %s" % (addrs,))


def wait_listen(addr, port, proc, timeout, what, errfile):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s before listening on %s:%d:\n%s" %
                               (what, proc.returncode, addr, port, H.tail(errfile)))
        try:
            socket.create_connection((addr, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("%s did not listen on %s:%d within %.0fs:\n%s" %
                       (what, addr, port, timeout, H.tail(errfile)))


class EchoAt(H.Echo):
    """BUILD/ag-echo bound to one address and port (--listen), with the same
    record file helpers as harness.Echo."""

    def __init__(self, addr, port):
        self.dir = H.new_tmp("echo-")
        self.addr = addr
        self.port = port
        self.record = os.path.join(self.dir, "record.jsonl")
        self.err = os.path.join(self.dir, "stderr")
        open(self.record, "w").close()
        with open(self.err, "wb") as ef, open(os.path.join(self.dir, "stdout"), "wb") as of:
            self.proc = subprocess.Popen([H.echo_bin(), "--listen", addr, "--port", str(port),
                                          "--record", self.record], stdout=of, stderr=ef,
                                         stdin=subprocess.DEVNULL)
        H._register(self.proc)
        wait_listen(addr, port, self.proc, 10, "ag-echo", self.err)
        self.url = "http://%s:%d" % (addr, port)


class NsGateway(H.Gateway):
    """harness.Gateway, but authgate runs in hosts' namespace (AG_WRAP, e.g.
    valgrind, still applies, inside the namespace)."""

    where = " (in a private /etc/hosts namespace)"

    def __init__(self, config, hosts, **kw):
        self.hosts = hosts
        super().__init__(config, **kw)

    def spawn(self, argv, **kw):
        return self.hosts.popen(argv, **kw)
