#!/usr/bin/env bash
# Build llama.cpp's llama-bench, llama-perplexity and llama-server outside the
# repository, once, so numatp can be measured against them (bench/vs-llama.cpp).
#
# Usage: bench/llama-cpp.sh [--cuda | --avx512]
#   Prints the directory holding the three binaries on stdout; progress and
#   errors go to stderr. --cuda builds llama.cpp's CUDA backend instead, for
#   side-by-side GPU figures (numatp bench -ngl against llama-bench -ngl).
#   --avx512 builds llama.cpp's CPU backend for AVX-512 with VNNI (and VBMI
#   and BF16 where the CPU has them) but without AMX, what it runs on an AMD
#   EPYC (Zen 4 and later) or a Xeon before Sapphire Rapids, so that on an
#   Intel machine with AMX numatp's AVX-512 kernels (NTP_ISA=avx512) can be
#   measured against llama.cpp's AVX-512 kernels.
#
# Source: the source distribution of the llama-cpp-python package on PyPI,
# whose vendor/llama.cpp is a complete llama.cpp. Its version is pinned below
# so results can be reproduced.
#
# Environment:
#   LLAMA_CPP_BIN=DIR               use the binaries in DIR; build nothing
#   LLAMA_CPP_PYTHON_VERSION=X.Y.Z  another llama-cpp-python release
#   NUMATP_CACHE=DIR                cache root (default ~/.cache/numatp); the
#                                   build goes to DIR/llama.cpp-VERSION/
#                                   (DIR/llama.cpp-VERSION-clang/ on a CPU
#                                   with AMX, see COMPILER below;
#                                   DIR/llama.cpp-VERSION-cuda/ with --cuda,
#                                   DIR/llama.cpp-VERSION-avx512/ with --avx512)
#   LLAMA_CPP_CPUINFO=FILE          read the CPU's flags from FILE, not
#                                   /proc/cpuinfo (the tests' fake CPUs)
#   LLAMA_CPP_CUDA_ARCH=LIST        --cuda: CMAKE_CUDA_ARCHITECTURES (default
#                                   native: the GPUs of this machine; set it,
#                                   e.g. 90 for Hopper, to build without one)
#
# The build is CPU only (no CUDA, no network libraries), Release, tuned for
# this machine's CPU (GGML_NATIVE), with every core. The --cuda build adds the
# CUDA backend (nvcc and cuBLAS from the CUDA toolkit) and leaves the CPU part
# generic (GGML_NATIVE off), so that it also runs on a GPU machine whose CPU
# differs from the one that built it. A second call finds the
# cache and returns at once. Missing tools are not installed: the script names
# the Debian packages to install and stops, so it never needs root.
set -euo pipefail

VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
CUDA=0
AVX512=0
case "${1:-}" in
'') ;;
--cuda) CUDA=1 ;;
--avx512) AVX512=1 ;;
*)
    echo "llama-cpp.sh: error: unknown argument '$1' (usage: bench/llama-cpp.sh [--cuda | --avx512])" >&2
    exit 2
    ;;
esac
TOOLS=(llama-bench llama-perplexity llama-server)

say() { echo "llama-cpp.sh: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# The user's own binaries: check them and stop there.
if [[ -n "${LLAMA_CPP_BIN:-}" ]]; then
    missing=()
    for t in "${TOOLS[@]}"; do
        [[ -x "$LLAMA_CPP_BIN/$t" ]] || missing+=("$t")
    done
    if ((${#missing[@]})); then
        die "LLAMA_CPP_BIN=$LLAMA_CPP_BIN has no executable ${missing[*]}"
    fi
    echo "$LLAMA_CPP_BIN"
    exit 0
fi

CACHE=${NUMATP_CACHE:-$HOME/.cache/numatp}
CPUINFO=${LLAMA_CPP_CPUINFO:-/proc/cpuinfo}
DIR="$CACHE/llama.cpp-$VERSION"
# On a CPU with AMX, GGML_NATIVE compiles llama.cpp's AMX kernels, and GCC 12
# (Debian 12's) miscompiles their tile configuration: llama-bench died with
# SIGSEGV in ggml_backend_amx_mul_mat. There clang builds it, in its own cache.
COMPILER=()
BACKEND=(-DGGML_NATIVE=ON -DGGML_CUDA=OFF)
if ((CUDA)); then
    BACKEND=(-DGGML_NATIVE=OFF -DGGML_CUDA=ON
        -DCMAKE_CUDA_ARCHITECTURES="${LLAMA_CPP_CUDA_ARCH:-native}")
    DIR="$DIR-cuda"
elif ((AVX512)); then
    # GGML_NATIVE would add -march=native, and with it AMX: name the features
    # instead, VBMI and BF16 only where this CPU has them (the binaries must run here).
    flags=" $(grep -m1 '^flags' "$CPUINFO" 2>/dev/null) "
    for f in avx512f avx512bw avx512vl avx512dq avx512_vnni; do
        [[ $flags == *" $f "* ]] ||
            die "--avx512: this CPU lacks $f ($CPUINFO), so llama.cpp's AVX-512 build could not run here"
    done
    on() { [[ $flags == *" $1 "* ]] && echo ON || echo OFF; }
    BACKEND=(-DGGML_NATIVE=OFF -DGGML_CUDA=OFF -DGGML_AVX=ON -DGGML_AVX2=ON
        -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=ON
        -DGGML_AVX512_VNNI=ON -DGGML_AVX512_VBMI="$(on avx512vbmi)"
        -DGGML_AVX512_BF16="$(on avx512_bf16)"
        -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)
    DIR="$DIR-avx512"
elif grep -qw amx_int8 "$CPUINFO" 2>/dev/null && command -v clang >/dev/null &&
    command -v clang++ >/dev/null; then
    COMPILER=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++)
    DIR="$DIR-clang"
fi
BIN="$DIR/bin"

have_all() {
    local t
    for t in "${TOOLS[@]}"; do
        [[ -x "$BIN/$t" ]] || return 1
    done
}

if have_all; then
    echo "$BIN"
    exit 0
fi

# Tools the download and the build need, each with its Debian package.
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v c++ >/dev/null || need+=(g++)
command -v cc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
((CUDA)) && ! command -v nvcc >/dev/null && need+=(nvidia-cuda-toolkit)
command -v python3 >/dev/null || need+=(python3)
command -v python3 >/dev/null && ! python3 -m pip --version >/dev/null 2>&1 && need+=(python3-pip)
if ((${#need[@]})); then
    die "missing build tools; install them with: apt-get install -y ${need[*]}"
fi

mkdir -p "$DIR"
# One build at a time: a second caller waits here, then finds the cache.
exec 9>"$DIR/.lock"
flock 9
if have_all; then
    echo "$BIN"
    exit 0
fi

WORK="$DIR/work"
DOWNLOAD_LOG="$DIR/download.log"
BUILD_LOG="$DIR/build.log"
rm -rf "$WORK"
mkdir -p "$WORK"

say "downloading llama-cpp-python==$VERSION (source) from PyPI"
if ! python3 -m pip download --no-binary :all: --no-deps --dest "$WORK" \
    "llama-cpp-python==$VERSION" >"$DOWNLOAD_LOG" 2>&1; then
    tail -n 5 "$DOWNLOAD_LOG" | cut -c 1-300 >&2
    die "could not download llama-cpp-python==$VERSION from PyPI (full output: $DOWNLOAD_LOG)"
fi
tarball="$WORK/llama_cpp_python-$VERSION.tar.gz"
[[ -f "$tarball" ]] || die "pip saved no $tarball (full output: $DOWNLOAD_LOG)"
tar -xzf "$tarball" -C "$WORK" || die "could not unpack $tarball"
pkg="$WORK/llama_cpp_python-$VERSION"
src="$pkg/vendor/llama.cpp"
[[ -f "$src/CMakeLists.txt" ]] || die "$tarball holds no vendor/llama.cpp"

# The source distribution carries no git history, so llama.cpp would call its
# commit "unknown"; the package's changelog names it for each release
# ("update llama.cpp to ggml-org/llama.cpp@COMMIT").
commit=$(awk -v v="## [$VERSION]" '
    index($0, v) == 1 { in_v = 1; next }
    in_v && /^## \[/ { exit }
    in_v && match($0, /llama\.cpp@[0-9a-f]+/) { print substr($0, RSTART + 10, RLENGTH - 10); exit }
' "$pkg/CHANGELOG.md" 2>/dev/null || true)
commit=${commit:-unknown}

jobs=$(nproc)
say "building llama.cpp $commit (llama-cpp-python $VERSION) with $jobs jobs; log: $BUILD_LOG"
if ! {
    cmake -S "$src" -B "$WORK/build" "${COMPILER[@]}" \
        -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF \
        "${BACKEND[@]}" \
        -DLLAMA_OPENSSL=OFF \
        -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_UI=OFF \
        -DLLAMA_USE_PREBUILT_UI=OFF \
        -DLLAMA_BUILD_COMMIT="$commit" &&
        cmake --build "$WORK/build" --config Release -j "$jobs" --target "${TOOLS[@]}"
} >"$BUILD_LOG" 2>&1; then
    tail -n 20 "$BUILD_LOG" >&2
    die "the llama.cpp build failed (full log: $BUILD_LOG)"
fi

# Install the static binaries, then drop the sources and objects.
rm -rf "$BIN.tmp"
mkdir -p "$BIN.tmp"
for t in "${TOOLS[@]}"; do
    [[ -x "$WORK/build/bin/$t" ]] || die "the build made no $t (full log: $BUILD_LOG)"
    cp "$WORK/build/bin/$t" "$BIN.tmp/"
done
rm -rf "$BIN"
mv "$BIN.tmp" "$BIN"
rm -rf "$WORK"
say "done"
echo "$BIN"
