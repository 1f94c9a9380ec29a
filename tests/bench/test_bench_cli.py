#!/usr/bin/env python3
"""test_bench_cli.py NUMATP - `numatp bench` and `numatp numa-bench` from the
outside, on tiny sizes: the JSON keys are present and typed, the markdown
table has a header, a separator and one row per test, the CSV has one line
per test, the SVG is well-formed XML with a title and labels, and bad flags
or impossible values exit with 2 and a message naming the option."""
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

from checks import check, result

NUMATP = sys.argv[1]


def run(*args):
    p = subprocess.run([NUMATP, *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_stat(s, what):
    check(isinstance(s, dict) and all(is_num(s.get(k)) for k in ("median", "min", "max")),
          what + ": a {median, min, max} of numbers")
    if isinstance(s, dict) and all(is_num(s.get(k)) for k in ("median", "min", "max")):
        check(s["min"] <= s["median"] <= s["max"], what + ": min <= median <= max")


def check_matrix(m, n, what):
    check(isinstance(m, list) and len(m) == n and all(len(r) == n for r in m),
          what + ": %dx%d" % (n, n))
    for i, row in enumerate(m):
        for j, cell in enumerate(row):
            check_stat(cell, "%s[%d][%d]" % (what, i, j))


NB_FAST = ("--size", "1M", "--reps", "1", "--ar-calls", "20")


def sysfs_cpu_nodes():
    """NUMA nodes with CPUs as the kernel lists them (1 when sysfs has no node folders)."""
    base = "/sys/devices/system/node"
    n = 0
    for name in os.listdir(base) if os.path.isdir(base) else []:
        path = os.path.join(base, name, "cpulist")
        if name.startswith("node") and os.path.exists(path):
            with open(path) as f:
                n += bool(f.read().strip())
    return max(n, 1)


def test_numa_bench(tmp):
    svg = os.path.join(tmp, "bw.svg")
    rc, out, err = run("numa-bench", *NB_FAST, "--json", "--svg", svg)
    check(rc == 0, "numa-bench --json exits 0 (%d: %s)" % (rc, err))
    d = json.loads(out)
    for k, t in (("numatp_version", str), ("test_time", str), ("n_nodes", int),
                 ("llc_bytes", int), ("array_bytes", int), ("reps", int), ("nodes", list),
                 ("placed_fraction", list), ("bandwidth_gbps_all_cores", dict),
                 ("bandwidth_gbps_one_core", dict), ("latency_ns", list), ("gemv", dict),
                 ("allreduce_note", str), ("allreduce_us", list), ("min_cpu_share", float)):
        check(isinstance(d.get(k), t), "numa-bench JSON key %s of type %s" % (k, t.__name__))
    n = d["n_nodes"]
    check(n == sysfs_cpu_nodes(), "n_nodes %d is the NUMA nodes with CPUs in sysfs (%d)"
          % (n, sysfs_cpu_nodes()))
    check(d["array_bytes"] == 1 << 20, "array_bytes is --size")
    for mode in ("bandwidth_gbps_all_cores", "bandwidth_gbps_one_core"):
        check(sorted(d[mode]) == ["copy", "read", "triad", "write"], mode + " has 4 kernels")
        for k, m in d[mode].items():
            check_matrix(m, n, mode + "." + k)
    check_matrix(d["latency_ns"], n, "latency_ns")
    check(len(d["gemv"]["nodes"]) == n, "one GEMV entry per node")
    for g in d["gemv"]["nodes"]:
        check(g["best_type"] in ("Q4_0", "Q8_0", "Q4_K"), "GEMV best_type")
        check(is_num(g["best_gbps"]) and g["best_gbps"] > 0, "GEMV best_gbps > 0")
    if n == 1:
        check(isinstance(d.get("note"), str) and "one NUMA node" in d["note"],
              "one node: the note says why the matrix is 1x1")
    for row in d["allreduce_us"]:
        check(len(row["us"]) == len(d["allreduce_lengths"]), "all-reduce row per length")
    root = ET.parse(svg).getroot()
    check(root.tag.endswith("svg"), "SVG root is <svg>")
    texts = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    for word in ("read bandwidth", "cpu 0", "mem 0", "GB/s", "memory node", "cpu node"):
        check(word in texts, "SVG has the label '%s'" % word)
    check(any(e.tag.endswith("rect") for e in root.iter()), "SVG has cells")

    rc, out, err = run("numa-bench", *NB_FAST)
    check(rc == 0 and "read GB/s, all cores" in out and "latency" in out and "GEMV" in out,
          "numa-bench tables")


def test_numa_bench_errors():
    for args, word in ((("--size", "0"), "--size"), (("--size", "1Z"), "--size"),
                       (("--size", "-5"), "--size"), (("--size", "1000T"), "--size"),
                       (("--reps", "0"), "--reps"), (("--bogus",), "--bogus"),
                       (("--ar-calls", "0"), "--ar-calls")):
        rc, out, err = run("numa-bench", *args)
        check(rc == 2 and word in err, "numa-bench %s: exit 2 naming %s (%d: %s)"
              % (" ".join(args), word, rc, err.strip()))


def make_model(tmp):
    path = os.path.join(tmp, "tiny.gguf")
    rc, out, err = run("gen", "-q", "--type", "q4_0", "-o", path)
    check(rc == 0, "gen a tiny model (%s)" % err)
    return path


BENCH_FAST = ("-p", "8", "-n", "4", "-r", "2", "-t", "1", "--stream-size", "1M")

JSON_KEYS = (("model_filename", str), ("model_type", str), ("model_size", int),
             ("model_n_params", int), ("n_prompt", int), ("n_gen", int), ("n_depth", int),
             ("n_threads", int),
             ("avg_ns", (int, float)), ("stddev_ns", (int, float)), ("avg_ts", (int, float)),
             ("stddev_ts", (int, float)), ("samples_ns", list), ("samples_ts", list),
             ("test_time", str), ("tp", int), ("isa", str), ("backends", str))


def test_bench(model):
    rc, out, err = run("bench", "-m", model, *BENCH_FAST, "--json")
    check(rc == 0, "bench --json exits 0 (%d: %s)" % (rc, err))
    rows = json.loads(out)
    check(isinstance(rows, list) and len(rows) == 2, "bench --json: one object per test")
    for r in rows:
        for k, t in JSON_KEYS:
            check(isinstance(r.get(k), t), "bench JSON key %s typed %s" % (k, t))
        check(len(r["samples_ns"]) == 2 and len(r["samples_ts"]) == 2, "2 samples")
        for k in ("bw_gbps", "bw_efficiency", "stream_read_gbps", "allreduce_share"):
            check(k in r and (r[k] is None or is_num(r[k])), "bench JSON key %s" % k)
        check(r["avg_ts"] > 0, "avg_ts > 0")
    pp = [r for r in rows if r["n_prompt"]]
    tg = [r for r in rows if r["n_gen"]]
    check(len(pp) == 1 and pp[0]["n_prompt"] == 8 and pp[0]["bw_gbps"] is None, "pp8 row")
    check(len(tg) == 1 and tg[0]["n_gen"] == 4 and is_num(tg[0]["bw_gbps"]), "tg4 row with bw")
    check(is_num(tg[0]["bw_efficiency"]) and tg[0]["bw_efficiency"] > 0, "bw_efficiency")

    rc, out, err = run("bench", "-m", model, *BENCH_FAST)
    lines = [l for l in out.splitlines() if l.strip()]
    check(rc == 0 and len(lines) == 4, "markdown: header, separator, 2 rows (%r)" % lines)
    if len(lines) == 4:
        head = [c.strip() for c in lines[0].strip("|").split("|")]
        check(head == ["model", "size", "params", "backend", "isa", "tp", "threads", "test",
                       "t/s"], "markdown header %r" % head)
        check(set(lines[1].replace("|", "").replace(" ", "")) <= set("-:"), "separator row")
        for l in lines[2:]:
            check(len(l.strip("|").split("|")) == len(head), "row has every column")
        check("pp8" in lines[2] and "tg4" in lines[3] and "±" in lines[3], "test names, ±")

    rc, out, err = run("bench", "-m", model, *BENCH_FAST, "-o", "csv")
    lines = out.splitlines()
    check(rc == 0 and len(lines) == 3 and lines[0].startswith("model_filename,"), "csv shape")
    check(all(r["n_depth"] == 0 for r in rows), "no -d: depth 0")

    # -d: every test at every depth, named as llama-bench names them
    rc, out, err = run("bench", "-m", model, *BENCH_FAST, "-d", "0,24", "--json")
    rows_d = json.loads(out) if rc == 0 else []
    check(rc == 0 and [(r["n_prompt"], r["n_gen"], r["n_depth"]) for r in rows_d]
          == [(8, 0, 0), (0, 4, 0), (8, 0, 24), (0, 4, 24)], "bench -d 0,24: 4 rows (%s)" % err)
    rc, out, err = run("bench", "-m", model, *BENCH_FAST, "-d", "24")
    check(rc == 0 and "pp8 @ d24" in out and "tg4 @ d24" in out, "markdown names pp8 @ d24")
    rc, out, err = run("bench", "-m", model, *BENCH_FAST, "-d", "120", "-c", "64")
    check(rc == 1 and "context" in err, "a depth past -c is refused (%d: %s)" % (rc, err.strip()))

    # With two devices the share of decode time spent in the all-reduce is a
    # fraction; with one device there is no all-reduce and it is null.
    check(all(r["allreduce_share"] is None for r in rows), "tp 1: allreduce_share null")
    rc, out, err = run("bench", "-m", model, *BENCH_FAST, "--tp", "2", "--json")
    rows2 = json.loads(out) if rc == 0 else []
    check(rc == 0 and len(rows2) == 2 and all(r["tp"] == 2 for r in rows2), "bench --tp 2")
    for r in rows2:
        share = r["allreduce_share"]
        check(is_num(share) and 0 < share < 1, "tp 2: allreduce_share in (0, 1): %r" % share)


def test_bench_moe(tmp):
    """A mixture of experts: decode reads the chosen experts' share of the expert tensors,
    so weight_bytes_per_token counts 2 of 8 experts' bytes, and both splits run."""
    path = os.path.join(tmp, "moe.gguf")
    rc, out, err = run("gen", "-q", "--preset", "tiny-moe", "--type", "q8_0", "-o", path)
    check(rc == 0, "gen a tiny qwen3moe (%s)" % err)
    rc, out, err = run("bench", "-m", path, *BENCH_FAST, "--tp", "2", "--moe-split", "experts",
                       "--json")
    rows = json.loads(out) if rc == 0 else []
    check(rc == 0 and len(rows) == 2, "bench a qwen3moe split by experts (%d: %s)" % (rc, err))
    if rows:
        # per layer 3 expert tensors of 8 experts x 128 x 256 Q8_0 (34 bytes per 32)
        exp = 2 * 3 * 8 * 128 * 256 // 32 * 34
        b = rows[0]["weight_bytes_per_token"]
        check(b == rows[0]["model_size"] - exp + exp // 4 - 512 * 256 // 32 * 34,
              "weight_bytes_per_token counts 2 of 8 experts: %d of %d" % (b, rows[0]["model_size"]))


def test_bench_errors(model):
    cases = ((("-m", model, "-r", "0"), "-r"), (("-m", model, "-p", "-1"), "-p"),
             (("-m", model, "-n", "x"), "-n"), (("-m", model, "-t", "0"), "-t"),
             (("-m", model, "-d", "-5"), "-d"),
             (("-m", model, "--tp", "-1"), "--tp"), (("-m", model, "-p", "0", "-n", "0"), "nothing"),
             (("-m", model, "--json", "--csv"), "format"), (("-m", model, "-o", "xml"), "-o"),
             (("-m", model, "-ngl", "-1"), "-ngl"), (("-m", model, "--stream-size", "1Z"),
                                                     "--stream-size"),
             (("-p", "8"), "-m"), (("-m", model, "--frobnicate"), "--frobnicate"))
    for args, word in cases:
        rc, out, err = run("bench", *args)
        check(rc == 2 and word in err, "bench %s: exit 2 naming %s (%d: %s)"
              % (" ".join(args), word, rc, err.strip()))
    # A file that cannot be read is a runtime error (1), as in every inference command.
    rc, out, err = run("bench", "-m", "/nonexistent/model.gguf")
    check(rc == 1 and "/nonexistent/model.gguf" in err,
          "bench -m /nonexistent/model.gguf: exit 1 naming the file (%d: %s)" % (rc, err.strip()))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        test_numa_bench(tmp)
        test_numa_bench_errors()
        model = make_model(tmp)
        test_bench(model)
        test_bench_moe(tmp)
        test_bench_errors(model)
    return result("bench_cli")


if __name__ == "__main__":
    sys.exit(main())
