#!/usr/bin/env bash
# rkt's API service with many pods: ListPods over 1000 prepared and exited pods, timed by
# a gRPC client (crates/api/examples/list_pods_bench.rs) over one connection. The target
# is an answer under 50 ms with 1000 pods. The floor: `vessel list --format=json` over
# the same directory (the same pod directories read by a fresh process), in hyperfine.
source "$(dirname "$0")/lib.sh"
require_root
require_tools actool hyperfine busybox

PODS=${PODS:-1000}
CALLS=${CALLS:-200}
VESSEL=$(vessel_binary)
WORK=$BENCH_WORK/api
DIR=$WORK/dir
mkdir -p "$WORK"

if [[ ! -f $WORK/pods-$PODS ]]; then
  say "making $PODS pods"
  rm -rf "${DIR:?}" "${WORK:?}/aci"
  mkdir -p "$WORK/aci/rootfs/bin"
  cp /bin/busybox "$WORK/aci/rootfs/bin/busybox"
  ln -sf busybox "$WORK/aci/rootfs/bin/sh"
  ln -sf busybox "$WORK/aci/rootfs/bin/true"
  cat >"$WORK/aci/manifest" <<JSON
{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/bench","labels":[{"name":"version","value":"1"},{"name":"os","value":"linux"},{"name":"arch","value":"amd64"}],"app":{"exec":["/bin/true"],"user":"0","group":"0"}}
JSON
  actool build --overwrite "$WORK/aci" "$WORK/bench.aci"
  "$VESSEL" --dir "$DIR" fetch --insecure-options=image "$WORK/bench.aci" >/dev/null
  for i in $(seq 1 "$PODS"); do
    if ((i % 10 == 0)); then
      "$VESSEL" --dir "$DIR" run --net=none example.com/bench:1 >/dev/null
    else
      "$VESSEL" --dir "$DIR" prepare example.com/bench:1 >/dev/null
    fi
  done
  touch "$WORK/pods-$PODS"
fi

(cd "$REPO_DIR" && cargo build --release -p vessel-api --example list_pods_bench -q)
BENCH_CLIENT=$(find "${CARGO_TARGET_DIR:-$REPO_DIR/target}" -path '*release/examples/list_pods_bench' -type f | head -n1)
[[ -x $BENCH_CLIENT ]] || die "the list_pods_bench example was not built"

PORT=${PORT:-15499}
"$VESSEL" --dir "$DIR" api-service --listen "127.0.0.1:$PORT" 2>"$WORK/api.log" &
API=$!
trap 'kill $API 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

export LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
say "timing ListPods ($CALLS calls)"
"$BENCH_CLIENT" "127.0.0.1:$PORT" 5 >/dev/null
ROWS=$("$BENCH_CLIENT" "127.0.0.1:$PORT" "$CALLS")
say "floor: vessel list"
hyperfine -N --warmup 2 --runs 20 --export-json "$WORK/list.json" \
  "$VESSEL --dir $DIR list --format=json" >&2
LIST_MEAN=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.1f" % (r["mean"]*1000))' "$WORK/list.json")

COMMIT=$(git -C "$REPO_DIR" rev-parse --short HEAD)
cat >"$RESULTS_DIR/api.md" <<MD
# API service: ListPods with $PODS pods ($(date -u +%Y-%m-%d), commit $COMMIT)

$PODS pods in one \`--dir\` (nine in ten prepared, one in ten exited), \`vessel
api-service\` on 127.0.0.1, and a gRPC client generated from the same vendored proto
(\`crates/api/examples/list_pods_bench.rs\`) calling ListPods $CALLS times in a row over
one connection, without and with detail (detail reads each pod's manifest too).

$(machine_markdown)

| call | calls | pods | p50 ms | p90 ms | p99 ms | max ms |
|---|---|---|---|---|---|---|
$ROWS

Floor: \`vessel list --format=json\` (a fresh process reading the same pods): mean
$LIST_MEAN ms (hyperfine, 20 runs).

Target: ListPods with 1000 pods under 50 ms.

Rerun: \`sudo bench/api.sh\` (PODS=, CALLS=, VESSEL= to change; the pods are kept in
\$BENCH_WORK/api between runs).
MD
cat "$RESULTS_DIR/api.md"
