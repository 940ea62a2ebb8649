#!/usr/bin/env bash
# Start-to-exit latency of /bin/true in the busybox test rootfs: `fjord run --rm` against
# `crun run` on an OCI bundle of the same rootfs, interleaved in one run; median and p95.
# Also the RSS of fjord's per-container monitor, and of conmon (podman's) when installed.
#
#   Usage: bench/runtime_vs_crun.sh [FJORD_BINARY] [RUNS]     (root; needs crun)
#
# On a hybrid cgroup host crun refuses to run ("cgroups in hybrid mode not supported") until the
# hugetlb controller is mounted as a v1 hierarchy; that mount is made inside a private mount
# namespace (unshare -m) so the host is untouched. fjord needs no such step.
set -euo pipefail
fjord=${1:-${FJORD_BIN:-build/fjord}}
runs=${2:-40}
src=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
[[ -n ${FJORD_SOURCE_DIR:-} ]] && src=$FJORD_SOURCE_DIR
command -v crun >/dev/null || { echo "bench_runtime_vs_crun: crun not installed; skipped"; exit 0; }
[[ $(id -u) == 0 ]] || { echo "bench_runtime_vs_crun: needs root; skipped"; exit 0; }
fjord=$(readlink -f "$fjord")

work=$(mktemp -d /tmp/fjord-bench.XXXXXX)
export FJORD_CGROUP_PARENT=fjord-bench-$$
made_hugetlb_dir=0
[[ -d /sys/fs/cgroup/hugetlb ]] || made_hugetlb_dir=1
cleanup() {
  # The hugetlb mount lived only in the benchmark's mount namespace; its mount point did not.
  if ((made_hugetlb_dir)) && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
    rmdir /sys/fs/cgroup/hugetlb 2>/dev/null || true
  fi
  for c in $(ls "$work/root/containers" 2>/dev/null); do "$fjord" rm --root "$work/root" -f "$c" >/dev/null 2>&1; done
  rmdir /sys/fs/cgroup/*/"$FJORD_CGROUP_PARENT" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$src/scripts/make-test-rootfs.sh" "$work/rootfs"
mkdir -p "$work/bundle"
cp -a "$work/rootfs" "$work/bundle/rootfs"
(cd "$work/bundle" && crun spec)
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"\/bin\/true"/' "$work/bundle/config.json"

# The rootfs copies above are still being written back; measuring during that writeback would
# time the benchmark's own set-up (it slowed every run by 2-4 ms here).
sync
inner() {
  set -euo pipefail
  if grep -q ' /sys/fs/cgroup/unified cgroup2' /proc/mounts && ! grep -q hugetlb /proc/mounts; then
    mkdir -p /sys/fs/cgroup/hugetlb
    mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
  fi
  local i t0 t1
  : >"$work/fjord.ns"
  : >"$work/crun.ns"
  for ((i = 0; i < 3; i++)); do  # warm-up
    "$fjord" run --rm --root "$work/root" --rootfs "$work/rootfs" -- /bin/true
    crun run --bundle "$work/bundle" "fjord-bench-$$-w$i"
  done
  for ((i = 0; i < runs; i++)); do
    t0=$(date +%s%N)
    "$fjord" run --rm --root "$work/root" --rootfs "$work/rootfs" -- /bin/true
    t1=$(date +%s%N)
    echo $((t1 - t0)) >>"$work/fjord.ns"
    t0=$(date +%s%N)
    crun run --bundle "$work/bundle" "fjord-bench-$$-$i"
    t1=$(date +%s%N)
    echo $((t1 - t0)) >>"$work/crun.ns"
  done
  # Back to back: `fjord run --rm` returns once the container is gone from every view, and its
  # monitor removes the cgroups and files afterwards; that work is counted here, as the runs
  # overlap it and the clock stops only when it is done. crun does it all before it returns.
  t0=$(date +%s%N)
  for ((i = 0; i < runs; i++)); do
    "$fjord" run --rm --root "$work/root" --rootfs "$work/rootfs" -- /bin/true
  done
  while [[ -n $(ls "$work/root/trash") ]] ||
    [[ -n $(find /sys/fs/cgroup/*/"$FJORD_CGROUP_PARENT" /sys/fs/cgroup/"$FJORD_CGROUP_PARENT" \
      -mindepth 1 -type d 2>/dev/null) ]]; do
    sleep 0.001
  done
  t1=$(date +%s%N)
  echo $((t1 - t0)) >"$work/fjord.total"
  t0=$(date +%s%N)
  for ((i = 0; i < runs; i++)); do
    crun run --bundle "$work/bundle" "fjord-bench-$$-b$i"
  done
  t1=$(date +%s%N)
  echo $((t1 - t0)) >"$work/crun.total"
}
export -f inner
export fjord work runs
unshare -m bash -c inner

stats() {  # median and p95 in ms of the nanosecond samples in $1
  sort -n "$1" | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    p = v[int(NR * 0.95 + 0.999999)]
    printf "median %6.1f ms   p95 %6.1f ms   (n=%d)", m / 1e6, p / 1e6, NR }'
}
echo "start-to-exit latency of /bin/true (busybox rootfs), interleaved, load $(cut -d' ' -f1 /proc/loadavg):"
echo "  fjord run --rm : $(stats "$work/fjord.ns")"
echo "  crun run       : $(stats "$work/crun.ns")"
per_run() { awk -v n="$runs" '{ printf "%6.1f ms per run (%d runs in %.2f s)", $1 / n / 1e6, n, $1 / 1e9 }' "$1"; }
echo "back to back, cleanup included:"
echo "  fjord run --rm : $(per_run "$work/fjord.total")"
echo "  crun run       : $(per_run "$work/crun.total")"

# Monitor RSS: one long-running container.
id=$("$fjord" run -d --root "$work/root" --rootfs "$work/rootfs" -- sleep 60)
mon=$(grep -o '"monitor_pid": [0-9]*' "$work/root/containers/$id/running.json" | grep -o '[0-9]*$')
echo "fjord monitor RSS: $(grep VmRSS /proc/"$mon"/status | awk '{print $2, $3}')" \
  "(anon $(grep RssAnon /proc/"$mon"/status | awk '{print $2, $3}'))"
"$fjord" rm --root "$work/root" -f "$id" >/dev/null

# podman's conmon next to it: conmon runs `crun create` for a sleeping container of the same
# rootfs, the container is started, and conmon's RSS is read from its pid file.
conmon_rss() {
  set -uo pipefail
  if grep -q ' /sys/fs/cgroup/unified cgroup2' /proc/mounts && ! grep -q hugetlb /proc/mounts; then
    mkdir -p /sys/fs/cgroup/hugetlb
    mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
  fi
  # Globals, not locals: the EXIT trap runs after the function returned.
  c=$work/conmon id=fjord-bench-$$-conmon pid=
  stop_conmon() {
    local i
    crun --root="$c/crun" kill "$id" KILL 2>/dev/null
    for ((i = 0; i < 100; i++)); do [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    crun --root="$c/crun" delete -f "$id" 2>/dev/null
    [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null
    return 0
  }
  trap stop_conmon EXIT
  mkdir -p "$c/exit" "$c/sock"
  cp -a "$work/bundle" "$c/bundle"
  sed -i 's|"/bin/true"|"sleep", "60"|' "$c/bundle/config.json"
  conmon --api-version 1 -c "$id" -u "$id" -r "$(command -v crun)" -b "$c/bundle" -p "$c/pid" \
    -n "$id" --exit-dir "$c/exit" -l "k8s-file:$c/ctr.log" --socket-dir-path "$c/sock" \
    --conmon-pidfile "$c/conmon.pid" --runtime-arg "--root=$c/crun" >/dev/null
  # conmon returns before its `crun create` is done; the container's pid file says it is.
  for ((i = 0; i < 200; i++)); do [[ -s $c/pid && -s $c/conmon.pid ]] && break; sleep 0.05; done
  pid=$(cat "$c/conmon.pid" 2>/dev/null)
  if [[ -z $pid ]] || ! crun --root="$c/crun" start "$id"; then
    echo "conmon: the container did not start; not measured"
    return 0
  fi
  echo "conmon $(conmon --version | head -1 | awk '{print $3}') RSS: $(grep VmRSS /proc/"$pid"/status | awk '{print $2, $3}')" \
    "(anon $(grep RssAnon /proc/"$pid"/status | awk '{print $2, $3}'))"
}
if command -v conmon >/dev/null; then
  export -f conmon_rss
  unshare -m bash -c conmon_rss
else
  echo "conmon: not installed (Debian package conmon); not measured"
fi
