#!/usr/bin/env bash
# Issue 4 figures on one machine, with the real binaries:
#  1. time from `fjord start` (the CLI's request) to the unit's process running, on an idle
#     agent: the unit's first action writes a timestamp; median and p95 over RUNS units;
#  2. the RSS of a `fjord agent` process running 100 units (`fjord server` separate).
#   Usage: bench/agent_figures.sh [FJORD_BINARY] [RUNS]      (root)
set -euo pipefail
fjord=$(readlink -f "${1:-build/fjord}")
runs=${2:-30}
[[ $(id -u) == 0 ]] || { echo "bench_agent_figures: needs root; skipped"; exit 0; }

work=$(mktemp -d /tmp/fjord-agentbench.XXXXXX)
port=$((20000 + $$ % 20000))
export FJORD_ENDPOINT=http://127.0.0.1:$port
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  # Units outlive their agent by design: kill what runs in the bench's cgroups, then remove them.
  local d
  for d in $(find /sys/fs/cgroup -maxdepth 2 -type d -name "fjord-bench$$*" 2>/dev/null); do
    find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  done
  sleep 0.3
  find /sys/fs/cgroup -maxdepth 2 -type d -name "fjord-bench$$*" 2>/dev/null |
    while read -r d; do find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

CASE=bench_agent_figures
source "$(dirname "$(readlink -f "$0")")/../tests/lib/case.sh"  # wait_for

"$fjord" server --listen "127.0.0.1:$port" --data-dir "$work/server" --log-level warn \
  >"$work/server.log" 2>&1 &
pids+=($!)
disown $!
wait_for 10 curl -sf -o /dev/null "$FJORD_ENDPOINT/fleet/v1/machines"
"$fjord" agent --server "$FJORD_ENDPOINT" --state-dir "$work/agent" --public-ip 127.0.0.1 \
  --machine-id "fjord-bench$$" --cgroup-parent "fjord-bench$$" >"$work/agent.log" 2>&1 &
agent=$!
pids+=($agent)
disown $agent
alive() { [[ $(curl -sf "$FJORD_ENDPOINT/v1/machines" | grep -o '"alive":true' | wc -l) == 1 ]]; }
wait_for 10 alive

# 1. start -> running
: >"$work/latency.ns"
for ((i = 0; i < runs; i++)); do
  f=$work/u$i.service
  # %% is a literal % in a unit file (specifiers).
  printf '[Service]\nExecStart=/bin/sh -c "date +%%%%s%%%%N >%s/started.%d; exec sleep 1000"\n' \
    "$work" "$i" >"$f"
  t0=$(date +%s%N)
  "$fjord" start --no-block "$f" >/dev/null
  wait_for 10 test -s "$work/started.$i"
  echo $(($(cat "$work/started.$i") - t0)) >>"$work/latency.ns"
  "$fjord" destroy "u$i.service" >/dev/null
  sleep 0.05  # an idle agent between starts
done
sort -n "$work/latency.ns" | awk '{ v[NR] = $1 } END {
  m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
  p = v[int(NR * 0.95 + 0.999999)]
  printf "fjord start -> process running (idle agent, n=%d): median %.1f ms, p95 %.1f ms\n", NR, m / 1e6, p / 1e6 }'

# 2. agent RSS with 100 running units
for ((i = 0; i < 100; i++)); do
  printf '[Service]\nExecStart=/bin/sleep 1000\n' >"$work/r$i.service"
done
"$fjord" start --no-block "$work"/r*.service >/dev/null
running() { [[ $("$fjord" list-units --no-legend | grep -c 'active[[:space:]]*running') -ge 100 ]]; }
wait_for 60 running
sleep 1
echo "fjord agent RSS with 100 running units: $(awk '/VmRSS/ {print $2, $3}' /proc/$agent/status)" \
  "(threads: $(awk '/Threads/ {print $2}' /proc/$agent/status))"
