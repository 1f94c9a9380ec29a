#!/usr/bin/env python3
"""test_cli_opts.py NUMATP SOURCE_ROOT table|tp - the options every inference
command shares (src/cli/infer.c), from the outside, on a tiny F32 model.

table: every shared flag through every inference command (run, chat,
    perplexity, bench): a valid value is accepted (exit 0), a bad one (out of
    range, not a number, trailing junk, overflow, a value for a flag, a
    missing value) is refused with exit 2 and a message naming the flag as it
    was written, as is an unknown option; every command's --help lists every
    shared flag; the KV cache types (--kv-type, -ctk, -ctv) and what they refuse.
tp: tensor parallelism in the commands that used to refuse it: perplexity
    --tp 2 gives the final estimate of --tp 1 (to 1e-4 relative), and chat
    --tp 2 answers, with the reply of --tp 1 (greedy).
"""
import json
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cli_util import Cli  # noqa: E402

MODE = sys.argv[3]
cli = Cli("cli_opts " + MODE)
check, run = cli.check, cli.run


# Each command with the arguments that make it cheap; the flag under test comes
# after them and so overrides them (the last value of an option wins).
def commands(model, text):
    return {
        "run": (["run", "-m", model, "-p", "hello", "-n", "2", "-t", "1"], ""),
        "chat": (["chat", "-m", model, "--chat-template", "chatml", "-n", "2", "-t", "1"], "hi\n"),
        "perplexity": (["perplexity", "-m", model, "-f", text, "-c", "32", "-t", "1"], ""),
        "bench": (["bench", "-m", model, "-p", "2", "-n", "1", "-r", "1", "-t", "1",
                   "--stream-size", "0"], ""),
    }


def first_node():
    """The OS number of the first NUMA node with cores."""
    rc, out, _ = run(["info", "--json"])
    return str(json.loads(out)["machine"]["nodes"][0]["os_index"]) if rc == 0 else "0"


def has_gpu():
    rc, out, _ = run(["info"])
    return rc == 0 and not re.search(r"^gpu +none", out, re.M)


FLAG = []  # a flag: no value


def shared_flags():
    """(spelling, valid values, bad values); a value None stands for "missing"."""
    return [
        ("-m", [], [None]),
        ("--model", [], [None]),
        ("-c", ["48"], ["-1", "x", "16777217", "32x"]),
        ("--ctx-size", ["0"], ["-5"]),
        ("-t", ["2"], ["0", "1x", "4097", "99999999999999999999", "", None]),
        ("--threads", [], ["0"]),
        ("--tp", ["2", "auto"], ["0", "17", "x", "2.5"]),
        ("--numa-nodes", [first_node()], ["x", "1-0", "0,,"]),
        ("--threads-per-device", ["1"], ["0", "4097", "one"]),
        ("--smt", [FLAG], ["=1"]),
        ("--verify-numa", [FLAG], ["=yes"]),
        ("-ngl", ["0"], ["-1", "x", "100001"]),
        ("--gpu-layers", [], ["-1"]),
        ("--n-gpu-layers", [], ["1e3"]),
        ("--kv-type", ["f32", "q8_0", "q4_0"], ["q5_k", "F16"]),
        ("-ctk", ["f16"], ["q4_k"]),
        ("--cache-type-k", ["f16"], ["f8"]),
        ("-ctv", ["f16"], ["Q8_0"]),
        ("--cache-type-v", ["f16"], [None]),
        ("--moe-split", ["features", "experts"], ["both", None]),
        ("--cpu-moe", [FLAG], ["=1"]),
        ("-cmoe", [FLAG], []),
        ("--pp", ["1"], ["0", "x", "65"]),
    ]


def flag_args(flag, value):
    if value is FLAG:
        return [flag]
    if value is None:
        return [flag]  # at the end: its value is missing
    if flag.startswith("--") and value.startswith("="):
        return [flag + value]
    return [flag, value]


def test_valid(cmds, flag, value):
    for name, (base, stdin) in cmds.items():
        args = base + flag_args(flag, value)
        rc, _, err = run(args, stdin)
        check(rc == 0, "%s %s %s: accepted, exit 0 (exit %d: %s)"
              % (name, flag, value if value is not FLAG else "", rc, err.strip()[-300:]))


def test_bad(cmds, flag, value):
    for name, (base, stdin) in cmds.items():
        args = base + flag_args(flag, value)
        rc, out, err = run(args, stdin)
        first = err.strip().splitlines()[0] if err.strip() else ""
        check(rc == 2 and first.startswith("numatp %s: %s" % (name, flag)),
              "%s %s %r: exit 2 with a message naming %s (exit %d: %s)"
              % (name, flag, value, flag, rc, err.strip()[:300]))
        check(out == "", "%s %s %r: nothing on stdout" % (name, flag, value))


def test_gpu_output(cmds):
    """--gpu-output needs GPU layers; with them it is a usage the device may refuse."""
    gpu = has_gpu()
    for name, (base, stdin) in cmds.items():
        rc, _, err = run(base + ["--gpu-output"], stdin)
        check(rc == 2 and "--gpu-output" in err, "%s --gpu-output without -ngl: exit 2 (%d: %s)"
              % (name, rc, err.strip()))
        rc, _, err = run(base + ["--gpu-output=1"], stdin)
        check(rc == 2 and "--gpu-output" in err, "%s --gpu-output=1: exit 2" % name)
        rc, _, err = run(base + ["-ngl", "1", "--gpu-output"], stdin)
        want = "exit 0" if gpu else "exit 1 saying there is no CUDA device"
        ok = rc == 0 if gpu else rc == 1 and "CUDA" in err
        check(ok, "%s -ngl 1 --gpu-output: %s (exit %d: %s)" % (name, want, rc, err.strip()[-300:]))


def test_kv_types(cmds, tmp):
    """One cache type for K and V: -ctk and -ctv must agree (each f16 unless given, as in
    llama.cpp) and with --kv-type; an unknown type names the allowed ones; a quantized
    cache needs heads whose width is a multiple of 32."""
    base, _ = cmds["run"]
    rc, _, err = run(base + ["-ctk", "q8_0", "-ctv", "q8_0"])
    check(rc == 0, "run -ctk q8_0 -ctv q8_0: exit 0 (%d: %s)" % (rc, err.strip()[-300:]))
    rc, _, err = run(base + ["--kv-type", "q5_k"])
    check(rc == 2 and "f16, f32, q8_0, q4_0" in err,
          "run --kv-type q5_k names the allowed types (%d: %s)" % (rc, err.strip()))
    for args in (["-ctk", "q8_0"], ["-ctv", "q4_0"], ["-ctk", "q8_0", "-ctv", "q4_0"],
                 ["--kv-type", "f32", "-ctk", "q8_0", "-ctv", "q8_0"]):
        rc, out, err = run(base + args)
        check(rc == 2 and "one cache type" in err and out == "",
              "run %s: exit 2, one cache type for K and V (%d: %s)"
              % (" ".join(args), rc, err.strip()))
    model = os.path.join(tmp, "heads40.gguf")
    rc, _, err = run(["gen", "-q", "--type", "f32", "--head-dim", "40", "-o", model])
    check(rc == 0, "gen --head-dim 40 (%s)" % err.strip())
    rc, _, err = run(["run", "-m", model, "-p", "hello", "-n", "1", "--kv-type", "q8_0"])
    check(rc == 1 and "multiples of 32" in err and "are 40" in err,
          "run --kv-type q8_0 on heads of 40: exit 1 naming the width (%d: %s)"
          % (rc, err.strip()))


def test_help(cmds):
    spellings = [f for f, _, _ in shared_flags()] + ["--gpu-output"]
    for name in cmds:
        rc, out, _ = run([name, "--help"])
        check(rc == 0, "%s --help: exit 0" % name)
        for s in spellings:
            check(re.search(r"(^|[ ,])%s\b" % re.escape(s), out, re.M) is not None,
                  "%s --help lists %s" % (name, s))


def test_table(model, text, tmp):
    cmds = commands(model, text)
    for flag, valid, bad in shared_flags():
        for v in valid:
            test_valid(cmds, flag, v)
        for v in bad:
            test_bad(cmds, flag, v)
    test_gpu_output(cmds)
    test_kv_types(cmds, tmp)
    test_help(cmds)
    for name, (base, stdin) in cmds.items():
        rc, _, err = run(base + ["--frobnicate", "1"], stdin)
        check(rc == 2 and "unknown option '--frobnicate'" in err,
              "%s --frobnicate: exit 2 naming it (%d: %s)" % (name, rc, err.strip()))
    # Lists are bench's: the others name the flag and take one value.
    rc, _, err = run(commands(model, text)["bench"][0] + ["-t", "1,2", "--tp", "1,2"])
    check(rc == 0, "bench -t 1,2 --tp 1,2 (exit %d: %s)" % (rc, err.strip()[-300:]))
    rc, _, err = run(commands(model, text)["bench"][0] + ["-t", "1,0"])
    check(rc == 2 and "-t 0 is out of range (1 .. 4096)" in err, "bench -t 1,0: %s" % err.strip())


def final_estimate(out):
    m = re.search(r"Final estimate: PPL = ([0-9.]+)", out)
    return float(m.group(1)) if m else None


def test_tp(model, text):
    ppl = {}
    for tp in ("1", "2"):
        rc, out, err = run(["perplexity", "-m", model, "-f", text, "-c", "64", "-t", "2",
                            "--tp", tp])
        ppl[tp] = final_estimate(out)
        check(rc == 0 and ppl[tp] is not None, "perplexity --tp %s (exit %d: %s)"
              % (tp, rc, err.strip()[-300:]))
    print("perplexity: --tp 1 %s, --tp 2 %s" % (ppl["1"], ppl["2"]))
    if ppl["1"] and ppl["2"]:
        check(abs(ppl["2"] - ppl["1"]) <= 1e-4 * ppl["1"], "perplexity: --tp 2 equals --tp 1")
    reply = {}
    for tp in ("1", "2"):
        rc, out, err = run(["chat", "-m", model, "--chat-template", "chatml", "--temp", "0",
                            "-n", "8", "-t", "2", "--tp", tp], "hello there\n")
        reply[tp] = out
        check(rc == 0 and out.strip() != "", "chat --tp %s answers (exit %d: %r %s)"
              % (tp, rc, out, err.strip()[-300:]))
        check(tp == "1" or "tp 2" in err, "chat --tp 2 runs on 2 devices: %s" % err.strip())
    print("chat: --tp 1 %r, --tp 2 %r" % (reply["1"], reply["2"]))
    check(reply["1"] == reply["2"], "chat: --tp 2 replies as --tp 1 (greedy)")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        # The table's perplexity runs need 2 x 256 tokens for -c 0 (the model's context).
        model, text = cli.tiny_files(tmp, 1100 if MODE == "table" else 3000)
        if MODE == "table":
            test_table(model, text, tmp)
        else:
            test_tp(model, text)
    return cli.done()


if __name__ == "__main__":
    sys.exit(main())
