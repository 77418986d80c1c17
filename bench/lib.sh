# Shared by the bench/ scripts (source it): where to work, which vessel to time, and how
# to describe the machine in a result file.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$BENCH_DIR")
RESULTS_DIR=$BENCH_DIR/results
# Large scratch space, outside the repository and off tmpfs.
BENCH_WORK=${BENCH_WORK:-/var/tmp/vessel-bench}

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

require_root() {
  [[ $(id -u) == 0 ]] || die "run as root (vessel's store and umoci unpack keep file owners)"
}

require_tools() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || die "$t is missing (apt-get install it, or run .ci/run)"
  done
}

# The vessel binary to time: $VESSEL if set, else a fresh release build of this checkout.
vessel_binary() {
  if [[ -n ${VESSEL:-} ]]; then
    echo "$VESSEL"
    return
  fi
  workspace_binary vessel vessel
}

# A fresh release build of binary $2 of package $1 of this checkout; prints its path.
workspace_binary() {
  # Ask cargo where it put the binary: .cargo/config.toml may name a build target.
  (cd "$REPO_DIR" && cargo build --release -p "$1" --bin "$2" --message-format=json-render-diagnostics) |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$2"
}

# The options every start benchmark takes: --runs N (default $1) and --help, which prints
# lines 2 to $2 of the calling script. Sets runs.
runs_option() {
  local default=$1 help_end=$2
  shift 2
  runs=$default
  while (($#)); do
    case $1 in
      --runs) runs=$2; shift 2 ;;
      -h|--help) sed -n "2,${help_end}p" "$0"; exit 0 ;;
      *) die "unknown argument $1 (see --help)" ;;
    esac
  done
}

# An empty scratch directory $BENCH_WORK/$1 for one benchmark. Sets work.
fresh_work() {
  work=$BENCH_WORK/${1:?}
  rm -rf "${work:?}"
  mkdir -p "$work"
}

# busybox_bench_image in $work, fetched into a vessel store in $work/store by $vessel.
# Sets layout, rootfs, store and image (the name vessel knows it by).
stored_bench_image() {
  busybox_bench_image "$work"
  layout=$work/layout
  rootfs=$work/bundle/rootfs
  store=$work/store
  "$vessel" --dir "$store" fetch --insecure-options=image "oci:$layout:bench" >/dev/null
  image=localhost/layout:bench
}

# The image of busybox_bench_image in podman's store as localhost/$1:latest. Sets
# podman_limits: podman raises NOFILE and NPROC to its own defaults, which needs
# CAP_SYS_RESOURCE (this machine's bounding set lacks it, and its conmon starts the
# runtime with lower limits), so each podman run asks for small ones; /bin/true needs none.
podman_bench_image() {
  podman_limits="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
  podman rmi -f "localhost/$1" >/dev/null 2>&1 || true
  skopeo copy --quiet "oci:$work/layout:bench" "containers-storage:localhost/$1:latest"
}

# The first Debian mirror apt on this machine is configured with (deb822 or one-line).
apt_mirror() {
  local uri
  uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  if [[ -z $uri ]]; then
    uri=$(grep -h '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# A few lines about the machine, as markdown. Set LOAD_AT_START before timing.
machine_markdown() {
  local cpu mem kernel fs
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
  kernel=$(uname -r)
  fs=$(findmnt -no FSTYPE -T "$BENCH_WORK" 2>/dev/null || echo unknown)
  cat <<EOF
- CPU: $(nproc) cores, $cpu
- Memory: $mem
- Kernel: $kernel; $(. /etc/os-release && echo "$PRETTY_NAME")
- Work directory filesystem: $fs ($BENCH_WORK)
- Load average when the timing started: ${LOAD_AT_START:-$(cut -d' ' -f1-3 /proc/loadavg)} (other work on the machine shows here and in the spread)
- Tools: $(hyperfine --version), $(umoci --version | head -n1), $(gzip --version | head -n1)
EOF
}

# Mean seconds of command number $2 (0-based) in hyperfine's JSON export $1.
hyperfine_mean() {
  hyperfine_stat "$1" "$2" mean
}

# Statistic $3 (mean, min, median, ...) of command $2 in hyperfine's JSON export $1.
hyperfine_stat() {
  python3 -c 'import json,sys; print("%.6f" % json.load(open(sys.argv[1]))["results"][int(sys.argv[2])][sys.argv[3]])' "$1" "$2" "$3"
}

ratio() {
  python3 -c 'import sys; print("%.2f" % (float(sys.argv[1]) / float(sys.argv[2])))' "$1" "$2"
}

# Writes a hyperfine --prepare script that empties destinations by moving them into
# WORK/trash (and syncs), and prints its path; the caller deletes WORK/trash after the
# timing. Deleting thousands of files right before a run that creates thousands makes
# ext4 without a journal (this machine's) scan its inode tables for recently deleted
# inodes (ext4's recently_deleted) at every allocation, which then dominates every tool's
# time and measures the filesystem, not the tools.
aside_script() {
  local trash=$1/trash script=$1/aside.sh
  mkdir -p "$trash"
  cat >"$script" <<ASIDE
#!/bin/sh
for d in "\$@"; do [ -e "\$d" ] && mv "\$d" "$trash/\$(basename "\$d").\$(date +%s%N)"; done
sync
ASIDE
  chmod +x "$script"
  echo "$script"
}

# A busybox-static tree in $1: the binary, its applets as links, root in passwd and group.
busybox_tree() {
  local dest=$1
  mkdir -p "$dest/bin" "$dest/etc" "$dest/tmp"
  cp /bin/busybox "$dest/bin/"
  busybox --list | while read -r applet; do
    [[ $applet == busybox ]] || ln -sf busybox "$dest/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$dest/etc/passwd"
  echo 'root:x:0:' >"$dest/etc/group"
}

# The image every start benchmark runs: an OCI layout $1/layout:bench of a busybox tree
# whose command is /bin/true, and its runc bundle unpacked in $1/bundle (no terminal).
busybox_bench_image() {
  local work=$1
  umoci init --layout "$work/layout"
  umoci new --image "$work/layout:bench"
  umoci unpack --image "$work/layout:bench" "$work/bundle" >/dev/null
  busybox_tree "$work/bundle/rootfs"
  umoci repack --image "$work/layout:bench" "$work/bundle"
  umoci config --image "$work/layout:bench" --config.cmd /bin/true
  runs_true "$work/bundle/config.json"
}

# Makes the runc config $1 run /bin/true with no terminal.
runs_true() {
  python3 - "$1" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
json.dump(c, open(p, "w"))
PY
}
