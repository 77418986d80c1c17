#!/usr/bin/env bash
# Fetching a large image from a registry, side by side in one hyperfine run, cold each time:
#   - vessel fetch docker://127.0.0.1:PORT/bench/minbase into an empty store,
#   - podman pull of the same image into an empty podman root,
#   - skopeo copy to an OCI layout + umoci unpack of it,
#   - gzip -dc of the layer blob to /dev/null: the floor, decompression alone.
# The image is a Debian 12 minbase root filesystem made by debootstrap now (from the mirror
# apt is configured with), packed by umoci and pushed by skopeo into Debian's docker-registry,
# started here on 127.0.0.1. If debootstrap cannot reach the mirror, a synthetic root
# filesystem of similar size is used instead, and the result says so.
#
# Usage: bench/fetch.sh [--runs N] [--reuse-rootfs]
#   --runs N          timed runs per command (default 5, after one warm-up)
#   --reuse-rootfs    keep the root filesystem of the previous run (of this or import.sh)
# Environment: VESSEL=path/to/vessel (default: a release build of this checkout),
#              BENCH_WORK=scratch directory (default /var/tmp/vessel-bench).
# Writes bench/results/fetch.md.

source "$(dirname "$0")/lib.sh"

runs=5
reuse_rootfs=0
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --reuse-rootfs) reuse_rootfs=1; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

require_root
require_tools hyperfine umoci skopeo podman docker-registry debootstrap gzip python3
vessel=$(vessel_binary)
work=$BENCH_WORK/fetch
mkdir -p "$work"
rootfs=$work/rootfs

if ((reuse_rootfs)) && [[ -d $rootfs && -f $work/rootfs.source ]]; then
  say "reusing the root filesystem of the last run: $(cat "$work/rootfs.source")"
elif ((reuse_rootfs)) && [[ -d $BENCH_WORK/import/rootfs && -f $BENCH_WORK/import/rootfs.source ]]; then
  say "reusing import.sh's root filesystem: $(cat "$BENCH_WORK/import/rootfs.source")"
  rm -rf "$rootfs"
  cp -a "$BENCH_WORK/import/rootfs" "$rootfs"
  cp "$BENCH_WORK/import/rootfs.source" "$work/rootfs.source"
else
  rm -rf "$rootfs"
  mirror=$(apt_mirror)
  say "debootstrap --variant=minbase bookworm from $mirror"
  if debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
    echo "Debian 12 (bookworm) minbase, made by debootstrap from $mirror" >"$work/rootfs.source"
  else
    say "debootstrap could not build from $mirror (see $work/debootstrap.log): FALLING BACK to a synthetic root filesystem"
    rm -rf "$rootfs"
    mkdir -p "$rootfs/bin" "$rootfs/etc"
    cp /bin/busybox "$rootfs/bin/" 2>/dev/null || true
    tar -C / -cf - usr/lib/x86_64-linux-gnu usr/share/locale 2>/dev/null | tar -C "$rootfs" -xf -
    echo "SYNTHETIC (debootstrap could not reach $mirror): busybox plus libraries and locales from this machine" >"$work/rootfs.source"
  fi
fi

say "packing it as an OCI layout with umoci"
layout=$work/layout
rm -rf "$layout" "$work/bundle"
umoci init --layout "$layout"
umoci new --image "$layout:bench"
umoci unpack --image "$layout:bench" "$work/bundle" >/dev/null
rm -rf "$work/bundle/rootfs"
cp -a "$rootfs" "$work/bundle/rootfs"
umoci repack --image "$layout:bench" "$work/bundle"
rm -rf "$work/bundle"

say "starting docker-registry on 127.0.0.1 and pushing the image with skopeo"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
regdir=$work/registry
rm -rf "$regdir"
mkdir -p "$regdir"
cat >"$regdir/config.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $regdir/data
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$regdir/config.yml" >"$regdir/log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
image=127.0.0.1:$port/bench/minbase:latest
skopeo copy --quiet --dest-tls-verify=false "oci:$layout:bench" "docker://$image"
blob=$(python3 - "$regdir/data" <<'PY'
import json, os, sys
root = sys.argv[1] + "/docker/registry/v2"
tags = root + "/repositories/bench/minbase/_manifests/tags/latest/current/link"
digest = open(tags).read().strip().split(":")[1]
blob = lambda d: f"{root}/blobs/sha256/{d[:2]}/{d}/data"
manifest = json.load(open(blob(digest)))
print(blob(manifest["layers"][-1]["digest"].split(":")[1]))
PY
)
blob_bytes=$(stat -c %s "$blob")
tree_bytes=$(du -sb "$rootfs" | cut -f1)
tree_files=$(find "$rootfs" | wc -l)

store=$work/store
podroot=$work/podman
oci2=$work/oci2
bundle=$work/unpacked
podman_cmd="podman --root $podroot/root --runroot $podroot/run --storage-driver overlay pull --quiet --tls-verify=false $image"

# Each run starts with an empty destination; the previous one is moved aside, and deleted
# only after the timing (see aside_script in lib.sh).
aside=$(aside_script "$work")
trash=$work/trash

say "timing: vessel fetch, podman pull, skopeo copy + umoci unpack, gzip -dc ($runs runs each)"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
hyperfine --runs "$runs" --warmup 1 --style basic \
  --export-json "$work/fetch.json" --export-markdown "$work/fetch.table.md" \
  -n "vessel fetch (cold store)" --prepare "$aside $store" \
  "$vessel --dir $store fetch --quiet --insecure-options=image,http docker://$image" \
  -n "podman pull (cold root)" --prepare "$aside $podroot" \
  "$podman_cmd" \
  -n "skopeo copy + umoci unpack" --prepare "$aside $oci2 $bundle" \
  "skopeo copy --quiet --src-tls-verify=false docker://$image oci:$oci2:bench && umoci unpack --image $oci2:bench $bundle" \
  -n "gzip -dc (floor)" --prepare "sync" \
  "gzip -dc $blob >/dev/null"

# The last vessel run left a store: check it is sound, so the timing was of a real fetch.
"$vessel" --dir "$store" image verify
rm -rf "$store" "$oci2" "$bundle"
podman --root "$podroot/root" --runroot "$podroot/run" --storage-driver overlay system reset --force >/dev/null 2>&1 || true
rm -rf "$podroot"
# podman's roots left aside hold overlay layers; reset each before deleting it.
for old in "$trash"/podman.*; do
  [ -d "$old" ] || continue
  podman --root "$old/root" --runroot "$old/run" --storage-driver overlay system reset --force >/dev/null 2>&1 || true
done
rm -rf "$trash"

vessel_s=$(hyperfine_mean "$work/fetch.json" 0)
podman_s=$(hyperfine_mean "$work/fetch.json" 1)
umoci_s=$(hyperfine_mean "$work/fetch.json" 2)
gzip_s=$(hyperfine_mean "$work/fetch.json" 3)

mkdir -p "$RESULTS_DIR"
result=$RESULTS_DIR/fetch.md
{
  echo "# Fetch of a large image from a local registry: vessel vs podman pull vs skopeo + umoci"
  echo
  echo "Recorded $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/fetch.sh --runs $runs\`, vessel at commit \`$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)\`."
  echo
  echo "## Machine"
  echo
  machine_markdown
  echo "- Also: $(podman --version), $(skopeo --version), docker-registry $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null)"
  echo
  echo "## Image"
  echo
  echo "- vessel: \`$vessel\` ($(stat -c %s "$vessel") bytes)"
  echo "- Root filesystem: $(cat "$work/rootfs.source")"
  echo "- $tree_files entries, $((tree_bytes / 1048576)) MiB uncompressed; one gzip layer of $((blob_bytes / 1048576)) MiB (umoci repack), pushed by skopeo into docker-registry on 127.0.0.1"
  echo
  echo "## Commands (one hyperfine run, $runs timed runs each after a warm-up; every prepare step moves the last destination aside (deleted after the timing: see aside_script in lib.sh) and syncs)"
  echo
  echo '```'
  echo "vessel --dir STORE fetch --quiet --insecure-options=image,http docker://127.0.0.1:PORT/bench/minbase:latest"
  echo "podman --root ROOT --runroot RUN --storage-driver overlay pull --quiet --tls-verify=false 127.0.0.1:PORT/bench/minbase:latest"
  echo "skopeo copy --src-tls-verify=false docker://127.0.0.1:PORT/bench/minbase:latest oci:LAYOUT:bench && umoci unpack --image LAYOUT:bench BUNDLE"
  echo "gzip -dc LAYER_BLOB >/dev/null"
  echo '```'
  echo
  echo "## Results"
  echo
  cat "$work/fetch.table.md"
  echo
  echo "- vessel fetch is **$(ratio "$podman_s" "$vessel_s")x** as fast as podman pull (target: at least 3x; $(ratio "$(hyperfine_stat "$work/fetch.json" 1 min)" "$(hyperfine_stat "$work/fetch.json" 0 min)")x comparing the fastest runs)."
  echo "- vessel fetch is **$(ratio "$umoci_s" "$vessel_s")x** as fast as skopeo copy + umoci unpack."
  echo "- vessel fetch takes **$(ratio "$vessel_s" "$gzip_s")x** the time of \`gzip -dc\` of the layer alone (target: at most 1.5x; $(ratio "$(hyperfine_stat "$work/fetch.json" 0 min)" "$(hyperfine_stat "$work/fetch.json" 3 min)")x comparing the fastest runs)."
  echo
  echo "vessel streams the layer from the registry through decompression and sha256 of both"
  echo "streams on one thread and extraction (with a sha256 of every file for \`image verify\`) on"
  echo "another, then syncs the layer once and publishes it with a rename."
  echo
  echo "## Rerun"
  echo
  echo '```'
  echo "sudo bench/fetch.sh                # rebuilds the root filesystem with debootstrap"
  echo "sudo bench/fetch.sh --reuse-rootfs # keeps the last one; --runs N for more runs"
  echo '```'
} >"$result"
say "wrote $result"
cat "$result"
