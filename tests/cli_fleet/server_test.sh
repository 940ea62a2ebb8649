#!/usr/bin/env bash
# The fleet verbs against a real `fjord server` without agents: output columns, exit codes,
# error lines, --output json, local unit-file parsing, the stop dispatch rule.
# usage: server_test.sh FJORD_BINARY JSON_CHECK
fjord=${1:?fjord binary}
json_check=${2:?json_check binary}
source "$(dirname "$0")/lib.sh"
trap 'cleanup_processes; rm -rf "$work"' EXIT

# Server down: one line naming the endpoint and how to change it, exit 1.
FJORD_ENDPOINT=http://127.0.0.1:1 expect_exit 1 -- "$fjord" list-units
line_count "$work/err" 1
contains "$work/err" "http://127.0.0.1:1"
contains "$work/err" "FJORD_ENDPOINT"
expect_exit 1 -- "$fjord" list-machines --endpoint http://127.0.0.1:1
contains "$work/err" "http://127.0.0.1:1"

# fjord agent: bad flags are one line naming the flag.
expect_exit 2 -- "$fjord" agent --server http://127.0.0.1:1 --state-dir "$work/agent" --metadata region
contains "$work/err" "--metadata"
expect_exit 1 -- "$fjord" agent --server ftp://nowhere --state-dir "$work/agent"
contains "$work/err" "--server ftp://nowhere"
expect_exit 1 -- "$fjord" agent --server http://127.0.0.1:1 --state-dir "$work/agent" --public-ip x
contains "$work/err" "--public-ip"
expect_exit 1 -- "$fjord" agent --server http://127.0.0.1:1 --state-dir "$work/agent" \
  --machine-id 'a b'
contains "$work/err" "--machine-id"

start_server
units=$work/units
mkdir -p "$units"
printf '[Unit]\nDescription=hello\n\n[Service]\nExecStart=/bin/sleep 1000\n' >"$units/hello.service"
printf '[Service]\nExecStart=/bin/sleep 1000\nRestart=sometimes\n' >"$units/bad.service"
printf '[Service]\nExecStart=/bin/echo %%i\n' >"$units/web@.service"

# Empty cluster: headers only.
expect_exit 0 -- "$fjord" list-units
line_count "$work/out" 1
contains "$work/out" $'UNIT\tMACHINE\tACTIVE\tSUB'
expect_exit 0 -- "$fjord" list-units --no-legend
line_count "$work/out" 0
expect_exit 0 -- "$fjord" list-machines
contains "$work/out" $'MACHINE\tIP\tMETADATA'
expect_exit 0 -- "$fjord" list-machines --output json
is_json "$work/out" length 0

# submit: parsed locally; diagnostics as file:line: and exit 1 on errors.
expect_exit 0 -- "$fjord" submit "$units/hello.service"
contains "$work/out" "Unit hello.service inactive"
expect_exit 1 -- "$fjord" submit "$units/bad.service"
contains "$work/err" "bad.service:3:"
contains "$work/err" "Restart="
expect_exit 1 -- "$fjord" submit "$units/missing.service"
contains "$work/err" "missing.service"
# An instance comes from its template's file; the template itself can be submitted.
expect_exit 0 -- "$fjord" submit "$units/web@.service" "$units/web@1.service"
contains "$work/out" "Unit web@1.service inactive"
# Submitting again is not an error (fleetctl: the unit exists).
expect_exit 0 -- "$fjord" submit "$units/hello.service"

expect_exit 0 -- "$fjord" list-unit-files
contains "$work/out" $'UNIT\t\tHASH\tDSTATE\t\tSTATE\t\tTARGET'
line_count "$work/out" 4
hash=$("$fjord" list-unit-files --output json | "$json_check" 0.hash)
[[ ${#hash} -eq 40 ]] || fail "hash '$hash' is not a SHA-1"
contains "$work/out" $'hello.service\t'"${hash:0:7}"$'\tinactive\tinactive\t-'
expect_exit 0 -- "$fjord" list-unit-files --full
contains "$work/out" "$hash"
expect_exit 0 -- "$fjord" list-unit-files --output json
is_json "$work/out" length 3
is_json "$work/out" 0.name hello.service
is_json "$work/out" 0.desiredState inactive

# list-units shows what runs or should run: nothing yet (templates and inactive units are not).
expect_exit 0 -- "$fjord" list-units --no-legend
line_count "$work/out" 0

# cat, and the ".service" default for a bare name.
expect_exit 0 -- "$fjord" cat hello
contains "$work/out" "[Service]"
contains "$work/out" "ExecStart=/bin/sleep 1000"
contains "$work/out" "Description=hello"
expect_exit 0 -- "$fjord" cat web@1.service
contains "$work/out" "ExecStart=/bin/echo %i"

# Unknown units: one line naming the unit, exit 1.
for verb in cat status destroy explain; do
  expect_exit 1 -- "$fjord" "$verb" nope
  contains "$work/err" "nope.service"
  line_count "$work/err" 1
done
expect_exit 1 -- "$fjord" journal nope.service
contains "$work/err" "nope.service"
expect_exit 1 -- "$fjord" start nope.service --no-block
contains "$work/err" "nope.service"
# Templates are not started, only instances (or scaled).
expect_exit 1 -- "$fjord" start web@.service --no-block
contains "$work/err" "template"

# No machine: start does not block with --no-block; with attempts it gives up naming the unit.
expect_exit 0 -- "$fjord" start hello.service --no-block
expect_exit 1 -- "$fjord" start hello.service --block-attempts 2
contains "$work/err" "hello.service did not reach launched after 2 attempts"
expect_exit 0 -- "$fjord" list-units
contains "$work/out" $'hello.service\t-'
expect_exit 0 -- "$fjord" list-units --fields unit,dstate --no-legend
contains "$work/out" $'hello.service\tlaunched'
expect_exit 1 -- "$fjord" list-units --fields unit,bogus
expect_exit 0 -- "$fjord" list-units --output json
is_json "$work/out" 0.desiredState launched
expect_exit 0 -- "$fjord" explain hello
[[ -s $work/out ]] || fail "explain printed nothing"
# Not scheduled: status cannot reach an agent.
expect_exit 1 -- "$fjord" status hello.service
contains "$work/err" "hello.service"

# stop: no local container named "hello" (own --root), so it is the unit hello.service.
expect_exit 0 -- "$fjord" stop --root "$work/root" --no-block hello
expect_exit 0 -- "$fjord" list-units --fields unit,dstate --no-legend
contains "$work/out" $'hello.service\tloaded'
expect_exit 0 -- "$fjord" unload --no-block hello
expect_exit 0 -- "$fjord" list-unit-files
contains "$work/out" $'hello.service\t'"${hash:0:7}"$'\tinactive'

# scale a template (no machine: the instances are pending).
expect_exit 0 -- "$fjord" scale web@.service 2 --output json
is_json "$work/out"
expect_exit 1 -- "$fjord" scale hello.service 2
contains "$work/err" "not a template"

expect_exit 0 -- "$fjord" destroy hello.service web@1.service
contains "$work/out" "Destroyed hello.service"
contains "$work/out" "Destroyed web@1.service"
expect_exit 0 -- "$fjord" list-unit-files --no-legend
lacks "$work/out" "hello.service"
expect_exit 1 -- "$fjord" destroy hello.service
contains "$work/err" "hello.service"
expect_exit 1 -- "$fjord" stop --root "$work/root" --no-block hello
contains "$work/err" "hello.service"

finish
