#!/usr/bin/env bash
# Load (hardening issue 16): does memory stay flat as pods come and go?
#
# at-once: 100 pods started together (`run --detach`, each sleeping), the time until all
#   run, the resident memory of their supervisors (max and sum), then all stopped and
#   gc'd: nothing left under pods/.
# sequence: 1000 pods run one after another (`run --net=none IMAGE --exec /bin/true`,
#   not --rm), `gc --grace-period=0s` after every 50; the maximum resident memory of
#   `run` and of `gc` (GNU time's %M) sampled along the way, and the data dir's size and
#   entry count: flat columns mean nothing grows with the number of pods run.
#
# Usage: bench/load.sh [--at-once N] [--sequence N]   (defaults 100 and 1000)
# Environment: VESSEL=path/to/vessel (default: a release build of this checkout),
#              BENCH_WORK=scratch directory (default /var/tmp/vessel-bench).
# Writes bench/results/load.md.

source "$(dirname "$0")/lib.sh"

at_once=100
sequence=1000
while (($#)); do
  case $1 in
    --at-once) at_once=$2; shift 2 ;;
    --sequence) sequence=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

require_root
require_tools umoci busybox python3 /usr/bin/time
vessel=$(vessel_binary)
fresh_work load
stored_bench_image
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)

say "$at_once pods at once"
start=$(date +%s.%N)
seq "$at_once" | xargs -P "$at_once" -I{} "$vessel" --dir "$store" run --detach --net=none "$image" --exec /bin/sleep -- 60 >"$work/at-once.uuids"
all_running=$(python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$start" "$(date +%s.%N)")
started=$(wc -l <"$work/at-once.uuids")
# The supervisors: vessel processes of this data dir that are not the pods' inits.
rss=$(for p in $(pgrep -f -- "--dir $store run --detach"); do awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null; done)
sup_count=$(echo "$rss" | grep -c . || true)
sup_max=$(echo "$rss" | sort -n | tail -n1)
sup_sum=$(echo "$rss" | awk '{s += $1} END {print s}')
running=$("$vessel" --dir "$store" list --no-legend | grep -c ' running ' || true)
"$vessel" --dir "$store" stop --force $(cat "$work/at-once.uuids") >/dev/null
"$vessel" --dir "$store" gc --grace-period=0s >/dev/null
left=$(find "$store/pods" -mindepth 2 -maxdepth 2 | wc -l)

say "$sequence pods in sequence, gc after every 50"
samples=$work/samples.tsv
: >"$samples"
for ((i = 1; i <= sequence; i++)); do
  /usr/bin/time -f %M -o "$work/run.rss" "$vessel" --dir "$store" run --net=none "$image" --exec /bin/true >/dev/null
  if ((i % 50 == 0)); then
    /usr/bin/time -f %M -o "$work/gc.rss" "$vessel" --dir "$store" gc --grace-period=0s >/dev/null
    if ((i == 50 || i % 200 == 0 || i == sequence)); then
      printf '%d\t%s\t%s\t%s\t%s\n' "$i" "$(cat "$work/run.rss")" "$(cat "$work/gc.rss")" \
        "$(du -sk "$store" | cut -f1)" "$(find "$store" | wc -l)" >>"$samples"
    fi
  fi
done

out=$RESULTS_DIR/load.md
{
  echo "# Load: pods at once and in sequence"
  echo
  echo "Made by bench/load.sh on $(date -u +%Y-%m-%d). The busybox-static image of bench/run.sh."
  echo
  machine_markdown
  echo
  echo "## $at_once pods at once"
  echo
  echo "| started | running together | supervisors measured | time until all run | supervisor RSS max | supervisors' RSS sum | pod dirs left after stop + gc |"
  echo "|---|---|---|---|---|---|---|"
  echo "| $started | $running | $sup_count | ${all_running} s | ${sup_max} KiB | $((sup_sum / 1024)) MiB | $left |"
  echo
  echo "## $sequence pods in sequence, gc after every 50"
  echo
  echo "| pods run | max RSS of the last run | max RSS of gc | data dir size | entries in the data dir |"
  echo "|---|---|---|---|---|"
  while IFS=$'\t' read -r n r g k e; do
    echo "| $n | $r KiB | $g KiB | $k KiB | $e |"
  done <"$samples"
} >"$out"
cat "$out"
