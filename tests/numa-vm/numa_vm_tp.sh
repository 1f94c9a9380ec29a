#!/bin/bash
# numa_vm_tp.sh NUMATP NODES SOURCE_ROOT BUILD_ROOT - tensor parallelism on
# real NUMA nodes (suite numa-vm): boot a QEMU guest with NODES NUMA nodes (one
# vCPU each) through run-in-numa-vm.sh, and in it run `numatp run --tp auto
# --verify-numa` on a tiny generated model. The source and build folders are
# shared with the guest at their own paths, so a clone anywhere works (under
# /tmp, say, which the guest's own /tmp would otherwise hide). Passes when
# every device sits on its own node, every weight / KV cache / scratch page is
# on its device's node, and the greedy tokens equal those of `--tp 1`. Skips
# (77) when qemu or busybox is missing.
# Under TCG (no usable KVM) the guest is 10-20x slower, so the model is tiny.
set -uo pipefail

command -v qemu-system-x86_64 >/dev/null ||
    { echo "SKIP: qemu-system-x86_64 is not installed (scripts/setup.sh installs qemu-system-x86)"; exit 77; }
command -v busybox >/dev/null || [ -x /bin/busybox ] ||
    { echo "SKIP: busybox is not installed (scripts/setup.sh installs busybox-static)"; exit 77; }

numatp=$(realpath "$1")
nodes=${2:-2}
source_root=$(realpath "$3")
build_root=$(realpath "$4")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/ntp_numavm_XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
"$numatp" gen -o model.gguf --dim 128 --layers 2 --heads 8 --kv-heads 4 --ff 256 --vocab 300 \
    --ctx 64 --type q8_0 >/dev/null 2>gen.err || { cat gen.err; exit 1; }

# In the guest: --tp auto with the page check, then --tp 1; outputs stay in $work.
guest_cmd="NTP_LOG=info '$numatp' run -m model.gguf -p 'numa' -n 12 --temp 0 -c 64 --tp auto \
--verify-numa >auto.out 2>auto.err; a=\$?; '$numatp' run -m model.gguf -p 'numa' -n 12 --temp 0 \
-c 64 --tp 1 >one.out 2>one.err; echo \$a \$? >rc"
# The work folder (the current directory) is shared read-write by default.
"$here/run-in-numa-vm.sh" --nodes "$nodes" --mem-per-node 512M --cpus-per-node 1 \
    --ro "$source_root" --ro "$build_root" --timeout 500 -- bash -c "$guest_cmd"
vm_rc=$?
if [ $vm_rc -ne 0 ] || [ ! -f rc ]; then
    echo "FAIL: the guest did not run the commands (run-in-numa-vm.sh exit $vm_rc)"
    cat auto.err one.err 2>/dev/null
    exit 1
fi
fail=0
read -r rc_auto rc_one <rc
cat auto.err
[ "$rc_auto" = 0 ] || { echo "FAIL: numatp run --tp auto --verify-numa exited $rc_auto"; fail=1; }
[ "$rc_one" = 0 ] || { echo "FAIL: numatp run --tp 1 exited $rc_one"; cat one.err; fail=1; }
for ((d = 0; d < nodes; d++)); do
    grep -q "^dev $d node $d: " auto.err ||
        { echo "FAIL: device $d is not on node $d"; fail=1; }
done
grep -q "every page is on its device's node" auto.err ||
    { echo "FAIL: --verify-numa did not find every page on its node"; fail=1; }
grep -q "tp $nodes: one device per NUMA node" auto.err ||
    { echo "FAIL: --tp auto did not make one device per node"; fail=1; }
if ! cmp -s auto.out one.out; then
    echo "FAIL: --tp auto and --tp 1 generated different text:"
    cat auto.out one.out
    fail=1
fi
[ $fail = 0 ] && echo "numa-vm: $nodes nodes: devices on their nodes, pages placed, same tokens as --tp 1"
exit $fail
