#!/usr/bin/env bash
# test.sh - the README's second command: install, build and run the whole test
# suite, as CI does (.ci/run calls this and nothing else).
#
#   1. release build with warnings as errors, every suite (fast, slow, numa-vm, gpu;
#      suites that cannot run here skip and say why)
#   2. ASan+UBSan build, the fast suite
#   3. TSan build, the tsan suite (threading tests)
#   4. aarch64 cross build (scripts/cross-test.sh), the fast suite under qemu-user
#   5. libFuzzer on the GGUF parser for NTP_FUZZ_SECONDS (default 60)
#   6. libFuzzer on the commands' arguments for as long
# Ends with one line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0 failed=0 skipped=0 failures=""
# Add the counts meson printed for one `meson test` run to the totals, and
# remember the names of the tests that failed or timed out.
count() {
    local log="$1" n
    failures+=$(grep -E '^ *[0-9]+/[0-9]+ .* (FAIL|TIMEOUT) ' "$log" | sed "s|^|  $log: |")$'\n'
    n=$(grep -E '^Ok:' "$log" | awk '{print $2}'); passed=$((passed + ${n:-0}))
    n=$(grep -E '^Fail:' "$log" | awk '{print $2}'); failed=$((failed + ${n:-0}))
    n=$(grep -E '^Timeout:' "$log" | awk '{print $2}'); failed=$((failed + ${n:-0}))
    n=$(grep -E '^Skipped:' "$log" | awk '{print $2}'); skipped=$((skipped + ${n:-0}))
}
step() { printf '\n=== %s\n' "$*"; }
fail_step() {
    echo "test.sh: $*" >&2
    failed=$((failed + 1))
    failures+="  test.sh: $*"$'\n'
}

step "set-up"
scripts/setup.sh || { echo "test.sh: set-up failed" >&2; exit 1; }

step "release build (-Dwerror=true)"
if scripts/build.sh build -Dwerror=true; then
    step "tests: every suite"
    meson test -C build --print-errorlogs --num-processes 2 2>&1 | tee build/test-all.log
    count build/test-all.log
else
    fail_step "release build failed"
fi

# The sanitizer builds keep line tables for their reports but no variable
# locations (-g1): GCC's variable tracking of the unrolled SIMD kernels more
# than doubled the ASan build's time. The sanitizer builds leave CUDA out (its
# code cannot run without a GPU) and MPI (only the release build runs the mpi
# suite).
step "ASan+UBSan build"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
if scripts/build.sh build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
    -Dcuda=disabled -Dmpi=disabled -Dbuildtype=debugoptimized -Dc_args=-g1; then
    step "tests under ASan+UBSan: fast suite"
    meson test -C build-asan --suite fast --print-errorlogs --num-processes 2 --timeout-multiplier 4 \
        2>&1 | tee build-asan/test-fast.log
    count build-asan/test-fast.log
else
    fail_step "ASan+UBSan build failed"
fi

step "TSan build: the threading tests (suite tsan: all-reduce stress, tensor parallelism)"
if scripts/build.sh build-tsan -Db_sanitize=thread -Db_lundef=false -Dcuda=disabled -Dmpi=disabled \
    -Dbuildtype=debugoptimized -Dc_args=-g1; then
    TSAN_OPTIONS=halt_on_error=1 meson test -C build-tsan --suite tsan --print-errorlogs \
        --num-processes 1 --timeout-multiplier 4 2>&1 | tee build-tsan/test-tsan.log
    count build-tsan/test-tsan.log
else
    fail_step "TSan build failed"
fi

step "aarch64 cross build (reference kernels only): fast suite under qemu-user"
mkdir -p build-aarch64
scripts/cross-test.sh build-aarch64 2>&1 | tee build-aarch64/test-fast.log
grep -qE '^Ok:' build-aarch64/test-fast.log || fail_step "aarch64 cross build failed"
count build-aarch64/test-fast.log

step "libFuzzer: GGUF parser for ${NTP_FUZZ_SECONDS:-60} s"
if CC=clang scripts/build.sh build-fuzz -Dfuzz=true -Dcuda=disabled -Dopenblas=disabled \
    -Dmpi=disabled; then
    if tests/fuzz/run-fuzz.sh build-fuzz "${NTP_FUZZ_SECONDS:-60}"; then
        passed=$((passed + 1))
    else
        fail_step "the fuzzer found a crash (see above)"
    fi
else
    fail_step "fuzz build failed"
fi

step "libFuzzer: command-line arguments for ${NTP_FUZZ_SECONDS:-60} s"
if tests/fuzz/run-fuzz.sh build-fuzz "${NTP_FUZZ_SECONDS:-60}" cli; then
    passed=$((passed + 1))
else
    fail_step "the command-line fuzzer found a crash (see above)"
fi

echo
if [ "$failed" -gt 0 ]; then
    echo "failed:"
    printf '%s' "$failures" | grep -v '^$' | awk '!seen[$0]++' # meson lists failures twice
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
