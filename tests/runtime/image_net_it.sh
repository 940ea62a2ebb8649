#!/usr/bin/env bash
# Integration tests of `fjord run --image` and `--net bridge --publish`: the real fjord binary as
# root, each case in its own temp root, cgroup parent, bridge (fjr<pid>) and subnet; the trap
# removes the containers, the bridge and its iptables chains even when the case fails.
#   Usage: image_net_it.sh FJORD_BINARY CASE
set -uo pipefail
F=${1:?fjord binary}
CASE=${2:?case}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
source "$SRC/tests/lib/case.sh"

T=$(mktemp -d /tmp/fjord-imnet.XXXXXX)
R=$T/root
export FJORD_CGROUP_PARENT=fjord-imnet-$$-$CASE
export FJORD_BRIDGE=fjr$$
export FJORD_BRIDGE_OUTBOUND=0  # never touch the host's ip_forward
IMG=fjord-test/busybox:latest

# A /24 in 10.250.0.0/16, outside the net module's test range.
export FJORD_SUBNET=$(free_24 10.250).0/24

# Removes the bridge and every iptables rule and chain that carries its name.
remove_bridge() {
  ip link del "$FJORD_BRIDGE" 2>/dev/null
  local t line chain
  for t in nat filter; do
    iptables-save -t $t | grep -E -- "-j FJORD-[A-Z]+-$FJORD_BRIDGE( |\$)" | sed 's/^-A /-D /' |
      while read -r line; do eval "iptables -t $t $line"; done
    for chain in $(iptables-save -t $t | grep -oE "^:FJORD-[A-Z]+-$FJORD_BRIDGE " | tr -d ':'); do
      iptables -t $t -F "$chain"
      iptables -t $t -X "$chain"
    done
  done
}

HOST_SERVER=
cleanup() {
  [[ -n $HOST_SERVER ]] && kill "$HOST_SERVER" 2>/dev/null
  for c in $(ls "$R/containers" 2>/dev/null); do "$F" rm --root "$R" --force "$c" >/dev/null 2>&1; done
  remove_bridge
  for d in /sys/fs/cgroup/*/"$FJORD_CGROUP_PARENT" /sys/fs/cgroup/"$FJORD_CGROUP_PARENT"; do
    [[ -d $d ]] && rmdir "$d" 2>/dev/null
  done
  rm -rf "$T" 2>/dev/null || { sleep 0.2; rm -rf "$T"; }
}
trap cleanup EXIT

run() { "$F" run --root "$R" "$@"; }
# A field of `fjord inspect` (strings and numbers at any depth, first match).
inspect_field() {
  "$F" inspect --root "$R" "$1" | grep -m1 "\"$2\":" | sed -E 's/^[^:]*: *"?([^",]*)"?,?$/\1/'
}
# A free TCP port on loopback, derived from the pid.
free_port() {
  local p
  for ((p = ${1:-20000} + $$ % 20000; p < 65000; p++)); do
    [[ -z $(ss -Htan "sport = :$p") ]] && { echo $p; return; }
  done
}
leases() { ls "$R/net/$FJORD_BRIDGE/leases" 2>/dev/null | wc -l; }
container_rules() { iptables-save -t nat | grep -c "fjord:$FJORD_BRIDGE:c:"; }
ports_on_bridge() { ip -o link show master "$FJORD_BRIDGE" 2>/dev/null | wc -l; }
no_network_leftovers() {  # WHAT
  expect_eq 0 "$(leases)" "$1: address leases left"
  expect_eq 0 "$(container_rules)" "$1: DNAT rules left"
  expect_eq 0 "$(ports_on_bridge)" "$1: veths left on the bridge"
}

"$SRC/scripts/make-test-image.sh" "$T/image.tar" --name "$IMG" >/dev/null || fail "make-test-image"
"$F" image import --root "$R" "$T/image.tar" >/dev/null || fail "image import"

case $CASE in
image_run)
  expect_eq "fjord test image" "$(run --image "$IMG" -- cat /etc/fjord-release)" "file of layer 2"
  run --image "$IMG" -- test -e /removed.txt
  expect_eq 1 $? "the file layer 2 whites out is absent"
  expect_eq "new.txt" "$(run --image "$IMG" -- ls /opaque)" "opaque directory of layer 2"
  # The image's Cmd (sh) runs when no command is given: it reads its script from stdin (none).
  run --image "$IMG" </dev/null
  expect_eq 0 $? "image Cmd"
  run --image fjord-test/nosuch -- true 2>"$T/err"
  expect_eq 125 $? "unknown image"
  grep -q 'fjord-test/nosuch' "$T/err" || fail "unknown image error names it: $(cat "$T/err")"
  run --image "$IMG" --rootfs /tmp -- true 2>"$T/err"
  expect_eq 125 $? "--image with --rootfs"

  # Writes inside a container change neither the image's layers nor another container.
  mapfile -t layers < <("$F" image ls --root "$R" -o json | sed -n '/"layers"/,/]/p' |
    grep -o '"/[^"]*"' | tr -d '"')
  expect_eq 2 "${#layers[@]}" "layers of the image"
  fingerprint() { find "${layers[@]}" -printf '%p %s %m %T@\n' -type f -exec sha256sum {} + | sort | sha256sum; }
  before=$(fingerprint)
  run -d --name w1 --image "$IMG" -- sh -c 'echo one >/etc/fjord-release; rm /bin/cat; echo 1 >/tmp/mine; sleep 100' >/dev/null || fail "start w1"
  run -d --name w2 --image "$IMG" -- sh -c 'echo 2 >/tmp/mine; sleep 100' >/dev/null || fail "start w2"
  id1=$(inspect_field w1 id)
  id2=$(inspect_field w2 id)
  wait_for 10 test -s "$R/containers/$id1/upper/tmp/mine" || fail "w1 did not write"
  wait_for 10 test -s "$R/containers/$id2/upper/tmp/mine" || fail "w2 did not write"
  expect_eq "$before" "$(fingerprint)" "image layers after writes in containers"
  # What each container sees (its root through /proc).
  root1=/proc/$(inspect_field w1 pid)/root
  root2=/proc/$(inspect_field w2 pid)/root
  expect_eq one "$(cat "$root1/etc/fjord-release")" "w1 sees its write"
  expect_eq "fjord test image" "$(cat "$root2/etc/fjord-release")" "w2 does not see w1's write"
  [[ -e $root1/bin/cat ]] && fail "w1 still sees the file it removed"
  [[ -e $root2/bin/cat ]] || fail "w1's removal shows in w2"
  expect_eq 1 "$(cat "$root1/tmp/mine")" "w1's own file"
  expect_eq 2 "$(cat "$root2/tmp/mine")" "w2's own file"
  expect_eq "fjord test image" "$(run --image "$IMG" -- cat /etc/fjord-release)" "a new container after w1's write"
  # Nothing is copied to start a container: its directory is tiny next to the image.
  image_kb=$(du -sk "${layers[@]}" | awk '{s += $1} END {print s}')
  ctr_kb=$(du -skx "$R/containers/$id2" | cut -f1)
  ((image_kb > 1000)) || fail "test image is only ${image_kb}KiB"
  ((ctr_kb * 20 < image_kb)) || fail "container dir is ${ctr_kb}KiB next to a ${image_kb}KiB image"
  "$F" rm --root "$R" -f w1 && "$F" rm --root "$R" -f w2 || fail "rm"
  expect_eq "$before" "$(fingerprint)" "image layers after rm"
  ;;

image_config)
  # An image whose config sets Cmd, Env and WorkingDir: rewrite the docker-format config and
  # rename it after its new digest.
  "$SRC/scripts/make-test-image.sh" "$T/cfg" --format docker --name fjord-test/cfg:1 >/dev/null ||
    fail "make-test-image --format docker"
  old=$(ls "$T/cfg" | grep -E '^[0-9a-f]{64}\.json$')
  sed -e 's|"Cmd":\["sh"\]|"Cmd":["sh","-c","echo cwd=$(pwd) greeting=$GREETING extra=$EXTRA; echo \\"$@\\"","x"]|' \
    -e 's|"WorkingDir":"/"|"WorkingDir":"/etc"|' \
    -e 's|"Env":\["PATH=|"Env":["GREETING=hello","PATH=|' "$T/cfg/$old" >"$T/config.json"
  grep -q GREETING "$T/config.json" || fail "config rewrite"
  new=$(sha256sum "$T/config.json" | cut -d' ' -f1).json
  rm "$T/cfg/$old"
  mv "$T/config.json" "$T/cfg/$new"
  sed -i "s|$old|$new|" "$T/cfg/manifest.json"
  "$F" image import --root "$R" "$T/cfg" >/dev/null || fail "import the configured image"
  expect_eq "cwd=/etc greeting=hello extra=" "$(run --image fjord-test/cfg:1)" "Cmd, Env and WorkingDir"
  expect_eq "cwd=/tmp greeting=bye extra=1" \
    "$(run --image fjord-test/cfg:1 --workdir /tmp --env GREETING=bye --env EXTRA=1)" \
    "--workdir and --env override the image"
  expect_eq "/etc" "$(run --image fjord-test/cfg:1 -- pwd)" "a command replaces Cmd only"
  ;;

image_rm_in_use)
  # An image under a container (running or exited, not removed) keeps its layers.
  run -d --name user1 --image "$IMG" -- sleep 100 >/dev/null || fail "start user1"
  "$F" image rm --root "$R" "$IMG" 2>"$T/err"
  expect_eq 1 $? "image rm of an image in use"
  grep -q 'used by container user1' "$T/err" || fail "the error names the container: $(cat "$T/err")"
  "$F" image ls --root "$R" -q | grep -q . || fail "the image must still be listed"
  "$F" rm --root "$R" --force user1 >/dev/null || fail "rm user1"
  "$F" image rm --root "$R" "$IMG" >/dev/null
  expect_eq 0 $? "image rm once no container uses it"
  expect_eq "" "$("$F" image ls --root "$R" -q)" "no image left"
  ;;

bridge_ping)
  run -d --name a --image "$IMG" --net bridge -- sleep 100 >/dev/null || fail "start a"
  run -d --name b --image "$IMG" --net bridge -- sleep 100 >/dev/null || fail "start b"
  A=$(inspect_field a address)
  B=$(inspect_field b address)
  [[ $A == "${FJORD_SUBNET%.0/24}".* && $B == "${FJORD_SUBNET%.0/24}".* && $A != "$B" ]] ||
    fail "addresses $A and $B not distinct in $FJORD_SUBNET"
  # From inside each container's network namespace to the other (host busybox, netns only).
  nsenter -t "$(inspect_field a pid)" -n busybox ping -c1 -W3 "$B" >/dev/null || fail "a cannot ping b ($B)"
  nsenter -t "$(inspect_field b pid)" -n busybox ping -c1 -W3 "$A" >/dev/null || fail "b cannot ping a ($A)"
  # A containerised ping (raw socket under the default capabilities and seccomp filter).
  run --rm --image "$IMG" --net bridge -- busybox ping -c1 -W3 "$A" >"$T/out" 2>&1 ||
    fail "ping from a container: $(cat "$T/out")"
  expect_eq 2 "$(leases)" "leases of a and b (the --rm container released its own)"
  expect_eq 0 "$(run --rm --image "$IMG" --net none -- sh -c 'ls /sys/class/net | grep -vc lo')" "--net none has loopback only"
  "$F" rm --root "$R" -f a && "$F" rm --root "$R" -f b || fail "rm"
  no_network_leftovers "after rm -f"
  # Bad bridge settings: a clear error naming the variable or value, nothing started.
  FJORD_BRIDGE_OUTBOUND=yes run --image "$IMG" --net bridge -- true 2>"$T/err"
  expect_eq 125 $? "FJORD_BRIDGE_OUTBOUND=yes"
  grep -q 'FJORD_BRIDGE_OUTBOUND' "$T/err" || fail "outbound message: $(cat "$T/err")"
  FJORD_SUBNET=10.250.0.1/24 run --image "$IMG" --net bridge -- true 2>"$T/err"
  expect_eq 125 $? "subnet with host bits"
  grep -q '10.250.0.1/24' "$T/err" || fail "subnet message: $(cat "$T/err")"
  run --image "$IMG" --publish 8080:80 -- true 2>"$T/err"
  expect_eq 125 $? "--publish without --net bridge"
  grep -q 'net bridge' "$T/err" || fail "publish message: $(cat "$T/err")"
  expect_eq 0 "$(ls "$R/containers" | wc -l)" "containers left by failed starts"
  ;;

bridge_publish)
  P=$(free_port)
  run -d --name web --image "$IMG" --net bridge --publish "$P:80" -- \
    sh -c 'echo hello-from-web >/tmp/index.html; exec busybox httpd -f -p 80 -h /tmp' >/dev/null ||
    fail "start web"
  wait_for 10 sh -c "curl -sf --max-time 2 http://127.0.0.1:$P/index.html >$T/page" ||
    fail "published port $P does not answer"
  expect_eq hello-from-web "$(cat "$T/page")" "page through the published port"
  expect_eq "$P" "$(inspect_field web host_port)" "inspect shows the published port"
  # The same host port again: a clear error, and nothing left of the second container.
  run -d --name web2 --image "$IMG" --net bridge --publish "$P:80" -- sleep 100 2>"$T/err"
  expect_eq 125 $? "second publish of port $P"
  grep -q "host port $P/tcp is already published" "$T/err" || fail "conflict message: $(cat "$T/err")"
  expect_eq 1 "$(leases)" "leases after the failed start"
  "$F" inspect --root "$R" web2 >/dev/null 2>&1 && fail "web2 exists after its failed start"
  # A host process on the port is refused too.
  Q=$(free_port $((P + 1 - $$ % 20000)))
  busybox httpd -f -p "127.0.0.1:$Q" -h "$T" &
  HOST_SERVER=$!
  wait_for 5 sh -c "ss -Htln 'sport = :$Q' | grep -q ." || fail "host httpd did not listen"
  run -d --image "$IMG" --net bridge --publish "$Q:80" -- sleep 100 2>"$T/err"
  expect_eq 125 $? "publish of a port a host process holds"
  kill "$HOST_SERVER"
  HOST_SERVER=
  grep -q "in use by a process on this host" "$T/err" || fail "host port message: $(cat "$T/err")"
  # Stop releases the port: another container can publish it.
  "$F" stop --root "$R" -t 0 web || fail "stop web"
  expect_eq 0 "$(leases)" "leases after stop"
  run -d --name web3 --image "$IMG" --net bridge --publish "$P:80" -- \
    sh -c 'echo three >/tmp/index.html; exec busybox httpd -f -p 80 -h /tmp' >/dev/null ||
    fail "publish $P after stop"
  wait_for 10 sh -c "curl -sf --max-time 2 http://127.0.0.1:$P/index.html >$T/page" ||
    fail "port $P after restart"
  expect_eq three "$(cat "$T/page")" "the new container answers"
  "$F" rm --root "$R" -f web && "$F" rm --root "$R" -f web3 || fail "rm"
  no_network_leftovers "after rm -f"
  curl -s --max-time 2 "http://127.0.0.1:$P/" >/dev/null && fail "port $P still answers after rm"
  ;;

bridge_recover)
  P=$(free_port)
  # Exits on its own: the next fjord command releases its lease and port.
  run -d --name brief --image "$IMG" --net bridge --publish "$P:80" -- sleep 0.3 >/dev/null || fail "start brief"
  expect_eq 1 "$(leases)" "lease while running"
  wait_for 10 sh -c "'$F' ps --root '$R' --all | grep -q 'brief .*exited (0)'" || fail "brief did not exit"
  "$F" ps --root "$R" >/dev/null
  expect_eq 0 "$(leases)" "lease after the container exited"
  expect_eq 0 "$(container_rules)" "DNAT rule after the container exited"
  # Its monitor is killed: Recover tears the container down, network included.
  run -d --name orphan --image "$IMG" --net bridge --publish "$P:80" -- sleep 100 >/dev/null || fail "start orphan"
  id=$(inspect_field orphan id)
  monitor=$(grep -o '"monitor_pid": [0-9]*' "$R/containers/$id/running.json" | grep -o '[0-9]*$')
  [[ -n $monitor ]] || fail "no monitor pid in running.json"
  kill -9 "$monitor"
  wait_for 5 sh -c "! kill -0 $monitor 2>/dev/null" || fail "monitor did not die"
  "$F" ps --root "$R" --all >/dev/null
  no_network_leftovers "after Recover"
  # --rm on the bridge: the foreground run releases the network and removes the container.
  run --rm --name fg --image "$IMG" --net bridge --publish "$P:80" -- sh -c 'exit 4'
  expect_eq 4 $? "exit code of a bridge --rm run"
  expect_eq 0 "$(leases)" "lease after a bridge --rm run"
  expect_eq 0 "$(container_rules)" "DNAT rule after a bridge --rm run"
  [[ -e $R/names/fg ]] && fail "bridge --rm run left its name"
  # Detached, it exits on its own: the next fjord command releases the network and removes it.
  run -d --rm --name bg --image "$IMG" --net bridge --publish "$P:80" -- sleep 0.3 >/dev/null ||
    fail "start detached bridge --rm"
  expect_eq 1 "$(leases)" "lease while the detached --rm container runs"
  sleep 1
  "$F" ps --root "$R" --all | grep -q ' bg ' && fail "detached bridge --rm container not removed"
  expect_eq 0 "$(leases)" "lease after a detached bridge --rm container exited"
  expect_eq 0 "$(container_rules)" "DNAT rule after a detached bridge --rm container exited"
  ;;

*) fail "unknown case" ;;
esac
echo "PASS [$CASE]"
