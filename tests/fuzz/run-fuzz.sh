#!/bin/sh
# Run a fuzzer for a bounded time on a scratch copy of its seed corpus.
#
#   tests/fuzz/run-fuzz.sh <builddir> <seconds> [gguf|cli]
#
# gguf (the default): the GGUF reader (fuzz_gguf.c); cli: the commands'
# arguments (fuzz_cli.c), whose messages on stderr are muted.
# <builddir> was configured with `CC=clang meson setup <builddir> -Dfuzz=true`.
# Exits 0 when the time runs out without a finding, non-zero on a finding
# (crash, sanitizer report, leak, timeout, failed round trip); the input that
# caused it is kept in <builddir>/fuzz-findings/ for reproduction:
#   <builddir>/tests/fuzz/fuzz_<target> <builddir>/fuzz-findings/crash-...
set -eu

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 <builddir> <seconds> [gguf|cli]" >&2
    exit 2
fi
build=$1
seconds=$2
target=${3:-gguf}
here=$(cd "$(dirname "$0")" && pwd)
mute=0
case $target in
gguf) ;;
cli) mute=2 ;;
*)
    echo "$0: unknown target '$target' (gguf or cli)" >&2
    exit 2
    ;;
esac

ninja -C "$build" "tests/fuzz/fuzz_$target" >/dev/null
fuzzer=$build/tests/fuzz/fuzz_$target
if [ ! -x "$fuzzer" ]; then
    echo "$0: $fuzzer missing; configure with: CC=clang meson setup $build -Dfuzz=true" >&2
    exit 2
fi

# libFuzzer adds what it finds to the corpus folder: work on a copy so the
# committed seeds stay small and hand-made.
work=$(mktemp -d "${TMPDIR:-/tmp}/ntp-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$here/corpus/$target" "$work/corpus"
findings=$build/fuzz-findings
mkdir -p "$findings"

rc=0
"$fuzzer" "$work/corpus" \
    -dict="$here/$target.dict" \
    -close_fd_mask="$mute" \
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
