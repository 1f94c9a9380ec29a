#!/usr/bin/env python3
"""test_cli_limits.py NUMATP SOURCE_ROOT - the limits and messages of issue 18:

threads (item 7): -t or --threads-per-device above a device's cores runs
    with the cores, after a warning that says so; above 4096 is refused.
messages (item 8): a bad -t or -c names the flag, the value and the range
    in run, chat and perplexity; chat's invalid-UTF-8 offset counts within
    the user's line.
chat (item 9): a line that is not UTF-8 is reported and skipped; the turns
    after it are answered as if it had not been there; the exit status is 1.
input size (item 10): tokenize -f and perplexity -f refuse a text above
    --max-input-bytes (/dev/zero stops at once).
smaller ones (item 12): -c above the training context warns; an empty
    prompt is refused before the model is read; numa-bench --svg into a
    missing folder fails before measuring; under a tight `ulimit -v` numatp
    does not hang at exit (OpenBLAS's worker threads).
"""
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cli_util import Cli  # noqa: E402

cli = Cli("cli_limits")


def test_threads(model):
    cores = os.cpu_count()
    for flag in ("-t", "--threads-per-device"):
        rc, _, err = cli.run(["run", "-m", model, "-p", "hi", "-n", "2", flag, "4096"])
        used = [int(n) for n in re.findall(r"cpu node \d+, (\d+) threads", err)]
        cli.check(rc == 0 and "warning: %s 4096" % ("--threads" if flag == "-t" else flag) in err,
                  "run %s 4096: runs, with a warning (exit %s: %s)" % (flag, rc, err.strip()[-300:]))
        cli.check(used and max(used) <= cores, "run %s 4096: at most %d threads per device (%s)"
                  % (flag, cores, used))
    rc, _, err = cli.run(["chat", "-m", model, "-t", "5000"], "hi\n")
    cli.check(rc == 2 and "numatp chat: -t 5000 is out of range (1 .. 4096)" in err,
              "chat -t 5000: refused naming the range (exit %s: %s)" % (rc, err.strip()))


def test_messages(model, text):
    cases = [
        (["run", "-m", model, "-p", "hi", "-t", "5000"], "numatp run: -t 5000 is out of range (1 .. 4096)"),
        (["run", "-m", model, "-p", "hi", "-c", "3000000000"],
         "numatp run: -c 3000000000 is out of range (0 .. 16777216)"),
        (["chat", "-m", model, "-c", "3000000000"],
         "numatp chat: -c 3000000000 is out of range (0 .. 16777216)"),
        (["perplexity", "-m", model, "-f", text, "-t", "5000"],
         "numatp perplexity: -t 5000 is out of range (1 .. 4096)"),
        (["perplexity", "-m", model, "-f", text, "-c", "3"],
         "numatp perplexity: --ctx-size 3 is out of range (0, or 4 .. 16777216"),
        (["chat", "-m", model, "--system", b"ok \xff"],
         "numatp chat: --system is not valid UTF-8 at byte 3 (0xFF)"),
    ]
    for args, want in cases:
        rc, _, err = cli.run(args)
        cli.check(rc == 2 and want in err, "%s: exit 2 with '%s' (exit %s: %s)"
                  % (args[0], want, rc, err.strip()))
    rc, out, _ = cli.run(["perplexity", "--help"])
    cli.check("0 .. 16777216" in out and "1 .. 4096" in out, "perplexity --help states -c and -t")


def test_chat_utf8(model):
    args = ["chat", "-m", model, "--chat-template", "chatml", "--temp", "0", "-n", "4", "-t", "1"]
    p = subprocess.run([cli.numatp, *args], input=b"Hi\nab\xffcd\nWhat is 2+2?\n",
                       capture_output=True, timeout=120)
    q = subprocess.run([cli.numatp, *args], input=b"Hi\nWhat is 2+2?\n", capture_output=True,
                       timeout=120)
    err = p.stderr.decode(errors="replace")
    # The session goes on; its exit status says a line was dropped.
    cli.check(p.returncode == 1 and "numatp chat: line 2 is not valid UTF-8 at byte 2 of the "
              "line (0xFF); skipped" in err, "chat: the bad line reported (exit %s: %s)"
              % (p.returncode, err.strip()[-300:]))
    cli.check(p.stdout == q.stdout and q.returncode == 0,
              "chat: the turns after a bad line answered as without it (%r, %r)"
              % (p.stdout, q.stdout))


def test_input_size(model, text):
    for cmd in (["tokenize", "-m", model], ["perplexity", "-m", model, "-t", "1"]):
        t0 = time.monotonic()
        rc, _, err = cli.run(cmd + ["-f", "/dev/zero"], timeout=30)
        cli.check(rc == 1 and "/dev/zero: more than 268435456 bytes" in err and
                  "--max-input-bytes" in err and time.monotonic() - t0 < 30,
                  "%s -f /dev/zero: refused, naming the limit (exit %s: %s)"
                  % (cmd[0], rc, err.strip()[-300:]))
        rc, _, err = cli.run(cmd + ["-f", text, "--max-input-bytes", "1K"])
        cli.check(rc == 1 and "more than 1024 bytes" in err, "%s --max-input-bytes 1K: refused (%s)"
                  % (cmd[0], err.strip()[-300:]))
        rc, _, err = cli.run(cmd + ["-f", "-", "--max-input-bytes", "1K"], "x" * 1025)
        cli.check(rc == 1 and "more than 1024 bytes" in err, "%s -f - over the limit: refused (%s)"
                  % (cmd[0], err.strip()[-300:]))
        rc, _, err = cli.run(cmd + ["-f", text, "--max-input-bytes", "x"])
        cli.check(rc == 2 and "--max-input-bytes 'x' is not a byte count" in err,
                  "%s --max-input-bytes x: exit 2 (%s)" % (cmd[0], err.strip()))
    rc, out, _ = cli.run(["tokenize", "-m", model, "-f", text, "--max-input-bytes", "2K"])
    cli.check(rc == 0 and out.strip() != "", "tokenize --max-input-bytes 2K on 1100 bytes: ok")


def test_smaller(tmp, model):
    base = ["run", "-m", model, "-p", "hi", "-n", "1", "-t", "1"]
    rc, _, err = cli.run(base + ["-c", "1024"])
    cli.check(rc == 0 and "warning: -c 1024 is more than the 256 positions" in err,
              "run -c 1024 above the training context: warns (%s)" % err.strip()[-300:])
    rc, _, err = cli.run(base + ["-c", "128"])
    cli.check(rc == 0 and "warning: -c" not in err, "run -c 128: no warning")
    rc, _, err = cli.run(["run", "-m", os.path.join(tmp, "missing.gguf"), "-p", ""])
    cli.check(rc == 2 and "-p '': the prompt is empty" in err and "missing.gguf" not in err,
              "run -p '': refused before the model is read (exit %s: %s)" % (rc, err.strip()))
    t0 = time.monotonic()
    rc, _, err = cli.run(["numa-bench", "--svg", os.path.join(tmp, "missing", "x.svg")])
    cli.check(rc == 1 and "--svg" in err and "bandwidth" not in err and
              time.monotonic() - t0 < 10, "numa-bench --svg missing/x.svg: fails before "
              "measuring (exit %s: %s)" % (rc, err.strip()[-300:]))
    svg = os.path.join(tmp, "nb.svg")
    rc, _, err = cli.run(["numa-bench", "--size", "64K", "--reps", "1", "--ar-calls", "1",
                          "--svg", svg])
    cli.check(rc == 0 and open(svg).read().startswith("<?xml"), "numa-bench --svg: written")


def limit_memory(kib):
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (kib << 10, kib << 10))


def test_ulimit(model):
    """Under ulimit -v numatp may fail, but must end (OpenBLAS's threads used to hang exit)."""
    for args in (["--version"], ["run", "-m", model, "-p", "hi", "-n", "2", "-t", "1"]):
        for kib in (64000, 100000, 160000):
            rc, _, _ = cli.run(args, timeout=30, preexec_fn=limit_memory(kib))
            cli.check(rc is not None, "ulimit -v %d numatp %s: ends" % (kib, args[0]))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        model, text = cli.tiny_files(tmp, 1100)
        test_threads(model)
        test_messages(model, text)
        test_chat_utf8(model)
        test_input_size(model, text)
        test_smaller(tmp, model)
        test_ulimit(model)
    return cli.done()


if __name__ == "__main__":
    sys.exit(main())
