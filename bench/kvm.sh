#!/usr/bin/env bash
# The kvm stage1's start, side by side in one hyperfine run, all running busybox's
# /bin/true from the same root filesystem (busybox-static, made now):
#   - vessel run --stage1=kvm --net=none --rm IMAGE (a QEMU virtual machine booting Debian's kernel),
#   - vessel run --net=none --rm IMAGE (the default flavour),
#   - podman run --rm --network none of the same image.
# Target (issue 15): the kvm pod under 300 ms. Then one traced kvm run (VESSEL_TRACE=1)
# and the guest's console, to show where the time goes.
#
# Usage: bench/kvm.sh [--runs N]   (default 5 timed runs each, after 1 warm-up: under
#                                   QEMU's emulation one kvm run takes seconds)
# Environment: VESSEL=path/to/vessel (default: a release build of this checkout),
#              BENCH_WORK=scratch directory (default /var/tmp/vessel-bench),
#              VESSEL_KVM_* as `vessel run --stage1=kvm` reads them (docs/architecture.md).
# Writes bench/results/kvm.md.

source "$(dirname "$0")/lib.sh"

runs_option 5 15 "$@"

require_root
require_tools hyperfine umoci podman skopeo busybox python3 qemu-system-x86_64
[[ -e /dev/kvm ]] || die "no /dev/kvm here: the kvm stage1 needs KVM"
vessel=$(vessel_binary)
fresh_work kvm

say "a busybox root filesystem, as an OCI layout (umoci), and a podman image"
stored_bench_image
podman_bench_image vessel-bench
podman run --rm --network none $podman_limits localhost/vessel-bench /bin/true || die "podman cannot run the image here"
# The first kvm run builds the initramfs into the store's cache; not timed.
"$vessel" --dir "$store" run --stage1=kvm --net=none --rm "$image" || die "a kvm pod does not run here"
accel=$(if [[ -d /sys/module/kvm_pvm && ! -d /sys/module/kvm_intel && ! -d /sys/module/kvm_amd ]]; then echo "tcg (the host's KVM is PVM)"; else echo kvm; fi)
accel=${VESSEL_KVM_ACCEL:-$accel}

say "timing pod starts ($runs runs each)"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
hyperfine -N --runs "$runs" --warmup 1 --style basic \
  --export-json "$work/kvm.json" --export-markdown "$work/kvm.table.md" \
  -n "vessel run --stage1=kvm --net=none --rm" "$vessel --dir $store run --stage1=kvm --net=none --rm $image" \
  -n "vessel run --net=none --rm" "$vessel --dir $store run --net=none --rm $image" \
  -n "podman run --rm --network none" "podman run --rm --network none $podman_limits localhost/vessel-bench /bin/true"
LOAD_AT_END=$(cut -d' ' -f1-3 /proc/loadavg)

say "one traced kvm run"
VESSEL_TRACE=1 "$vessel" --dir "$store" run --stage1=kvm --net=none "--uuid-file-save=$work/uuid" "$image" 2>"$work/trace.txt" || true
uuid=$(cat "$work/uuid")
console=$(find "$store/pods" -name kvm-console.log -path "*$uuid*" | head -1)
cp "$console" "$work/console.txt" 2>/dev/null || true
"$vessel" --dir "$store" rm "$uuid" >/dev/null 2>&1 || true
"$vessel" --dir "$store" gc --grace-period=0s >/dev/null

kvm_s=$(hyperfine_mean "$work/kvm.json" 0)
default_s=$(hyperfine_mean "$work/kvm.json" 1)
podman_s=$(hyperfine_mean "$work/kvm.json" 2)

mkdir -p "$RESULTS_DIR"
result=$RESULTS_DIR/kvm.md
{
  cat <<EOT
# Starting a kvm pod: vessel run --stage1=kvm vs the default flavour vs podman run

Recorded $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/kvm.sh --runs $runs\`, vessel at commit \`$(cd "$REPO_DIR" && git rev-parse --short HEAD)\`.
Accelerator: $accel. Load average at start $LOAD_AT_START, at end $LOAD_AT_END.

## Machine

$(machine_markdown)

## Commands (one hyperfine run, $runs timed runs each after 1 warm-up)

All run busybox-static's /bin/true from the same root filesystem.

\`\`\`
vessel --dir STORE run --stage1=kvm --net=none --rm localhost/layout:bench
vessel --dir STORE run --net=none --rm localhost/layout:bench
podman run --rm --network none localhost/vessel-bench /bin/true
\`\`\`

## Results

$(cat "$work/kvm.table.md")

- vessel run --stage1=kvm: **$(python3 -c "print(f'{$kvm_s*1000:.0f}')") ms** (target: under 300 ms).
- The default flavour: $(python3 -c "print(f'{$default_s*1000:.1f}')") ms; podman: $(python3 -c "print(f'{$podman_s*1000:.0f}')") ms.

## One traced kvm run (VESSEL_TRACE=1: ms since vessel started)

\`\`\`
$(grep -v '^$' "$work/trace.txt" | tail -25)
\`\`\`

The guest's console (kernel messages are quiet; what is here is the kernel's own
warnings and the guest init's errors):

\`\`\`
$(tail -15 "$work/console.txt" 2>/dev/null)
\`\`\`
EOT
} >"$result"
cat "$work/kvm.table.md" >&2
echo "wrote $result" >&2
