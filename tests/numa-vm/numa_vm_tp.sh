#!/bin/bash
# numa_vm_tp.sh NUMATP NODES SOURCE_ROOT BUILD_ROOT - tensor parallelism on
# real NUMA nodes (suite numa-vm): boot a QEMU guest with NODES NUMA nodes (one
# vCPU each) through run-in-numa-vm.sh, and in it run `numatp run --tp auto
# --verify-numa` on three tiny generated models (llama; gemma3, whose local
# layers keep ring KV caches and whose post-norms follow the all-reduce; a
# qwen3moe, its experts split by features and, once more, by whole experts:
# every expert page on its device's node; a deepseek2, whose latent
# attention caches the latent on every device, with a dense first block and
# a shared expert). The
# source and build folders are shared with the guest at their own paths, so a
# clone anywhere works (under
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
"$numatp" gen -o gemma.gguf --arch gemma3 --dim 128 --layers 6 --heads 4 --kv-heads 2 \
    --head-dim 32 --ff 256 --vocab 300 --ctx 2048 --sliding-window 4 --tied --type q8_0 \
    >/dev/null 2>gen.err || { cat gen.err; exit 1; }
"$numatp" gen -o moe.gguf --arch qwen3moe --dim 128 --layers 2 --heads 4 --kv-heads 2 \
    --ff 256 --experts 8 --experts-used 2 --expert-ff 64 --vocab 300 --ctx 64 --type q8_0 \
    >/dev/null 2>gen.err || { cat gen.err; exit 1; }
"$numatp" gen -o mla.gguf --arch deepseek2 --dim 128 --layers 2 --heads 4 --kv-heads 1 \
    --head-dim 48 --rope-dim 16 --v-head-dim 32 --kv-lora 64 --q-lora 64 --ff 256 --experts 8 \
    --experts-used 2 --expert-ff 64 --dense-layers 1 --shared-experts 1 --vocab 300 --ctx 64 \
    --type q8_0 >/dev/null 2>gen.err || { cat gen.err; exit 1; }

# In the guest, per model: --tp auto with the page check, then --tp 1; outputs
# stay in $work. At -c 2048 the gemma3 local layers keep a ring (4 + 512 - 1
# positions, 1030 rows instead of 2048).
run_pair() { # run_pair MODEL PREFIX CTX [OPTION...]
    local m=$1 p=$2 c=$3
    shift 3
    echo "NTP_LOG=info '$numatp' run -m $m -p 'numa' -n 12 --temp 0 -c $c --tp auto $* \
--verify-numa >${p}auto.out 2>${p}auto.err; a=\$?; '$numatp' run -m $m -p 'numa' -n 12 --temp 0 \
-c $c --tp 1 >${p}one.out 2>${p}one.err; echo \$a \$? >${p}rc"
}
guest_cmd="$(run_pair model.gguf '' 64); $(run_pair gemma.gguf g- 2048); \
$(run_pair moe.gguf m- 64); $(run_pair moe.gguf e- 64 --moe-split experts); \
$(run_pair mla.gguf d- 64)"
# The work folder (the current directory) is shared read-write by default.
"$here/run-in-numa-vm.sh" --nodes "$nodes" --mem-per-node 512M --cpus-per-node 1 \
    --ro "$source_root" --ro "$build_root" --timeout 500 -- bash -c "$guest_cmd"
vm_rc=$?
if [ $vm_rc -ne 0 ] || [ ! -f rc ] || [ ! -f g-rc ] || [ ! -f m-rc ] || [ ! -f e-rc ] ||
    [ ! -f d-rc ]; then
    echo "FAIL: the guest did not run the commands (run-in-numa-vm.sh exit $vm_rc)"
    cat auto.err one.err g-auto.err g-one.err m-auto.err e-auto.err d-auto.err 2>/dev/null
    exit 1
fi
fail=0
check_pair() { # check_pair PREFIX NAME
    local p=$1 rc_auto rc_one
    read -r rc_auto rc_one <"${p}rc"
    cat "${p}auto.err"
    [ "$rc_auto" = 0 ] || { echo "FAIL: $2: run --tp auto --verify-numa exited $rc_auto"; fail=1; }
    [ "$rc_one" = 0 ] || { echo "FAIL: $2: run --tp 1 exited $rc_one"; cat "${p}one.err"; fail=1; }
    for ((d = 0; d < nodes; d++)); do
        grep -q "^dev $d node $d: " "${p}auto.err" ||
            { echo "FAIL: $2: device $d is not on node $d"; fail=1; }
    done
    grep -q "every page is on its device's node" "${p}auto.err" ||
        { echo "FAIL: $2: --verify-numa did not find every page on its node"; fail=1; }
    grep -q "tp $nodes: one device per NUMA node" "${p}auto.err" ||
        { echo "FAIL: $2: --tp auto did not make one device per node"; fail=1; }
    if ! cmp -s "${p}auto.out" "${p}one.out"; then
        echo "FAIL: $2: --tp auto and --tp 1 generated different text:"
        cat "${p}auto.out" "${p}one.out"
        fail=1
    fi
}
check_pair "" llama
check_pair g- gemma3
check_pair m- "qwen3moe split by features"
check_pair e- "qwen3moe split by experts"
check_pair d- deepseek2
[ $fail = 0 ] && echo "numa-vm: $nodes nodes, llama, gemma3, qwen3moe (both splits) and deepseek2: devices on their nodes, pages placed, same tokens as --tp 1"
exit $fail
