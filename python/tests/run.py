#!/usr/bin/env python3
"""Runs the package's tests (unittest, no pytest needed):

    python3 python/tests/run.py [-v] [PATTERN]

Prints a line per test ("ok  name", "FAIL name", "skip name: why") and a last
line "N passed, M failed"; exits non-zero on any failure or error.  Also runs
under `python3 -m unittest discover -s python/tests -p 'test_*.py'`."""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


class Result(unittest.TestResult):
    def __init__(self, verbose):
        super().__init__()
        self.verbose, self.passed, self.t0 = verbose, 0, 0.0

    def startTest(self, test):
        super().startTest(test)
        self.t0 = time.monotonic()

    def addSuccess(self, test):
        self.passed += 1
        print(f"ok   {test.id()} ({time.monotonic() - self.t0:.2f} s)", flush=True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        print(f"FAIL {test.id()}\n{self._exc_info_to_string(err, test)}", flush=True)

    def addError(self, test, err):
        super().addError(test, err)
        print(f"FAIL {test.id()} (error)\n{self._exc_info_to_string(err, test)}", flush=True)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            print(f"FAIL {subtest.id()}\n{self._exc_info_to_string(err, test)}", flush=True)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        print(f"skip {test.id()}: {reason}", flush=True)


def main():
    args = [a for a in sys.argv[1:] if a != "-v"]
    sys.path.insert(0, HERE)
    import lstm
    print(f"lstm from {os.path.dirname(lstm.__file__)}")
    suite = unittest.defaultTestLoader.discover(HERE, pattern="test_*.py")
    if args:
        def flat(s):
            for t in s:
                yield from (flat(t) if isinstance(t, unittest.TestSuite) else [t])
        suite = unittest.TestSuite(t for t in flat(suite) if any(a in t.id() for a in args))
    r = Result("-v" in sys.argv)
    suite.run(r)
    failed = len(r.failures) + len(r.errors)
    if r.skipped:
        print(f"note: {len(r.skipped)} skipped")
    print(f"python: {r.passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
