#!/usr/bin/env bash
# build.sh - configure (once) and build numatp into ./build (or $1).
#   scripts/build.sh [BUILD_DIR] [meson setup options...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build}"
shift || true
if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null
elif [ $# -gt 0 ]; then
    meson configure "$dir" "$@" >/dev/null
fi
ninja -C "$dir" >/dev/null || ninja -C "$dir"
echo "built: $dir/src/cli/numatp"
