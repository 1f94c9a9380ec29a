#!/bin/bash
# gpu_skip.sh NUMATP TEST... - on a machine without a usable GPU: every GPU
# test must exit 77 saying "SKIP: no CUDA device (...)", and asking numatp for
# GPU layers must fail with a message that says so. Where a GPU is present
# this script skips itself (the 'gpu' suite runs the real tests there).
set -u
numatp=$1
shift
tmp=$(mktemp -d /tmp/ntp_gpu_skip_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0

gpus=$("$numatp" info 2>/dev/null | grep '^gpu ')
if ! grep -q '^gpu          none' <<<"$gpus"; then
    echo "SKIP: a CUDA device is present ($gpus); the gpu suite runs the real tests"
    exit 77
fi
echo "no GPU here: $gpus"

for t in "$@"; do
    out=$("$t" 2>&1)
    rc=$?
    if [ $rc -ne 77 ]; then
        echo "FAIL: $(basename "$t") exited $rc, expected 77 (skip). Output:"
        echo "$out"
        fail=1
    elif ! grep -q '^SKIP: no CUDA device (' <<<"$out"; then
        echo "FAIL: $(basename "$t") skipped without the expected message: $out"
        fail=1
    else
        echo "ok: $(basename "$t"): $out"
    fi
done

"$numatp" gen -o "$tmp/m.gguf" >/dev/null 2>&1 || { echo "FAIL: numatp gen"; exit 1; }
out=$("$numatp" run -m "$tmp/m.gguf" -p hello -n 2 -ngl 1 2>&1)
rc=$?
if [ $rc -eq 0 ] || ! grep -q 'no CUDA device found' <<<"$out"; then
    echo "FAIL: numatp run -ngl 1 without a GPU: exit $rc, output: $out"
    fail=1
else
    echo "ok: numatp run -ngl 1: $(grep 'no CUDA' <<<"$out")"
fi
out=$("$numatp" run -m "$tmp/m.gguf" -p hello -n 2 -ngl 0 2>&1)
if [ $? -ne 0 ]; then
    echo "FAIL: numatp run -ngl 0 must run on the CPU: $out"
    fail=1
fi
exit $fail
