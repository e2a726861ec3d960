#!/usr/bin/env python3
"""Integration suite runner: starts the real authgate and upstreams on
loopback and drives real HTTP.

    python3 tests/integration/run.py --build build [-k PATTERN]... [-v]

Exit status is non-zero on any failure (and when the binaries are missing);
the last line is always "N passed, N failed[, N skipped]".

Environment:
  AG_BIG_BYTES      size of the streaming upload/download (default 1 GiB)
  AG_RSS_SLACK_MB   allowed authgate VmRSS growth while streaming (default 64)
  AG_MINT=python    build "minted" tokens in the harness instead of calling
                    `authgate mint` (to tell a mint bug from a daemon bug)
  ASAN_OPTIONS      passed to authgate (default detect_leaks=1)

Every gateway is checked at teardown: still running, exit 0 on SIGTERM, and no
sanitizer report in its stderr.
"""

import argparse
import faulthandler
import fnmatch
import os
import signal
import sys
import threading
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402


# A suite that stops making progress (a test, or a class's set-up or
# tear-down, waiting on something that never comes) would otherwise hold CI
# until its own limit: after this long without a test starting or ending,
# every thread's stack is printed, every process the harness started is
# stopped, and the run exits non-zero. SIGUSR1 prints the stacks on demand.
STALL_SECONDS = 900 if os.environ.get("AG_WRAP") else 300
_progress = [time.time()]


def watchdog():
    _progress[0] = time.time()


def _watch():
    while True:
        time.sleep(5)
        if time.time() - _progress[0] > STALL_SECONDS:
            print("\nno test started or ended for %d s: stacks follow" % STALL_SECONDS,
                  file=sys.stderr, flush=True)
            faulthandler.dump_traceback(all_threads=True)
            harness.kill_all()
            print("0 passed, 1 failed (stalled)", flush=True)
            os._exit(1)


class Result(unittest.TestResult):
    def __init__(self, verbose):
        super().__init__()
        self.verbose = verbose
        self.passed = 0
        self.problems = []  # (kind, test id, text)
        self.skips = []
        self.durations = []
        self._t0 = None

    def startTest(self, test):
        super().startTest(test)
        watchdog()
        self._t0 = time.time()
        if self.verbose:
            print("%s ..." % test.id(), end=" ", flush=True)

    def _done(self, test, word):
        dt = time.time() - (self._t0 or time.time())
        self.durations.append((dt, test.id()))
        if self.verbose:
            print("%s (%.2fs)" % (word, dt), flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1
        self._done(test, "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.problems.append(("FAIL", test.id(), self._exc_info_to_string(err, test)))
        self._done(test, "FAIL")
        if not self.verbose:
            print("FAIL %s" % test.id(), flush=True)

    def addError(self, test, err):
        super().addError(test, err)
        self.problems.append(("ERROR", test.id(), self._exc_info_to_string(err, test)))
        # class/module fixture errors arrive without startTest
        if self.verbose and self._t0 is None:
            print("%s ..." % test.id(), end=" ", flush=True)
        self._done(test, "ERROR")
        if not self.verbose:
            print("ERROR %s" % test.id(), flush=True)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.skips.append((test.id(), reason))
        self._done(test, "skipped (%s)" % reason)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "FAIL" if issubclass(err[0], test.failureException) else "ERROR"
            self.problems.append((kind, subtest.id(), self._exc_info_to_string(err, test)))
            if not self.verbose:
                print("%s %s" % (kind, subtest.id()), flush=True)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.passed += 1
        self._done(test, "expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.problems.append(("FAIL", test.id(), "unexpected success"))
        self._done(test, "unexpected success")

    def stopTest(self, test):
        super().stopTest(test)
        watchdog()
        self._t0 = None


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


def matches(test, patterns):
    if not patterns:
        return True
    tid = test.id()
    for p in patterns:
        if any(c in p for c in "*?["):
            if fnmatch.fnmatch(tid, p) or fnmatch.fnmatch(tid, "*" + p + "*"):
                return True
        elif p.lower() in tid.lower():
            return True
    return False


def main():
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    watchdog()
    threading.Thread(target=_watch, daemon=True).start()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default="build", help="build directory (build or build/san)")
    ap.add_argument("-k", action="append", default=[], metavar="PATTERN",
                    help="run only tests whose id contains PATTERN (or matches a glob); repeatable")
    ap.add_argument("-v", action="store_true", help="print every test and its duration")
    ap.add_argument("--list", action="store_true", help="list test ids and exit")
    args = ap.parse_args()

    harness.set_build(args.build)
    harness.VERBOSE = args.v
    os.environ["AG_BUILD"] = harness.BUILD

    def on_signal(signum, frame):
        harness.kill_all()
        sys.stdout.write("\ninterrupted\n0 passed, 1 failed\n")
        sys.stdout.flush()
        os._exit(130)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    loader = unittest.TestLoader()
    discovered = loader.discover(start_dir=HERE, pattern="test_*.py", top_level_dir=HERE)
    tests = list(flatten(discovered))
    # import errors show up as _FailedTest; always keep them so they count
    tests = [t for t in tests if type(t).__name__ == "_FailedTest" or matches(t, args.k)]
    if args.list:
        for t in tests:
            print(t.id())
        return 0

    missing = harness.missing_binaries()
    print("authgate integration suite: build=%s, %d tests%s" %
          (harness.BUILD, len(tests), (", MISSING: " + ", ".join(missing)) if missing else ""),
          flush=True)

    result = Result(args.v)
    t0 = time.time()
    try:
        unittest.TestSuite(tests).run(result)
    finally:
        harness.kill_all()
    elapsed = time.time() - t0

    for kind, tid, text in result.problems:
        print("\n" + "=" * 78)
        print("%s: %s" % (kind, tid))
        print("-" * 78)
        print(text.rstrip())
    if result.problems:
        print("=" * 78)

    slow = sorted(result.durations, reverse=True)[:5]
    if args.v and slow:
        print("\nslowest: " + ", ".join("%s %.1fs" % (tid.split(".")[-1], dt) for dt, tid in slow))
    print("elapsed %.1fs" % elapsed)
    # a test with several failing subtests counts once
    failed = len({tid.split(" (")[0] if not tid.startswith("setUp") and not tid.startswith(
        "tearDown") else tid for _, tid, _ in result.problems})
    rc = 1 if failed else 0
    if missing:
        print("binaries missing (%s): the suite did not run; build first with make" %
              ", ".join(missing))
        rc = 1
    line = "%d passed, %d failed" % (result.passed, failed)
    if result.skips:
        line += ", %d skipped" % len(result.skips)
    print(line, flush=True)
    return rc


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        harness.kill_all()
        print("0 passed, 1 failed")
        sys.exit(1)
