#!/usr/bin/env bash
# demo.sh - the README's first command: install, build, fetch the default
# model and generate text with it.
#   scripts/demo.sh ["your prompt"] [more numatp run flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
model=$(scripts/fetch-models.sh)
prompt="${1:-The capital of France is}"
shift || true
./build/src/cli/numatp run -m "$model" -p "$prompt" -n 64 --temp 0 "$@"
