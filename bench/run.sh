#!/usr/bin/env bash
# Starting a pod, side by side in one hyperfine run, all running busybox's /bin/true from
# the same root filesystem (busybox-static, made now):
#   - vessel run --net=none --rm IMAGE (stored image),
#   - runc run of an OCI bundle of that root filesystem (runc's default config: pid, ipc,
#     uts, mount and network namespaces),
#   - podman run --rm --network none of the same image,
#   - unshare -mpfuin --fork chroot ROOTFS /bin/true: the floor, namespaces and nothing else.
# Also measured: the resident memory of the process that waits on a running pod, and the
# time of `vessel list` with 1000 exited pods.
#
# Usage: bench/run.sh [--runs N] [--pods N]
#   --runs N   timed runs per command (default 100, after 10 warm-ups)
#   --pods N   exited pods for the list timing (default 1000)
# Environment: VESSEL=path/to/vessel (default: a release build of this checkout),
#              BENCH_WORK=scratch directory (default /var/tmp/vessel-bench).
# Writes bench/results/run.md.

source "$(dirname "$0")/lib.sh"

runs=100
pods=1000
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --pods) pods=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

require_root
require_tools hyperfine umoci runc podman skopeo busybox python3 unshare
vessel=$(vessel_binary)
fresh_work run

say "a busybox root filesystem, as an OCI layout (umoci), a runc bundle, and a podman image"
stored_bench_image
podman_bench_image vessel-bench
podman run --rm --network none $podman_limits localhost/vessel-bench /bin/true || die "podman cannot run the image here"

say "timing pod starts ($runs runs each)"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
hyperfine -N --runs "$runs" --warmup 10 --style basic \
  --export-json "$work/run.json" --export-markdown "$work/run.table.md" \
  -n "vessel run --net=none --rm" "$vessel --dir $store run --net=none --rm $image" \
  -n "runc run" "runc run -b $work/bundle vessel-bench" \
  -n "podman run --rm --network none" "podman run --rm --network none $podman_limits localhost/vessel-bench /bin/true" \
  -n "unshare + chroot (floor)" "unshare -mpfuin --fork chroot $rootfs /bin/true"

say "resident memory of the waiting supervisor"
"$vessel" --dir "$store" run --net=none "$image" --exec /bin/sleep -- 3 &
sup=$!
sleep 1.5
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$sup/status")
wait "$sup"

say "vessel list with $pods exited pods"
list_store=$work/list-store
"$vessel" --dir "$list_store" fetch --insecure-options=image "oci:$layout:bench" >/dev/null
for ((i = 0; i < pods; i++)); do
  "$vessel" --dir "$list_store" run --net=none "$image" >/dev/null
done
hyperfine -N --runs 10 --warmup 2 --style basic --export-json "$work/list.json" \
  -n "vessel list ($pods exited pods)" "$vessel --dir $list_store list" \
  -n "vessel list --format=json ($pods exited pods)" "$vessel --dir $list_store list --format=json"
"$vessel" --dir "$list_store" gc --grace-period=0s >/dev/null

vessel_s=$(hyperfine_mean "$work/run.json" 0)
runc_s=$(hyperfine_mean "$work/run.json" 1)
podman_s=$(hyperfine_mean "$work/run.json" 2)
floor_s=$(hyperfine_mean "$work/run.json" 3)
list_s=$(hyperfine_mean "$work/list.json" 0)
list_json_s=$(hyperfine_mean "$work/list.json" 1)

mkdir -p "$RESULTS_DIR"
result=$RESULTS_DIR/run.md
{
  cat <<EOF
# Starting a pod: vessel run vs runc run vs podman run

Recorded $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/run.sh --runs $runs --pods $pods\`, vessel at commit \`$(cd "$REPO_DIR" && git rev-parse --short HEAD)\`.

## Machine

$(machine_markdown)
- Also: $(runc --version | head -n1), $(podman --version)
- cgroups: $(findmnt -no FSTYPE /sys/fs/cgroup/memory 2>/dev/null | head -n1 || echo none) v1 controllers, unified at $(findmnt -no TARGET -t cgroup2 | head -n1)

## Commands (one hyperfine run, $runs timed runs each after 10 warm-ups)

All run busybox-static's /bin/true from the same root filesystem.

\`\`\`
vessel --dir STORE run --net=none --rm localhost/layout:bench
runc run -b BUNDLE vessel-bench
podman run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 localhost/vessel-bench /bin/true
unshare -mpfuin --fork chroot ROOTFS /bin/true
\`\`\`

## Results

$(cat "$work/run.table.md")

- vessel run is **$(ratio "$runc_s" "$vessel_s")x** as fast as runc run (target: at least 3x) and **$(ratio "$podman_s" "$vessel_s")x** as fast as podman run.
- vessel run takes $(ratio "$vessel_s" "$floor_s")x the floor (namespaces and chroot alone).
- The process waiting on a running pod (the supervisor) was **$((rss_kib)) KiB** resident after 1.5 s (target: under 3 MiB).
- \`vessel list\` with $pods exited pods: **$(python3 -c "print('%.1f' % ($list_s * 1000))") ms** (table), $(python3 -c "print('%.1f' % ($list_json_s * 1000))") ms (JSON).

## Reading the numbers

On cgroup v1 (and this hybrid host), moving a process into a cgroup takes a global lock
whose first writer after a quiet spell waits for an RCU grace period (10 to 30 ms on this
kernel). vessel, runc and podman all move their containers' processes, so all three pay it
when runs are spaced out; back to back, as here, most runs find the period already passed.
\`mount -o remount,favordynmods\` of the cgroup2 mount removes that wait for every runtime.

## Rerun

\`\`\`
sudo bench/run.sh                 # --runs N, --pods N
\`\`\`
EOF
} >"$result"
cat "$work/run.table.md" >&2
echo "wrote $result" >&2
