#!/usr/bin/env python3
"""test_kernels_bench.py KERNELS - bench/kernels on tiny sizes with the
reference kernels: its JSON has every product of every type asked for, dense
and mixture of experts, each with a positive figure; --moe 0 leaves the
experts out, and a bad --moe exits with 2 and a message naming it."""
import json
import subprocess
import sys

from checks import check, result

KERNELS = sys.argv[1]

small = ["--isa", "ref", "--threads", "1", "--reps", "1", "--mv-mib", "2", "--mm-mib", "1",
         "--mm-tok", "4", "--k", "1024"]
p = subprocess.run([KERNELS, "--json", "--types", "q4_0,q4_k,f16", "--moe", "8,2", *small],
                   capture_output=True, text=True, timeout=300)
check(p.returncode == 0, f"kernels exited {p.returncode}: {p.stderr}")
rows = json.loads(p.stdout) if p.returncode == 0 else []
got = {(r["op"], r["type"]) for r in rows if r["value"] > 0 and r["value_cpu"] > 0}
for t in ["Q4_0", "Q4_K", "F16"]:
    for op in ["matvec", "matmul", "moe_decode", "moe_prefill"]:
        check((op, t) in got, f"no positive {op} {t} in {sorted(got)}")
check(all(0 < r["of_read_bw"] for r in rows if r["op"] in ("matvec", "moe_decode")),
      "a decode row without its share of the read bandwidth")

p = subprocess.run([KERNELS, "--types", "q4_0", "--moe", "8", *small], capture_output=True,
                   text=True, timeout=60)
check(p.returncode == 2 and "--moe" in p.stderr, f"--moe 8: exit {p.returncode}, {p.stderr!r}")
p = subprocess.run([KERNELS, "--types", "q4_0", "--moe", "4,8", *small], capture_output=True,
                   text=True, timeout=60)
check(p.returncode == 2 and "--moe" in p.stderr, f"--moe 4,8: exit {p.returncode}, {p.stderr!r}")

p = subprocess.run([KERNELS, "--json", "--types", "q4_0", "--moe", "0", *small],
                   capture_output=True, text=True, timeout=60)
ops = {r["op"] for r in json.loads(p.stdout)} if p.returncode == 0 else set()
check(p.returncode == 0 and not any(op.startswith("moe") for op in ops),
      f"--moe 0: exit {p.returncode}, ops {sorted(ops)}")

p = subprocess.run([KERNELS, "--help"], capture_output=True, text=True, timeout=60)
check(p.returncode == 0 and "--moe" in p.stdout, f"--help: exit {p.returncode}, {p.stdout!r}")

sys.exit(result("kernels_bench"))
