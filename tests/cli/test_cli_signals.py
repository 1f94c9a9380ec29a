#!/usr/bin/env python3
"""test_cli_signals.py NUMATP SOURCE_ROOT - Ctrl-C (issue 18, item 11): SIGINT
sent to run, chat and perplexity while they work ends the current step,
prints the usual summary to stderr (tokens so far and speeds; perplexity's
estimate so far) and exits with status 130."""
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cli_util import Cli  # noqa: E402

cli = Cli("cli_signals")


def interrupt(args, wait_for, stdin=None):
    """Start numatp, read stdout until it has printed something with wait_for in it, send
    SIGINT; (exit status, stdout, stderr)."""
    p = cli.popen(args, stdin=stdin)
    out = b""
    deadline = time.monotonic() + 60
    while (not out or wait_for not in out) and time.monotonic() < deadline:
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            break
        out += chunk
    p.send_signal(signal.SIGINT)
    try:
        rest, err = p.communicate(timeout=60)
    except Exception:  # a process that ignores Ctrl-C
        p.kill()
        rest, err = p.communicate()
    return p.returncode, (out + rest).decode(errors="replace"), err.decode(errors="replace")


def test_run(model):
    # Greedy on this model never ends a turn, so generation runs until Ctrl-C.
    rc, out, err = interrupt(["run", "-m", model, "-p", "hello", "-n", "100000", "-c", "16384",
                              "--temp", "0", "-t", "1"], b"")
    cli.check(rc == 130, "run: SIGINT exits 130 (exit %s: %s)" % (rc, err.strip()[-300:]))
    cli.check("numatp run: interrupted after" in err and "generation:" in err,
              "run: the summary after SIGINT (%s)" % err.strip()[-300:])


def test_chat(model):
    r, w = os.pipe()
    os.write(w, b"hi\n")  # one turn: SIGINT comes while it replies or waits for the next line
    rc, out, err = interrupt(["chat", "-m", model, "--chat-template", "chatml", "-c", "16384",
                              "--temp", "0", "-t", "1"], b"", stdin=r)
    os.close(r)
    os.close(w)
    cli.check(rc == 130, "chat: SIGINT exits 130 (exit %s: %s)" % (rc, err.strip()[-300:]))
    cli.check("numatp chat: interrupted;" in err and "tok/s" in err,
              "chat: the summary after SIGINT (%s)" % err.strip()[-300:])


def test_perplexity(tmp, model):
    text = os.path.join(tmp, "long.txt")
    with open(os.path.join(cli.source_root, "tests", "data", "ppl-english.txt"), "rb") as f:
        body = f.read()
    with open(text, "wb") as f:
        f.write(body * 20)  # hundreds of chunks: seconds of work, stopped after the first
    rc, out, err = interrupt(["perplexity", "-m", model, "-f", text, "-c", "64", "-t", "1"],
                             b"[1]")
    cli.check(rc == 130, "perplexity: SIGINT exits 130 (exit %s: %s)" % (rc, err.strip()[-300:]))
    cli.check("numatp perplexity: interrupted after" in err and
              "Final estimate: PPL = " in err and "Final estimate" not in out,
              "perplexity: the estimate so far on stderr (%s)" % err.strip()[-300:])


def main():
    with tempfile.TemporaryDirectory() as tmp:
        model, _ = cli.tiny_files(tmp, 0)
        test_run(model)
        test_chat(model)
        test_perplexity(tmp, model)
    return cli.done()


if __name__ == "__main__":
    sys.exit(main())
