#!/usr/bin/env bash
# Two cases (--case large|many-files|all, default all).
#
# large: importing a large image, side by side in one hyperfine run:
#   - vessel fetch --insecure-options=image oci:LAYOUT:bench into a cold (empty) store,
#   - umoci unpack of the same layout,
#   - gzip -dc of the layer blob to /dev/null: the floor, decompression alone.
# The image is a Debian 12 minbase root filesystem made by debootstrap now, from the
# mirror apt is configured with, and packed as an OCI layout by umoci. If debootstrap
# cannot reach the mirror, a synthetic root filesystem of similar size is used instead
# (busybox-static plus files copied from this machine's /usr), and the result says so.
# Writes bench/results/import.md.
#
# many-files: the per-entry cost. An uncompressed ACI of 200,000 empty files (200
# directories of 1,000), made by python's tarfile, imported by vessel fetch into a cold
# store and extracted by GNU tar into an empty directory, in one hyperfine run (target:
# vessel within 1.5x of tar). Writes bench/results/import-many-files.md.
#
# Usage: bench/import.sh [--case large|many-files|all] [--runs N] [--reuse-rootfs]
#   --case C          which case to run (default all)
#   --runs N          timed runs per command (default 5 for large, 3 for many-files,
#                     after one warm-up)
#   --reuse-rootfs    keep the root filesystem of the previous run instead of rebuilding it
# Environment: VESSEL=path/to/vessel (default: a release build of this checkout),
#              BENCH_WORK=scratch directory (default /var/tmp/vessel-bench).

source "$(dirname "$0")/lib.sh"

runs=
reuse_rootfs=0
case_=all
while (($#)); do
  case $1 in
    --case) case_=$2; shift 2 ;;
    --case=*) case_=${1#--case=}; shift ;;
    --runs) runs=$2; shift 2 ;;
    --reuse-rootfs) reuse_rootfs=1; shift ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ $case_ =~ ^(large|many-files|all)$ ]] || die "--case must be large, many-files or all"

require_root
require_tools hyperfine umoci debootstrap gzip python3 busybox tar
vessel=$(vessel_binary)
work=$BENCH_WORK/import
mkdir -p "$work"
rootfs=$work/rootfs

# The many-files case: 200,000 empty files, vessel fetch of the ACI vs GNU tar -xf of it.
many_files() {
  local runs=${runs:-3} aci=$work/many-files.aci store=$work/mf-store out=$work/mf-tar
  if [[ ! -f $aci ]]; then
    say "writing an ACI of 200,000 empty files"
    python3 - "$aci" <<'PY'
import io, json, sys, tarfile
manifest = json.dumps({"acKind": "ImageManifest", "acVersion": "0.8.11",
    "name": "example.com/many-files",
    "labels": [{"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}]}).encode()
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, kind=tarfile.REGTYPE, data=b"", mode=0o644):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime, info.size = kind, mode, 1700000000, len(data)
        t.addfile(info, io.BytesIO(data) if data else None)
    add("manifest", data=manifest)
    add("rootfs", tarfile.DIRTYPE, mode=0o755)
    for d in range(200):
        add(f"rootfs/d{d:03}", tarfile.DIRTYPE, mode=0o755)
        for f in range(1000):
            add(f"rootfs/d{d:03}/f{f:04}")
PY
  fi
  local aside
  aside=$(aside_script "$work")
  say "timing: vessel fetch of the ACI, GNU tar -xf of it ($runs runs each)"
  LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
  hyperfine --runs "$runs" --warmup 1 --style basic \
    --export-json "$work/many-files.json" --export-markdown "$work/many-files.table.md" \
    -n "vessel fetch (cold store)" --prepare "$aside $store" \
    "$vessel --dir $store fetch --insecure-options=image $aci" \
    -n "GNU tar -xf" --prepare "$aside $out; mkdir -p $out" \
    "tar -xf $aci -C $out"
  "$vessel" --dir "$store" image verify
  local rss
  rss=$(/usr/bin/time -f %M "$vessel" --dir "$store.rss" fetch --insecure-options=image "$aci" 2>&1 >/dev/null | tail -n1)
  rm -rf "${store:?}" "${store:?}.rss" "${out:?}" "${work:?}/trash"
  local vessel_s tar_s
  vessel_s=$(hyperfine_mean "$work/many-files.json" 0)
  tar_s=$(hyperfine_mean "$work/many-files.json" 1)
  mkdir -p "$RESULTS_DIR"
  local result=$RESULTS_DIR/import-many-files.md
  {
    echo "# Import of 200,000 empty files: vessel fetch vs GNU tar"
    echo
    echo "Recorded $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/import.sh --case many-files --runs $runs\`, vessel at commit \`$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)\`."
    echo
    echo "## Machine"
    echo
    machine_markdown
    echo "- GNU tar: $(tar --version | head -n1)"
    echo
    echo "## Image"
    echo
    echo "- An uncompressed ACI ($(($(stat -c %s "$aci") / 1048576)) MiB) of 200 directories of 1,000 empty files each, written by python's tarfile (PAX)"
    echo
    echo "## Commands (one hyperfine run, $runs timed runs each after a warm-up)"
    echo
    echo '```'
    echo "vessel --dir STORE fetch --insecure-options=image many-files.aci   # prepare: move STORE aside; sync"
    echo "tar -xf many-files.aci -C DIR                                      # prepare: move DIR aside, mkdir; sync"
    echo '```'
    echo
    echo "## Results"
    echo
    cat "$work/many-files.table.md"
    echo
    echo "- vessel fetch takes **$(ratio "$vessel_s" "$tar_s")x** the time of GNU tar (target: at most 1.5x; $(ratio "$(hyperfine_stat "$work/many-files.json" 0 min)" "$(hyperfine_stat "$work/many-files.json" 1 min)")x comparing the fastest runs)."
    echo "- vessel's maximum resident set size for the import: $((rss / 1024)) MiB."
    echo
    echo "vessel also keeps the uncompressed ACI as a blob (for \`image export\`), hashes it (sha512,"
    echo "the image ID), writes the layer's tree record for \`image verify\` and syncs the layer before"
    echo "publishing it; tar does none of these."
  } >"$result"
  say "wrote $result"
  cat "$result"
}

if [[ $case_ == many-files ]]; then
  many_files
  exit 0
fi
runs=${runs:-5}

# A synthetic root filesystem: busybox and its applets, and about 300 MiB of real files
# (libraries, docs, locales) copied from this machine's /usr.
synthetic_rootfs() {
  local dest=$1
  busybox_tree "$dest"
  find /usr/lib /usr/share -xdev -type f -printf '%s\t%P\t%h\n' 2>/dev/null |
    awk -F'\t' '{ total += $1; sub("^/", "", $3); print $3 "/" $2; if (total > 300 * 1048576) exit }' >"$work/synthetic.list"
  tar -C / --files-from "$work/synthetic.list" -cf - 2>/dev/null | tar -C "$dest" -xf -
}

if ((reuse_rootfs)) && [[ -d $rootfs && -f $work/rootfs.source ]]; then
  say "reusing the root filesystem of the last run: $(cat "$work/rootfs.source")"
else
  rm -rf "$rootfs"
  mirror=$(apt_mirror)
  say "debootstrap --variant=minbase bookworm from $mirror"
  if debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
    echo "Debian 12 (bookworm) minbase, made by debootstrap from $mirror" >"$work/rootfs.source"
  else
    say "debootstrap could not build from $mirror (see $work/debootstrap.log): FALLING BACK to a synthetic root filesystem"
    rm -rf "$rootfs"
    synthetic_rootfs "$rootfs"
    echo "SYNTHETIC (debootstrap could not reach $mirror): busybox-static plus about 300 MiB of files from this machine's /usr" >"$work/rootfs.source"
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
blob=$(python3 - "$layout" <<'PY'
import json, sys
layout = sys.argv[1]
def blob(d):
    algo, hex_ = d.split(":")
    return f"{layout}/blobs/{algo}/{hex_}"
index = json.load(open(f"{layout}/index.json"))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
print(blob(manifest["layers"][-1]["digest"]))
PY
)
blob_bytes=$(stat -c %s "$blob")
tree_bytes=$(du -sb "$rootfs" | cut -f1)
tree_files=$(find "$rootfs" | wc -l)

say "timing: vessel fetch, umoci unpack, gzip -dc ($runs runs each)"
store=$work/store
unpacked=$work/unpacked
# Each run starts empty; the last destination is moved aside (see aside_script in lib.sh).
aside=$(aside_script "$work")
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
hyperfine --runs "$runs" --warmup 1 --style basic \
  --export-json "$work/import.json" --export-markdown "$work/import.table.md" \
  -n "vessel fetch (cold store)" --prepare "$aside $store" \
  "$vessel --dir $store fetch --insecure-options=image oci:$layout:bench" \
  -n "umoci unpack" --prepare "$aside $unpacked" \
  "umoci unpack --image $layout:bench $unpacked" \
  -n "gzip -dc (floor)" --prepare "sync" \
  "gzip -dc $blob >/dev/null"

# The last vessel run left a store: check it is sound, so the timing was of a real import.
"$vessel" --dir "$store" image verify
rm -rf "$store" "$unpacked" "$work/trash"

vessel_s=$(hyperfine_mean "$work/import.json" 0)
umoci_s=$(hyperfine_mean "$work/import.json" 1)
gzip_s=$(hyperfine_mean "$work/import.json" 2)
vs_umoci=$(ratio "$umoci_s" "$vessel_s")
vs_gzip=$(ratio "$vessel_s" "$gzip_s")
vs_umoci_min=$(ratio "$(hyperfine_stat "$work/import.json" 1 min)" "$(hyperfine_stat "$work/import.json" 0 min)")
vs_gzip_min=$(ratio "$(hyperfine_stat "$work/import.json" 0 min)" "$(hyperfine_stat "$work/import.json" 2 min)")

mkdir -p "$RESULTS_DIR"
result=$RESULTS_DIR/import.md
{
  echo "# Import of a large image: vessel fetch vs umoci unpack"
  echo
  echo "Recorded $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/import.sh --runs $runs\`, vessel at commit \`$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)\`."
  echo
  echo "## Machine"
  echo
  machine_markdown
  echo
  echo "## Image"
  echo
  echo "- vessel: \`$vessel\` ($(stat -c %s "$vessel") bytes)"
  echo "- Root filesystem: $(cat "$work/rootfs.source")"
  echo "- $tree_files entries, $((tree_bytes / 1048576)) MiB uncompressed; one gzip layer of $((blob_bytes / 1048576)) MiB, packed by \`umoci repack\`"
  echo
  echo "## Commands (one hyperfine run, $runs timed runs each after a warm-up)"
  echo
  echo '```'
  echo "vessel --dir STORE fetch --insecure-options=image oci:LAYOUT:bench   # prepare: move STORE aside; sync"
  echo "umoci unpack --image LAYOUT:bench BUNDLE                           # prepare: move BUNDLE aside; sync"
  echo "gzip -dc LAYER_BLOB >/dev/null                                      # prepare: sync"
  echo '```'
  echo
  echo "## Results"
  echo
  cat "$work/import.table.md"
  echo
  echo "- vessel fetch is **${vs_umoci}x** as fast as umoci unpack of the same layout (higher is better; ${vs_umoci_min}x comparing the fastest runs)."
  echo "- vessel fetch takes **${vs_gzip}x** the time of \`gzip -dc\` of its layer alone (target: at most 1.5x; ${vs_gzip_min}x comparing the fastest runs)."
  echo
  echo "Every run starts with no dirty data (\`sync\` in each prepare step) and the layout in the page"
  echo "cache. vessel's import also hashes the compressed and uncompressed streams, records every"
  echo "file's hash for \`image verify\`, and syncs the layer before publishing it; umoci unpack does"
  echo "not sync, so part of its writing is still in flight when it exits."
  echo
  echo "## Rerun"
  echo
  echo '```'
  echo "sudo bench/import.sh               # rebuilds the root filesystem with debootstrap"
  echo "sudo bench/import.sh --reuse-rootfs # keeps the last one; --runs N for more runs"
  echo '```'
} >"$result"
say "wrote $result"
cat "$result"

if [[ $case_ == all ]]; then
  runs=
  many_files
fi
