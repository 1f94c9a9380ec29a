#!/bin/bash
# cli_plan.sh NUMATP - `numatp plan`: one line per device with its heads, KV
# heads, FFN and vocabulary slices and bytes; uneven 3/3/2 heads over 3
# devices; KV heads marked shared over 4 devices with 2 KV heads; usage errors.
set -uo pipefail
numatp=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }

"$numatp" gen -o "$tmp/a.gguf" --dim 128 --heads 8 --kv-heads 8 --ff 192 --vocab 300 2>/dev/null
"$numatp" gen -o "$tmp/b.gguf" --dim 128 --heads 8 --kv-heads 2 --ff 192 --vocab 300 2>/dev/null
out=$("$numatp" plan -m "$tmp/a.gguf" --tp 3)
check '[ "$(grep -c "^dev " <<<"$out")" = 3 ]' "three device lines: $out"
check 'grep -q "^dev 0 .*heads \[  0,   3)   3" <<<"$out"' "device 0 has heads 0-2: $out"
check 'grep -q "^dev 2 .*heads \[  6,   8)   2" <<<"$out"' "device 2 has heads 6-7: $out"
check 'grep -q "MiB" <<<"$out" && grep -q "^total" <<<"$out"' "bytes per device and total"
out=$("$numatp" plan -m "$tmp/b.gguf" --tp 4)
check 'grep -q "KV heads replicated on up to 2 devices" <<<"$out"' "KV replication noted: $out"
check 'grep -q "^dev 1 .*kv heads \[  0,   1)  1\*" <<<"$out"' "shared KV head marked: $out"
"$numatp" plan -m "$tmp/a.gguf" --tp 0 2>"$tmp/err"; rc=$?
check '[ $rc = 2 ]' "--tp 0 is a usage error (exit $rc)"
check 'grep -q -- "--tp" "$tmp/err"' "the message names --tp"
"$numatp" plan --tp 2 2>"$tmp/err"; rc=$?
check '[ $rc = 2 ]' "-m is required (exit $rc)"
"$numatp" plan -m "$tmp/missing.gguf" 2>"$tmp/err"; rc=$?
check '[ $rc = 1 ]' "a missing file is a runtime error (exit $rc)"
check 'grep -q "missing.gguf" "$tmp/err"' "the message names the file"
[ $fail = 0 ] && echo "cli_plan: ok"
exit $fail
