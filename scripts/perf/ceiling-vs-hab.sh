#!/usr/bin/env bash
# hab against the stack's end-to-end ceiling, in one sitting, on one stack per topology:
# `hab up` starts the topology's stack once; then ROUNDS runs of
# `hab run --topology <stack>/external.toml --calibrate W --allow-flush` against it, each
# measuring the calibration's end-to-end ceiling (the whole task path without task code)
# and, seconds later, hab's 10,000-task trivial burst on the same servers; then `hab down`.
# Prints every pair, then the medians and the median of the ratios hab / ceiling.
#
#   scripts/perf/ceiling-vs-hab.sh [ROUNDS] [TOPOLOGY...]
#   (defaults: 5 rounds; topologies/standalone.toml topologies/ha.toml)
#
# HAB (default target/release/hab) picks the binary; OUT (default results/perf-<time>)
# where the run directories go; COUNT (default 10000) the burst's tasks; WINDOW (default
# 1s) the calibration window. With a *-celery topology the same table sets a real Celery
# worker against the ceiling. Needs the servers (scripts/install-servers.sh) and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds="${1:-5}"
shift || true
topologies=("$@")
if [ "${#topologies[@]}" -eq 0 ]; then
  topologies=(topologies/standalone.toml topologies/ha.toml)
fi
hab="${HAB:-target/release/hab}"
[ -x "$hab" ] || { echo "ceiling-vs-hab: no $hab: cargo build --release first, or set HAB" >&2; exit 1; }
out="${OUT:-results/perf-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
count="${COUNT:-10000}"
workload="$out/burst.toml"
cat > "$workload" <<TOML
name = "burst"
description = "$count trivial tasks in a burst: hab's throughput, set against the end-to-end ceiling measured on the same stack just before."
warmup_tasks = 500
drain_timeout = "60s"

[[workload]]
name = "trivial"
task = { kind = "trivial" }
count = $count
arrival = "burst"
TOML

window="${WINDOW:-1s}"
up=""
stop_stack() {
  if [ -n "$up" ]; then
    "$hab" down --dir "$up" > /dev/null 2>&1 || true
    up=""
  fi
}
trap stop_stack EXIT
trap 'stop_stack; exit 130' INT TERM

for topo in "${topologies[@]}"; do
  name="$(basename "$topo" .toml)"
  up="$out/stack-$name"
  echo "ceiling-vs-hab: hab up $topo" >&2
  "$hab" up --topology "$topo" --dir "$up" > "$out/up-$name.txt" 2>&1 || {
    echo "ceiling-vs-hab: hab up failed for $topo:" >&2
    tail -20 "$out/up-$name.txt" >&2
    exit 1
  }
  for round in $(seq 1 "$rounds"); do
    dir="$out/round-$round-$name"
    mkdir -p "$dir"
    echo "ceiling-vs-hab: $name, round $round/$rounds" >&2
    "$hab" run --topology "$up/external.toml" --workload "$workload" --calibrate "$window" --allow-flush \
      --no-progress --out "$dir" > "$dir/stdout.txt" 2> "$dir/stderr.txt" || {
      echo "ceiling-vs-hab: hab run failed (round $round, $name); see $dir/stderr.txt" >&2
      tail -20 "$dir/stderr.txt" >&2
      exit 1
    }
  done
  stop_stack
done

python3 - "$out" "$rounds" "${topologies[@]}" <<'PY'
import glob, json, os, statistics, sys
out, rounds, topos = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = {}
for topo in topos:
    name = os.path.basename(topo)[:-5]
    for r in range(1, rounds + 1):
        runs = glob.glob(f"{out}/round-{r}-{name}/*/run.json")
        if len(runs) != 1:
            sys.exit(f"round {r} of {name}: expected one run directory, found {len(runs)}")
        run = json.load(open(runs[0]))
        cal = json.load(open(os.path.join(os.path.dirname(runs[0]), "calibrate.json")))
        e2e = cal["figures"]["end_to_end"]["value"]
        peak = max(st["msg_per_s"] for st in cal["end_to_end_strategies"])
        w = next(w for w in run["workloads"] if w["name"] == "trivial")
        hab = w["throughput_per_s"]
        rows.setdefault(name, []).append((r, e2e, hab, peak))
print("| topology | round | end-to-end ceiling (tasks/s) | its best window | hab, trivial burst (tasks/s) | hab / ceiling |")
print("|---|---:|---:|---:|---:|---:|")
for name, rs in rows.items():
    for r, e2e, hab, peak in rs:
        print(f"| {name} | {r} | {e2e:,.0f} | {peak:,.0f} | {hab:,.0f} | {hab / e2e:.0%} |")
print()
print("| topology | ceiling, median | hab, median | median of the ratios (min–max) |")
print("|---|---:|---:|---:|")
for name, rs in rows.items():
    ratios = [h / e for _, e, h, _ in rs]
    print(f"| {name} | {statistics.median(e for _, e, _, _ in rs):,.0f} | {statistics.median(h for _, _, h, _ in rs):,.0f} | {statistics.median(ratios):.0%} ({min(ratios):.0%}–{max(ratios):.0%}) |")
PY
