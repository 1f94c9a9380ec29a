#!/usr/bin/env python3
"""test_vs_llama_cpp.py NUMATP SOURCE_ROOT - bench/vs-llama.cpp without building
llama.cpp: --llama-bin points at stub llama-bench and llama-perplexity scripts that
print what the real ones (llama.cpp 0c1e57098, llama-cpp-python 0.3.36) print, while
numatp is the real one, on a tiny model from `numatp gen`. Checks the bench table (the
stub's medians, numatp's medians of its rounds, the ratios), that the engines take
turns, the perplexity comparison (with a llama-perplexity run that loses its last
line, as the real one sometimes does), the KL divergence statistics (with a stand-in
numatp that prints llama-perplexity's wording), and the errors: a missing binary
directory, a directory without the tools, a failing llama.cpp run, a missing model,
a missing numatp."""
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

from checks import check, result

NUMATP, SOURCE_ROOT = os.path.abspath(sys.argv[1]), sys.argv[2]
SCRIPT = os.path.join(SOURCE_ROOT, "bench", "vs-llama.cpp")

# tok/s the stub llama-bench reports on its 1st, 2nd, 3rd... call for one model.
STUB_PP = [100.0, 300.0, 200.0]
STUB_TG = [10.0, 30.0, 20.0]
STUB_PPL = (20.1234, 0.56789)

# One result of the real `llama-bench -o json`, field by field in its order; the stub
# fills in the file, the test and the speed.
STUB_BENCH = r'''#!PYTHON
import json, os, sys
HERE = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
def opt(name, default):
    return args[args.index(name) + 1] if name in args else default
model = opt("-m", "")
with open(os.path.join(HERE, "calls"), "a") as f:
    f.write("llama-bench %s\n" % model)
if os.path.exists(os.path.join(HERE, "fail")):
    print("main: error: failed to load model '%s'" % model, file=sys.stderr)
    sys.exit(1)
with open(os.path.join(HERE, "calls")) as f:
    k = sum(line.split() == ["llama-bench", model] for line in f) - 1
FIELDS = [
    ("build_commit", '"0c1e57098"'), ("build_number", "1"), ("cpu_info", '"AMD EPYC"'),
    ("gpu_info", '""'), ("backends", '"CPU"'), ("model_filename", None),
    ("model_type", '"llama ?B all F32"'), ("model_size", "7345152"),
    ("model_n_params", "1836288"), ("n_batch", "2048"), ("n_ubatch", "512"),
    ("n_threads", None), ("cpu_mask", '"0x0"'), ("cpu_strict", "false"), ("poll", "50"),
    ("type_k", '"f16"'), ("type_v", '"f16"'), ("n_gpu_layers", "-1"), ("n_cpu_moe", "0"),
    ("split_mode", '"layer"'), ("main_gpu", "0"), ("no_kv_offload", "false"),
    ("flash_attn", "-1"), ("devices", '"auto"'), ("tensor_split", '"0.00"'),
    ("tensor_buft_overrides", '"none"'), ("load_mode", '"auto"'), ("lazy_mode", '"auto"'),
    ("embeddings", "false"), ("no_op_offload", "0"), ("no_host", "false"),
    ("repack", "true"), ("fit_target", "0"), ("fit_min_ctx", "0"), ("n_prompt", None),
    ("n_gen", None), ("n_depth", "0"), ("test_time", '"2026-12-02T12:06:28Z"'),
    ("avg_ns", None), ("stddev_ns", "0"), ("avg_ts", None), ("stddev_ts", "0.000000")]
tests = [(int(p), 0, PP[k % len(PP)]) for p in opt("-p", "512").split(",") if int(p)]
tests += [(0, int(n), TG[k % len(TG)]) for n in opt("-n", "128").split(",") if int(n)]
rows = []
for p, n, ts in tests:
    ns = int((p or n) / ts * 1e9)
    val = {"model_filename": json.dumps(model), "n_threads": opt("-t", "2"),
           "n_prompt": str(p), "n_gen": str(n), "avg_ns": str(ns), "avg_ts": "%f" % ts}
    body = "".join('    "%s": %s,\n' % (f, v if v is not None else val[f]) for f, v in FIELDS)
    rows.append("  {\n" + body + '    "samples_ns": [ %d ],\n    "samples_ts": [ %.2f ]\n  }'
                % (ns, ts))
print("[\n" + ",\n".join(rows) + "\n]")
'''

# The real llama-perplexity: progress on stdout, its log (timestamped, from a thread)
# on stderr, where the final estimate can land in the middle of a line. With a file
# "drop" next to it, the first run loses that last line, as a real run sometimes does.
STUB_PPL_SCRIPT = r'''#!PYTHON
import os, sys
HERE = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
with open(os.path.join(HERE, "calls"), "a") as f:
    f.write("llama-perplexity %s\n" % " ".join(args))
if os.path.exists(os.path.join(HERE, "fail")):
    print("0.00.012.301 E llama_model_load: error loading model: tensor 'x' not found",
          file=sys.stderr)
    print("0.00.012.350 E main: unable to load model", file=sys.stderr)
    sys.exit(1)
if "--kl-divergence-base" in args:
    with open(args[args.index("--kl-divergence-base") + 1], "wb") as f:
        f.write(b"_logits_" + bytes(64))
print("0.00 minutes")
print("[1]520.8730,[2]531.9253,[3]528.5818,")
sys.stderr.write("0.00.050.210 I perplexity: calculating perplexity over 3 chunks, n_ctx=32, "
                 "batch_size=512, n_seq=16\n"
                 "0.00.080.469 I perplexity: 0.03 seconds per pass - ETA ")
drop = os.path.join(HERE, "drop")
if os.path.exists(drop):
    os.remove(drop)
else:
    sys.stderr.write("0.00.213.456 I Final estimate: PPL = %.4f +/- %.5f\n" % PPL)
'''

# A stand-in numatp for the kld mode: llama-perplexity's closing KL statistics.
STUB_NUMATP_KLD = r'''#!PYTHON
import sys
args = sys.argv[1:]
base = args[args.index("--kl-divergence-base") + 1]
assert "--kl-divergence" in args and open(base, "rb").read(8) == b"_logits_"
print("""====== Perplexity statistics ======
Mean PPL(Q)                   : 539.708514 ±   5.761839
Mean PPL(base)                : 539.708514 ±   5.761839
Cor(ln(PPL(Q)), ln(PPL(base))): 100.00%
Mean ln(PPL(Q)/PPL(base))     :   0.000001 ±   0.000004
Mean PPL(Q)/PPL(base)         :   1.000001 ±   0.000004
Mean PPL(Q)-PPL(base)         :   0.000500 ±   0.002000

====== KL divergence statistics ======
Mean    KLD:   0.001234 ±   0.000056
Maximum KLD:   0.045678
99.9%   KLD:   0.030000
99.0%   KLD:   0.020000
95.0%   KLD:   0.010000
90.0%   KLD:   0.005000
Median  KLD:   0.000900
10.0%   KLD:   0.000010
 5.0%   KLD:   0.000005
 1.0%   KLD:   0.000001
 0.1%   KLD:   0.000000
Minimum KLD:   0.000000

====== Token probability statistics ======
Mean    Δp:  -0.012 ± 0.004 %
Maximum Δp:  2.000%
Median  Δp:  0.000%
Minimum Δp: -2.000%
RMS Δp    :  0.300 ± 0.010 %
Same top p: 98.765 ± 0.321 %""")
'''


def write_exe(path, text):
    header = "PP = %r\nTG = %r\nPPL = %r\n" % (STUB_PP, STUB_TG, STUB_PPL)
    text = text.replace("#!PYTHON\n", "#!%s\n%s" % (sys.executable, header), 1)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


def vs(*args):
    p = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                       timeout=300)
    return p.returncode, p.stdout, p.stderr


def table_rows(out):
    """{(model, test): (llama, numatp, ratio)} from the markdown table."""
    rows = {}
    for m in re.finditer(r"^\| (\S+) \| (\S+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", out,
                         re.M):
        rows[(m.group(1), m.group(2))] = tuple(float(m.group(i)) for i in (3, 4, 5))
    return rows


def rounds_of(out, model, test, engine):
    m = re.search(r"^    %s %s %s: (.*)$" % (re.escape(model), test, engine), out, re.M)
    return [float(x) for x in m.group(1).split()] if m else []


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def calls(bindir):
    with open(os.path.join(bindir, "calls")) as f:
        return [line.split()[0] for line in f]


def test_bench(tmp, bindir, numatp, models):
    rc, out, err = vs("bench", "-m", models[0], "-m", models[1], "-t", "1", "-p", "8",
                      "-n", "4", "--rounds", "3", "--numatp", numatp, "--llama-bin", bindir)
    check(rc == 0, "bench exits 0 (%d: %s)" % (rc, err[-2000:]))
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    check(re.search(r"^machine: %s, .*1 threads used$" % re.escape(cpu), out, re.M),
          "bench names the CPU model and the threads:\n" + out)
    check(re.search(r"^llama\.cpp: build 1, commit 0c1e57098 ", out, re.M),
          "bench names llama.cpp's build and commit")
    check("medians of 3 rounds" in out, "bench says how many rounds")
    rows = table_rows(out)
    for model in models:
        name = os.path.basename(model)
        for test, stub in (("pp8", STUB_PP), ("tg4", STUB_TG)):
            row = rows.get((name, test))
            check(row is not None, "a table row for %s %s:\n%s" % (name, test, out))
            if row is None:
                continue
            ll, nt, ratio = row
            check(ll == median(stub), "%s %s: llama.cpp column %.2f is the stub's median %.2f"
                  % (name, test, ll, median(stub)))
            check(rounds_of(out, name, test, "llama.cpp") == stub,
                  "%s %s: llama.cpp rounds are the stub's" % (name, test))
            nt_rounds = rounds_of(out, name, test, "numatp")
            check(len(nt_rounds) == 3 and all(x > 0 for x in nt_rounds),
                  "%s %s: three positive numatp rounds" % (name, test))
            if nt_rounds:
                check(nt == median(nt_rounds), "%s %s: numatp column %.2f is the median of %s"
                      % (name, test, nt, nt_rounds))
            check(abs(ratio - nt / ll) <= 0.0005 + 1e-6 * nt,
                  "%s %s: ratio %.3f is %.2f / %.2f" % (name, test, ratio, nt, ll))
    # Round by round, each engine on each model once, the first engine alternating.
    seq = calls(bindir)
    expect = []
    for r in range(3):
        pair = ["llama-bench", "numatp"] if r % 2 == 0 else ["numatp", "llama-bench"]
        expect += pair * len(models)
    check(seq == expect, "the engines take turns: %s" % seq)


def test_ppl(tmp, bindir, numatp, model, text):
    args = ("ppl", "-m", model, "-f", text, "-c", "32", "-b", "64", "-t", "1",
            "--numatp", numatp, "--llama-bin", bindir)
    open(os.path.join(bindir, "drop"), "w").close()
    rc, out, err = vs(*args)
    check(rc == 0, "ppl exits 0 (%d: %s)" % (rc, err[-2000:]))
    check("running it again" in err, "ppl repeats a llama-perplexity run that lost its "
          "final line")
    ll_calls = [c for c in open(os.path.join(bindir, "calls")) if c.startswith("llama-perp")]
    check(len(ll_calls) == 2 and all("-c 32 -b 64 -t 1" in c and "-f " + text in c
                                     for c in ll_calls),
          "llama-perplexity ran twice with the same file, context, batch and threads: %s"
          % ll_calls)
    m = re.search(r"^\| llama\.cpp \| ([\d.]+) \| ([\d.]+) \|", out, re.M)
    check(m and (float(m.group(1)), float(m.group(2))) == STUB_PPL,
          "llama.cpp's estimate and +/- are the stub's:\n" + out)
    n = re.search(r"^\| numatp \| ([\d.]+) \| ([\d.]+) \|", out, re.M)
    check(n is not None, "a numatp row:\n" + out)
    d = re.search(r"^numatp - llama\.cpp: ([-+][\d.]+) \(([-+][\d.]+) %\)$", out, re.M)
    check(d is not None, "the difference line:\n" + out)
    if n and d:
        nt = float(n.group(1))
        check(abs(float(d.group(1)) - (nt - STUB_PPL[0])) < 1e-3, "absolute difference")
        check(abs(float(d.group(2)) - 100 * (nt - STUB_PPL[0]) / STUB_PPL[0]) < 1e-3,
              "difference in percent")


def test_kld(tmp, bindir, model, text):
    fake = os.path.join(tmp, "numatp-kld")
    write_exe(fake, STUB_NUMATP_KLD)
    rc, out, err = vs("kld", "-m", model, "-f", text, "-c", "32", "-t", "1", "--numatp", fake,
                      "--llama-bin", bindir)
    check(rc == 0, "kld exits 0 (%d: %s)" % (rc, err[-2000:]))
    for row in ("| Mean KLD | 0.001234 | 0.000056 |", "| Same top p | 98.765 % | 0.321 % |",
                "| Maximum KLD | 0.045678 |  |", "| RMS Δp | 0.300 % | 0.010 % |"):
        check(row in out, "kld prints %r:\n%s" % (row, out))


def test_errors(tmp, bindir, numatp, model, text):
    def fails(args, want, what):
        rc, out, err = vs(*args)
        check(rc == 1 and want in err, "%s: exit 1 with %r (%s: %s)" % (what, want, rc, err))

    base = ("--numatp", numatp, "--llama-bin")
    fails(("bench", "-m", model, *base, os.path.join(tmp, "nowhere")), "no such directory",
          "a missing --llama-bin")
    empty = os.path.join(tmp, "empty")
    os.mkdir(empty)
    fails(("ppl", "-m", model, "-f", text, *base, empty), "no executable llama-perplexity",
          "a --llama-bin without the tools")
    fails(("bench", "-m", os.path.join(tmp, "absent.gguf"), *base, bindir),
          "absent.gguf: no such file", "a missing model")
    fails(("bench", "-m", model, "--numatp", os.path.join(tmp, "no-numatp"), "--llama-bin",
           bindir), "not an executable file", "a missing numatp")
    open(os.path.join(bindir, "fail"), "w").close()
    fails(("bench", "-m", model, "-p", "8", "-n", "4", "--rounds", "1", *base, bindir),
          "failed to load model", "a failing llama-bench shows its stderr")
    fails(("ppl", "-m", model, "-f", text, "-c", "32", *base, bindir),
          "unable to load model", "a failing llama-perplexity shows its stderr")
    os.remove(os.path.join(bindir, "fail"))
    rc, out, _ = vs("--help")
    check(rc == 0 and "bench" in out and "ppl" in out and "kld" in out, "--help lists modes")


def main():
    with tempfile.TemporaryDirectory(prefix="vs-llama-test-") as tmp:
        model = os.path.join(tmp, "tiny.gguf")
        p = subprocess.run([NUMATP, "gen", "-q", "--type", "f32", "-o", model],
                           capture_output=True, text=True)
        check(p.returncode == 0, "gen the model (%s)" % p.stderr)
        model2 = os.path.join(tmp, "tiny-copy.gguf")
        shutil.copyfile(model, model2)
        text = os.path.join(tmp, "text.txt")
        with open(os.path.join(SOURCE_ROOT, "tests", "data", "ppl-english.txt"), "rb") as f:
            head = f.read(1500)
        with open(text, "wb") as f:
            f.write(head)

        bindir = os.path.join(tmp, "llama-bin")
        os.mkdir(bindir)
        write_exe(os.path.join(bindir, "llama-bench"), STUB_BENCH)
        write_exe(os.path.join(bindir, "llama-perplexity"), STUB_PPL_SCRIPT)
        # numatp behind a wrapper that records when it runs, next to the stubs' calls.
        numatp = os.path.join(tmp, "numatp")
        with open(numatp, "w") as f:
            f.write('#!/bin/sh\necho numatp >> "%s/calls"\nexec "%s" "$@"\n' % (bindir, NUMATP))
        os.chmod(numatp, 0o755)

        test_bench(tmp, bindir, numatp, [model, model2])
        os.remove(os.path.join(bindir, "calls"))
        test_ppl(tmp, bindir, NUMATP, model, text)
        test_kld(tmp, bindir, model, text)
        test_errors(tmp, bindir, NUMATP, model, text)
    return result("test_vs_llama_cpp")


if __name__ == "__main__":
    sys.exit(main())
