#!/bin/sh
# Run the GGUF fuzzer for a bounded time on a scratch copy of the seed corpus.
#
#   tests/fuzz/run-fuzz.sh <builddir> <seconds>
#
# <builddir> was configured with `CC=clang meson setup <builddir> -Dfuzz=true`.
# Exits 0 when the time runs out without a finding, non-zero on a finding
# (crash, sanitizer report, leak, timeout, failed round trip); the input that
# caused it is kept in <builddir>/fuzz-findings/ for reproduction:
#   <builddir>/tests/fuzz/fuzz_gguf <builddir>/fuzz-findings/crash-...
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 <builddir> <seconds>" >&2
    exit 2
fi
build=$1
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)

ninja -C "$build" tests/fuzz/fuzz_gguf >/dev/null
fuzzer=$build/tests/fuzz/fuzz_gguf
if [ ! -x "$fuzzer" ]; then
    echo "$0: $fuzzer missing; configure with: CC=clang meson setup $build -Dfuzz=true" >&2
    exit 2
fi

# libFuzzer adds what it finds to the corpus folder: work on a copy so the
# committed seeds stay small and hand-made.
work=$(mktemp -d "${TMPDIR:-/tmp}/ntp-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$here/corpus/gguf" "$work/corpus"
findings=$build/fuzz-findings
mkdir -p "$findings"

rc=0
"$fuzzer" "$work/corpus" \
    -dict="$here/gguf.dict" \
    -max_total_time="$seconds" \
    -max_len=8192 \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -print_final_stats=1 \
    -artifact_prefix="$findings/" || rc=$?

if [ "$rc" -ne 0 ]; then
    echo "$0: fuzzer finding (exit $rc); inputs in $findings/" >&2
    exit 1
fi
echo "$0: no finding in $seconds s"
