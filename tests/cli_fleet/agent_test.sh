#!/usr/bin/env bash
# `fjord agent` and the fleet verbs that need machines: a real server, two real agents on
# loopback (own state dirs, machine ids and cgroup parents), real units.
# usage: agent_test.sh FJORD_BINARY JSON_CHECK
fjord=${1:?fjord binary}
json_check=${2:?json_check binary}
source "$(dirname "$0")/lib.sh"

cg_a="fjord-clifleet-$$-a"
cg_b="fjord-clifleet-$$-b"
# Kills whatever a unit left in our cgroups and removes them.
cleanup_cgroups() {
  local parent dir pid pids_in
  for parent in "$cg_a" "$cg_b"; do
    for _ in 1 2 3 4 5; do
      pids_in=()
      for dir in /sys/fs/cgroup/*/"$parent"/*/; do
        [[ -f $dir/cgroup.procs ]] && mapfile -t -O "${#pids_in[@]}" pids_in <"$dir/cgroup.procs"
      done
      [[ ${#pids_in[@]} -eq 0 ]] && break
      for pid in "${pids_in[@]}"; do kill -9 "$pid" 2>/dev/null; done
      sleep 0.1
    done
    for dir in /sys/fs/cgroup/*/"$parent"/*/ /sys/fs/cgroup/*/"$parent"/; do
      [[ -d $dir ]] && rmdir "$dir" 2>/dev/null
    done
  done
}
trap 'cleanup_processes; cleanup_cgroups; rm -rf "$work"' EXIT

start_server
id_a="a$$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
id_a=${id_a:0:32}
id_b="b$$bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
id_b=${id_b:0:32}

start_agent() {  # start_agent NAME ID CGROUP METADATA
  "$fjord" agent --server "$FJORD_ENDPOINT" --state-dir "$work/agent-$1" --machine-id "$2" \
    --public-ip 127.0.0.1 --cgroup-parent "$3" --metadata "$4" 2>>"$work/agent-$1.log" &
  eval "agent_$1_pid=$!"
  pids+=("$!")
}
start_agent a "$id_a" "$cg_a" "region=a,disk=nvme"
start_agent b "$id_b" "$cg_b" "region=b"

machines_are() { [[ $("$fjord" list-machines --output json | "$json_check" length) == "$1" ]]; }
wait_for 20 machines_are 2 || fail "two machines did not register"
expect_exit 0 -- "$fjord" list-machines
contains "$work/out" $'MACHINE\t\tIP\t\tMETADATA'
contains "$work/out" "${id_a:0:8}..."$'\t127.0.0.1\tdisk=nvme,region=a'
contains "$work/out" "${id_b:0:8}..."$'\t127.0.0.1\tregion=b'
expect_exit 0 -- "$fjord" list-machines --full --no-legend
contains "$work/out" "$id_a"
line_count "$work/out" 2
expect_exit 0 -- "$fjord" list-machines --output json
is_json "$work/out" length 2

units=$work/units
mkdir -p "$units"
printf '[Service]\nExecStart=/bin/sh -c "echo hello-from-unit; exec sleep 1000"\n\n[X-Fleet]\nMachineMetadata=region=b\n' \
  >"$units/hello.service"
printf '[Service]\nExecStart=/bin/sleep 1000\n\n[X-Fleet]\nMachineMetadata=region=mars\n' \
  >"$units/mars.service"

# start a FILE: parsed locally, created, waited for; placed by its metadata on machine b.
expect_exit 0 -- "$fjord" start --block-attempts 300 "$units/hello.service"
contains "$work/out" "Unit hello.service launched on ${id_b:0:8}.../127.0.0.1"
unit_active() { [[ $(count_rows 'hello\.service' active running) -eq 1 ]]; }
wait_for 20 unit_active || fail "hello.service is not reported active/running"
expect_exit 0 -- "$fjord" list-units
contains "$work/out" $'hello.service\t'"${id_b:0:8}..."$'/127.0.0.1\tactive\trunning'
expect_exit 0 -- "$fjord" list-units --full --no-legend
contains "$work/out" "$id_b/127.0.0.1"
expect_exit 0 -- "$fjord" list-unit-files --no-legend
contains "$work/out" $'\tlaunched\tlaunched\t'"${id_b:0:8}.../127.0.0.1"

# status and journal come from the agent through the server's 307.
expect_exit 0 -- "$fjord" status hello
contains "$work/out" "hello.service"
contains "$work/out" "active"
expect_exit 0 -- "$fjord" status --output json hello.service
is_json "$work/out" 0.systemdActiveState active
pid=$("$json_check" 0.mainPID <"$work/out")
journal_has() { "$fjord" journal --lines 5 hello.service | grep -q hello-from-unit; }
wait_for 10 journal_has || fail "journal lacks the unit's output"
timeout 2 "$fjord" journal -f hello.service >"$work/follow" 2>&1
[[ $? -eq 124 ]] || fail "journal -f ended by itself"
contains "$work/follow" "hello-from-unit"

# kill -9 of the agent loses no unit and does not restart it.
kill -9 "$agent_b_pid"
wait "$agent_b_pid" 2>/dev/null
start_agent b "$id_b" "$cg_b" "region=b"
same_pid() {
  [[ $("$fjord" status --output json hello.service | "$json_check" 0.mainPID) == "$pid" ]]
}
wait_for 20 same_pid || fail "hello.service's main PID changed after kill -9 of the agent"

# An impossible unit: start gives up naming why; list-units shows "-" and the reason.
expect_exit 1 -- "$fjord" start --block-attempts 4 "$units/mars.service"
contains "$work/err" "mars.service did not reach launched after 4 attempts"
expect_exit 0 -- "$fjord" list-units
contains "$work/out" $'mars.service\t-'
contains "$work/out" "REASON"
expect_exit 0 -- "$fjord" explain mars
[[ -s $work/out ]] || fail "explain mars printed nothing"

# stop -> loaded (inactive on the machine); unload -> inactive.
expect_exit 0 -- "$fjord" stop --block-attempts 300 hello
contains "$work/out" "Unit hello.service loaded"
unit_stopped() { [[ $(count_rows 'hello\.service' 'inactive|failed' '.*') -eq 1 ]]; }
wait_for 20 unit_stopped || fail "hello.service still runs after stop"
expect_exit 0 -- "$fjord" unload --block-attempts 300 hello
contains "$work/out" "Unit hello.service inactive"

# Template instances from a template file, and scale.
printf '[Service]\nExecStart=/bin/sleep 1000\n' >"$units/web@.service"
expect_exit 0 -- "$fjord" start --block-attempts 300 "$units/web@1.service"
contains "$work/out" "Unit web@1.service launched on"
expect_exit 0 -- "$fjord" submit "$units/web@.service"
expect_exit 0 -- "$fjord" scale web@.service 3 --output json
is_json "$work/out"
three() { [[ $(count_rows 'web@[0-9]+\.service' active running) -ge 3 ]]; }
wait_for 30 three || fail "scale web@.service 3 did not run 3 instances"

# load: scheduled, not started.
printf '[Service]\nExecStart=/bin/sleep 1000\n' >"$units/idle.service"
expect_exit 0 -- "$fjord" load --block-attempts 300 "$units/idle.service"
contains "$work/out" "Unit idle.service loaded on"
idle_loaded() { [[ $(count_rows 'idle\.service' inactive dead) -eq 1 ]]; }
wait_for 20 idle_loaded || fail "idle.service is not loaded (inactive/dead)"

# A global unit runs on every machine: one list-units row per machine; --machine picks one.
printf '[Service]\nExecStart=/bin/sleep 1000\n\n[X-Fleet]\nGlobal=true\n' >"$units/everywhere.service"
expect_exit 0 -- "$fjord" start --block-attempts 300 "$units/everywhere.service"
contains "$work/out" "Triggered global unit everywhere.service launched"
two_rows() { [[ $(count_rows 'everywhere\.service' active running) -eq 2 ]]; }
wait_for 30 two_rows || fail "the global unit does not run on both machines"
expect_exit 0 -- "$fjord" status --machine "$id_a" --output json everywhere
is_json "$work/out" 0.machineID "$id_a"

# The server dies: units keep running; a server back on the same address and data finds the
# agents again and nothing restarts.
pid_g=$("$fjord" status --machine "$id_b" --output json everywhere | "$json_check" 0.mainPID)
kill -9 "$server_pid"
wait "$server_pid" 2>/dev/null
sleep 0.5
"$fjord" server --listen "${FJORD_ENDPOINT#http://}" --data-dir "$work/server" \
  --heartbeat-grace 3s >/dev/null 2>>"$work/server.log" &
server_pid=$!
pids+=("$server_pid")
wait_for 20 two_rows || fail "after a server restart the global unit is not reported on both machines"
same_pid_g() {
  [[ $("$fjord" status --machine "$id_b" --output json everywhere | "$json_check" 0.mainPID) == "$pid_g" ]]
}
wait_for 10 same_pid_g || fail "a unit restarted while the server was down"

# Cleanup through the API: destroy everything, the agents stop the units, SIGTERM detaches.
for u in $("$fjord" list-unit-files --no-legend | cut -f1); do "$fjord" destroy "$u" >/dev/null; done
none_left() { [[ -z $("$fjord" list-units --no-legend) ]]; }
wait_for 20 none_left || fail "units remain after destroy"
kill -TERM "$agent_a_pid"
wait "$agent_a_pid"
[[ $? -eq 0 ]] || fail "agent a did not exit 0 on SIGTERM"

finish
