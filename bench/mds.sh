#!/usr/bin/env bash
# The metadata service under load: 20 "pods" (network namespaces joined to the host by
# veth pairs, as a pod on the ptp network is) each registered with the service, all
# asking at once, one new TCP connection per request (what curl or wget in an app does).
# Every request is timed from inside its namespace; the target is p99 under 10 ms.
# No peer runs the appc metadata service any more (rkt's is gone): the floor is the same
# client against a TCP echo of a fixed response (python's asyncio, same loop and port).
# Two loads: flat out (each pod's next request as soon as the last is answered: 20 busy
# clients on the machine's cores, so the spread is mostly their wait for a CPU), and
# paced (each pod asks every PACE_MS ms, 20 pods at once: what apps asking now and then
# see). The service's own CPU time per request is read from /proc around the flat run.
source "$(dirname "$0")/lib.sh"
require_root
require_tools python3 ip

PODS=${PODS:-20}
REQUESTS=${REQUESTS:-500}
PACE_MS=${PACE_MS:-20}
VESSEL=$(vessel_binary)
WORK=$BENCH_WORK/mds
mkdir -p "$WORK"
RUN=$(mktemp -d "$WORK/run.XXXX")
PORT=${PORT:-18199}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for i in $(seq 0 $((PODS - 1))); do ip netns del "vbench-mds-$i" 2>/dev/null || true; done
  rm -rf "${RUN:?}"
}
trap cleanup EXIT

say "namespaces"
for i in $(seq 0 $((PODS - 1))); do
  ns=vbench-mds-$i
  ip netns del "$ns" 2>/dev/null || true
  ip netns add "$ns"
  ip link add "vbmh$i" type veth peer name "vbmn$i" netns "$ns"
  ip addr add "10.251.$i.1/30" dev "vbmh$i"
  ip link set "vbmh$i" up
  ip -n "$ns" addr add "10.251.$i.2/30" dev "vbmn$i"
  ip -n "$ns" link set "vbmn$i" up
  ip -n "$ns" link set lo up
done

say "service"
VESSEL_RUN_DIR=$RUN "$VESSEL" metadata-service --listen-port "$PORT" 2>"$RUN/service.log" &
SERVICE=$!
pids+=($SERVICE)
for _ in $(seq 100); do [[ -S $RUN/metadata-svc.sock ]] && break; sleep 0.05; done
# The registrant stays alive while the pods "run": the service drops a registration when
# the process that made it ends.
cat >"$RUN/register.py" <<'PY'
import json, signal, socket, sys, uuid
path, n, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(n):
    u = str(uuid.uuid4())
    img = {"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/app",
           "annotations": [{"name": "authors", "value": "bench"}]}
    pod = {"acKind": "PodManifest", "acVersion": "0.8.11",
           "apps": [{"name": "app", "image": {"name": "example.com/app", "id": "sha512-" + "a" * 128}}],
           "annotations": [{"name": "n", "value": str(i)}]}
    req = {"register": {"uuid": u, "ips": [f"10.251.{i}.2"], "manifest": pod,
           "apps": [{"name": "app", "image_id": "sha512-" + "a" * 128, "image_manifest": img}]}}
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(json.dumps(req).encode() + b"\n")
    reply = json.loads(s.makefile().readline())
    assert reply["ok"], reply
open(ready, "w").close()
signal.pause()
PY
python3 "$RUN/register.py" "$RUN/metadata-svc.sock" "$PODS" "$RUN/registered" &
pids+=($!)
for _ in $(seq 200); do [[ -e $RUN/registered ]] && break; sleep 0.05; done
[[ -e $RUN/registered ]] || die "registering the pods failed"

cat >"$RUN/client.py" <<'PY'
import socket, sys, time
host, port, n, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
pace = float(sys.argv[5]) / 1000 if len(sys.argv) > 5 else 0.0
start = time.perf_counter()
paths = ["/acMetadata/v1/pod/uuid", "/acMetadata/v1/pod/manifest",
         "/acMetadata/v1/apps/app/image/manifest", "/acMetadata/v1/pod/annotations"]
sign = b"content=hello"
lat = []
for i in range(n):
    if i % 5 == 4:
        req = (b"POST /acMetadata/v1/pod/hmac/sign HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % len(sign) + sign)
    else:
        req = b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % paths[i % 4].encode()
    if pace:
        # Open loop: each request at its time, however late the last answer was.
        due = start + i * pace
        time.sleep(max(0.0, due - time.perf_counter()))
    t = time.perf_counter()
    s = socket.create_connection((host, port))
    s.sendall(req)
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    lat.append(time.perf_counter() - t)
    if not data.startswith(b"HTTP/1.1 200"):
        sys.exit("bad answer: %r" % data[:100])
open(out, "w").write("".join("%.6f\n" % x for x in lat))
PY

cat >"$RUN/floor.py" <<'PY'
import asyncio, sys
body = b"6f1d4a54-4c1b-4e44-8a8e-1f0c2b3d4e5f"
resp = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n" % len(body) + body
async def handle(r, w):
    while True:
        line = await r.readline()
        if line in (b"\r\n", b""):
            break
    w.write(resp)
    await w.drain()
    w.close()
async def main():
    srv = await asyncio.start_server(handle, "0.0.0.0", int(sys.argv[1]))
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
PY

load() {
  local port=$1 tag=$2 pace=${3:-0}
  local cpids=()
  for i in $(seq 0 $((PODS - 1))); do
    ip netns exec "vbench-mds-$i" python3 "$RUN/client.py" "10.251.$i.1" "$port" "$REQUESTS" "$RUN/lat-$tag.$i" "$pace" &
    cpids+=($!)
  done
  for p in "${cpids[@]}"; do wait "$p"; done
  cat "$RUN/lat-$tag".* | python3 -c '
import sys
v = sorted(float(x) for x in sys.stdin.read().split())
q = lambda p: v[min(len(v) - 1, int(p * len(v)))] * 1000
print("| %d | %.2f | %.2f | %.2f | %.2f |" % (len(v), q(0.5), q(0.9), q(0.99), v[-1] * 1000))'
}

export LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
say "timing: $PODS pods x $REQUESTS requests, at once"
load "$PORT" warm >/dev/null
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVICE/stat"; }
T0=$(cpu_ticks)
MDS_ROW=$(load "$PORT" mds)
T1=$(cpu_ticks)
CPU_US=$(python3 -c "print('%.0f' % (($T1 - $T0) / $(getconf CLK_TCK) * 1e6 / ($PODS * $REQUESTS)))")
say "paced: every $PACE_MS ms per pod"
PACED_ROW=$(load "$PORT" paced "$PACE_MS")
python3 "$RUN/floor.py" $((PORT + 1)) &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$((PORT + 1))") 2>/dev/null && break; sleep 0.1; done
# The floor answers anything with a fixed 200.
FLOOR_ROW=$(load $((PORT + 1)) floor)
FLOOR_PACED_ROW=$(load $((PORT + 1)) floor-paced "$PACE_MS")

COMMIT=$(git -C "$REPO_DIR" rev-parse --short HEAD)
mkdir -p "$RESULTS_DIR"
cat >"$RESULTS_DIR/mds.md" <<MD
# Metadata service latency ($(date -u +%Y-%m-%d), commit $COMMIT)

$PODS network namespaces joined to the host by veth pairs (a pod on the ptp network
reaches the host the same way), each registered with \`vessel metadata-service\` as a pod,
all sending $REQUESTS requests at once: one new TCP connection per request (as curl or
wget in an app), GETs of pod/uuid, pod/manifest, apps/app/image/manifest,
pod/annotations, and every fifth a POST to pod/hmac/sign. Each request is timed inside its
namespace from connect to the server's close (python3, \`time.perf_counter\`).

$(machine_markdown)

| server | load | requests | p50 ms | p90 ms | p99 ms | max ms |
|---|---|---|---|---|---|---|
$(echo "$MDS_ROW" | sed 's/^|/| vessel metadata-service | flat out |/')
$(echo "$FLOOR_ROW" | sed 's/^|/| floor: fixed 200 (python asyncio) | flat out |/')
$(echo "$PACED_ROW" | sed "s/^|/| vessel metadata-service | every $PACE_MS ms per pod |/")
$(echo "$FLOOR_PACED_ROW" | sed "s/^|/| floor: fixed 200 (python asyncio) | every $PACE_MS ms per pod |/")

The service's own CPU time (user + system, from /proc) over the flat-out run: $CPU_US µs
per request.

Target: p99 under 10 ms with 20 pods asking at once.

Rerun: \`sudo bench/mds.sh\` (PODS=, REQUESTS=, PACE_MS=, VESSEL= to change).
MD
cat "$RESULTS_DIR/mds.md"
