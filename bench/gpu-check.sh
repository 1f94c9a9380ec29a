#!/usr/bin/env bash
# gpu-check.sh - on a machine with an NVIDIA GPU: the GPU test suite, a memory
# check of the CUDA kernels, and numatp's speed with every block on the GPU
# next to the CPU devices (and next to llama.cpp's CUDA build when given), in
# one run. Written for short GPU sessions: everything runs even when an early
# step fails, and a summary table comes last.
#
# Usage: bench/gpu-check.sh BUILD_DIR OUT_DIR [LLAMA_BENCH]
#   BUILD_DIR    a numatp build with CUDA (meson setup ... -Dcuda=enabled)
#   OUT_DIR      logs and the bench results (JSON) go here
#   LLAMA_BENCH  optional: llama.cpp's llama-bench built with CUDA
#                (bench/llama-cpp.sh --cuda), run on the same files
#
# Environment: GPU_CHECK_MODELS="q4_k_m q4_0 q8_0" (the weight types of the
# files to generate and time; numatp gen, random weights), GPU_CHECK_SHAPE
# (numatp gen's shape options; default "--preset tinyllama-1b"),
# GPU_CHECK_REPS=3, GPU_CHECK_THREADS (CPU threads; default: every core),
# GPU_CHECK_KEEP=1 (keep the generated files in OUT_DIR/models.tmp); for the
# first file also GPU_CHECK_DEPTH=4096 (a run with that many tokens already in
# the cache) and GPU_CHECK_HALF=11 (-ngl 11: blocks 0-10 on the GPU).
set -uo pipefail

build=${1:?usage: bench/gpu-check.sh BUILD_DIR OUT_DIR [LLAMA_BENCH]}
out=${2:?usage: bench/gpu-check.sh BUILD_DIR OUT_DIR [LLAMA_BENCH]}
llama_bench=${3:-}
models=${GPU_CHECK_MODELS:-q4_k_m q4_0 q8_0}
reps=${GPU_CHECK_REPS:-3}
threads=${GPU_CHECK_THREADS:-$(nproc)}
read -r -a shape <<<"${GPU_CHECK_SHAPE:---preset tinyllama-1b}"
depth=${GPU_CHECK_DEPTH:-4096}
half=${GPU_CHECK_HALF:-11}
numatp=$build/src/cli/numatp
mkdir -p "$out"
summary=$out/summary.txt
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
t0=$(date +%s)
stamp() { echo "[$(($(date +%s) - t0)) s] $*" >&2; }
why() { tail -n 1 "$1"; } # the last line of a log: the error that stopped it

note "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs"
note "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1)"
note "numatp: $("$numatp" info 2>&1 | grep "^gpu ")"

# The models, generated in the background while the tests run.
gen_dir=$out/models.tmp
mkdir -p "$gen_dir"
declare -A gen_pid
for m in $models; do
    flag=(--type "$m")
    [[ $m == q4_k_m || $m == q5_k_m ]] && flag=(--mix "$m")
    "$numatp" gen "${shape[@]}" "${flag[@]}" -o "$gen_dir/model-$m.gguf" \
        >"$out/gen-$m.log" 2>&1 &
    gen_pid[$m]=$!
done

# The GPU suite: each test on its own, with its output kept.
for t in gpu_ops gpu_layers gpu_hybrid; do
    stamp "test_$t"
    s=$(date +%s)
    timeout 600 "$build/tests/gpu/test_$t" >"$out/test_$t.log" 2>&1
    rc=$?
    verdict=passed
    ((rc == 77)) && verdict=skipped
    ((rc && rc != 77)) && verdict=FAILED
    note "test_$t: $verdict, exit $rc ($(($(date +%s) - s)) s)"
    ((rc == 77)) && note "    $(why "$out/test_$t.log")"
    ((rc && rc != 77)) && tail -n 15 "$out/test_$t.log" | sed 's/^/    /' | tee -a "$summary"
done

# Out-of-bounds accesses and uninitialized reads in the kernels.
if command -v compute-sanitizer >/dev/null; then
    stamp "compute-sanitizer"
    timeout 600 compute-sanitizer --tool memcheck --leak-check full --error-exitcode 9 \
        "$build/tests/gpu/test_gpu_ops" >"$out/memcheck.log" 2>&1
    note "memcheck test_gpu_ops: exit $? ($(grep -c '=========' "$out/memcheck.log") sanitizer lines)"
fi

for m in $models; do
    wait "${gen_pid[$m]}" || note "numatp gen $m failed: $(why "$out/gen-$m.log")"
done

# Speed: every block and the output head on the GPU; the CPU devices alone for
# the first file.
first=1
for m in $models; do
    f=$gen_dir/model-$m.gguf
    [[ -f $f ]] || continue
    if ((first)); then
        # Text end to end, greedy, on the GPU and on the CPU.
        for ngl in 999 0; do
            extra=()
            ((ngl)) && extra=(--gpu-output)
            "$numatp" run -m "$f" -p "The capital of France is" -n 24 --temp 0 -ngl "$ngl" \
                "${extra[@]}" >"$out/run-ngl$ngl.txt" 2>"$out/run-ngl$ngl.log" ||
                note "numatp run -ngl $ngl failed: $(why "$out/run-ngl$ngl.log")"
        done
        if cmp -s "$out/run-ngl999.txt" "$out/run-ngl0.txt"; then
            note "numatp run: the GPU's greedy text is the CPU's"
        else
            note "numatp run: the GPU's greedy text differs from the CPU's (random weights)"
        fi
    fi
    stamp "bench $m"
    "$numatp" bench -m "$f" -p 128,512 -n 128 -r "$reps" -ngl 999 --gpu-output --stream-size 0 \
        -o json >"$out/bench-gpu-$m.json" 2>"$out/bench-gpu-$m.log" ||
        note "numatp bench -ngl 999 $m failed: $(why "$out/bench-gpu-$m.log")"
    if ((first)); then
        "$numatp" bench -m "$f" -p 512 -n 128 -r "$reps" -t "$threads" -o json \
            >"$out/bench-cpu-$m.json" 2>"$out/bench-cpu-$m.log" ||
            note "numatp bench (CPU) $m failed: $(why "$out/bench-cpu-$m.log")"
    fi
    if [[ -n $llama_bench ]]; then
        "$llama_bench" -m "$f" -p 128,512 -n 128 -r "$reps" -ngl 999 -o json \
            >"$out/llama-gpu-$m.json" 2>"$out/llama-gpu-$m.log" ||
            note "llama-bench -ngl 999 $m failed: $(why "$out/llama-gpu-$m.log")"
    fi
    if ((first)); then
        # A long context on the GPU, and half the blocks on the GPU, half on the CPU.
        stamp "bench $m: depth $depth, -ngl $half"
        "$numatp" bench -m "$f" -p 512 -n 128 -d "$depth" -r "$reps" -ngl 999 --gpu-output \
            --stream-size 0 -o json >"$out/deep-gpu-$m.json" 2>"$out/deep-gpu-$m.log" ||
            note "numatp bench -d $depth $m failed: $(why "$out/deep-gpu-$m.log")"
        "$numatp" bench -m "$f" -p 512 -n 128 -r "$reps" -ngl "$half" -t "$threads" \
            --stream-size 0 -o json >"$out/half-gpu-$m.json" 2>"$out/half-gpu-$m.log" ||
            note "numatp bench -ngl $half $m failed: $(why "$out/half-gpu-$m.log")"
        if [[ -n $llama_bench ]]; then
            "$llama_bench" -m "$f" -p 512 -n 128 -d "$depth" -r "$reps" -ngl 999 -o json \
                >"$out/deep-llama-$m.json" 2>"$out/deep-llama-$m.log" ||
                note "llama-bench -d $depth $m failed: $(why "$out/deep-llama-$m.log")"
            "$llama_bench" -m "$f" -p 512 -n 128 -r "$reps" -ngl "$half" -t "$threads" -o json \
                >"$out/half-llama-$m.json" 2>"$out/half-llama-$m.log" ||
                note "llama-bench -ngl $half $m failed: $(why "$out/half-llama-$m.log")"
        fi
    fi
    first=0
done

# One table: tokens per second, median of the repetitions.
python3 - "$out" "$depth" "$half" $models >>"$summary" <<'EOF'
import json, os, statistics, sys
out, depth, half, models = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return []

def rate(rows, pp, tg, depth=0):
    for r in rows:
        if r.get("n_prompt") == pp and r.get("n_gen") == tg and r.get("n_depth", 0) == depth:
            s = r.get("samples_ts") or []
            return statistics.median(s) if s else r.get("avg_ts")
    return None

fmt = lambda v: "-" if v is None else f"{v:.1f}"
print("\nmodel    test   numatp GPU  numatp CPU  llama.cpp GPU")
for m in models:
    g = load(f"{out}/bench-gpu-{m}.json")
    c = load(f"{out}/bench-cpu-{m}.json")
    l = load(f"{out}/llama-gpu-{m}.json")
    for pp, tg, name in ((128, 0, "pp128"), (512, 0, "pp512"), (0, 128, "tg128")):
        print(f"{m:8} {name:6} {fmt(rate(g, pp, tg)):>11} {fmt(rate(c, pp, tg)):>11}"
              f" {fmt(rate(l, pp, tg)):>14}")
print("\nfirst model, GPU; numatp / llama.cpp")
m = models[0]
for kind, what in (("deep", f"at depth {depth}"), ("half", f"-ngl {half}")):
    g = load(f"{out}/{kind}-gpu-{m}.json")
    l = load(f"{out}/{kind}-llama-{m}.json")
    d = depth if kind == "deep" else 0
    for pp, tg, name in ((512, 0, "pp512"), (0, 128, "tg128")):
        print(f"{m:8} {name} {what:14} {fmt(rate(g, pp, tg, d)):>11} {fmt(rate(l, pp, tg, d)):>11}")
EOF
[[ ${GPU_CHECK_KEEP:-0} == 1 ]] || rm -rf "$gen_dir"
stamp "done"
cat "$summary"
