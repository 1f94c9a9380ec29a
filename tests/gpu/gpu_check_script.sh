#!/bin/bash
# gpu_check_script.sh SOURCE_ROOT BUILD_ROOT - bench/gpu-check.sh on a machine
# without a GPU: it must run every step to the end, report the GPU tests as
# skipped and the GPU benchmarks as failed with numatp's reason, and still
# time the CPU; and bench/llama-cpp.sh must refuse an unknown argument, and
# --avx512 on a CPU without AVX-512 (a fake /proc/cpuinfo), building nothing.
# Where a GPU is present this test skips itself (the script's real run).
set -u
src=$1
build=$2
tmp=$(mktemp -d /tmp/ntp_gpu_check_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0

if ! "$build/src/cli/numatp" info 2>/dev/null | grep -q '^gpu          none'; then
    echo "SKIP: a CUDA device is present; run bench/gpu-check.sh itself"
    exit 77
fi

GPU_CHECK_MODELS=q4_0 GPU_CHECK_SHAPE="--preset tiny" GPU_CHECK_REPS=1 GPU_CHECK_DEPTH=16 \
    GPU_CHECK_HALF=1 GPU_CHECK_THREADS=1 bash "$src/bench/gpu-check.sh" "$build" "$tmp/out" \
    >"$tmp/log" 2>&1
rc=$?
sum=$tmp/out/summary.txt
expect() {
    if ! grep -q -- "$1" "$sum" 2>/dev/null; then
        echo "FAIL: $2 (no '$1' in the summary)"
        fail=1
    fi
}
[[ $rc == 0 ]] || { echo "FAIL: gpu-check.sh exited $rc"; fail=1; }
for t in gpu_ops gpu_layers gpu_hybrid; do
    expect "test_$t: skipped, exit 77" "test_$t is reported as skipped"
done
expect "numatp bench -ngl 999 q4_0 failed: .*no CUDA device found" "the GPU bench names why it failed"
expect "^q4_0     pp512 *- *[0-9][0-9.]* *-$" "the CPU's pp512 is in the table"
[[ -d $tmp/out/models.tmp ]] && { echo "FAIL: the generated files were left behind"; fail=1; }
((fail)) && { cat "$tmp/log"; cat "$sum"; }

out=$(bash "$src/bench/llama-cpp.sh" --bogus 2>&1)
rc=$?
if [[ $rc != 2 || $out != *"unknown argument '--bogus'"* ]]; then
    echo "FAIL: llama-cpp.sh --bogus: exit $rc, '$out'"
    fail=1
fi
printf 'flags\t\t: fpu sse2 avx2 fma f16c\n' >"$tmp/cpuinfo"
out=$(LLAMA_CPP_CPUINFO="$tmp/cpuinfo" NUMATP_CACHE="$tmp/cache" \
    bash "$src/bench/llama-cpp.sh" --avx512 2>&1)
rc=$?
if [[ $rc != 1 || $out != *"this CPU lacks avx512f"* || -e $tmp/cache ]]; then
    echo "FAIL: llama-cpp.sh --avx512 on a CPU without AVX-512: exit $rc, '$out'"
    fail=1
fi
((fail)) || echo "gpu-check.sh ran to the end without a GPU; llama-cpp.sh refused --bogus, and --avx512 on a CPU without it"
exit $fail
