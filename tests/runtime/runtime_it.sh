#!/usr/bin/env bash
# Integration tests of `fjord run` and friends: each case starts the real fjord binary as root
# in its own temp root, rootfs and cgroup parent, and cleans up after itself (trap).
#   Usage: runtime_it.sh FJORD_BINARY CASE
set -uo pipefail
F=${1:?fjord binary}
CASE=${2:?case}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
source "$SRC/tests/lib/case.sh"

T=$(mktemp -d /tmp/fjord-it.XXXXXX)
R=$T/root
RFS=$T/rootfs
export FJORD_CGROUP_PARENT=fjord-it-$$-$CASE
BG_PIDS=()

cleanup() {
  for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  for c in $(ls "$R/containers" 2>/dev/null); do "$F" rm --root "$R" --force "$c" >/dev/null 2>&1; done
  for d in /sys/fs/cgroup/*/"$FJORD_CGROUP_PARENT" /sys/fs/cgroup/"$FJORD_CGROUP_PARENT"; do
    [[ -d $d ]] && rmdir "$d" 2>/dev/null
  done
  # A removed container's files are deleted in the background: retry once if we raced it.
  rm -rf "$T" 2>/dev/null || { sleep 0.2; rm -rf "$T"; }
}
trap cleanup EXIT

run() { "$F" run --root "$R" --rootfs "$RFS" "$@"; }
# The cgroup directories of container $1 (from its state.json).
cgroup_dirs() { grep -o '"/sys/fs/cgroup[^"]*"' "$R/containers/$1/state.json" | tr -d '"'; }
state_field() { grep -o "\"$2\": [0-9]*" "$R/containers/$1/running.json" | grep -o '[0-9]*$'; }
alive() { [[ -r /proc/$1/stat ]] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
no_leftovers() {  # no container cgroup and no process of container $1 (init pid $2)
  # The monitor removes the cgroups just after it reported the exit: give it a moment.
  for d in /sys/fs/cgroup/*/"$FJORD_CGROUP_PARENT"/"$1" /sys/fs/cgroup/"$FJORD_CGROUP_PARENT"/"$1"; do
    wait_for 5 sh -c "[ ! -e '$d' ]" || fail "cgroup $d left behind"
  done
  if [[ -n ${2:-} ]]; then
    wait_for 5 sh -c "! { [ -r /proc/$2/stat ] && ! grep -q ') Z' /proc/$2/stat; }" ||
      fail "process $2 left behind"
  fi
  return 0
}

"$SRC/scripts/make-test-rootfs.sh" "$RFS" || fail "make-test-rootfs"

case $CASE in
exit_codes)
  out=$(run -- /bin/sh -c 'echo hello; echo oops >&2' 2>"$T/err")
  expect_eq 0 $? "exit code of a successful command"
  expect_eq hello "$out" "stdout"
  expect_eq oops "$(cat "$T/err")" "stderr"
  run -- /bin/sh -c 'exit 3'
  expect_eq 3 $? "exit 3"
  run -- /no/such/binary 2>"$T/err"
  expect_eq 127 $? "missing command"
  grep -q '/no/such/binary' "$T/err" || fail "127 message names the command: $(cat "$T/err")"
  run -- nosuchcmd 2>/dev/null
  expect_eq 127 $? "command not in PATH"
  run -d -- nosuchcmd 2>/dev/null
  expect_eq 127 $? "command not in PATH, detached"
  run -- /etc/passwd 2>"$T/err"
  expect_eq 126 $? "not executable"
  expect_eq 1 "$(wc -l <"$T/err")" "one line for 126"
  run -- /bin/sh -c 'kill -9 $$'
  expect_eq 137 $? "killed by SIGKILL"
  printf 'x' >"$T/partial_expect"
  run -- /bin/sh -c 'printf x' >"$T/partial"
  cmp -s "$T/partial" "$T/partial_expect" || fail "output without a newline gets none added"
  ;;
bad_input)
  count_cgroups() { find /sys/fs/cgroup/*/"$FJORD_CGROUP_PARENT" -mindepth 1 -type d 2>/dev/null | wc -l; }
  before=$(count_cgroups)
  "$F" run --root "$R" --rootfs "$T/missing" -- /bin/true 2>"$T/err"
  expect_eq 125 $? "missing rootfs"
  grep -q "$T/missing" "$T/err" || fail "message names the rootfs: $(cat "$T/err")"
  expect_eq 1 "$(wc -l <"$T/err")" "one line"
  run --memory 12Q -- /bin/true 2>"$T/err"
  expect_eq 125 $? "bad size"
  grep -q -- '--memory' "$T/err" || fail "message names --memory"
  run --volume "$T/nope:/x" -- /bin/true 2>"$T/err"
  expect_eq 125 $? "missing volume source"
  grep -q "$T/nope" "$T/err" || fail "message names the volume"
  run --cpu-quota abc -- /bin/true 2>/dev/null
  expect_eq 125 $? "bad cpu quota"
  run -- 2>/dev/null
  expect_eq 125 $? "no command"
  "$F" run --root "$R" --image nosuch:latest -- /bin/true 2>"$T/err"
  expect_eq 125 $? "image"
  run --name dup -- /bin/true
  run --name dup -- /bin/true 2>"$T/err"
  expect_eq 125 $? "name in use"
  grep -q "dup" "$T/err" || fail "message names the name"
  expect_eq 1 "$(ls "$R/containers" | wc -l)" "nothing half-created"
  expect_eq 1 "$(ls "$R/names" | wc -l)" "names"
  "$F" rm --root "$R" dup || fail "rm dup"
  expect_eq 0 "$(ls "$R/containers" | wc -l)" "rm removes the container"
  expect_eq "$before" "$(count_cgroups)" "cgroup count"
  ;;
oom)
  run --name hog --memory 32M -- /bin/sh -c 'tail /dev/zero' 2>/dev/null
  expect_eq 137 $? "OOM-killed exit code"
  "$F" ps --all --root "$R" | grep hog | grep -q oom-killed || fail "ps: $("$F" ps --all --root "$R")"
  id=$(ls "$R/containers")
  no_leftovers "$id"
  ;;
pids)
  # A fork bomb stops at the limit while the container's main shell lives on; the host is fine.
  id=$(run -d --pids-max 20 -- /bin/sh -c \
    'sleep 30 & (while :; do sleep 30 & done) 2>/dev/null; echo bomb-stopped; wait')
  cg=$(cgroup_dirs "$id" | grep /pids/ || cgroup_dirs "$id" | head -1)
  wait_for 10 grep -q bomb-stopped "$R/containers/$id/container.log" || fail "bomb never stopped"
  n=$(wc -l <"$cg/cgroup.procs")
  ((n <= 20 && n >= 10)) || fail "processes in the container: $n, want 10..20 (pids-max 20)"
  [[ -f $cg/pids.events ]] && { grep -q 'max [1-9]' "$cg/pids.events" || fail "pids.events: no max hit"; }
  sh -c 'exit 0' || fail "host cannot fork"
  "$F" stop --root "$R" --time 0 "$id" || fail "stop"
  no_leftovers "$id"
  ;;
cpu_quota)
  id=$(run -d --cpu-quota 20% -- /bin/sh -c 'while :; do :; done')
  cg=$(cgroup_dirs "$id" | grep cpuacct || cgroup_dirs "$id" | head -1)
  read_usage() {
    if [[ -f $cg/cpuacct.usage ]]; then cat "$cg/cpuacct.usage"; else
      echo $(($(grep usage_usec "$cg/cpu.stat" | awk '{print $2}') * 1000)); fi
  }
  sleep 0.5
  u0=$(read_usage); t0=$(date +%s%N)
  sleep 3
  u1=$(read_usage); t1=$(date +%s%N)
  pct=$(((u1 - u0) * 100 / (t1 - t0)))
  echo "cpu usage with --cpu-quota 20%: ${pct}%"
  ((pct >= 15 && pct <= 25)) || fail "cpu usage $pct% not within 20% +- 5%"
  "$F" stop --root "$R" --time 0 "$id" || fail stop
  ;;
isolation)
  out=$(run -- /bin/sh -c 'ls /proc | grep -c "^[0-9]"')
  # init, sh, ls, grep: nothing from the host.
  ((out <= 4)) || fail "container sees $out processes"
  mounts=$(run -- cat /proc/mounts)
  grep -q "$T" <<<"$(grep -v '^overlay' <<<"$mounts")" && fail "host paths visible: $mounts"
  grep -q ' /work\| /home' <<<"$mounts" && fail "host mounts visible: $mounts"
  expect_eq box "$(run --hostname box -- hostname)" "hostname"
  ip=$(run -- /bin/sh -c 'cat /proc/net/dev | grep -c :')
  expect_eq 1 "$ip" "only loopback in --net none"
  expect_eq 0x9 "$(run -- cat /sys/class/net/lo/flags)" "lo is up (IFF_UP|IFF_LOOPBACK)"
  run -- /bin/sh -c 'echo x > /proc/sys/kernel/hostname' 2>/dev/null && fail "/proc/sys writable"
  run -- /bin/sh -c 'cat /proc/kcore' >/dev/null 2>&1
  run -- /bin/sh -c 'test -e /proc/keys && test ! -s /proc/keys' || fail "/proc/keys not masked"
  run -- /bin/sh -c 'ls /dev | sort | tr "\n" " "' >"$T/dev"
  for n in null zero full random urandom tty pts shm; do grep -qw "$n" "$T/dev" || fail "/dev/$n missing"; done
  grep -qw sda "$T/dev" && fail "host devices in /dev"
  ;;
rootfs_untouched)
  sum0=$(find "$RFS" | sort | md5sum)
  run -- /bin/sh -c 'echo changed > /etc/hostname; touch /newfile; rm /bin/ls' || fail "writes inside"
  expect_eq "fjord-test" "$(cat "$RFS/etc/hostname")" "rootfs file unchanged"
  expect_eq "$sum0" "$(find "$RFS" | sort | md5sum)" "rootfs tree unchanged"
  a=$(run -d -- /bin/sh -c 'echo a > /only-a; sleep 30')
  wait_for 5 test -e "$R/containers/$a/upper/only-a" || fail "container a did not write"
  run -- /bin/sh -c 'test ! -e /only-a' || fail "container b sees a's write"
  "$F" rm --root "$R" --force "$a" || fail "rm -f"
  ;;
stop_rm)
  id=$(run -d --name s -- /bin/sh -c 'trap "" TERM; while :; do sleep 1; done')
  init=$(state_field "$id" init_pid)
  kill -0 "$init" || fail "init not running"
  start=$(date +%s%N)
  "$F" stop --root "$R" --time 1 s || fail "stop"
  ms=$((($(date +%s%N) - start) / 1000000))
  ((ms >= 900 && ms < 5000)) || fail "stop took ${ms} ms with --time 1"
  "$F" ps --all --root "$R" | grep -q 'exited (137)' || fail "ps after stop: $("$F" ps --all --root "$R")"
  no_leftovers "$id" "$init"
  "$F" run --root "$R" --rootfs "$RFS" -d --name t -- sleep 100 >/dev/null
  "$F" rm --root "$R" t 2>/dev/null && fail "rm of a running container without --force"
  "$F" rm --root "$R" --force t || fail "rm --force"
  "$F" rm --root "$R" s || fail "rm"
  # A foreground run forwards SIGTERM to the container and exits with its code.
  "$F" run --root "$R" --rootfs "$RFS" --name sig -- /bin/sh -c \
    'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.1; done' >"$T/sig" &
  runner=$!
  BG_PIDS+=("$runner")
  wait_for 10 grep -q ready "$T/sig" || fail "foreground container never started"
  kill -TERM "$runner"
  wait "$runner"
  expect_eq 7 $? "exit code after a forwarded SIGTERM"
  grep -q got-term "$T/sig" || fail "SIGTERM not forwarded: $(cat "$T/sig")"
  "$F" rm --root "$R" sig || fail "rm sig"
  expect_eq 0 "$(ls "$R/containers" | wc -l)" "containers left"
  grep -q "$R" /proc/mounts && fail "mounts left: $(grep "$R" /proc/mounts)"
  ;;
kill_run)
  # kill -9 of a foreground `fjord run`: the container lives on, owned by its monitor.
  "$F" run --root "$R" --rootfs "$RFS" --name fg -- sleep 100 >/dev/null 2>&1 &
  runner=$!
  BG_PIDS+=("$runner")
  wait_for 10 sh -c "ls $R/containers/*/running.json" >/dev/null 2>&1 || fail "never running"
  id=$(ls "$R/containers")
  kill -9 "$runner"
  wait "$runner" 2>/dev/null
  "$F" ps --root "$R" | grep -q 'fg .*running' || fail "container died with its runner"
  # Now the monitor dies too: the next fjord invocation cleans up.
  mon=$(state_field "$id" monitor_pid)
  init=$(state_field "$id" init_pid)
  kill -9 "$mon"
  wait_for 5 sh -c "! kill -0 $mon 2>/dev/null" || fail "monitor survived"
  "$F" ps --all --root "$R" | grep -q 'fg .*exited' || fail "ps after monitor loss: $("$F" ps --all --root "$R")"
  no_leftovers "$id" "$init"
  # --detach survives its caller by design.
  "$F" run --root "$R" --rootfs "$RFS" -d --name bg -- sleep 100 >/dev/null
  "$F" ps --root "$R" | grep -q 'bg .*running' || fail "detached container not running"
  ;;
auto_remove)
  gone() { [[ -z $(ls "$R/containers") && ! -e $R/names/$1 ]]; }
  # Foreground --rm: the output and exit code, then nothing is left and the name is free at once.
  run --rm --name once -- /bin/sh -c 'echo out; exit 5' >"$T/out"
  expect_eq 5 $? "exit code with --rm"
  expect_eq out "$(cat "$T/out")" "output with --rm"
  gone once || fail "foreground --rm left $(ls "$R/containers") $(ls "$R/names")"
  run --rm --name once -- /bin/true || fail "the name of a removed container is not free at once"
  run --rm -- /no/such/binary 2>"$T/err"
  expect_eq 127 $? "missing command with --rm"
  grep -q '/no/such/binary' "$T/err" || fail "127 message with --rm: $(cat "$T/err")"
  run --rm --name bad --workdir /etc/passwd -- /bin/true 2>/dev/null
  expect_eq 125 $? "a setup failure inside the container with --rm"
  gone bad || fail "a failed --rm start left $(ls "$R/containers") $(ls "$R/names")"
  run --rm --name bad -- /bin/true || fail "the name of a failed --rm start is not free"
  run -d --rm -- /no/such/binary 2>/dev/null
  expect_eq 127 $? "missing command with --rm, detached"
  run -d --rm -- /etc/passwd 2>/dev/null
  expect_eq 126 $? "not executable with --rm, detached"
  run --rm --memory 16M -- /bin/sh -c 'x=a; while :; do x="$x$x"; done' 2>"$T/err"
  expect_eq 137 $? "OOM kill with --rm"
  grep -q 'OOM-killed' "$T/err" || fail "OOM kill not reported with --rm: $(cat "$T/err")"
  # Detached --rm: its monitor removes it when it exits, files, cgroups and name.
  id=$(run -d --rm --name bg -- sleep 0.5) || fail "run -d --rm"
  "$F" ps --root "$R" | grep -q 'bg .*running' || fail "detached --rm container not running"
  wait_for 10 gone bg || fail "detached --rm container not removed: $(ls "$R/containers")"
  no_leftovers "$id"
  # kill -9 of the foreground runner: the monitor still removes the container.
  "$F" run --root "$R" --rootfs "$RFS" --rm --name fg -- sleep 0.5 >/dev/null 2>&1 &
  runner=$!
  BG_PIDS+=("$runner")
  wait_for 10 sh -c "ls $R/containers/*/running.json" >/dev/null 2>&1 || fail "fg never running"
  id=$(ls "$R/containers")
  kill -9 "$runner"
  wait_for 10 gone fg || fail "--rm container of a killed runner not removed"
  no_leftovers "$id"
  # The monitor dies: the next fjord command stops and removes the container.
  id=$(run -d --rm --name lost -- sleep 100)
  mon=$(state_field "$id" monitor_pid)
  init=$(state_field "$id" init_pid)
  kill -9 "$mon"
  wait_for 5 sh -c "! kill -0 $mon 2>/dev/null" || fail "monitor survived"
  expect_eq "" "$("$F" ps --all --root "$R" | tail -n +2)" "ps after the monitor of a --rm container died"
  gone lost || fail "--rm container of a dead monitor not removed"
  no_leftovers "$id" "$init"
  # The same while a foreground run is attached: it reports the loss (137), nothing is left.
  "$F" run --root "$R" --rootfs "$RFS" --rm --name att -- sleep 100 >/dev/null 2>"$T/att" &
  runner=$!
  BG_PIDS+=("$runner")
  wait_for 10 sh -c "ls $R/containers/*/running.json" >/dev/null 2>&1 || fail "att never running"
  id=$(ls "$R/containers")
  init=$(state_field "$id" init_pid)
  kill -9 "$(state_field "$id" monitor_pid)"
  wait "$runner"
  expect_eq 137 $? "exit code of a --rm run whose monitor died"
  grep -q 'monitor died' "$T/att" || fail "monitor loss not reported: $(cat "$T/att")"
  gone att || fail "--rm container of a dead monitor left behind by its runner"
  no_leftovers "$id" "$init"
  # stop and rm --force of a running --rm container.
  run -d --rm --name st -- sleep 100 >/dev/null
  "$F" stop --root "$R" --time 1 st || fail "stop of a --rm container"
  wait_for 5 gone st || fail "stopped --rm container not removed"
  id=$(run -d --rm --name f -- sleep 100)
  "$F" rm --root "$R" --force f || fail "rm --force of a --rm container"
  gone f || fail "rm --force left the --rm container"
  no_leftovers "$id"
  wait_for 10 sh -c "[ -z \"\$(ls $R/trash)\" ]" || fail "trash not emptied: $(ls "$R/trash")"
  ;;
hardening)
  run -- /bin/sh -c 'mount -t tmpfs none /tmp' 2>/dev/null && fail "mount allowed"
  run -- /bin/sh -c 'reboot -f' 2>/dev/null && fail "reboot allowed"
  run -- /bin/sh -c 'unshare -m true' 2>/dev/null && fail "unshare allowed"
  run -- /bin/sh -c 'nsenter -t 1 -m true' 2>/dev/null && fail "setns allowed"
  expect_eq "00000000a80425fb" "$(run -- /bin/sh -c 'grep CapEff /proc/self/status' | awk '{print $2}')" "CapEff"
  expect_eq "00000000a80425fb" "$(run -- /bin/sh -c 'grep CapBnd /proc/self/status' | awk '{print $2}')" "CapBnd"
  expect_eq "0000000000000000" "$(run -- /bin/sh -c 'grep CapEff /proc/1/status' | awk '{print $2}')" "init's caps"
  expect_eq 2 "$(run -- /bin/sh -c 'grep ^Seccomp: /proc/self/status' | awk '{print $2}')" "seccomp mode"
  expect_eq 1 "$(run -- /bin/sh -c 'grep NoNewPrivs /proc/self/status' | awk '{print $2}')" "no_new_privs"
  expect_eq 0 "$(run --privileged -- /bin/sh -c 'grep ^Seccomp: /proc/self/status' | awk '{print $2}')" "privileged seccomp"
  run --privileged -- /bin/sh -c 'mount -t tmpfs none /tmp' || fail "privileged mount"
  ;;
mounts_env)
  mkdir -p "$T/vol"
  echo host >"$T/vol/in"
  out=$(run --volume "$T/vol:/data" -- /bin/sh -c 'cat /data/in; echo ctr > /data/out')
  expect_eq host "$out" "volume read"
  expect_eq ctr "$(cat "$T/vol/out")" "volume write"
  run --volume "$T/vol:/data:ro" -- /bin/sh -c 'echo x > /data/x' 2>/dev/null && fail "ro volume writable"
  run --read-only -- /bin/sh -c 'touch /x' 2>/dev/null && fail "--read-only root writable"
  run --read-only -- /bin/sh -c 'touch /dev/shm/x' || fail "--read-only: /dev/shm stays writable"
  expect_eq "B /tmp/w" "$(run --env A=B --workdir /tmp/w -- /bin/sh -c 'echo $A $(pwd)')" "env+workdir"
  expect_eq "1000 1000" "$(run --user 1000:1000 -- /bin/sh -c 'echo $(id -u) $(id -g)')" "user"
  expect_eq "0000000000000000" "$(run --user 1000 -- /bin/sh -c 'grep CapEff /proc/self/status' | awk '{print $2}')" "non-root caps"
  ;;
logs)
  run --name big --log-max-size 64k -- /bin/sh -c 'seq 1 3000' >"$T/fg"
  expect_eq 3000 "$(wc -l <"$T/fg")" "foreground output complete across rotation"
  expect_eq "$(seq 1 3000 | md5sum)" "$(md5sum <"$T/fg")" "foreground output in order"
  "$F" rm --root "$R" big
  run --name l --log-max-size 4k --log-max-files 3 -- /bin/sh -c 'seq 1 3000' >/dev/null
  id=$(ls "$R/containers")
  n=$(ls "$R/containers/$id" | grep -c '^container\.log')
  expect_eq 3 "$n" "rotated files kept"
  for f in "$R/containers/$id"/container.log*; do
    (($(stat -c %s "$f") < 4096 + 200)) || fail "$f too big"
  done
  head -1 "$R/containers/$id/container.log" |
    grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{9}Z stdout F [0-9]+$' || fail "format"
  expect_eq 3000 "$("$F" logs --root "$R" l | tail -1)" "logs shows the newest line"
  # A container of an older fjord: its spec in config.json, its log under log/.
  run --name old -- /bin/sh -c 'echo from-the-old-layout' >/dev/null
  d=$R/containers/$(readlink "$R/names/old")
  jq .spec "$d/state.json" >"$d/config.json" && jq 'del(.spec)' "$d/state.json" >"$T/state" &&
    mv "$T/state" "$d/state.json" && mkdir "$d/log" && mv "$d/container.log" "$d/log/" ||
    fail "make an old layout"
  expect_eq from-the-old-layout "$("$F" logs --root "$R" old)" "logs of an old-layout container"
  "$F" ps --all --root "$R" | grep -q 'old .*exited (0) .*/bin/sh -c' ||
    fail "ps of an old-layout container: $("$F" ps --all --root "$R")"
  # -f across rotation: every line from the first retained one to the end, in order.
  id2=$(run -d --name f --log-max-size 2k --log-max-files 2 -- /bin/sh -c \
    'i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo $i; [ $((i % 50)) = 0 ] && sleep 0.1; done')
  timeout 30 "$F" logs --root "$R" -f f >"$T/follow" || fail "logs -f"
  expect_eq 400 "$(tail -1 "$T/follow")" "logs -f reached the end"
  awk 'NR > 1 && $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit bad }' "$T/follow" ||
    fail "logs -f skipped lines"
  ;;
userns)
  chmod 755 "$T"  # the container's root (host uid 100000) must reach its overlay dirs
  expect_eq "0 0" "$(run --userns -- /bin/sh -c 'echo $(id -u) $(id -g)')" "root inside"
  expect_eq "0 100000 65536" "$(run --userns -- cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //')" "uid map"
  id=$(run -d --userns -- /bin/sh -c 'touch /made-inside; sleep 30')
  wait_for 5 test -e "$R/containers/$id/upper/made-inside" || fail "no file from the container"
  expect_eq "100000" "$(stat -c %u "$R/containers/$id/upper/made-inside")" "host owner of a new file"
  init=$(state_field "$id" init_pid)
  expect_eq 100000 "$(awk '/^Uid:/ {print $2}' /proc/"$init"/status)" "host uid of the container init"
  "$F" rm --root "$R" -f "$id" || fail "rm"
  run --userns -- /bin/sh -c 'echo x > /etc/hostname' 2>/dev/null && fail "rootfs files writable"
  expect_eq "fjord-test" "$(cat "$RFS/etc/hostname")" "rootfs unchanged"
  ;;
*)
  fail "unknown case"
  ;;
esac
echo "PASS [$CASE]"
