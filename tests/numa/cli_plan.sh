#!/bin/bash
# cli_plan.sh NUMATP - `numatp plan`: one line per device with its heads, KV
# heads, FFN and vocabulary slices and bytes; uneven 3/3/2 heads over 3
# devices; KV heads marked shared over 4 devices with 2 KV heads; the KV
# cache per device, smaller where gemma3's sliding-window layers keep a ring,
# and for serve's --parallel sequences; the GPU's share under -ngl and
# --cpu-moe, and a --cpu-moe run placed so; deepseek2's latent, its bytes
# per token and its dense and shared slices; under mpirun (--ranks, --pp)
# each rank's devices and what it sends per token; usage errors.
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
# 2 layers x 4096 positions x 2 KV heads of 16 x (K + V) x 2 bytes = 1 MiB
out=$("$numatp" plan -m "$tmp/b.gguf" --tp 1 -c 4096)
check 'grep -q "^kv cache at -c 4096, batch 512, f16: dev 0 1.0 MiB; total 1.0 MiB" <<<"$out"' \
    "KV cache line: $out"
# serve --parallel 4 holds four sequences of -c positions each
out=$("$numatp" plan -m "$tmp/b.gguf" --tp 1 -c 4096 -np 4)
check 'grep -q "^kv cache at -c 4096, batch 512, f16, 4 sequences (--parallel): dev 0 4.0 MiB; total 4.0 MiB" <<<"$out"' \
    "KV cache of 4 sequences: $out"
"$numatp" plan -m "$tmp/b.gguf" --parallel 0 2>"$tmp/err"; rc=$?
check '[ $rc = 2 ] && grep -q -- "--parallel 0 is out of range" "$tmp/err"' "--parallel 0 refused (exit $rc)"
out=$("$numatp" plan -m "$tmp/b.gguf" --tp 1 -c 4096 --kv-type q8_0)
check 'grep -q "^kv cache: q8_0 cannot hold this model.s heads of 16" <<<"$out"' \
    "heads of 16 cannot be cached in q8_0: $out"
# gemma3, 6 layers (5 local with a window of 64): the local ones keep a ring of
# 64 + 512 - 1 = 575 positions, 1150 rows instead of 4096
"$numatp" gen -o "$tmp/g.gguf" --arch gemma3 --dim 128 --layers 6 --heads 4 --kv-heads 1 \
    --head-dim 32 --ff 192 --vocab 300 --ctx 8192 --sliding-window 64 --tied 2>/dev/null
out=$("$numatp" plan -m "$tmp/g.gguf" --tp 2 -c 4096 --kv-type f32)
check 'grep -q "5 of 6 layers attend to a sliding window of 64 positions and keep a ring of 575" \
    <<<"$out"' "ring noted: $out"
# per device: (5 x 1150 + 4096) rows x 1 KV head x 32 x 2 x 4 bytes = 2.40 MiB
check 'grep -q "f32: dev 0 2.4 MiB, dev 1 2.4 MiB; total 4.8 MiB" <<<"$out"' "ring sizes: $out"
# q8_0: 34 bytes per 32 values instead of 128
out=$("$numatp" plan -m "$tmp/g.gguf" --tp 1 -c 4096 --kv-type q8_0)
check 'grep -q "q8_0: dev 0 0.6 MiB; total 0.6 MiB" <<<"$out"' "q8_0 sizes: $out"
"$numatp" plan -m "$tmp/g.gguf" -c 0 2>"$tmp/err"; rc=$?
check '[ $rc = 2 ] && grep -q -- "-c 0 is out of range" "$tmp/err"' "-c 0 refused (exit $rc)"
"$numatp" plan -m "$tmp/a.gguf" --tp 0 2>"$tmp/err"; rc=$?
check '[ $rc = 2 ]' "--tp 0 is a usage error (exit $rc)"
check 'grep -q -- "--tp" "$tmp/err"' "the message names --tp"
"$numatp" plan --tp 2 2>"$tmp/err"; rc=$?
check '[ $rc = 2 ]' "-m is required (exit $rc)"
"$numatp" plan -m "$tmp/missing.gguf" 2>"$tmp/err"; rc=$?
check '[ $rc = 1 ]' "a missing file is a runtime error (exit $rc)"
check 'grep -q "missing.gguf" "$tmp/err"' "the message names the file"
# A mixture of experts cut by features: each device a slice of every expert's width.
"$numatp" gen -o "$tmp/moe.gguf" --arch qwen3moe --dim 128 --heads 4 --kv-heads 2 --ff 192 \
    --experts 4 --expert-ff 64 --vocab 300 2>/dev/null
out=$("$numatp" plan -m "$tmp/moe.gguf" --tp 2)
check 'grep -q "4 experts of 64, 2 per token (split by features" <<<"$out"' "experts: $out"
check 'grep -q "^dev 1 .*ffn \[    32,     64)     32" <<<"$out"' "expert slice: $out"
check 'grep -q "the norms, the routers" <<<"$out"' "routers replicated: $out"
# deepseek2: heads over one latent that every device caches, its bytes per token (3 layers x
# (32 + 8) x 2 bytes at F16), the dense first block's and the shared expert's slices.
"$numatp" gen -o "$tmp/mla.gguf" --arch deepseek2 --dim 64 --layers 3 --heads 4 --kv-heads 1 \
    --head-dim 24 --rope-dim 8 --v-head-dim 16 --kv-lora 32 --ff 96 --experts 8 \
    --expert-ff 32 --shared-experts 1 --dense-layers 1 --vocab 300 2>/dev/null
out=$("$numatp" plan -m "$tmp/mla.gguf" --tp 2)
check 'grep -q "4 heads of 24 over one latent of 32 + 8 RoPE (MLA" <<<"$out"' "latent: $out"
check 'grep -q "kv cache per token: 240 bytes" <<<"$out"' "latent bytes per token: $out"
check 'grep -q "^        dense ffn \[    48,     96)     48   shared experts \[    16,     32)     16" <<<"$out"' \
    "dense and shared slices: $out"
check 'grep -q "the latent.s (and the query.s low-rank) projections" <<<"$out"' "latent replicated: $out"
out=$("$numatp" info -m "$tmp/mla.gguf")
check 'grep -q "240 bytes per token" <<<"$out"' "info: latent bytes per token: $out"
out=$("$numatp" plan -m "$tmp/moe.gguf" --tp 3 --moe-split experts)
check 'grep -q "split by experts" <<<"$out"' "split by experts: $out"
check '[ "$(grep -c "^        experts \[" <<<"$out")" = 3 ]' "an experts line per device: $out"
check 'grep -q "^        experts \[  2,   3)   1" <<<"$out"' "device 2 holds expert 2: $out"
check 'grep -q "^dev 2 .*ffn \[     0,     64)     64" <<<"$out"' "whole experts: $out"
"$numatp" plan -m "$tmp/moe.gguf" --moe-split both >/dev/null 2>"$tmp/err"
rc=$?
check '[ $rc = 2 ] && grep -q "moe-split" "$tmp/err"' "bad --moe-split: exit $rc, $(cat "$tmp/err")"
# Under mpirun: --ranks R, one group over every rank's devices, or --pp R stages.
out=$("$numatp" plan -m "$tmp/a.gguf" --tp 2 --ranks 2)
check 'grep -q "; 4 devices$" <<<"$out" && [ "$(grep -c "^dev " <<<"$out")" = 4 ]' \
    "--ranks 2 --tp 2: one group of 4: $out"
# 2 layers x 2 all-reduces of 128 floats = 2 KiB; 150 of the 300 vocabulary columns
check 'grep -q "^rank 1: devices 2-3; per token it sends every other rank 4 all-reduce shares of 128 floats (2.0 KiB in all) and its 150 logit columns (0.6 KiB)" <<<"$out"' \
    "--ranks 2: traffic per rank: $out"
out=$("$numatp" plan -m "$tmp/a.gguf" --tp 1 --ranks 2 --pp 2 -c 4096)
check 'grep -q "^rank 0, pipeline stage 0: layers \[0, 1)$" <<<"$out" &&
       grep -q "^rank 1, pipeline stage 1: layers \[1, 2) and the output head$" <<<"$out"' \
    "--pp 2: a stage per rank: $out"
check 'grep -q "hands the next the hidden state (0.5 KiB); the last sends every rank the logits (1.2 KiB each)" <<<"$out"' \
    "--pp 2: traffic: $out"
for bad in "--pp 2" "--ranks 2 --pp 3" "--ranks 2 -ngl 1"; do
    "$numatp" plan -m "$tmp/a.gguf" $bad >/dev/null 2>"$tmp/err"
    rc=$?
    check '[ $rc = 2 ]' "plan $bad: usage error (exit $rc: $(cat "$tmp/err"))"
done
"$numatp" plan -m "$tmp/a.gguf" --ranks 3 --pp 3 >/dev/null 2>"$tmp/err"
check 'grep -q "more pipeline stages than the 2 blocks" "$tmp/err"' "--pp 3 of 2 blocks: $(cat "$tmp/err")"
# --cpu-moe: the GPU's share is the attention of its blocks only, and a run
# places it so (a CPU device standing in for the GPU) with the same text.
out=$("$numatp" plan -m "$tmp/moe.gguf" --tp 1 -ngl 1)
full=$(sed -n 's/^gpu     layers \[0, 1): \([0-9.]*\) MiB.*/\1/p' <<<"$out")
out=$("$numatp" plan -m "$tmp/moe.gguf" --tp 1 -ngl 1 -cmoe)
attn=$(sed -n 's/^gpu     the attention of layers \[0, 1): \([0-9.]*\) MiB.*/\1/p' <<<"$out")
check '[ -n "$full" ] && [ -n "$attn" ] && awk "BEGIN{exit !($attn < $full / 2)}"' \
    "--cpu-moe: the GPU holds the attention only ($attn of $full MiB): $out"
check 'grep -q "the CPU devices run every block.s FFN and layers \[1, 2)" <<<"$out"' \
    "--cpu-moe: the CPU side: $out"
out=$("$numatp" plan -m "$tmp/a.gguf" --tp 1 -ngl 1 --cpu-moe)
check 'grep -q "^gpu     --cpu-moe: no effect, the model has no experts" <<<"$out"' \
    "--cpu-moe on a dense model: $out"
base=$("$numatp" run -m "$tmp/moe.gguf" -p "one two" -n 8 --temp 0 -t 2 2>/dev/null)
for tp in 1 2; do
    got=$(NTP_GPU_STAND_IN=cpu "$numatp" run -m "$tmp/moe.gguf" -p "one two" -n 8 --temp 0 \
        -t 2 --tp $tp -ngl 1 --cpu-moe 2>"$tmp/err")
    check '[ "$got" = "$base" ]' "--cpu-moe --tp $tp: same text ('$got' vs '$base')"
    check 'grep -q "(attention of layer 0); cpu node .*(FFN of layer 0, layer 1, output head)" \
        "$tmp/err"' "--cpu-moe --tp $tp placement: $(cat "$tmp/err")"
done
NTP_GPU_STAND_IN=cpu "$numatp" run -m "$tmp/a.gguf" -p "one" -n 2 -ngl 1 --cpu-moe \
    >/dev/null 2>"$tmp/err"
check 'grep -q "cpu-moe: nothing to do (the model has no experts)" "$tmp/err"' \
    "--cpu-moe on a dense model warns: $(cat "$tmp/err")"
[ $fail = 0 ] && echo "cli_plan: ok"
exit $fail
