#!/usr/bin/env bash
# cli_gen_info.sh NUMATP FIXTURE_DIR - `numatp gen` and `numatp info` from the
# command line: exit codes, text and JSON output (JSON checked by python3's
# parser when python3 is there), a mixture of experts, every tokenizer
# fixture, bad files and flags.
set -u
numatp=$1
fixtures=$2
tmp=$(mktemp -d /tmp/ntp_cli_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0

check() { # check DESCRIPTION WANT_RC COMMAND...
    local what=$1 want=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "FAIL: $what: exit $rc, expected $want"
        sed 's/^/  /' "$tmp/err" | head -5
        fail=1
    fi
}

contains() { # contains DESCRIPTION FILE TEXT
    if ! grep -q -- "$3" "$2"; then
        echo "FAIL: $1: '$3' not in output"
        head -5 "$2" | sed 's/^/  /'
        fail=1
    fi
}

json_ok() { # json_ok DESCRIPTION: the last output parses as JSON
    if command -v python3 >/dev/null; then
        if ! python3 -c 'import json,sys; json.load(sys.stdin)' <"$tmp/out"; then
            echo "FAIL: $1: output is not valid JSON"
            fail=1
        fi
    fi
}

model=$tmp/m.gguf
check "gen" 0 "$numatp" gen -o "$model" --arch qwen2 --dim 64 --layers 2 --heads 4 \
    --kv-heads 2 --ff 128 --vocab 300 --ctx 64 --type q8_0 --seed 7 -q
check "info text" 0 "$numatp" info -m "$model"
contains "info text" "$tmp/out" "blk.1.attn_v.bias"
contains "info text" "$tmp/out" "Q8_0"
contains "info text" "$tmp/out" "NUMA node"
check "info json" 0 "$numatp" info -m "$model" --json
json_ok "info json"
contains "info json" "$tmp/out" '"n_tokens": 300'
# A mixture of experts: gen writes it, info describes it as one numatp runs.
check "gen moe" 0 "$numatp" gen -o "$tmp/moe.gguf" --arch qwen3moe --dim 64 --layers 2 \
    --heads 4 --kv-heads 2 --ff 128 --experts 6 --experts-used 3 --expert-ff 32 --vocab 300 -q
check "info moe" 0 "$numatp" info -m "$tmp/moe.gguf"
contains "info moe" "$tmp/out" "^experts      6 per block, 3 per token, 32 wide"
contains "info moe" "$tmp/out" "blk.1.ffn_down_exps.weight *F32 *32 x 64 x 6"
if grep -q "cannot run" "$tmp/out"; then echo "FAIL: info moe: says numatp cannot run it"; fail=1; fi
check "info moe json" 0 "$numatp" info -m "$tmp/moe.gguf" --json
json_ok "info moe json"
contains "info moe json" "$tmp/out" '"expert_count": 6'
check "gen moe bad" 2 "$numatp" gen -o "$tmp/bad.gguf" --arch qwen2 --experts 4 -q
contains "gen moe bad" "$tmp/err" "has no mixture of experts"
check "info machine only" 0 "$numatp" info
contains "info machine only" "$tmp/out" "node"
check "info machine json" 0 "$numatp" info --json
json_ok "info machine json"
contains "info machine json" "$tmp/out" '"blas_coretype_hint"'

# OpenBLAS's kernels: a generic core under vector kernels gets the OPENBLAS_CORETYPE hint.
check "info blas" 0 "$numatp" info
contains "info blas" "$tmp/out" "^blas "
# The AVX2 kernels must be built in and run here (on x86 only; not under qemu-user).
if grep -q "^blas  *OpenBLAS" "$tmp/out" &&
    env NTP_ISA=avx2 "$numatp" info 2>/dev/null | grep -q "^kernels  *avx2$"; then
    check "info blas generic" 0 env OPENBLAS_CORETYPE=Prescott NTP_ISA=avx2 "$numatp" info
    contains "info blas generic" "$tmp/out" "Prescott kernels (older than this CPU: set OPENBLAS_CORETYPE=Haswell)"
    check "info blas haswell" 0 env OPENBLAS_CORETYPE=Haswell NTP_ISA=avx2 "$numatp" info
    contains "info blas haswell" "$tmp/out" "Haswell kernels$"
    check "run warns" 0 env OPENBLAS_CORETYPE=Prescott NTP_ISA=avx2 "$numatp" run -m "$model" -p hi -n 1 --temp 0
    contains "run warns" "$tmp/err" "OPENBLAS_CORETYPE=Haswell in the environment"
fi

for f in "$fixtures"/*.gguf; do
    check "info $f" 0 "$numatp" info -m "$f"
    contains "info $f" "$tmp/out" "tokens"
    check "info --json $f" 0 "$numatp" info --json -m "$f"
    json_ok "info --json $f"
done

# Bad files: the parser's message, exit 1.
printf 'GGUF\003\000\000\000' >"$tmp/trunc.gguf"
check "truncated file" 1 "$numatp" info -m "$tmp/trunc.gguf"
contains "truncated file" "$tmp/err" "trunc.gguf"
check "missing file" 1 "$numatp" info -m "$tmp/none.gguf"

# Usage errors: exit 2 with a message that names the problem.
check "no output" 2 "$numatp" gen --dim 64
check "bad number" 2 "$numatp" gen -o "$tmp/x.gguf" --dim 6x4
contains "bad number" "$tmp/err" "6x4"
check "heads" 2 "$numatp" gen -o "$tmp/x.gguf" --dim 64 --heads 5
contains "heads" "$tmp/err" "--heads"
check "kv heads" 2 "$numatp" gen -o "$tmp/x.gguf" --dim 64 --heads 4 --kv-heads 3
check "block size" 2 "$numatp" gen -o "$tmp/x.gguf" --dim 64 --heads 4 --kv-heads 2 --type q4_k
contains "block size" "$tmp/err" "token_embd.weight"
check "unknown type" 2 "$numatp" gen -o "$tmp/x.gguf" --type q9_9
check "unknown flag" 2 "$numatp" gen -o "$tmp/x.gguf" --frobnicate
check "unknown preset" 2 "$numatp" gen -o "$tmp/x.gguf" --preset huge
check "info flag" 2 "$numatp" info --frobnicate
check "gen help" 0 "$numatp" gen --help
contains "gen help" "$tmp/out" "--kv-heads"
[ -e "$tmp/x.gguf" ] && { echo "FAIL: a failed gen left $tmp/x.gguf"; fail=1; }

# -o onto what is not a regular file we may write: refused and left as it was
# (it used to be replaced by a regular file), before anything is generated.
mkfifo "$tmp/fifo"
check "gen onto a FIFO" 1 "$numatp" gen -o "$tmp/fifo" --preset tiny -q
contains "gen onto a FIFO" "$tmp/err" "is a FIFO, not a regular file"
[ -p "$tmp/fifo" ] || { echo "FAIL: gen replaced the FIFO"; fail=1; }
ln -s /dev/null "$tmp/link"
check "gen onto a symlink" 1 "$numatp" gen -o "$tmp/link" --preset tiny -q
contains "gen onto a symlink" "$tmp/err" "is a symbolic link"
[ -L "$tmp/link" ] || { echo "FAIL: gen replaced the symbolic link"; fail=1; }

# Presets with overrides, a vocabulary from a fixture and a mix.
check "preset" 0 "$numatp" gen -o "$tmp/p.gguf" --preset tiny --layers 1 --mix q4_k_m --tied -q
check "preset info" 0 "$numatp" info -m "$tmp/p.gguf"
contains "preset info" "$tmp/out" "Q4_K_M"
check "vocab-from" 0 "$numatp" gen -o "$tmp/v.gguf" --arch llama --dim 64 --heads 4 \
    --kv-heads 4 --ff 128 --layers 1 --tied --vocab-from "$fixtures/ggml-vocab-llama-spm.gguf" -q
check "vocab-from info" 0 "$numatp" info -m "$tmp/v.gguf"
contains "vocab-from info" "$tmp/out" "32000 tokens"

[ "$fail" -eq 0 ] && echo "cli_gen_info: ok"
exit "$fail"
