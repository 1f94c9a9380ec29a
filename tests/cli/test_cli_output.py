#!/usr/bin/env python3
"""test_cli_output.py NUMATP SOURCE_ROOT - write errors on stdout (issue 18,
item 3): every command whose stdout is /dev/full (no space left) exits
non-zero with "numatp <command>: write error: No space left on device"; a
reader that closes the pipe early ends the command quietly, with SIGPIPE as
the shell leaves it and with SIGPIPE ignored (EPIPE), without a hang."""
import os
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cli_util import Cli  # noqa: E402

cli = Cli("cli_output")


def commands(model, text):
    """(name in the message, arguments, stdin) of every command that writes to stdout."""
    return [
        ("run", ["run", "-m", model, "-p", "hello", "-n", "4", "-t", "1"], ""),
        ("chat", ["chat", "-m", model, "--chat-template", "chatml", "-n", "4", "-t", "1"], "hi\n"),
        ("info", ["info", "-m", model], ""),
        ("info", ["info", "-m", model, "--json"], ""),
        ("info", ["info"], ""),
        ("plan", ["plan", "-m", model], ""),
        ("perplexity", ["perplexity", "-m", model, "-f", text, "-c", "32", "-t", "1"], ""),
        ("bench", ["bench", "-m", model, "-p", "2", "-n", "1", "-r", "1", "-t", "1",
                   "--stream-size", "0"], ""),
        ("numa-bench", ["numa-bench", "--size", "64K", "--reps", "1", "--ar-calls", "1"], ""),
        ("tokenize", ["tokenize", "-m", model, "-p", "hello world"], ""),
        ("tokenize", ["tokenize", "-m", model, "-p", "hello world", "--pieces"], ""),
        ("plan", ["plan", "--help"], ""),
        ("run", ["run", "--help"], ""),
        (None, ["--help"], ""),
        (None, ["--version"], ""),
    ]


def test_full(model, text):
    for name, args, stdin in commands(model, text):
        with open("/dev/full", "wb") as full:
            rc, _, err = cli.run(args, stdin, stdout=full)
        want = "numatp%s: write error: No space left on device" % (" " + name if name else "")
        cli.check(rc != 0 and want in err, "%s > /dev/full: exit non-zero with '%s' (exit %s: %s)"
                  % (" ".join(args[:1]), want, rc, err.strip()[-300:]))


def ignore_sigpipe():
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)


def test_closed_pipe(model):
    """The reader takes 5 bytes and goes: run stops generating, quietly."""
    args = ["run", "-m", model, "-p", "hello", "-n", "100000", "-c", "16384", "--temp", "0",
            "-t", "1"]
    for how, pre in (("SIGPIPE default", None), ("SIGPIPE ignored", ignore_sigpipe)):
        p = cli.popen(args, preexec_fn=pre)
        first = p.stdout.read(5)
        p.stdout.close()
        try:
            err = p.stderr.read().decode(errors="replace")
            rc = p.wait(timeout=60)
        except Exception:  # a hang: the test's own timeout would say less
            p.kill()
            rc, err = None, "(still running after 60 s)"
        cli.check(len(first) == 5, "run | head -c 5 (%s): 5 bytes came" % how)
        cli.check(rc is not None and rc != 0 and "write error" not in err,
                  "run | head -c 5 (%s): ends quietly (exit %s: %s)" % (how, rc, err.strip()[-300:]))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        model, text = cli.tiny_files(tmp, 1100)
        test_full(model, text)
        test_closed_pipe(model)
    return cli.done()


if __name__ == "__main__":
    sys.exit(main())
