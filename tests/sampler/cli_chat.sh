#!/usr/bin/env bash
# cli_chat.sh NUMATP FIXTURE_DIR - `numatp chat` on small random models: template
# detection and override, repeatable replies (greedy and seeded), usage errors,
# a model without a template, a conversation that outgrows the context.
set -u
numatp=$1
fixtures=$2
tmp=$(mktemp -d /tmp/ntp_chat_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0

check() { # check DESCRIPTION WANT_RC STDIN COMMAND...
    local what=$1 want=$2 input=$3
    shift 3
    printf '%s' "$input" | "$@" >"$tmp/out" 2>"$tmp/err"
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

# phi-3's vocabulary carries its chat template; llama-spm's has none.
for v in phi-3 llama-spm; do
    "$numatp" gen -o "$tmp/$v.gguf" --vocab-from "$fixtures/ggml-vocab-$v.gguf" >/dev/null || exit 1
done
two_turns=$'hello there\n\nwhat is two plus two?\n'
# One thread each: the replies are tiny, and spinning teams crawl on a busy shared machine.

check "greedy chat" 0 "$two_turns" "$numatp" chat -t 1 -m "$tmp/phi-3.gguf" --temp 0 -n 12
contains "detected template" "$tmp/err" "template phi3"
[ -s "$tmp/out" ] || { echo "FAIL: greedy chat printed nothing"; fail=1; }
cp "$tmp/out" "$tmp/greedy1"
check "greedy chat again" 0 "$two_turns" "$numatp" chat -t 1 -m "$tmp/phi-3.gguf" --temp 0 -n 12
cmp -s "$tmp/out" "$tmp/greedy1" || { echo "FAIL: greedy replies differ between runs"; fail=1; }

check "seeded chat" 0 "$two_turns" "$numatp" chat -t 1 -m "$tmp/phi-3.gguf" --seed 7 -n 12 \
    --system "Be brief." --top-k 20 --top-p 0.9 --min-p 0.1 --repeat-penalty 1.1
cp "$tmp/out" "$tmp/seeded1"
contains "seed reported" "$tmp/err" "seed 7"
check "seeded chat again" 0 "$two_turns" "$numatp" chat -t 1 -m "$tmp/phi-3.gguf" --seed 7 -n 12 \
    --system "Be brief." --top-k 20 --top-p 0.9 --min-p 0.1 --repeat-penalty 1.1
cmp -s "$tmp/out" "$tmp/seeded1" || { echo "FAIL: same seed, different replies"; fail=1; }

for t in chatml llama2 mistral-v7 llama3 gemma zephyr; do
    check "--chat-template $t" 0 "$two_turns" "$numatp" chat -t 1 -m "$tmp/phi-3.gguf" \
        --chat-template "$t" --system "sys" -n 6 --seed 1
    contains "--chat-template $t used" "$tmp/err" "template $t"
done

check "no template in the file" 1 "hi"$'\n' "$numatp" chat -t 1 -m "$tmp/llama-spm.gguf" -n 4
contains "no template message" "$tmp/err" "--chat-template"
check "no template, override" 0 "hi"$'\n' "$numatp" chat -t 1 -m "$tmp/llama-spm.gguf" -n 4 \
    --chat-template llama2

long=$(printf 'word %.0s' $(seq 1 200))
check "context overflow" 1 "$long"$'\n' "$numatp" chat -t 1 -m "$tmp/phi-3.gguf" -c 64 -n 4
contains "overflow message" "$tmp/err" "larger -c"

check "empty input" 0 "" "$numatp" chat -t 1 -m "$tmp/phi-3.gguf"
check "help" 0 "" "$numatp" chat --help
contains "help text" "$tmp/out" "usage: numatp chat"
check "no model" 2 "" "$numatp" chat
check "bad number" 2 "" "$numatp" chat -t 1 -m "$tmp/phi-3.gguf" --temp abc
check "bad template name" 2 "" "$numatp" chat -t 1 -m "$tmp/phi-3.gguf" --chat-template nope
contains "names listed" "$tmp/err" "chatml"
check "unknown flag" 2 "" "$numatp" chat -t 1 -m "$tmp/phi-3.gguf" --bogus 1
check "missing file" 1 "hi"$'\n' "$numatp" chat -t 1 -m "$tmp/none.gguf"

exit $fail
