#!/usr/bin/env bash
# The OCI runtime face: vessel-runtime beside runc on the same bundle (busybox-static's
# /bin/true, runc's default config without a terminal), side by side in one hyperfine
# run each:
#   - `run` of the bundle,
#   - `create` + `start` + `delete --force` (three invocations, as containerd makes them),
#   - `ctr run --rm` through a private containerd with each as the runc binary (when
#     containerd is installed).
# youki is not timed: it is not packaged for Debian and cannot be built offline here.
#
# Usage: bench/runtime.sh [--runs N]      (default 100 timed runs after 10 warm-ups)
# Environment: VESSEL_RUNTIME=path (default: a release build of this checkout),
#              BENCH_WORK=scratch directory (default /var/tmp/vessel-bench).
# Writes bench/results/runtime.md.

source "$(dirname "$0")/lib.sh"

runs_option 100 15 "$@"

require_root
require_tools hyperfine runc busybox python3
vr=${VESSEL_RUNTIME:-$(workspace_binary vessel-runtime vessel-runtime)}
fresh_work runtime

say "a busybox bundle with runc's default config running /bin/true"
rootfs=$work/bundle/rootfs
busybox_tree "$rootfs"
(cd "$work/bundle" && runc spec)
runs_true "$work/bundle/config.json"
b=$work/bundle
vroot=$work/vessel-root
rroot=$work/runc-root
"$vr" --root "$vroot" run -b "$b" check || die "vessel-runtime cannot run the bundle"
runc --root "$rroot" run -b "$b" check || die "runc cannot run the bundle"

say "timing run and create+start+delete ($runs runs each)"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
hyperfine -N --runs "$runs" --warmup 10 --style basic \
  --export-json "$work/runtime.json" --export-markdown "$work/runtime.table.md" \
  -n "vessel-runtime run" "$vr --root $vroot run -b $b r1" \
  -n "runc run" "runc --root $rroot run -b $b r2" \
  -n "vessel-runtime create+start+delete" "sh -c '$vr --root $vroot create -b $b c1 && $vr --root $vroot start c1 && $vr --root $vroot delete --force c1'" \
  -n "runc create+start+delete" "sh -c 'runc --root $rroot create -b $b c2 && runc --root $rroot start c2 && runc --root $rroot delete --force c2'"

ctr_table=""
if command -v containerd >/dev/null && command -v ctr >/dev/null; then
  say "ctr run --rm through a private containerd"
  cd_dir=$work/containerd
  mkdir -p "$cd_dir"
  cat >"$cd_dir/config.toml" <<TOML
version = 2
root = "$cd_dir/root"
state = "$cd_dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$cd_dir/containerd.sock"
[ttrpc]
  address = "$cd_dir/containerd.sock.ttrpc"
TOML
  containerd --config "$cd_dir/config.toml" >"$cd_dir/log" 2>&1 &
  cd_pid=$!
  trap 'kill $cd_pid 2>/dev/null; wait $cd_pid 2>/dev/null' EXIT
  ctr="ctr -a $cd_dir/containerd.sock"
  for _ in $(seq 50); do $ctr version >/dev/null 2>&1 && break; sleep 0.2; done
  require_tools umoci
  layout=$work/layout
  umoci init --layout "$layout"
  umoci new --image "$layout:bench"
  umoci unpack --image "$layout:bench" "$work/unpacked" >/dev/null
  cp -a "$rootfs/." "$work/unpacked/rootfs/"
  umoci repack --image "$layout:bench" "$work/unpacked"
  tar -C "$layout" -cf "$work/image.tar" .
  $ctr images import --base-name docker.io/library/bench "$work/image.tar" >/dev/null
  image=docker.io/library/bench:bench
  hyperfine -N --runs "$((runs / 2))" --warmup 5 --style basic \
    --export-json "$work/ctr.json" --export-markdown "$work/ctr.table.md" \
    -n "ctr run --rm (vessel-runtime)" "$ctr run --rm --runc-binary $vr $image t1 /bin/true" \
    -n "ctr run --rm (runc)" "$ctr run --rm --runc-binary /usr/sbin/runc $image t2 /bin/true"
  ctr_table=$(cat "$work/ctr.table.md")
  ctr_line="- \`ctr run --rm\`: vessel-runtime is **$(ratio "$(hyperfine_mean "$work/ctr.json" 1)" "$(hyperfine_mean "$work/ctr.json" 0)")x** as fast as runc (containerd and its shim take most of that time)."
fi

run_v=$(hyperfine_mean "$work/runtime.json" 0)
run_r=$(hyperfine_mean "$work/runtime.json" 1)
csd_v=$(hyperfine_mean "$work/runtime.json" 2)
csd_r=$(hyperfine_mean "$work/runtime.json" 3)
mkdir -p "$RESULTS_DIR"
result=$RESULTS_DIR/runtime.md
{
  cat <<EOF_MD
# The OCI runtime face: vessel-runtime vs runc

Recorded $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/runtime.sh --runs $runs\`, vessel at commit \`$(cd "$REPO_DIR" && git rev-parse --short HEAD)\`.

## Machine

$(machine_markdown)
- Also: $(runc --version | head -n1)$(command -v containerd >/dev/null && echo ", $(containerd --version | cut -d' ' -f3)")

## Commands

The same bundle (busybox-static's /bin/true, \`runc spec\`'s config without a terminal:
pid, ipc, uts, mount and network namespaces, a read-only root, masked paths).

\`\`\`
vessel-runtime --root R run -b BUNDLE ID         runc --root R run -b BUNDLE ID
vessel-runtime create/start/delete --force ID    runc create/start/delete --force ID
\`\`\`

## Results

$(cat "$work/runtime.table.md")

- \`run\`: vessel-runtime is **$(ratio "$run_r" "$run_v")x** as fast as runc (target: at least 3x).
- \`create\` + \`start\` + \`delete\`: **$(ratio "$csd_r" "$csd_v")x** as fast as runc (target: at least 3x).
$ctr_line

$ctr_table

youki is not in the comparison: Debian does not package it and it cannot be built here
without network access to its crates' sources.

## Rerun

\`\`\`
sudo bench/runtime.sh             # --runs N
\`\`\`
EOF_MD
} >"$result"
cat "$work/runtime.table.md" >&2
echo "wrote $result" >&2
