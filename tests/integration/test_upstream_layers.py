"""Calls between the upstream modules only go down: upstream.c -> h1client.c /
curlclient.c -> upcore.c. Read from the built objects' symbol tables, so a
call that sneaks back up (a client calling into upstream.c, upcore.c calling
a client, one client calling the other) fails here whatever header it came
through. The sources are checked too: the lower modules include no header of
a module above them or beside them."""

import os
import re
import shutil
import subprocess
import unittest

import harness as H

# Each module may use symbols only from modules in later layers (or from
# outside the upstream group).
LAYERS = [["upstream"], ["h1client", "curlclient"], ["upcore"]]
MODULES = [m for layer in LAYERS for m in layer]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def symbols(obj, *flags):
    out = subprocess.run(["nm", "-g", *flags, obj], capture_output=True, text=True, check=True)
    names = set()
    for line in out.stdout.splitlines():
        parts = line.split()
        if parts:
            names.add(parts[-1])
    return names


class UpstreamLayers(unittest.TestCase):
    def setUp(self):
        if shutil.which("nm") is None:
            self.skipTest("nm (binutils) is not installed")
        self.objs = {m: os.path.join(H.BUILD, "obj", m + ".o") for m in MODULES}
        for m, path in self.objs.items():
            if not os.path.exists(path):
                self.skipTest("no %s: build first (make all)" % path)
        self.defined = {m: symbols(p, "--defined-only") for m, p in self.objs.items()}
        self.used = {m: symbols(p, "-u") for m, p in self.objs.items()}

    def test_calls_only_go_down(self):
        for i, layer in enumerate(LAYERS):
            above_or_beside = [m for l in LAYERS[:i + 1] for m in l]
            for m in layer:
                for other in above_or_beside:
                    if other == m:
                        continue
                    up = sorted(self.used[m] & self.defined[other])
                    self.assertEqual(up, [], "%s.c calls %s.c: %s" % (m, other, ", ".join(up)))

    def test_the_symbol_tables_are_read(self):
        # Without these the check above could pass on empty tables.
        self.assertIn("h1_start", self.used["upstream"] & self.defined["h1client"])
        self.assertIn("cu_start", self.used["upstream"] & self.defined["curlclient"])
        for client in ("h1client", "curlclient"):
            self.assertIn("up_finish", self.used[client] & self.defined["upcore"])
            self.assertIn("up_check_head", self.used[client] & self.defined["upcore"])

    def test_lower_modules_include_nothing_above(self):
        allowed_above = {
            # upcore.h needs the public types (up_result, up_callbacks ...)
            # of the interface; it calls none of its functions (see above).
            "upcore": {"upstream.h"},
            "h1client": {"upstream.h"},
            "curlclient": {"upstream.h"},
        }
        for i, layer in enumerate(LAYERS[1:], start=1):
            banned = {m + ".h" for l in LAYERS[:i + 1] for m in l} | {"upstream_impl.h"}
            for m in layer:
                banned_here = (banned - {m + ".h"}) - allowed_above[m]
                for ext in (".c", ".h"):
                    path = os.path.join(H.REPO, "src", m + ext)
                    with open(path, encoding="utf-8") as f:
                        inc = set(INCLUDE.findall(f.read()))
                    self.assertEqual(sorted(inc & banned_here), [],
                                     "src/%s%s includes a header above it" % (m, ext))


if __name__ == "__main__":
    unittest.main()
