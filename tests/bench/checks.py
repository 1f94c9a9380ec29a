"""checks.py - what the bench tests share: check() counts and reports a failed
condition, result(name) prints the verdict and gives the exit status."""
import sys

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what, file=sys.stderr)


def result(name):
    if failures:
        print("%s: %d check(s) failed" % (name, failures), file=sys.stderr)
        return 1
    print("%s: ok" % name)
    return 0
