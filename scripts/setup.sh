#!/usr/bin/env bash
# setup.sh - install every Debian package numatp's build, tests and benchmarks
# need. Idempotent; run as root (or with sudo available) on Debian 12.
#
#   scripts/setup.sh            install the packages
#   scripts/setup.sh --check    only say which are missing (exit 1 if any)
set -euo pipefail

packages=(
    # build
    gcc clang meson ninja-build pkg-config
    # hwloc: topology and thread binding; libnuma: node-local memory and page checks
    libhwloc-dev hwloc libnuma-dev numactl
    # hwloc.pc asks for -ludev when linking statically (tests/install: pkg-config --static)
    libudev-dev
    # OpenBLAS: float GEMMs; OpenMP comes with gcc (libgomp)
    libopenblas-dev
    # sanitizers and libFuzzer runtimes for clang
    libclang-rt-14-dev
    # the numpy reference forward pass; pip fetches the example models
    python3 python3-numpy python3-pip unzip
    # numatp serve: HTTP (libmicrohttpd) and JSON (jansson); python3-venv for the
    # venv that holds the openai package tests/server drives it with
    libmicrohttpd-dev libjansson-dev python3-venv
    # runs across processes and machines under mpirun (the mpi suite): Open MPI
    libopenmpi-dev openmpi-bin
    # the numa-vm test suite: a throw-away QEMU guest with several NUMA nodes
    qemu-system-x86 busybox-static xz-utils
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# The openai Python package for tests/server, in a venv under the numatp cache
# (Debian 12 refuses pip installs into the system python). Once the packages
# are there; a failure (no network) only skips that part of the test.
openai_venv() {
    local venv="${NUMATP_CACHE:-$HOME/.cache/numatp}/venv"
    [ -x "$venv/bin/python3" ] && "$venv/bin/python3" -c "import openai" 2>/dev/null && return 0
    python3 -m venv "$venv" && "$venv/bin/pip" install -q openai ||
        echo "setup: could not install the openai package into $venv (tests/server skips that part)" >&2
}

if [ "${1:-}" = "--check" ]; then
    if [ ${#missing[@]} -gt 0 ]; then
        echo "missing packages: ${missing[*]}"
        exit 1
    fi
    echo "all packages installed"
    exit 0
fi

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all ${#packages[@]} packages already installed"
    openai_venv
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo=sudo
fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
openai_venv
