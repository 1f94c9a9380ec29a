#!/usr/bin/env bash
# cross-test.sh - build numatp for aarch64 with Debian's cross compiler and run
# its fast suite under qemu-user: proof that the project builds and works
# without the x86 kernels (on any CPU but x86 meson builds the reference
# kernels only). Installs what it needs (idempotent; root or sudo).
#
#   scripts/cross-test.sh [BUILD_DIR]     default build-aarch64
#
# The cross file (scripts/cross/aarch64-linux-gnu.ini) runs every test program
# under qemu-aarch64. Tests that start the aarch64 numatp from a host program
# (a bash or python script) need the kernel to hand aarch64 executables to
# qemu: binfmt_misc, registered here when this machine allows it.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build-aarch64}"

sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo

# Debian multiarch: the arm64 libraries next to the amd64 ones.
# libc6:arm64 brings the loader qemu runs the programs with (see the cross file),
# libgomp1:arm64 the OpenMP runtime they load from the multiarch folders.
packages=(gcc-aarch64-linux-gnu qemu-user libc6:arm64 libgomp1:arm64
          libhwloc-dev:arm64 libnuma-dev:arm64 libopenblas-dev:arm64)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "cross-test: installing ${missing[*]}"
    dpkg --print-foreign-architectures | grep -qx arm64 || $sudo dpkg --add-architecture arm64
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# binfmt_misc entry for aarch64 ELF executables (the magic and mask of qemu's
# qemu-binfmt-conf.sh).
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/register" ]; then
    $sudo mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || true
fi
if [ -e "$binfmt/register" ] && [ ! -e "$binfmt/qemu-aarch64" ]; then
    magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
    mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
    echo ":qemu-aarch64:M::$magic:$mask:$(command -v qemu-aarch64):" |
        $sudo tee "$binfmt/register" >/dev/null || true
fi
[ -e "$binfmt/qemu-aarch64" ] ||
    echo "cross-test: no binfmt_misc here; tests that start numatp from a script will fail" >&2

if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" --cross-file scripts/cross/aarch64-linux-gnu.ini -Dcuda=disabled \
        -Dmpi=disabled -Dwerror=true >/dev/null
fi
ninja -C "$dir" >/dev/null || ninja -C "$dir"
# qemu runs the programs 5-10 times slower than the hardware would.
meson test -C "$dir" --suite fast --no-suite not-cross --print-errorlogs --num-processes 2 \
    --timeout-multiplier 8
