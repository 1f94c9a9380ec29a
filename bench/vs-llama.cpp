#!/usr/bin/env python3
"""vs-llama.cpp - numatp next to llama.cpp on the same model files, threads and text.

  bench/vs-llama.cpp bench -m MODEL.gguf [-m MODEL2 ...] [-t 2] [-p 128] [-n 64] [--rounds 5]
      llama-bench and `numatp bench`, one repetition each per round, interleaved round by
      round; a markdown table of the medians and the ratio numatp / llama.cpp.
  bench/vs-llama.cpp ppl -m MODEL.gguf -f TEXT -c 128 [-b 512] [-t 2]
      llama-perplexity and `numatp perplexity` on the same text, context and batch; both
      final estimates and their relative difference.
  bench/vs-llama.cpp kld -m MODEL.gguf -f TEXT -c 128 [-b 512] [-t 2]
      llama-perplexity saves its log-probabilities (--kl-divergence-base), numatp reads
      them (--kl-divergence) and prints the KL divergence of its own to llama.cpp's.

Every mode takes --numatp PATH (default: numatp on PATH, else the repository's
build/src/cli/numatp) and --llama-bin DIR (default: the directory bench/llama-cpp.sh
prints, building llama.cpp there once). Progress goes to stderr, results to stdout;
a failure exits with status 1 and says what failed, with the end of its output.
"""
import argparse
import datetime
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROG = "vs-llama.cpp"
NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)"
FINAL_RE = re.compile(r"Final estimate: PPL = " + NUM + r" \+/- " + NUM)


class Failure(Exception):
    """A step that failed; the message says which and why."""


def progress(msg):
    print("%s: %s" % (PROG, msg), file=sys.stderr, flush=True)


def tail(text, n=20):
    lines = text.rstrip("\n").splitlines()
    return "\n".join("    " + line for line in lines[-n:])


def run(cmd, what):
    """stdout and stderr of cmd (a list); a non-zero exit raises Failure with the tail."""
    progress("running " + " ".join(shlex.quote(c) for c in cmd))
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL)
    except OSError as e:
        raise Failure("%s could not start: %s" % (what, e))
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    if p.returncode != 0:
        raise Failure("%s failed with exit status %d; the end of its output:\n%s"
                      % (what, p.returncode, tail(err if err.strip() else out)))
    return out, err


# ---- locating the two engines ----

def find_numatp(path):
    if path:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise Failure("--numatp %s: not an executable file" % path)
        return path
    found = shutil.which("numatp")
    if found:
        return found
    built = os.path.join(REPO, "build", "src", "cli", "numatp")
    if os.access(built, os.X_OK):
        return built
    raise Failure("numatp not found on PATH nor at %s; build it with scripts/build.sh "
                  "or pass --numatp PATH" % built)


def find_llama_bin(path, tools):
    """The directory holding llama.cpp's tools: --llama-bin, else bench/llama-cpp.sh's."""
    if not path:
        script = os.path.join(REPO, "bench", "llama-cpp.sh")
        progress("finding llama.cpp with %s (the first call builds it)" % script)
        p = subprocess.run([script], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        lines = p.stdout.decode(errors="replace").split()
        if p.returncode != 0 or not lines:
            raise Failure("%s failed (exit status %d); its messages are above"
                          % (script, p.returncode))
        path = lines[-1]
    if not os.path.isdir(path):
        raise Failure("--llama-bin %s: no such directory" % path)
    missing = [t for t in tools if not os.access(os.path.join(path, t), os.X_OK)]
    if missing:
        raise Failure("--llama-bin %s: no executable %s" % (path, ", ".join(missing)))
    return path


def check_files(paths, what):
    for p in paths:
        if not os.path.isfile(p):
            raise Failure("%s %s: no such file" % (what, p))


# ---- the machine ----

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def physical_cores():
    """Cores without their hyperthreads, as both engines count them for their default."""
    cores = set()
    phys = core = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    phys = val.strip()
                elif key == "core id":
                    core = val.strip()
                elif not line.strip():
                    if core is not None:
                        cores.add((phys, core))
                    phys = core = None
    except OSError:
        pass
    return len(cores) or os.cpu_count() or 1


def machine_lines(threads):
    return ["machine: %s, %d logical CPUs, %d threads used"
            % (cpu_model(), os.cpu_count() or 0, threads),
            "date: %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M")]


# ---- bench ----

def test_name(row):
    p, n = int(row.get("n_prompt", 0)), int(row.get("n_gen", 0))
    if p and n:
        return "pp%d+tg%d" % (p, n)
    return "pp%d" % p if p else "tg%d" % n


def parse_bench_json(out, what):
    """{test: tok/s} and the first row from llama-bench's or numatp bench's JSON."""
    try:
        rows = json.loads(out)
        speeds = {test_name(r): float(r["avg_ts"]) for r in rows}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise Failure("%s printed no JSON results (%s); its output:\n%s" % (what, e, tail(out)))
    if not speeds:
        raise Failure("%s printed an empty result list" % what)
    return speeds, rows[0]


def bench_round(engine, cmd, what, samples):
    speeds, first = parse_bench_json(run(cmd, what)[0], what)
    for test, ts in speeds.items():
        samples.setdefault(test, {}).setdefault(engine, []).append(ts)
    return first


def fmt_ts(v):
    return "%.2f" % v if v is not None else "-"


def cmd_bench(a):
    check_files(a.model, "model")
    numatp = find_numatp(a.numatp)
    llama = find_llama_bin(a.llama_bin, ["llama-bench"])
    common = ["-t", str(a.threads), "-p", a.n_prompt, "-n", a.n_gen, "-r", "1"]
    samples = {m: {} for m in a.model}  # model -> test -> engine -> [tok/s per round]
    info = {}
    for r in range(a.rounds):
        for m in a.model:
            runs = [("llama.cpp", [os.path.join(llama, "llama-bench"), "-m", m, *common,
                                   "-o", "json"], "llama-bench"),
                    ("numatp", [numatp, "bench", "-m", m, *common, "--stream-size", "0",
                                "--json"], "numatp bench")]
            # Alternate which engine goes first so neither always meets a warmer machine.
            if r % 2:
                runs.reverse()
            progress("round %d/%d, %s" % (r + 1, a.rounds, os.path.basename(m)))
            for engine, cmd, what in runs:
                info[engine] = bench_round(engine, cmd, what, samples[m])

    lines = machine_lines(a.threads)
    ll, nt = info["llama.cpp"], info["numatp"]
    lines.append("llama.cpp: build %s, commit %s (%s); n_batch %s, n_ubatch %s, "
                 "flash_attn %s, type_k %s"
                 % (ll.get("build_number"), ll.get("build_commit"), llama, ll.get("n_batch"),
                    ll.get("n_ubatch"), ll.get("flash_attn"), ll.get("type_k")))
    lines.append("numatp: %s (%s); isa %s, tp %s, type_k %s"
                 % (nt.get("numatp_version"), numatp, nt.get("isa"), nt.get("tp"),
                    nt.get("type_k")))
    lines.append("medians of %d rounds, one repetition (after one warm-up) per round and "
                 "engine, the engines interleaved" % a.rounds)
    lines += ["", "| model | test | llama.cpp t/s | numatp t/s | numatp/llama.cpp |",
              "| --- | --- | ---: | ---: | ---: |"]
    rounds = []
    for m in a.model:
        for test, by_engine in samples[m].items():
            ll_v, nt_v = by_engine.get("llama.cpp"), by_engine.get("numatp")
            ll_med = statistics.median(ll_v) if ll_v else None
            nt_med = statistics.median(nt_v) if nt_v else None
            ratio = "%.3f" % (nt_med / ll_med) if ll_med and nt_med is not None else "-"
            lines.append("| %s | %s | %s | %s | %s |" % (os.path.basename(m), test,
                                                         fmt_ts(ll_med), fmt_ts(nt_med), ratio))
            for engine, v in (("llama.cpp", ll_v), ("numatp", nt_v)):
                rounds.append("%s %s %s: %s" % (os.path.basename(m), test, engine,
                                                " ".join(fmt_ts(x) for x in v or [])))
    print("\n".join(lines + ["", "rounds (t/s):"] + ["    " + x for x in rounds]))


# ---- perplexity ----

def final_estimate(out, what):
    """(PPL, +/-) of the last 'Final estimate' line."""
    found = FINAL_RE.findall(out)
    if not found:
        raise Failure("%s printed no 'Final estimate: PPL = X +/- Y' line; the end of its "
                      "output:\n%s" % (what, tail(out)))
    return float(found[-1][0]), float(found[-1][1])


def ppl_common(a):
    return ["-m", a.model, "-f", a.file, "-c", str(a.ctx_size), "-b", str(a.batch_size),
            "-t", str(a.threads)]


def timed(cmd, what):
    t0 = time.monotonic()
    out, err = run(cmd, what)
    return out + err, time.monotonic() - t0


def llama_ppl(cmd, attempts=3):
    """llama-perplexity's estimate and seconds. Its logger writes from a thread that the
    program does not wait for at exit, so a run can end without its last lines; such a
    run is repeated."""
    for i in range(attempts):
        out, secs = timed(cmd, "llama-perplexity")
        if FINAL_RE.search(out) or i + 1 == attempts:
            return final_estimate(out, "llama-perplexity"), secs
        progress("llama-perplexity exited without its final estimate (its log lost the last "
                 "lines); running it again")


def cmd_ppl(a):
    check_files([a.model], "model")
    check_files([a.file], "text")
    numatp = find_numatp(a.numatp)
    llama = find_llama_bin(a.llama_bin, ["llama-perplexity"])
    ll, ll_s = llama_ppl([os.path.join(llama, "llama-perplexity"), *ppl_common(a)])
    nt_out, nt_s = timed([numatp, "perplexity", *ppl_common(a)], "numatp perplexity")
    nt = final_estimate(nt_out, "numatp perplexity")
    lines = machine_lines(a.threads)
    lines += ["model: %s, text: %s, -c %d, -b %d" % (os.path.basename(a.model),
                                                    os.path.basename(a.file), a.ctx_size,
                                                    a.batch_size),
              "", "| engine | PPL | +/- | seconds |", "| --- | ---: | ---: | ---: |",
              "| llama.cpp | %.4f | %.5f | %.1f |" % (ll[0], ll[1], ll_s),
              "| numatp | %.4f | %.5f | %.1f |" % (nt[0], nt[1], nt_s), "",
              "numatp - llama.cpp: %+.4f (%+.3f %%)" % (nt[0] - ll[0],
                                                       100.0 * (nt[0] - ll[0]) / ll[0])]
    print("\n".join(lines))


# ---- KL divergence ----

# llama-perplexity's closing statistics in its own wording; the first two must be there.
KLD_STATS = ["Mean    KLD", "Same top p", "Mean PPL(Q)", "Mean PPL(base)", "Maximum KLD",
             "99.0%   KLD", "Median  KLD", "Mean    Δp", "RMS Δp"]


def kld_stats(out):
    stats = {}
    for label in KLD_STATS:
        m = re.search(r"^\s*" + re.escape(label) + r"\s*:\s*" + NUM + r"(?:\s*±\s*" + NUM +
                      r")?", out, re.M)
        if m:
            stats[label] = (float(m.group(1)), float(m.group(2)) if m.group(2) else None)
    return stats


def cmd_kld(a):
    check_files([a.model], "model")
    check_files([a.file], "text")
    numatp = find_numatp(a.numatp)
    llama = find_llama_bin(a.llama_bin, ["llama-perplexity"])
    with tempfile.TemporaryDirectory(prefix="vs-llama-kld-") as tmp:
        base = a.base or os.path.join(tmp, "base.kld")
        run([os.path.join(llama, "llama-perplexity"), *ppl_common(a), "--kl-divergence-base",
             base], "llama-perplexity (writing the base log-probabilities)")
        if not os.path.isfile(base):
            raise Failure("llama-perplexity wrote no %s" % base)
        try:
            out, err = run([numatp, "perplexity", *ppl_common(a), "--kl-divergence-base", base,
                            "--kl-divergence"], "numatp perplexity --kl-divergence")
        except Failure as e:
            if "unknown option" in str(e):
                raise Failure("%s\n(this numatp has no --kl-divergence yet)" % e)
            raise
    stats = kld_stats(out + err)
    missing = [s for s in KLD_STATS[:2] if s not in stats]
    if missing:
        raise Failure("numatp perplexity --kl-divergence printed no %s; the end of its "
                      "output:\n%s" % (" or ".join("'%s:'" % s for s in missing),
                                       tail(out + err)))
    lines = machine_lines(a.threads)
    lines += ["model: %s, text: %s, -c %d, -b %d; base: llama.cpp, compared: numatp"
              % (os.path.basename(a.model), os.path.basename(a.file), a.ctx_size,
                 a.batch_size), "", "| statistic | value | +/- |", "| --- | ---: | ---: |"]
    for label in KLD_STATS:
        if label in stats:
            v, pm = stats[label]
            # The percentages come with three decimals, the rest with six.
            fmt = "%.3f %%" if label in ("Same top p", "Mean    Δp", "RMS Δp") else "%.6f"
            lines.append("| %s | %s | %s |" % (" ".join(label.split()), fmt % v,
                                               fmt % pm if pm is not None else ""))
    print("\n".join(lines))


# ---- command line ----

def main(argv):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="mode", metavar="bench|ppl|kld")
    sub.required = True

    def engines(p):
        p.add_argument("-t", "--threads", type=int, default=physical_cores(),
                       help="threads for both engines (default: the physical cores, %(default)s)")
        p.add_argument("--numatp", metavar="PATH", help="the numatp binary")
        p.add_argument("--llama-bin", metavar="DIR",
                       help="directory of llama.cpp's binaries (default: bench/llama-cpp.sh)")

    b = sub.add_parser("bench", help="speed: llama-bench and numatp bench, interleaved")
    b.add_argument("-m", "--model", action="append", required=True, metavar="FILE",
                   help="a GGUF file; repeat for more")
    b.add_argument("-p", "--n-prompt", default="128", metavar="LIST",
                   help="prompt lengths, comma-separated (default 128)")
    b.add_argument("-n", "--n-gen", default="64", metavar="LIST",
                   help="generated tokens, comma-separated (default 64)")
    b.add_argument("--rounds", type=int, default=5, help="rounds, each engine once per round "
                   "(default 5)")
    engines(b)
    b.set_defaults(run=cmd_bench)

    for name, fn, hlp in (("ppl", cmd_ppl, "perplexity of both engines on one text"),
                          ("kld", cmd_kld, "KL divergence of numatp to llama.cpp")):
        p = sub.add_parser(name, help=hlp)
        p.add_argument("-m", "--model", required=True, metavar="FILE", help="a GGUF file")
        p.add_argument("-f", "--file", required=True, metavar="TEXT", help="the text")
        p.add_argument("-c", "--ctx-size", type=int, default=512, help="tokens per chunk "
                       "(default 512)")
        p.add_argument("-b", "--batch-size", type=int, default=512, help="batch (default 512)")
        if name == "kld":
            p.add_argument("--base", metavar="FILE", help="keep llama.cpp's log-probabilities "
                           "in FILE (default: a temporary file)")
        engines(p)
        p.set_defaults(run=fn)

    a = ap.parse_args(argv)
    for name in ("threads", "rounds", "ctx_size", "batch_size"):
        if getattr(a, name, 1) < 1:
            ap.error("--%s must be 1 or more" % name.replace("_", "-"))
    try:
        a.run(a)
    except Failure as e:
        print("%s: %s" % (PROG, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
