#!/usr/bin/env bash
# real_model.sh - regression test on the real default model (suite 'slow'):
# SmolLM2-135M-Instruct Q4_1 (llama architecture, GQA 9/3, tied output,
# smollm byte-level BPE), fetched once by scripts/fetch-models.sh into
# ~/.cache/numatp. Skips (exit 77) when the model cannot be downloaded.
#
#   real_model.sh NUMATP SOURCE_ROOT
#
# (a) `numatp run --temp 0` prints exactly the recorded greedy text, and its
#     tokens equal the numpy reference's greedy ids (when numpy is present);
# (b) `numatp tokenize` gives the recorded ids;
# (c) `numatp perplexity -c 128` on tests/data/ppl-english.txt (prose written
#     for this project, 16 paragraphs, 2431 tokens here) prints
#     llama-perplexity's progress line and final line and a PPL inside the
#     recorded band (first 3 paragraphs, 3 chunks; NUMATP_REAL_FULL=1 runs the
#     whole text, 18 chunks, several minutes on the reference kernels);
# (d) `numatp chat` answers one user turn with non-empty text, ends the turn
#     by itself (end-of-turn token before -n) and exits.
#
# The recorded values come from the reference (scalar) kernels on
# 2026-11-21. The exact greedy text is checked with NTP_ISA=ref, whose
# arithmetic the numpy reference matches. The SIMD kernels sum in another
# order, and on this model a near-tie at the 6th token (logits 14.52 vs 14.52
# for " answer" / " United") goes either way, so with the default ISA only the
# first sentence is checked; perplexity and chat run on the default ISA.
set -uo pipefail

numatp="$1"
root="$2"
. "$root/tests/model/real_util.sh"
real_model_fetch smollm2
t0=$SECONDS

# (b) tokenizer: the prompt below, and a sentence with punctuation, digits
# (smollm splits them one by one) and a contraction.
check "tokenize prompt" "$("$numatp" tokenize -m "$model" -p "The capital of France is")" \
    "504 3575 282 4649 314"
check "tokenize sentence" \
    "$("$numatp" tokenize -m "$model" \
        -p "Hello world! It's 2024, and numatp runs GGUF models on NUMA servers.")" \
    "19556 905 17 657 506 216 34 32 34 36 28 284 861 261 96 7313 452 55 69 54 2859 335 442 69 7227 12904 30"

# (a) greedy generation. The 16 ids are what tests/reference/forward.py
# --greedy 16 gives for the prompt ids above; `run` ends the text with "\n".
want_ids="7042 30 198 198 504 2988 314 42 216 34 32 33 40 29 32 33"
NTP_ISA=ref "$numatp" run -m "$model" -p "The capital of France is" -n 16 --temp 0 \
    >"$tmp/run.out" 2>"$tmp/run.err"
check "run exit status" "$?" "0"
check "run greedy text" "$(od -An -c "$tmp/run.out" | tr -s ' \n' ' ')" \
    "$(printf ' Paris.\n\nThe answer is: 2018-01\n' | od -An -c | tr -s ' \n' ' ')"
head -c -1 "$tmp/run.out" >"$tmp/gen.txt" # the closing newline is not generated
check "run greedy ids" "$("$numatp" tokenize -m "$model" -f "$tmp/gen.txt")" "$want_ids"
if "$python" -c "import numpy" 2>/dev/null; then
    check "reference greedy ids" \
        "$("$python" "$root/tests/reference/forward.py" "$model" \
            --tokens "504 3575 282 4649 314" --greedy 16)" "$want_ids"
else
    echo "note: $python has no numpy; the reference check of the greedy ids is skipped"
fi
grep -q "generation: " "$tmp/run.err"
check "run speed line on stderr" "$?" "0"
"$numatp" run -m "$model" -p "The capital of France is" -n 4 --temp 0 >"$tmp/run4.out" 2>/dev/null
check "run greedy text (default ISA)" "$(head -c 7 "$tmp/run4.out")" " Paris."

# (c) perplexity, llama-perplexity's output format on stdout:
# "[1]32.3002,[2]27.4362,[3]30.1860," then "Final estimate: PPL = X +/- Y"
# with 4 and 5 decimals. Recorded: 30.1860 +/- 5.93317 (the numpy reference
# gives 30.3596 on the same chunks without numatp's Q8 activations).
text="$root/tests/data/ppl-english.txt"
lo=29.40 hi=31.00
if [ "${NUMATP_REAL_FULL:-0}" = 1 ]; then
    cp "$text" "$tmp/ppl.txt"
    lo=29.50 hi=31.00 # recorded: 30.2752 +/- 2.56825
else
    head -n 3 "$text" >"$tmp/ppl.txt"
fi
"$numatp" perplexity -m "$model" -f "$tmp/ppl.txt" -c 128 >"$tmp/ppl.out" 2>"$tmp/ppl.err"
check "perplexity exit status" "$?" "0"
cat "$tmp/ppl.out"
progress=$(head -n 1 "$tmp/ppl.out")
final=$(tail -n 1 "$tmp/ppl.out")
[[ "$progress" =~ ^(\[[0-9]+\][0-9]+\.[0-9]{4},)+$ ]]
check "perplexity progress line" "$?" "0"
[[ "$final" =~ ^Final\ estimate:\ PPL\ =\ ([0-9]+\.[0-9]{4})\ \+/-\ ([0-9]+\.[0-9]{5})$ ]]
check "perplexity final line" "$?" "0"
ppl="${BASH_REMATCH[1]:-nan}"
in_band=$(awk -v p="$ppl" -v lo="$lo" -v hi="$hi" 'BEGIN { print (p >= lo && p <= hi) ? 1 : 0 }')
check "perplexity $ppl in [$lo, $hi]" "$in_band" "1"
# the last progress value is the final estimate
check "perplexity last chunk = final" "${progress##*]}" "$ppl,"

# (d) chat: one user turn on stdin, greedy; the reply ends with the
# end-of-turn token well before -n 48, and the command exits at the end of
# its input.
echo "What is the capital of France? Answer in one word." |
    "$numatp" chat -m "$model" --temp 0 -n 48 -c 256 >"$tmp/chat.out" 2>"$tmp/chat.err"
check "chat exit status" "$?" "0"
reply=$(cat "$tmp/chat.out")
check "chat reply" "$reply" "The capital of France is Paris."
n_reply=$(printf '%s' "$reply" | "$numatp" tokenize -m "$model" -f - | wc -w)
check "chat reply ended by itself ($n_reply tokens < 48)" "$((n_reply < 48))" "1"

echo "real_model: $((SECONDS - t0)) s"
exit $fail
