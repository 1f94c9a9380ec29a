#!/usr/bin/env bash
# cli_tokenize.sh NUMATP DATA_DIR - `numatp tokenize` from the command line:
# ids and pieces for known texts, -f read byte for byte, exit codes and
# messages for bad usage, unreadable files and invalid UTF-8.
set -u
numatp=$1
data=$2
tmp=$(mktemp -d /tmp/ntp_tok_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0

run() { # run WANT_RC COMMAND... (output in $tmp/out, $tmp/err)
    local want=$1
    shift
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "FAIL: $*: exit $rc, expected $want"
        sed 's/^/  /' "$tmp/err" | head -5
        fail=1
    fi
}

same() { # same DESCRIPTION FILE EXPECTED
    if [ "$(cat "$2")" != "$3" ]; then
        echo "FAIL: $1: got '$(cat "$2")', expected '$3'"
        fail=1
    fi
}

contains() { # contains DESCRIPTION FILE TEXT
    if ! grep -q -- "$3" "$2"; then
        echo "FAIL: $1: '$3' not in '$(head -3 "$2")'"
        fail=1
    fi
}

spm=$data/ggml-vocab-llama-spm.gguf
gpt2=$data/ggml-vocab-gpt-2.gguf

run 0 "$numatp" tokenize -m "$spm" -p "Hello world"
same "spm ids with BOS" "$tmp/out" "1 15043 3186"
run 0 "$numatp" tokenize -m "$spm" -p "Hello world" --no-bos
same "spm ids without BOS" "$tmp/out" "15043 3186"
run 0 "$numatp" tokenize -m "$spm" -p "Hello world" --pieces
same "spm pieces" "$tmp/out" "1 '<s>'
15043 ' Hello'
3186 ' world'"
run 0 "$numatp" tokenize -m "$gpt2" -p "Hello<|endoftext|>" --ids --pieces
same "gpt-2 special token, pieces and ids" "$tmp/out" "15496 'Hello'
50256 '<|endoftext|>'
15496 50256"
run 0 "$numatp" tokenize -m "$gpt2" -p "<|endoftext|>" --no-parse-special
same "special text as text" "$tmp/out" "27 91 437 1659 5239 91 29"

# -f takes the file byte for byte, trailing newline included.
printf 'Hello world\n' >"$tmp/text"
run 0 "$numatp" tokenize -m "$gpt2" -f "$tmp/text"
same "file with newline" "$tmp/out" "15496 995 198"
run 0 "$numatp" tokenize -m "$gpt2" -f - <"$tmp/text"
same "stdin" "$tmp/out" "15496 995 198"
: >"$tmp/empty"
run 0 "$numatp" tokenize -m "$spm" -f "$tmp/empty"
same "empty file gives BOS alone" "$tmp/out" "1"

printf 'ab\xc3(' >"$tmp/bad"
run 1 "$numatp" tokenize -m "$gpt2" -f "$tmp/bad"
contains "invalid UTF-8" "$tmp/err" "not valid UTF-8 at byte offset 2"

run 0 "$numatp" tokenize --help
contains "help" "$tmp/out" "usage: numatp tokenize"
run 2 "$numatp" tokenize -p x
contains "missing -m" "$tmp/err" "-m FILE is required"
run 2 "$numatp" tokenize -m "$gpt2"
contains "no text" "$tmp/err" "exactly one of -p TEXT and -f FILE"
run 2 "$numatp" tokenize -m "$gpt2" -p x -f "$tmp/text"
contains "two texts" "$tmp/err" "exactly one of"
run 2 "$numatp" tokenize -m "$gpt2" -p x --bogus
contains "unknown option" "$tmp/err" "unknown option '--bogus'"
run 1 "$numatp" tokenize -m "$tmp/missing.gguf" -p x
contains "missing model" "$tmp/err" "missing.gguf"
run 1 "$numatp" tokenize -m "$gpt2" -f "$tmp/missing.txt"
contains "missing text file" "$tmp/err" "cannot open '$tmp/missing.txt'"
run 1 "$numatp" tokenize -m "$tmp/text" -p x
contains "not a GGUF file" "$tmp/err" "text"

exit $fail
