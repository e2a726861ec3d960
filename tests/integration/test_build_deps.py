"""`make test` works as the first command on a fresh machine (issue 13,
finding 7): every build target installs missing libraries before it
compiles, and skips the installer when they are present.

The machine cannot lose its packages for a test, so the test fakes them: a
`pkg-config` first on PATH that fails until a marker file exists, an
installer (INSTALL_DEPS) that logs itself and creates the marker, and a
compiler (CC, FUZZ_CC) that logs its command line and writes its -o file.
make runs on the real Makefile with BUILD in a temporary directory."""

import os
import shutil
import stat
import subprocess
import unittest

import harness as H

# With FAKE_NO_CHECK set, only the unit-test library is missing.
FAKE_PKG_CONFIG = """#!/bin/sh
if [ -n "$FAKE_NO_CHECK" ]; then
    for a in "$@"; do [ "$a" = check ] && exit 1; done
    exec "{real}" "$@"
fi
[ -e "{marker}" ] || exit 1
exec "{real}" "$@"
"""

FAKE_INSTALL = """#!/bin/sh
echo install-deps >> "{log}"
touch "{marker}"
"""

# Logs "cc ARGS" and creates the -o output so archive and link steps run.
FAKE_CC = """#!/bin/sh
echo "cc $*" >> "{log}"
out=""
while [ $# -gt 0 ]; do
    if [ "$1" = -o ]; then out=$2; fi
    shift
done
[ -n "$out" ] && : > "$out"
exit 0
"""


def write_exe(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


class BuildDeps(unittest.TestCase):
    def setUp(self):
        self.real_pkg_config = shutil.which("pkg-config")
        if not self.real_pkg_config or not shutil.which("make"):
            self.skipTest("pkg-config or make not installed")
        self.dir = H.new_tmp("deps-")
        self.bin = os.path.join(self.dir, "bin")
        os.mkdir(self.bin)
        self.log = os.path.join(self.dir, "log")
        self.marker = os.path.join(self.dir, "installed")
        write_exe(os.path.join(self.bin, "pkg-config"),
                  FAKE_PKG_CONFIG.format(marker=self.marker, real=self.real_pkg_config))
        self.install = os.path.join(self.dir, "install-deps")
        write_exe(self.install, FAKE_INSTALL.format(log=self.log, marker=self.marker))
        self.cc = os.path.join(self.dir, "cc")
        write_exe(self.cc, FAKE_CC.format(log=self.log))

    def make(self, *args, build="build", dry=False, env_extra=None):
        env = dict(os.environ, PATH=self.bin + os.pathsep + os.environ["PATH"])
        env.update(env_extra or {})
        for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
            env.pop(k, None)
        argv = ["make", "-C", H.REPO, "--no-print-directory"] + (["-n"] if dry else []) + [
            "BUILD=" + os.path.join(self.dir, build),
            "FUZZ_OUT=" + os.path.join(self.dir, build, "fuzz"), "CC=" + self.cc, "FUZZ_CC=" + self.cc,
            "INSTALL_DEPS=" + self.install] + list(args)
        r = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120)
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, "%s failed:\n%s" % (" ".join(argv), out[-3000:]))
        return out

    def logged(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [l.rstrip("\n") for l in f]

    def test_fresh_machine_installs_before_compiling(self):
        self.make("all")
        lines = self.logged()
        self.assertTrue(lines, "nothing was run")
        self.assertEqual(lines[0], "install-deps",
                         "the first command must be the installer: %r" % lines[:3])
        self.assertEqual(lines.count("install-deps"), 1, lines)
        ccs = [l for l in lines if l.startswith("cc ")]
        self.assertGreater(len(ccs), 2, lines)
        # The flags are the ones pkg-config gives once the libraries are in:
        # the link of the daemon names them, although make started without.
        target = os.path.join(self.dir, "build", "authgate")
        links = [l for l in ccs if ("-o " + target + " ") in l]
        want = subprocess.run([self.real_pkg_config, "--libs", "jansson"],
                              stdout=subprocess.PIPE).stdout.decode().split()
        self.assertTrue(want, "real pkg-config knows no jansson")
        self.assertTrue(links, "no link of authgate in %r" % ccs[-3:])
        for w in want:
            self.assertIn(w, links[0].split())

    def test_second_run_does_not_install_again(self):
        self.make("all")
        self.make("all")
        self.assertEqual(self.logged().count("install-deps"), 1, self.logged())

    def test_present_libraries_skip_the_installer(self):
        # A non-root user who has the libraries must never reach apt.
        open(self.marker, "w").close()
        self.make("all")
        lines = self.logged()
        self.assertNotIn("install-deps", lines)
        self.assertTrue(any(l.startswith("cc ") for l in lines), lines)

    def test_binaries_alone_need_no_test_library(self):
        # The Docker build stage has the libraries but not `check`, and no
        # scripts/: building the binaries must not reach for the installer.
        self.make("all", env_extra={"FAKE_NO_CHECK": "1"})
        lines = self.logged()
        self.assertNotIn("install-deps", lines)
        self.assertTrue(any(l.startswith("cc ") for l in lines), lines)

    def test_unit_tests_install_the_test_library_first(self):
        out = self.make("unit", dry=True, env_extra={"FAKE_NO_CHECK": "1"}).splitlines()
        inst = [i for i, l in enumerate(out) if self.install in l]
        units = [i for i, l in enumerate(out) if l.startswith(self.cc + " ") and "tests/unit/" in l]
        self.assertTrue(inst and units, "\n".join(out[-5:]))
        self.assertLess(inst[0], units[0], "a unit test compiles before the installer ran")

    def test_every_build_target_installs_first(self):
        for target in ("all", "test", "unit", "integration", "run", "bench", "valgrind",
                       "conformance", "fuzz-smoke", "fuzz"):
            with self.subTest(target=target):
                out = self.make(target, build="dry-" + target, dry=True).splitlines()
                inst = [i for i, l in enumerate(out) if self.install in l]
                comp = [i for i, l in enumerate(out) if l.startswith(self.cc + " ")]
                self.assertTrue(inst, "%s: the installer is never run:\n%s" %
                                (target, "\n".join(out[:5])))
                self.assertTrue(comp, "%s: nothing compiled" % target)
                self.assertLess(inst[0], comp[0], "%s: compiles before installing" % target)


if __name__ == "__main__":
    unittest.main()
