"""`authgate check` helpers shared by test_sec_org.py (E50) and
test_sec_config.py (group J). Not a test module."""

import os
import re
import subprocess

import harness as H

DIAG = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$")


def base(routes_yaml, extra=""):
    return ("listen: 127.0.0.1:18080\nauth:\n  verifier_key_file: %s\n  issuer: %s\n"
            "upstreams:\n  app: http://127.0.0.1:9\n%sroutes:\n%s"
            % (H.keys("main").public, H.ISSUER, extra, routes_yaml))


def write(name, text, mode=0o600):
    d = H.new_tmp("sec-check-")
    p = os.path.join(d, name + ".yaml")
    with open(p, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
    os.chmod(p, mode)
    return p


def check(path):
    r = subprocess.run([H.authgate_bin(), "check", "-c", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    diags = []
    for line in out.splitlines():
        m = DIAG.match(line)
        if m and m.group("file") == path:
            diags.append((int(m.group("line")), int(m.group("col")), m.group("msg")))
    return r.returncode, out, diags
