#!/usr/bin/env bash
# install.sh BUILD_DIR PREFIX BINDIR LIBDIR INCLUDEDIR SANITIZE - `meson install`
# as a user runs it, into a temporary DESTDIR: numatp, libnumatp.so and .a,
# ntp.h and numatp.pc land under PREFIX; the shared library exports exactly
# the functions ntp.h declares; use_numatp.c builds with `pkg-config --cflags
# --libs numatp` against the shared library and with `--static` against the
# static one, and both print the same greedy text as the installed `numatp run`
# on a model made by the installed `numatp gen`. CC is the build's compiler;
# SANITIZE is its b_sanitize (a sanitized library needs the sanitizer runtime
# in the program too).
set -uo pipefail
# As a user would: meson test points LD_LIBRARY_PATH at the build folder.
unset LD_LIBRARY_PATH
build=$1 prefix=$2 bindir=$3 libdir=$4 includedir=$5 sanitize=$6
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cc=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ntp_install_XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# --no-rebuild: meson test has built everything already, and a rebuild from
# inside a test would race the other tests for the build folder.
meson install -C "$build" --no-rebuild --quiet --destdir "$dest" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; echo "FAIL: meson install"; exit 1; }
for f in "$bindir/numatp" "$includedir/ntp.h" "$libdir/libnumatp.so" "$libdir/libnumatp.so.0" \
         "$libdir/libnumatp.a" "$libdir/pkgconfig/numatp.pc"; do
    [ -e "$dest$f" ] || bad "$f not installed (prefix $prefix)"
done
[ $fail = 0 ] || { find "$dest" | sed 's/^/  /'; exit 1; }

# The shared library's ABI is ntp.h: every function it declares is exported,
# nothing else is (internal ntp__ functions and the CUDA kernels stay hidden).
grep -oE '\bntp_[a-z0-9_]+\(' "$dest$includedir/ntp.h" | tr -d '(' | sort -u >"$tmp/declared"
# (nm's "A" line is the version node NUMATP_0, not a symbol.)
nm -D --defined-only --without-symbol-versions "$dest$libdir/libnumatp.so" |
    awk '$2 != "A" {print $3}' | sort -u >"$tmp/exported"
if ! cmp -s "$tmp/declared" "$tmp/exported"; then
    bad "libnumatp.so exports other functions than ntp.h declares (< declared only, > exported only):"
    diff "$tmp/declared" "$tmp/exported" | grep '^[<>]' | sed 's/^/  /'
fi

# The installed numatp (its run path finds the CUDA libraries, if any) makes
# the model and gives the reference text.
numatp=$dest$bindir/numatp
"$numatp" gen -o "$tmp/m.gguf" --arch llama --dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 128 \
    --vocab 300 --ctx 64 --type q8_0 --seed 11 -q ||
    { echo "FAIL: installed numatp gen"; exit 1; }
"$numatp" run -m "$tmp/m.gguf" -p numatp -n 8 --temp 0 >"$tmp/want" 2>"$tmp/run.err" ||
    { cat "$tmp/run.err"; echo "FAIL: installed numatp run"; exit 1; }
[ "$(wc -c <"$tmp/want")" -gt 1 ] || bad "numatp run generated nothing: the comparison would be empty"

# pkg-config reads numatp.pc from DESTDIR, with its prefix moved there too
# (numatp.pc derives includedir and libdir from it). Not PKG_CONFIG_SYSROOT_DIR:
# that would also move the absolute paths of the CUDA libraries in Libs.private,
# which are not under DESTDIR.
export PKG_CONFIG_PATH=$dest$libdir/pkgconfig
pc=(pkg-config "--define-variable=prefix=$dest$prefix")
flags=(-std=c11 -Wall -Wextra -Wpedantic -Werror)
[ "$sanitize" = none ] || flags+=("-fsanitize=$sanitize")
# shellcheck disable=SC2046 # pkg-config's output is a list of words
if $cc "${flags[@]}" "$here/use_numatp.c" -o "$tmp/use_shared" $("${pc[@]}" --cflags --libs numatp)
then
    # ldd's output goes to a file first: with pipefail, `ldd | grep -q` fails
    # whenever grep stops reading before ldd has written everything.
    LD_LIBRARY_PATH=$dest$libdir ldd "$tmp/use_shared" >"$tmp/ldd_shared"
    grep -q "libnumatp.so.0 => $dest$libdir/" "$tmp/ldd_shared" ||
        bad "use_shared does not load the installed libnumatp.so.0"
    LD_LIBRARY_PATH=$dest$libdir "$tmp/use_shared" "$tmp/m.gguf" >"$tmp/shared.out" ||
        bad "use_shared failed"
    cmp -s "$tmp/want" "$tmp/shared.out" ||
        bad "shared: '$(cat "$tmp/shared.out")', numatp run: '$(cat "$tmp/want")'"
else
    bad "use_numatp.c did not build with pkg-config --cflags --libs numatp"
fi
# --static lists the private dependencies; -l:libnumatp.a picks the archive
# over the shared library that sits next to it.
static_libs=$("${pc[@]}" --static --libs numatp | sed 's/-lnumatp\b/-l:libnumatp.a/')
# shellcheck disable=SC2046,SC2086
if $cc "${flags[@]}" "$here/use_numatp.c" -o "$tmp/use_static" $("${pc[@]}" --cflags numatp) \
    $static_libs; then
    ldd "$tmp/use_static" >"$tmp/ldd_static"
    grep -q libnumatp "$tmp/ldd_static" && bad "use_static loads libnumatp.so"
    "$tmp/use_static" "$tmp/m.gguf" >"$tmp/static.out" || bad "use_static failed"
    cmp -s "$tmp/want" "$tmp/static.out" ||
        bad "static: '$(cat "$tmp/static.out")', numatp run: '$(cat "$tmp/want")'"
else
    bad "use_numatp.c did not build with pkg-config --static --cflags --libs numatp"
fi

[ $fail = 0 ] && echo "install: $(wc -l <"$tmp/exported") functions exported; shared and static" \
    "programs print '$(cat "$tmp/want")'"
exit $fail
