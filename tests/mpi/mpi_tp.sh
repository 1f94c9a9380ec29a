#!/bin/bash
# mpi_tp.sh NUMATP ALLREDUCE - tensor parallelism across processes under
# mpirun, on one machine (loopback, oversubscribed): every rank's devices
# form one group, and the text, perplexity and logits must be those of one
# process with as many devices (--tp N), bit for bit (the sums meet in the
# same order). Dense, MoE and deepseek2 models, 2 and 3 ranks, 2 ranks of 2 devices;
# pipeline stages (--pp) give the text of one stage's devices; stdin reaches
# rank 0 only (chat, perplexity); serve answers concurrent requests alike and
# stops on SIGTERM; bench reports the group and the hand-over's share. Faults end every rank
# with a clear message instead of a hang: a rank that cannot open the model,
# ranks with different models, a rank killed mid-run; commands that do not
# run in step (info) and -ngl are refused. Skips (77) without mpirun.
set -uo pipefail
numatp=$1
allreduce=$2
command -v mpirun >/dev/null || { echo "SKIP: no mpirun (scripts/setup.sh installs Open MPI)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
# Root in a container: Open MPI refuses root unless told; ranks may outnumber cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi() { timeout 120 mpirun --oversubscribe --bind-to none -np "$@"; }

"$numatp" gen -q -o "$tmp/d.gguf" --layers 3 --heads 6 --kv-heads 3 --dim 192 --ff 384
"$numatp" gen -q -o "$tmp/q.gguf" --layers 3 --heads 6 --kv-heads 3 --dim 192 --ff 384 --type q8_0
"$numatp" gen -q -o "$tmp/m.gguf" --preset tiny-moe
"$numatp" gen -q -o "$tmp/l.gguf" --arch deepseek2 --dim 128 --layers 3 --heads 4 --kv-heads 1 \
    --head-dim 48 --rope-dim 16 --v-head-dim 32 --kv-lora 64 --q-lora 64 --ff 256 --experts 8 \
    --expert-ff 64 --dense-layers 1 --shared-experts 1 --vocab 300
run() { "$@" -p "the quick brown fox" -n 16 --temp 0 2>"$tmp/err"; }

# Text: N ranks of one device each equal one process of N devices, and so
# one device alone (greedy tokens do not move with the cut on these models).
for model in d m l; do
    one=$(run "$numatp" run -m "$tmp/$model.gguf" -t 2 --tp 1)
    for np in 2 3; do
        want=$(run "$numatp" run -m "$tmp/$model.gguf" -t 2 --tp $np)
        got=$(run mpi $np "$numatp" run -m "$tmp/$model.gguf" -t 1)
        check '[ -n "$want" ] && [ "$got" = "$want" ] && [ "$got" = "$one" ]' \
            "$model: -np $np text '$got' vs --tp $np '$want', --tp 1 '$one' ($(tail -3 "$tmp/err"))"
    done
done
want=$(run "$numatp" run -m "$tmp/m.gguf" -t 2 --tp 2 --moe-split experts)
got=$(run mpi 2 "$numatp" run -m "$tmp/m.gguf" -t 1 --moe-split experts)
check '[ "$got" = "$want" ]' "moe --moe-split experts: -np 2 '$got' vs --tp 2 '$want'"
# Two ranks of two devices each: a group of four.
want=$(run "$numatp" run -m "$tmp/d.gguf" -t 2 --tp 4)
got=$(run mpi 2 "$numatp" run -m "$tmp/d.gguf" -t 2 --tp 2)
check '[ "$got" = "$want" ]' "-np 2 --tp 2: '$got' vs --tp 4 '$want' ($(tail -3 "$tmp/err"))"

# Pipeline parallelism: a stage of consecutive blocks per rank gives the text
# of one process with the stage's devices (the hidden state crosses as is).
for np in 2 3; do
    want=$(run "$numatp" run -m "$tmp/d.gguf" -t 2 --tp 1)
    got=$(run mpi $np "$numatp" run -m "$tmp/d.gguf" -t 1 --pp $np)
    check '[ "$got" = "$want" ]' "--pp $np: '$got' vs --tp 1 '$want' ($(tail -3 "$tmp/err"))"
done
want=$(run "$numatp" run -m "$tmp/m.gguf" -t 2 --tp 2)
got=$(run mpi 2 "$numatp" run -m "$tmp/m.gguf" -t 2 --tp 2 --pp 2)
check '[ "$got" = "$want" ]' "moe --tp 2 --pp 2: '$got' vs --tp 2 '$want' ($(tail -3 "$tmp/err"))"
want=$(run "$numatp" run -m "$tmp/l.gguf" -t 2 --tp 1)
got=$(run mpi 3 "$numatp" run -m "$tmp/l.gguf" -t 1 --pp 3)
check '[ "$got" = "$want" ]' "deepseek2 --pp 3: '$got' vs --tp 1 '$want' ($(tail -3 "$tmp/err"))"

# chat: rank 0 reads the turns from stdin, every rank answers them alike.
printf 'hello there\nwhat is this\n' >"$tmp/turns.txt"
want=$("$numatp" chat -m "$tmp/d.gguf" -n 12 --temp 0 -t 2 --tp 2 <"$tmp/turns.txt" 2>/dev/null)
got=$(mpi 2 "$numatp" chat -m "$tmp/d.gguf" -n 12 --temp 0 -t 1 <"$tmp/turns.txt" 2>"$tmp/err")
check '[ -n "$want" ] && [ "$got" = "$want" ]' "chat -np 2: '$got' vs --tp 2 '$want' ($(tail -3 "$tmp/err"))"

# serve: rank 0 serves HTTP, the other ranks repeat its steps; four requests
# at once (one batched step) answer as one process with --tp 2 answers them.
# SIGTERM to rank 0 stops every rank and mpirun exits 0; SIGTERM to mpirun
# stops them too (mpirun then exits 1, its own way of saying so).
rank0_of() { # mpirun's pid: its child with OMPI_COMM_WORLD_RANK=0, or the pid itself
    local p
    for p in $(pgrep -P "$1"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -q '^OMPI_COMM_WORLD_RANK=0$' &&
            echo "$p" && return
    done
    echo "$1"
}
serve_texts() { # output-file stop-whom(rank0|launcher) launcher-and-serve-command...
    local out=$1 whom=$2 pid port i
    shift 2
    "$@" --port 0 -c 256 2>"$tmp/serve.err" &
    pid=$!
    for i in $(seq 100); do
        grep -q "all slots are idle" "$tmp/serve.err" && break
        sleep 0.2
    done
    port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/serve.err")
    for i in 1 2 3 4; do
        curl -s -m 60 "http://127.0.0.1:$port/v1/completions" \
            -d "{\"prompt\": \"request $i: the quick brown fox\", \"max_tokens\": 12, \"temperature\": 0}" \
            >"$out.$i" &
    done
    wait $(jobs -p | grep -v "^$pid$")
    if [ "$whom" = rank0 ]; then kill -TERM "$(rank0_of $pid)"; else kill -TERM $pid; fi
    local t0=$SECONDS
    wait $pid
    echo "exit $? after $((SECONDS - t0)) s" >"$out.exit"
    for i in 1 2 3 4; do grep -o '"text":"[^"]*"' "$out.$i"; done >"$out"
}
if command -v curl >/dev/null; then
    serve_texts "$tmp/want" rank0 "$numatp" serve -m "$tmp/d.gguf" -t 2 --tp 2
    serve_texts "$tmp/got" rank0 mpirun --oversubscribe --bind-to none -np 2 "$numatp" serve \
        -m "$tmp/d.gguf" -t 1
    check '[ "$(wc -l <"$tmp/want")" = 4 ] && cmp -s "$tmp/want" "$tmp/got"' \
        "serve -np 2: $(cat "$tmp/got") vs --tp 2: $(cat "$tmp/want") ($(tail -3 "$tmp/serve.err"))"
    check 'grep -q "^exit 0 after [0-9] s" "$tmp/got.exit"' \
        "serve -np 2 stops on SIGTERM to rank 0: $(cat "$tmp/got.exit")"
    serve_texts "$tmp/want" rank0 "$numatp" serve -m "$tmp/d.gguf" -t 2 --tp 1
    serve_texts "$tmp/got" launcher mpirun --oversubscribe --bind-to none -np 2 "$numatp" serve \
        -m "$tmp/d.gguf" -t 1 --pp 2
    check '[ "$(wc -l <"$tmp/want")" = 4 ] && cmp -s "$tmp/want" "$tmp/got"' \
        "serve --pp 2: $(cat "$tmp/got") vs --tp 1: $(cat "$tmp/want") ($(tail -3 "$tmp/serve.err"))"
    check 'grep -q "^exit [0-9]* after [0-9] s" "$tmp/got.exit"' \
        "serve --pp 2 stops on SIGTERM to mpirun: $(cat "$tmp/got.exit")"
else
    echo "no curl: serve under mpirun not checked"
fi

# Each rank keeps to the cores mpirun binds it to (by default one core each
# for two ranks), as a process keeps to those taskset leaves it.
if [ "$(nproc)" -ge 2 ]; then
    mpirun -np 2 "$numatp" run -m "$tmp/d.gguf" -p hi -n 1 >/dev/null 2>"$tmp/err"
    check 'grep -q "weights on cpu node [0-9]*, 1 threads (bound)" "$tmp/err"' \
        "mpirun -np 2, bound to a core each: one thread each ($(grep 'weights on' "$tmp/err"))"
    taskset -c 1 "$numatp" run -m "$tmp/d.gguf" -p hi -n 1 >/dev/null 2>"$tmp/err"
    check 'grep -q "1 threads (bound)" "$tmp/err"' "taskset -c 1: one thread ($(grep 'weights on' "$tmp/err"))"
fi

# Perplexity from stdin (only rank 0 reads it): every digit of --tp 2's.
python3 -c "
import random
random.seed(3)
print(' '.join(random.choice('the a cat dog sat ran on in mat'.split()) for _ in range(400)))" \
    >"$tmp/text.txt"
ppl() { grep -o 'Final estimate: PPL = [0-9.]* +/- [0-9.]*' "$1"; }
"$numatp" perplexity -m "$tmp/q.gguf" -f "$tmp/text.txt" -c 64 -t 2 --tp 2 >"$tmp/p1" 2>&1
mpi 2 "$numatp" perplexity -m "$tmp/q.gguf" -f - -c 64 -t 1 <"$tmp/text.txt" >"$tmp/p2" 2>&1
check '[ -n "$(ppl "$tmp/p1")" ] && [ "$(ppl "$tmp/p1")" = "$(ppl "$tmp/p2")" ]' \
    "perplexity -np 2 '$(ppl "$tmp/p2")' vs --tp 2 '$(ppl "$tmp/p1")' ($(tail -3 "$tmp/p2"))"
"$numatp" perplexity -m "$tmp/q.gguf" -f "$tmp/text.txt" -c 64 -t 2 --tp 1 >"$tmp/p1" 2>&1
mpi 2 "$numatp" perplexity -m "$tmp/q.gguf" -f - -c 64 -t 1 --pp 2 <"$tmp/text.txt" >"$tmp/p2" 2>&1
check '[ -n "$(ppl "$tmp/p1")" ] && [ "$(ppl "$tmp/p1")" = "$(ppl "$tmp/p2")" ]' \
    "perplexity --pp 2 '$(ppl "$tmp/p2")' vs --tp 1 '$(ppl "$tmp/p1")' ($(tail -3 "$tmp/p2"))"

# bench: one table, from rank 0, with the group's devices in the tp column.
out=$(mpi 2 "$numatp" bench -m "$tmp/d.gguf" -p 8 -n 4 -r 1 -t 1 -o json 2>"$tmp/err")
check '[ "$(grep -c "\"tp\": 2" <<<"$out")" = 2 ]' "bench -np 2: two rows of tp 2: $out"
check '[ "$(grep -c "t/s" "$tmp/err")" -le 2 ]' "bench progress from rank 0 only: $(cat "$tmp/err")"

out=$(mpi 2 "$numatp" bench -m "$tmp/d.gguf" -p 8 -n 4 -r 1 -t 1 --pp 2 -o json 2>"$tmp/err")
check '[ "$(grep -c "\"pp\": 2, \"pp_share\": 0\.[0-9]" <<<"$out")" = 2 ]' \
    "bench --pp 2: two rows with the hand-over's share: $out"

# The all-reduce benchmark across the processes.
out=$(mpi 2 "$allreduce" --rounds 50 --max-bytes 16384)
check 'grep -q "^allreduce mpi, 2 processes     16384 B" <<<"$out"' "allreduce -np 2: $out"

# Faults: every rank ends, with the reason, well inside the timeout.
fault() { # expected-message mpirun-arguments...
    local msg=$1 t0=$SECONDS
    mpi "${@:2}" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    check '[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $((SECONDS - t0)) -lt 60 ]' \
        "$msg: every rank exits (exit $rc after $((SECONDS - t0)) s)"
    check 'grep -q -- "$msg" "$tmp/err"' "$msg: the message ($(tail -5 "$tmp/err"))"
}
fault "missing.gguf: cannot open" 1 "$numatp" run -m "$tmp/d.gguf" -p hi -n 2 -t 1 : \
    -np 1 "$numatp" run -m "$tmp/missing.gguf" -p hi -n 2 -t 1
fault "rank 1 opened another model than rank 0" 1 "$numatp" run -m "$tmp/d.gguf" -p hi -n 2 \
    -t 1 : -np 1 "$numatp" run -m "$tmp/q.gguf" -p hi -n 2 -t 1
fault "'info' is not one of them" 2 "$numatp" info -m "$tmp/d.gguf"
fault "--gpu-layers under mpirun is not supported yet" 2 "$numatp" run -m "$tmp/d.gguf" -p hi \
    -n 2 -ngl 1
fault "--pp 3 needs mpirun -np 3" 2 "$numatp" run -m "$tmp/d.gguf" -p hi -n 2 -t 1 --pp 3
fault "--pp 4: more pipeline stages than the 3 blocks" 4 "$numatp" run -m "$tmp/d.gguf" -p hi \
    -n 2 -t 1 --pp 4
"$numatp" run -m "$tmp/d.gguf" -p hi -n 2 --pp 2 >/dev/null 2>"$tmp/err"
check 'grep -q "this run has 1 process (not started by mpirun)" "$tmp/err"' \
    "--pp without mpirun: $(cat "$tmp/err")"
# A rank killed mid-run: mpirun ends the others.
(sleep 3; pkill -9 -f "numatp run -m $tmp/d.gguf -p endless") &
t0=$SECONDS
mpi 2 "$numatp" run -m "$tmp/d.gguf" -p endless -n 1000000 -c 100000 --ignore-eos -t 1 \
    >/dev/null 2>"$tmp/err"
rc=$?
check '[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $((SECONDS - t0)) -lt 60 ]' \
    "a killed rank ends the run (exit $rc after $((SECONDS - t0)) s)"
wait
check '! pgrep -f "numatp [a-z]* -m $tmp/" >/dev/null' "no rank left running: $(pgrep -fa "numatp [a-z]* -m $tmp/")"

[ $fail = 0 ] && echo "mpi_tp: ok"
exit $fail
