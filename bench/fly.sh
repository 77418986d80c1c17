#!/usr/bin/env bash
# The fly stage1's start, side by side in one hyperfine run, all running busybox's
# /bin/true from the same root filesystem (busybox-static, made now):
#   - vessel run --stage1=fly --rm IMAGE (stored image; host namespaces but mount),
#   - vessel run --net=none --rm IMAGE (the default flavour, for comparison),
#   - unshare -m chroot ROOTFS /bin/true: fly's floor, a mount namespace and a chroot.
# Target (issue 15): fly within 1.5 times that floor.
#
# Usage: bench/fly.sh [--runs N]   (default 100 timed runs each, after 10 warm-ups)
# Environment: VESSEL=path/to/vessel (default: a release build of this checkout),
#              BENCH_WORK=scratch directory (default /var/tmp/vessel-bench).
# Writes bench/results/fly.md.

source "$(dirname "$0")/lib.sh"

runs_option 100 12 "$@"

require_root
require_tools hyperfine umoci busybox python3 unshare
vessel=$(vessel_binary)
fresh_work fly

say "a busybox root filesystem, as an OCI layout (umoci)"
stored_bench_image

say "timing pod starts ($runs runs each)"
hyperfine -N --runs "$runs" --warmup 10 --style basic \
  --export-json "$work/fly.json" --export-markdown "$work/fly.table.md" \
  -n "vessel run --stage1=fly --rm" "$vessel --dir $store run --stage1=fly --rm $image" \
  -n "vessel run --net=none --rm" "$vessel --dir $store run --net=none --rm $image" \
  -n "unshare -m chroot (floor)" "unshare -m chroot $rootfs /bin/true"
"$vessel" --dir "$store" gc --grace-period=0s >/dev/null

fly_s=$(hyperfine_mean "$work/fly.json" 0)
default_s=$(hyperfine_mean "$work/fly.json" 1)
floor_s=$(hyperfine_mean "$work/fly.json" 2)

mkdir -p "$RESULTS_DIR"
result=$RESULTS_DIR/fly.md
{
  cat <<EOT
# Starting a fly pod: vessel run --stage1=fly vs unshare -m chroot

Recorded $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/fly.sh --runs $runs\`, vessel at commit \`$(cd "$REPO_DIR" && git rev-parse --short HEAD)\`.

## Machine

$(machine_markdown)

## Commands (one hyperfine run, $runs timed runs each after 10 warm-ups)

All run busybox-static's /bin/true from the same root filesystem.

\`\`\`
vessel --dir STORE run --stage1=fly --rm localhost/layout:bench
vessel --dir STORE run --net=none --rm localhost/layout:bench
unshare -m chroot ROOTFS /bin/true
\`\`\`

## Results

$(cat "$work/fly.table.md")

- vessel run --stage1=fly takes **$(ratio "$fly_s" "$floor_s")x** the floor (target: within 1.5x).
- The default flavour takes $(ratio "$default_s" "$fly_s")x fly's time.

## Reading the numbers

The floor makes a mount namespace and changes root, nothing else. A fly pod also resolves
the image, writes the pod's directory (manifest, plan, state), makes its cgroups, mounts
an overlay of the image's layers with /proc, /sys and /dev, compiles (cached) and loads a
seccomp filter, drops capabilities, supervises the app and records its exit status.

## Rerun

\`\`\`
sudo bench/fly.sh                 # --runs N
\`\`\`
EOT
} >"$result"
cat "$work/fly.table.md" >&2
echo "wrote $result" >&2
