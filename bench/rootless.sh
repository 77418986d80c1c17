#!/usr/bin/env bash
# Starting a pod rootless, side by side in one hyperfine run, both as a user without root
# made for the benchmark (useradd with a subordinate range, removed at the end), both
# running busybox's /bin/true from the same OCI layout (busybox-static, made now):
#   - vessel run --rm --net=none (rootless: its user namespace, loopback only),
#   - podman run --rm --network none (rootless podman, its own user namespace and storage),
#   - then both with user-mode networking through slirp4netns (vessel's rootless default
#     where it is installed; podman's --network slirp4netns).
#
# Usage: bench/rootless.sh [--runs N]
#   --runs N   timed runs per command (default 30, after 5 warm-ups)
# Environment: VESSEL=path/to/vessel (default: a release build of this checkout),
#              BENCH_WORK=scratch directory (default /var/tmp/vessel-bench).
# Writes bench/results/rootless.md.

source "$(dirname "$0")/lib.sh"

runs_option 30 12 "$@"

require_root
require_tools hyperfine umoci podman busybox python3 useradd runuser newuidmap slirp4netns
vessel=$(vessel_binary)
fresh_work rootless
chmod 755 "$BENCH_WORK" "$work"

user=vessel-bench-rl
userdel -r -f "$user" >/dev/null 2>&1 || true
useradd -m -s /bin/sh "$user"
trap 'userdel -r -f "$user" >/dev/null 2>&1 || true' EXIT
grep -q "^$user:" /etc/subuid || die "useradd gave $user no subordinate ids (SUB_UID_COUNT in /etc/login.defs)"
home=$(getent passwd "$user" | cut -d: -f6)
as_user() { runuser -u "$user" -- env -i HOME="$home" PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

say "a busybox root filesystem as an OCI layout, in the user's vessel store and podman's"
busybox_bench_image "$work"
cp "$vessel" "$work/vessel"
chmod -R a+rX "$work"
image=localhost/layout:bench
as_user "$work/vessel" fetch --insecure-options=image "oci:$work/layout:bench" >/dev/null
as_user podman pull -q "oci:$work/layout:bench" >/dev/null
podman_image=$(as_user podman images -q | head -n1)
as_user "$work/vessel" run --rm --net=none "$image" || die "rootless vessel cannot run the image here"
as_user podman run --rm --network none "$podman_image" /bin/true || die "rootless podman cannot run the image here"
as_user "$work/vessel" run --rm --net=slirp4netns "$image" || die "rootless vessel cannot run the image with slirp4netns here"
as_user podman run --rm --network slirp4netns "$podman_image" /bin/true || die "rootless podman cannot run the image with slirp4netns here"

say "timing"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
hyperfine -N --runs "$runs" --warmup 5 --style basic \
  --export-json "$work/run.json" --export-markdown "$work/run.table.md" \
  -n "vessel run --rm --net=none (rootless)" "runuser -u $user -- env -i HOME=$home $work/vessel run --rm --net=none $image" \
  -n "podman run --rm --network none (rootless)" "runuser -u $user -- env -i HOME=$home PATH=/usr/bin:/bin podman run --rm --network none $podman_image /bin/true" \
  -n "runuser alone (the wrapper's cost)" "runuser -u $user -- env -i HOME=$home /bin/true" \
  -n "vessel run --rm --net=slirp4netns (rootless)" "runuser -u $user -- env -i HOME=$home PATH=/usr/bin:/bin $work/vessel run --rm --net=slirp4netns $image" \
  -n "podman run --rm --network slirp4netns (rootless)" "runuser -u $user -- env -i HOME=$home PATH=/usr/bin:/bin podman run --rm --network slirp4netns $podman_image /bin/true"

vessel_s=$(hyperfine_mean "$work/run.json" 0)
podman_s=$(hyperfine_mean "$work/run.json" 1)
wrap_s=$(hyperfine_mean "$work/run.json" 2)
vessel_slirp_s=$(hyperfine_mean "$work/run.json" 3)
podman_slirp_s=$(hyperfine_mean "$work/run.json" 4)

mkdir -p "$RESULTS_DIR"
result=$RESULTS_DIR/rootless.md
{
  cat <<EOF
# Starting a pod rootless: vessel run vs podman run

Recorded $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/rootless.sh --runs $runs\`, vessel at commit \`$(cd "$REPO_DIR" && git rev-parse --short HEAD)\`.

## Machine

$(machine_markdown)
- Also: $(podman --version), uidmap $(dpkg-query -W -f='${Version}' uidmap 2>/dev/null || echo '?')
- cgroups: v1 controllers (hybrid): neither runtime puts a rootless container in a cgroup here

## Commands (one hyperfine run, $runs timed runs each after 5 warm-ups)

Both as the same user without root (a subordinate range of 65536 ids), both running
busybox-static's /bin/true from the same OCI layout, both in their own user namespace
with a network namespace of loopback only; then both with user-mode networking through
slirp4netns (one slirp4netns process per container, started and ended with it).

\`\`\`
runuser -u USER -- env -i HOME=... vessel run --rm --net=none localhost/layout:bench
runuser -u USER -- env -i HOME=... podman run --rm --network none IMAGE /bin/true
runuser -u USER -- env -i HOME=... /bin/true
runuser -u USER -- env -i HOME=... PATH=/usr/bin:/bin vessel run --rm --net=slirp4netns localhost/layout:bench
runuser -u USER -- env -i HOME=... PATH=/usr/bin:/bin podman run --rm --network slirp4netns IMAGE /bin/true
\`\`\`

## Results

$(cat "$work/run.table.md")

- rootless vessel run is **$(ratio "$podman_s" "$vessel_s")x** as fast as rootless podman run (target: at least 10x);
  without runuser's own cost in both, **$(python3 -c "import sys; print('%.2f' % ((float(sys.argv[1]) - float(sys.argv[3])) / (float(sys.argv[2]) - float(sys.argv[3]))))" "$podman_s" "$vessel_s" "$wrap_s")x**.
- with slirp4netns in both: **$(ratio "$podman_slirp_s" "$vessel_slirp_s")x**; without runuser's cost,
  **$(python3 -c "import sys; print('%.2f' % ((float(sys.argv[1]) - float(sys.argv[3])) / (float(sys.argv[2]) - float(sys.argv[3]))))" "$podman_slirp_s" "$vessel_slirp_s" "$wrap_s")x**.

## Rerun

\`\`\`
sudo bench/rootless.sh            # --runs N
\`\`\`
EOF
} >"$result"
cat "$work/run.table.md" >&2
echo "wrote $result" >&2
