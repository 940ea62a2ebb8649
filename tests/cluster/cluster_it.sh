#!/usr/bin/env bash
# A fjord cluster on one host: the real `fjord server` and three real `fjord agent`s, each agent
# in its own network namespace with its own address on a test bridge, so they look like three
# machines. Each case gets its own bridge (fjc<pid>), /24, namespaces, ports, state dirs and
# machine ids; the trap kills every process of the cluster (units too: they outlive agents by
# design) and removes namespaces, bridge, cgroups and files even when the case fails.
#   Usage: cluster_it.sh FJORD_BINARY CASE
set -uo pipefail
F=${1:?fjord binary}
CASE=${2:?case}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
source "$SRC/tests/lib/case.sh"

T=$(mktemp -d /tmp/fjord-cluster.XXXXXX)
ID=$$
BR=fjc$ID
GRACE=${GRACE:-2s}

NET=$(free_24 10.251)  # a /24 in 10.251.0.0/16 that no route uses yet
SERVER_IP=$NET.1
PORT=7777
ENDPOINT=http://$SERVER_IP:$PORT
export FJORD_ENDPOINT=$ENDPOINT

ns() { echo "fjc${ID}n$1"; }
agent_ip() { echo "$NET.$((10 + $1))"; }
machine_id() { printf 'c%07da%d%023d' "$ID" "$1" 0; }

SERVER_PID=
declare -A AGENT_PID

cleanup() {
  local i pid d
  [[ -n $SERVER_PID ]] && kill -9 "$SERVER_PID" 2>/dev/null
  for i in 1 2 3; do
    # Agents, their unit shims, units and container monitors all live in the agent's netns.
    for pid in $(ip netns pids "$(ns "$i")" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  done
  for i in 1 2 3; do
    # Containers of [Container] units run in their own network namespaces: find them by cgroup.
    find /sys/fs/cgroup -name cgroup.procs -path "*$(machine_id "$i")*" -exec cat {} + 2>/dev/null |
      while read -r pid; do kill -9 "$pid" 2>/dev/null; done
  done
  sleep 0.2
  for i in 1 2 3; do
    ip netns del "$(ns "$i")" 2>/dev/null
    # Cgroups the agent created carry its machine id; remove the deepest first.
    find /sys/fs/cgroup -depth -type d -name "*$(machine_id "$i")*" 2>/dev/null |
      while read -r d; do
        find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
      done
  done
  ip link del "$BR" 2>/dev/null
  rm -rf "$T" 2>/dev/null || { sleep 0.5; rm -rf "$T"; }
}
trap cleanup EXIT

on_failure() {  # called by fail()
  echo "--- units:"; curl -s "$ENDPOINT/v1/units" 2>&1 | head -c 4000; echo
  echo "--- machines:"; curl -s "$ENDPOINT/v1/machines" 2>&1 | head -c 2000; echo
  echo "--- server log:"; tail -n 30 "$T/server.log" 2>/dev/null
  local i
  for i in 1 2 3; do
    echo "--- agent $i log:"; tail -n 15 "$T/agent$i.log" 2>/dev/null
  done
}

setup_network() {
  ip link add "$BR" type bridge || fail "create bridge $BR"
  ip addr add "$SERVER_IP/24" dev "$BR"
  ip link set "$BR" up
  local i n
  for i in 1 2 3; do
    n=$(ns "$i")
    ip netns add "$n" || fail "create netns $n"
    ip link add "fjc${ID}h$i" type veth peer name eth0 netns "$n"
    ip link set "fjc${ID}h$i" master "$BR" up
    ip -n "$n" addr add "$(agent_ip "$i")/24" dev eth0
    ip -n "$n" link set eth0 up
    ip -n "$n" link set lo up
  done
}

start_server() {
  "$F" server --listen "$SERVER_IP:$PORT" --data-dir "$T/server" --heartbeat-grace "$GRACE" \
    >>"$T/server.log" 2>&1 &
  SERVER_PID=$!
  disown "$SERVER_PID"  # killed on purpose: no "Killed" job notice
  wait_for 10 curl -sf -o /dev/null "$ENDPOINT/fleet/v1/machines" || fail "server did not answer"
}

METADATA=([1]="region=no-oslo,disk=nvme" [2]="region=no-bergen,disk=ssd" [3]="region=se-sto,disk=nvme")
start_agent() {  # start_agent N
  local i=$1
  # nsenter switches only the network namespace: `ip netns exec` would also remount /sys and
  # hide the cgroup hierarchies from the agent.
  # Each agent's images, container state and bridge leases stay under the test's directory; the
  # bridge for [Container] units is created inside the agent's own namespace.
  FJORD_ROOT="$T/root$i" FJORD_BRIDGE=fjcbr FJORD_SUBNET=10.89.$i.0/24 FJORD_BRIDGE_OUTBOUND=0 \
    nsenter --net="/run/netns/$(ns "$i")" "$F" agent --server "$ENDPOINT" --state-dir "$T/agent$i" \
    --machine-id "$(machine_id "$i")" --metadata "${METADATA[$i]}" \
    --public-ip "$(agent_ip "$i")" --listen "$(agent_ip "$i"):7780" >>"$T/agent$i.log" 2>&1 &
  AGENT_PID[$i]=$!
  disown "${AGENT_PID[$i]}"
}

machines_alive() {  # machines_alive N: N machines registered and alive
  [[ $(curl -sf "$ENDPOINT/v1/machines" | jq '[.machines[] | select(.alive)] | length') == "$1" ]]
}

start_cluster() {
  setup_network
  start_server
  local i
  for i in 1 2 3; do start_agent "$i"; done
  wait_for 15 machines_alive 3 || fail "3 agents did not register"
}

# unit_file NAME CONTENT: writes $T/units/NAME
unit_file() {
  mkdir -p "$T/units"
  printf '%s\n' "$2" >"$T/units/$1"
  echo "$T/units/$1"
}

# submit_start NAME CONTENT: creates the unit launched through the fleet API.
launch() {
  local name=$1 body
  body=$(jq -n --arg text "$2" '{desiredState:"launched", unitFile:$text}')
  local code
  code=$(curl -s -o "$T/put.out" -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
    --data "$body" "$ENDPOINT/v1/units/$name")
  [[ $code == 201 || $code == 200 ]] || fail "launch $name: HTTP $code $(cat "$T/put.out")"
}

# Reported states of one unit: "machineID activeState subState" lines, sorted.
unit_states() {
  curl -sf "$ENDPOINT/fleet/v1/state?unitName=$1" |
    jq -r '.states[]? | "\(.machineID) \(.systemdActiveState) \(.systemdSubState)"' | sort
}
running_on() {  # running_on UNIT: machine ids where the unit runs
  unit_states "$1" | awk '$2 == "active" && $3 == "running" {print $1}'
}
count_running() { running_on "$1" | grep -c .; }
is_running_count() { [[ $(count_running "$1") == "$2" ]]; }
machine_of_unit() { curl -sf "$ENDPOINT/fleet/v1/units/$1" | jq -r '.machineID // ""'; }
main_pid() {  # main_pid UNIT: the main PID the agent reports
  curl -sf "$ENDPOINT/v1/units/$1" | jq -r '.states[0].mainPID // 0'
}

SLEEPER='[Service]
ExecStart=/bin/sleep 1000'

start_cluster

case $CASE in
global)
  launch g.service "$SLEEPER
[X-Fleet]
Global=true"
  wait_for 20 is_running_count g.service 3 || fail "global unit not running on 3 machines"
  ;;

metadata)
  launch oslo.service "$SLEEPER
[X-Fleet]
MachineMetadata=region=no-oslo"
  launch nvme.service "$SLEEPER
[X-Fleet]
MachineMetadata=disk=nvme
MachineMetadata=region=se-sto"
  launch nowhere.service "$SLEEPER
[X-Fleet]
MachineMetadata=region=us-east"
  wait_for 20 is_running_count oslo.service 1 || fail "oslo.service not running"
  expect_eq "$(machine_id 1)" "$(running_on oslo.service)" "oslo.service machine"
  wait_for 20 is_running_count nvme.service 1 || fail "nvme.service not running"
  expect_eq "$(machine_id 3)" "$(running_on nvme.service)" "nvme.service machine"
  reason=$(curl -sf "$ENDPOINT/v1/units/nowhere.service" | jq -r '.reason // ""')
  [[ -n $reason ]] || fail "an unplaceable unit must say why"
  [[ -z $(machine_of_unit nowhere.service) ]] || fail "nowhere.service must stay unscheduled"
  ;;

conflicts)
  for i in 1 2 3; do
    launch "c$i.service" "$SLEEPER
[X-Fleet]
Conflicts=c*.service"
  done
  launch c4.service "$SLEEPER
[X-Fleet]
Conflicts=c*.service"
  for i in 1 2 3; do wait_for 20 is_running_count "c$i.service" 1 || fail "c$i not running"; done
  machines=$(for i in 1 2 3; do running_on "c$i.service"; done | sort -u | wc -l)
  expect_eq 3 "$machines" "three conflicting units on three machines"
  [[ -z $(machine_of_unit c4.service) ]] || fail "a fourth conflicting unit has no machine left"
  ;;

machineof)
  launch db.service "$SLEEPER"
  wait_for 20 is_running_count db.service 1 || fail "db not running"
  launch app.service "$SLEEPER
[X-Fleet]
MachineOf=db.service"
  wait_for 20 is_running_count app.service 1 || fail "app not running"
  expect_eq "$(running_on db.service)" "$(running_on app.service)" "MachineOf puts app beside db"
  ;;

replaces)
  launch old.service "$SLEEPER
[X-Fleet]
MachineMetadata=region=no-oslo"
  wait_for 20 is_running_count old.service 1 || fail "old not running"
  launch new.service "$SLEEPER
[X-Fleet]
Replaces=old.service"
  wait_for 20 is_running_count new.service 1 || fail "new not running"
  [[ $(running_on new.service) != "$(machine_id 1)" ]] || fail "new.service beside old.service"
  ;;

template)
  # The template itself is never scheduled; its instances are (fleetctl start web@N.service
  # finds the submitted template), each with its own %i; `fjord scale` keeps N of them.
  tmpl=$(unit_file web@.service '[Service]
ExecStart=/bin/sh -c "echo instance %i; exec sleep 1000"')
  "$F" submit "$tmpl" >/dev/null || fail "submit the template"
  "$F" start --no-block web@1.service web@2.service >/dev/null || fail "start two instances"
  for i in 1 2; do wait_for 20 is_running_count "web@$i.service" 1 || fail "web@$i not running"; done
  [[ -z $(unit_states web@.service) ]] || fail "the template must not run"
  "$F" journal --lines 5 web@2.service 2>&1 | grep -q "instance 2" ||
    fail "journal of web@2: $("$F" journal --lines 5 web@2.service 2>&1)"
  "$F" scale web@.service 4 >/dev/null || fail "scale to 4"
  for i in 3 4; do wait_for 20 is_running_count "web@$i.service" 1 || fail "web@$i not running after scale"; done
  "$F" scale web@.service 1 >/dev/null || fail "scale to 1"
  gone() { [[ -z $(curl -sf "$ENDPOINT/fleet/v1/units" | jq -r '.units[].name' | grep -E '^web@[234]\.service$') ]]; }
  wait_for 20 gone || fail "scale down removes the newest instances"
  wait_for 20 is_running_count web@1.service 1 || fail "web@1 survives the scale down"
  ;;

restart)
  launch flaky.service '[Service]
ExecStart=/bin/sh -c "sleep 0.3; exit 3"
Restart=on-failure
RestartSec=200ms'
  restarts() { curl -sf "$ENDPOINT/v1/units/flaky.service" | jq -r '.states[0].restarts // 0'; }
  restarted_twice() { (($(restarts) >= 2)); }
  wait_for 20 restarted_twice || fail "Restart=on-failure did not restart (restarts=$(restarts))"
  ;;

agent_kill)
  launch mover.service "$SLEEPER"
  wait_for 20 is_running_count mover.service 1 || fail "mover not running"
  from=$(running_on mover.service)
  for i in 1 2 3; do [[ $(machine_id "$i") == "$from" ]] && victim=$i; done
  kill -9 "${AGENT_PID[$victim]}"
  # The machine's units die with it (as when a machine is lost).
  for pid in $(ip netns pids "$(ns "$victim")"); do kill -9 "$pid" 2>/dev/null; done
  moved() { local m; m=$(running_on mover.service); [[ -n $m && $m != "$from" ]]; }
  wait_for 30 moved || fail "mover.service did not move off the lost machine"
  # The machine comes back: it must not get a duplicate.
  start_agent "$victim"
  wait_for 15 machines_alive 3 || fail "the lost agent did not come back"
  sleep 3
  expect_eq 1 "$(count_running mover.service)" "mover.service instances after the machine returned"
  ;;

agent_restart)
  launch keep.service "$SLEEPER"
  wait_for 20 is_running_count keep.service 1 || fail "keep not running"
  pid_before=$(main_pid keep.service)
  host=$(running_on keep.service)
  for i in 1 2 3; do [[ $(machine_id "$i") == "$host" ]] && victim=$i; done
  kill -9 "${AGENT_PID[$victim]}"
  kill -0 "$pid_before" 2>/dev/null || fail "the unit died with its agent"
  start_agent "$victim"
  sleep 3
  wait_for 20 is_running_count keep.service 1 || fail "keep not running after agent restart"
  expect_eq "$pid_before" "$(main_pid keep.service)" "main PID after the agent restarted"
  ;;

server_kill)
  # Writers PUT units while the server is killed; every acknowledged unit must survive.
  acked=$T/acked
  : >"$acked"
  writer() {
    local w=$1 n code
    for ((n = 0; n < 400; n++)); do
      code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT \
        --data '{"desiredState":"loaded","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]}' \
        "$ENDPOINT/fleet/v1/units/w$w-$n.service" 2>/dev/null)
      [[ $code == 201 ]] && echo "w$w-$n.service" >>"$acked.$w"
    done
  }
  writers=()
  for w in 1 2 3 4; do
    writer "$w" &
    writers+=($!)
  done
  sleep 1.5
  kill -9 "$SERVER_PID"
  wait "${writers[@]}"
  cat "$acked".* >"$acked" 2>/dev/null
  n_acked=$(wc -l <"$acked")
  ((n_acked > 0)) || fail "no write was acknowledged before the kill"
  start_server
  curl -sf "$ENDPOINT/fleet/v1/units" >/dev/null || fail "list after restart"
  all_units() {
    local tok="" out
    while :; do
      out=$(curl -sf "$ENDPOINT/fleet/v1/units${tok:+?nextPageToken=$tok}") || return 1
      jq -r '.units[]?.name' <<<"$out"
      tok=$(jq -r '.nextPageToken // ""' <<<"$out")
      [[ -z $tok ]] && break
    done
  }
  all_units | sort >"$T/present"
  missing=$(sort "$acked" | comm -23 - "$T/present")
  [[ -z $missing ]] || fail "acknowledged units lost after kill -9: $(head -5 <<<"$missing")"
  echo "acknowledged before kill -9: $n_acked, all present after restart"
  ;;

container_publish)
  # A [Container] unit (Quadlet style) with a published port, pinned to machine 1: the port
  # answers on that machine's loopback, and its output is in the unit's journal.
  "$SRC/scripts/make-test-image.sh" "$T/image.tar" --name fjord-test/busybox:latest >/dev/null ||
    fail "make-test-image"
  "$F" image import --root "$T/root1" "$T/image.tar" >/dev/null || fail "image import"
  launch web.service '[Unit]
Description=web in a container

[Container]
Image=fjord-test/busybox:latest
Exec=sh -c "mkdir -p /www && echo hello-from-container >/www/index.html && echo serving && exec httpd -f -p 80 -h /www"
PublishPort=8080:80

[X-Fleet]
MachineMetadata=region=no-oslo'
  wait_for 30 is_running_count web.service 1 || fail "web.service not running"
  expect_eq "$(machine_id 1)" "$(running_on web.service)" "web.service machine"
  answers() {
    [[ $(nsenter --net="/run/netns/$(ns 1)" curl -s --max-time 2 http://127.0.0.1:8080/) == hello-from-container ]]
  }
  wait_for 20 answers || fail "the published port does not answer on machine 1's loopback"
  "$F" journal --lines 10 web.service 2>&1 | grep -q serving ||
    fail "container output in the journal: $("$F" journal --lines 10 web.service 2>&1)"
  timeout 5 "$F" journal -f web.service >"$T/follow" 2>&1 &
  follower=$!
  sleep 1
  grep -q serving "$T/follow" || fail "journal -f of a container unit: $(cat "$T/follow")"
  kill "$follower" 2>/dev/null
  "$F" destroy web.service >/dev/null || fail "destroy web.service"
  gone() { ! answers; }
  wait_for 20 gone || fail "the port still answers after destroy"
  ;;

machine_update)
  # A machine's metadata changes while it is alive: its agent restarts with other --metadata,
  # then an operator patches metadata through fleet's API. Units that no longer match move;
  # the others keep running where they are.
  m1=$(machine_id 1)
  m2=$(machine_id 2)
  launch oslo.service "$SLEEPER
[X-Fleet]
MachineMetadata=region=no-oslo"
  launch keep.service "$SLEEPER
[X-Fleet]
MachineID=$m1"
  wait_for 20 is_running_count oslo.service 1 || fail "oslo.service not running"
  expect_eq "$m1" "$(running_on oslo.service)" "oslo.service machine"
  wait_for 20 is_running_count keep.service 1 || fail "keep.service not running"
  pid_before=$(main_pid keep.service)
  kill -9 "${AGENT_PID[1]}"
  METADATA[1]="region=se-sto,disk=nvme"
  start_agent 1
  oslo_gone() { [[ -z $(machine_of_unit oslo.service) ]] && is_running_count oslo.service 0; }
  wait_for 20 oslo_gone || fail "oslo.service must leave a machine no longer in no-oslo"
  curl -sf "$ENDPOINT/v1/units/oslo.service" | jq -e '.reason | test("MachineMetadata")' \
    >/dev/null || fail "oslo.service must say why it waits"
  code=$(curl -s -o "$T/patch.out" -w '%{http_code}' -X PATCH \
    --data "[{\"op\":\"replace\",\"path\":\"/$m2/metadata/region\",\"value\":\"no-oslo\"}]" \
    "$ENDPOINT/fleet/v1/machines")
  expect_eq 204 "$code" "PATCH /fleet/v1/machines ($(cat "$T/patch.out"))"
  region=$(curl -sf "$ENDPOINT/fleet/v1/machines" |
    jq -r --arg m "$m2" '.machines[] | select(.id == $m) | .metadata.region')
  expect_eq no-oslo "$region" "patched region of machine 2"
  on_m2() { [[ $(running_on oslo.service) == "$m2" ]]; }
  wait_for 20 on_m2 || fail "oslo.service must run on the patched machine"
  expect_eq "$pid_before" "$(main_pid keep.service)" "keep.service main PID (it never moved)"
  ;;

fleet_api)
  # fleet's API v1 status codes and bodies, as curl sees them.
  api() {  # api METHOD PATH [BODY]: prints "CODE BODY"
    curl -s -o "$T/body" -w '%{http_code}' -X "$1" ${3:+--data "$3"} "$ENDPOINT/fleet/v1$2"
    echo " $(cat "$T/body")"
  }
  opts='"options":[{"section":"Service","name":"ExecStart","value":"/bin/sleep 1000"}]'
  expect_eq "201 " "$(api PUT /units/a.service "{\"desiredState\":\"launched\",$opts}")" "create"
  expect_eq "204 " "$(api PUT /units/a.service '{"desiredState":"loaded"}')" "modify desired state"
  r=$(api PUT /units/b.service '{"desiredState":"launched"}')
  expect_eq 409 "${r%% *}" "create without options"
  r=$(api PUT /units/c.service "{\"name\":\"d.service\",\"desiredState\":\"launched\",$opts}")
  expect_eq 400 "${r%% *}" "body name differs from the URL"
  r=$(api PUT /units/c.service '{"desiredState":')
  expect_eq 400 "${r%% *}" "malformed JSON"
  jq -e '.error.code == 400 and (.error.message | length > 0)' "$T/body" >/dev/null ||
    fail "error body: $(cat "$T/body")"
  r=$(api PUT /units/e.service '{"desiredState":"launched","options":[{"section":"Service","name":"ExecStartPRE","value":"/bin/true"}]}')
  expect_eq 400 "${r%% *}" "invalid unit (no ExecStart)"
  r=$(api GET /units/nosuch.service)
  expect_eq 404 "${r%% *}" "get unknown unit"
  r=$(api DELETE /units/nosuch.service)
  expect_eq 404 "${r%% *}" "delete unknown unit"
  r=$(api GET /units/a.service)
  expect_eq 200 "${r%% *}" "get unit"
  jq -e '.name == "a.service" and .desiredState == "loaded" and (.options | length == 1)' \
    "$T/body" >/dev/null || fail "unit body: $(cat "$T/body")"
  r=$(api GET /units)
  jq -e '[.units[].name] == ["a.service"]' "$T/body" >/dev/null || fail "list: $(cat "$T/body")"
  r=$(api GET "/units?nextPageToken=garbage")
  expect_eq 400 "${r%% *}" "bad page token"
  r=$(api GET /machines)
  jq -e '(.machines | length) == 3 and ([.machines[].metadata.region] | sort) ==
         ["no-bergen","no-oslo","se-sto"]' "$T/body" >/dev/null || fail "machines: $(cat "$T/body")"
  loaded_state() { [[ $(curl -sf "$ENDPOINT/fleet/v1/state?unitName=a.service" | jq -r '.states[0].systemdLoadState // ""') == loaded ]]; }
  wait_for 20 loaded_state || fail "state of a loaded unit: $(curl -s "$ENDPOINT/fleet/v1/state")"
  r=$(api GET "/state?machineID=nosuch")
  jq -e '(.states // []) | length == 0' "$T/body" >/dev/null || fail "state filter: $(cat "$T/body")"
  head -c 2000000 /dev/zero | tr '\0' x >"$T/big"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$T/big" "$ENDPOINT/fleet/v1/units/big.service")
  expect_eq 413 "$code" "oversized body"
  expect_eq "204 " "$(api DELETE /units/a.service)" "destroy"
  r=$(api GET /units/a.service)
  expect_eq 404 "${r%% *}" "get after destroy"
  ;;

*)
  fail "unknown case $CASE"
  ;;
esac
echo "ok [$CASE]"
