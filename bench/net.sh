#!/usr/bin/env bash
# Starting a pod on a network, side by side in one hyperfine run, all running busybox's
# /bin/true from the same root filesystem (busybox-static, made now):
#   - vessel run --rm on the default network (ptp veth, host-local IPAM; the subnet's
#     masquerading rules stand once made),
#   - vessel run --rm --net=none (the same without the network: the network's cost),
#   - podman run --rm on podman's default network (a bridge, through CNI here),
#   - podman run --rm --network none,
#   - the CNI plugin alone: ptp ADD then DEL of the same configuration in a namespace made
#     once (what the plugins' own execution costs, whoever runs them).
# Also recorded: one VESSEL_TRACE=1 start, showing where the network step overlaps the rest.
#
# Usage: bench/net.sh [--runs N]
#   --runs N   timed runs per command (default 50, after 5 warm-ups)
# Environment: VESSEL=path/to/vessel (default: a release build of this checkout),
#              BENCH_WORK=scratch directory (default /var/tmp/vessel-bench).
# Writes bench/results/net.md.

source "$(dirname "$0")/lib.sh"

runs_option 50 17 "$@"

require_root
require_tools hyperfine umoci podman skopeo busybox python3 ip
[[ -x /usr/lib/cni/ptp ]] || die "/usr/lib/cni/ptp is missing (apt-get install containernetworking-plugins)"
vessel=$(vessel_binary)
fresh_work net

say "a busybox root filesystem as an OCI layout, in vessel's store and podman's"
stored_bench_image
podman_bench_image vessel-bench-net
podman run --rm $podman_limits localhost/vessel-bench-net /bin/true || die "podman cannot run the image on its default network here"
"$vessel" --dir "$store" run --rm "$image" || die "vessel cannot run the image on the default network here"

say "the plugin alone: ptp with host-local, in a namespace of its own"
netns=vessel-bench-net
ip netns del "$netns" 2>/dev/null || true
ip netns add "$netns"
trap 'ip netns del "$netns" 2>/dev/null || true' EXIT
cat >"$work/ptp.json" <<JSON
{"cniVersion": "1.0.0", "name": "vessel-bench-net", "type": "ptp", "ipMasq": false,
 "ipam": {"type": "host-local", "subnet": "172.30.250.0/24", "routes": [{"dst": "0.0.0.0/0"}]}}
JSON
cat >"$work/plugin.sh" <<SH
#!/bin/sh
export CNI_CONTAINERID=vessel-bench-net CNI_NETNS=/run/netns/$netns CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni
CNI_COMMAND=ADD /usr/lib/cni/ptp <"$work/ptp.json" >/dev/null || exit 1
CNI_COMMAND=DEL /usr/lib/cni/ptp <"$work/ptp.json" >/dev/null
SH
chmod +x "$work/plugin.sh"
"$work/plugin.sh" || die "ptp ADD/DEL fails here"

say "timing ($runs runs each)"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
hyperfine -N --runs "$runs" --warmup 5 --style basic \
  --export-json "$work/net.json" --export-markdown "$work/net.table.md" \
  -n "vessel run --rm (default network)" "$vessel --dir $store run --rm $image" \
  -n "vessel run --rm --net=none" "$vessel --dir $store run --rm --net=none $image" \
  -n "podman run --rm (default network)" "podman run --rm $podman_limits localhost/vessel-bench-net /bin/true" \
  -n "podman run --rm --network none" "podman run --rm --network none $podman_limits localhost/vessel-bench-net /bin/true" \
  -n "ptp ADD + DEL alone" "$work/plugin.sh"

say "one traced start"
VESSEL_TRACE=1 "$vessel" --dir "$store" run --rm "$image" 2>"$work/trace.txt" || true

vessel_s=$(hyperfine_mean "$work/net.json" 0)
vessel_none_s=$(hyperfine_mean "$work/net.json" 1)
podman_s=$(hyperfine_mean "$work/net.json" 2)
podman_none_s=$(hyperfine_mean "$work/net.json" 3)
plugin_s=$(hyperfine_mean "$work/net.json" 4)
ms() { python3 -c 'import sys; print("%.1f" % ((float(sys.argv[1]) - float(sys.argv[2])) * 1000))' "$1" "$2"; }

mkdir -p "$RESULTS_DIR"
result=$RESULTS_DIR/net.md
{
  cat <<MD
# Starting a pod on a network: vessel run vs podman run

Recorded $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/net.sh --runs $runs\`, vessel at commit \`$(cd "$REPO_DIR" && git rev-parse --short HEAD)\`.

## Machine

$(machine_markdown)
- Also: $(podman --version) (network backend: $(podman info --format '{{.Host.NetworkBackend}}')), containernetworking-plugins $(dpkg-query -W -f '${Version}' containernetworking-plugins 2>/dev/null || echo '?')

## Commands (one hyperfine run, $runs timed runs each after 5 warm-ups)

\`\`\`
vessel --dir STORE run --rm localhost/layout:bench
vessel --dir STORE run --rm --net=none localhost/layout:bench
podman run --rm $podman_limits localhost/vessel-bench-net /bin/true
podman run --rm --network none $podman_limits localhost/vessel-bench-net /bin/true
CNI_COMMAND=ADD then DEL of /usr/lib/cni/ptp (host-local, no ipMasq: as vessel configures it) in a namespace made once
\`\`\`

## Results

$(cat "$work/net.table.md")

- On the default network, vessel run is **$(ratio "$podman_s" "$vessel_s")x** as fast as podman run on its default network (target: at least 10x).
- The network costs vessel **$(ms "$vessel_s" "$vessel_none_s") ms** per pod (default minus none) and podman $(ms "$podman_s" "$podman_none_s") ms.
- The ptp plugin's own ADD and DEL take **$(python3 -c "print('%.1f' % ($plugin_s * 1000))") ms** together: vessel's network cost is mostly the plugins' execution (veth, addresses, routes), which vessel cannot make faster, only overlap. Masquerading is one rule set for the default subnet (crates/net/src/masquerade.rs), checked beside ADD: ptp's per-pod ipMasq ran iptables 8 times per ADD and 5 per DEL.

## Where the network step sits (one VESSEL_TRACE=1 start)

\`\`\`
$(cat "$work/trace.txt")
\`\`\`

ADD runs on a thread of the supervisor while the pod's first process sets up its root
filesystem; the init starts no app before it has the network's hosts and resolv.conf.
DEL runs in the child that \`run --rm\` leaves behind, after \`run\` has returned.

## Rerun

\`\`\`
sudo bench/net.sh                 # --runs N
\`\`\`
MD
} >"$result"
cat "$work/net.table.md" >&2
echo "wrote $result" >&2
