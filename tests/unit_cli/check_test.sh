#!/usr/bin/env bash
# Runs `fjord unit check` the way a user would and checks exit codes and output.
# usage: check_test.sh FJORD_BINARY EXAMPLES_DIR
set -uo pipefail
fjord=${1:?fjord binary}
examples=${2:?examples dir}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# expect_exit CODE -- command...: runs the command, keeps stdout in $work/out.
expect_exit() {
  local want=$1
  shift 2
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  if [[ $got -ne $want ]]; then
    fail "'$*' exited $got, want $want"
    sed 's/^/  | /' "$work/out" "$work/err" >&2
  fi
}

contains() {  # contains FILE TEXT
  grep -qF -- "$2" "$1" || { fail "output lacks: $2"; sed 's/^/  | /' "$1" >&2; }
}

cd "$examples" || exit 1

# The example users bring: a warning at line 9 naming the key, the fix and the consequence.
expect_exit 0 -- "$fjord" unit check nginx-cache.service
contains "$work/out" 'nginx-cache.service:9:1: warning: unknown key "ExecStartPRE" in [Service]; did you mean "ExecStartPre"? systemd ignores unknown keys, so this line would never run'
contains "$work/out" "1 warning"

# --strict: warnings fail the check.
expect_exit 1 -- "$fjord" unit check --strict nginx-cache.service
contains "$work/out" "warnings fail"

# --json: a machine-readable array (parsed for real by unit_cli_json_test).
expect_exit 0 -- "$fjord" unit check --json nginx-cache.service
contains "$work/out" '"line": 9'
contains "$work/out" '"suggestion": "ExecStartPre"'

# Every other example checks clean, even with --strict; several files in one call.
others=()
for f in *.service; do [[ $f == nginx-cache.service ]] || others+=("$f"); done
[[ ${#others[@]} -ge 3 ]] || fail "expected at least 3 more examples, found ${#others[@]}"
expect_exit 0 -- "$fjord" unit check --strict "${others[@]}"
contains "$work/out" "checked ${#others[@]} files: 0 errors, 0 warnings"

# Several files: diagnostics from each, one exit code for all.
expect_exit 0 -- "$fjord" unit check nginx-cache.service "${others[0]}"
contains "$work/out" "checked 2 files: 0 errors, 1 warning"

# Errors always fail, with --strict or not; the message names file, line and column.
printf '[Service]\nExecStart=/bin/true\nTimeoutStartSec=soon\n' >"$work/bad.service"
expect_exit 1 -- "$fjord" unit check "$work/bad.service"
contains "$work/out" "bad.service:3:17: error: invalid TimeoutStartSec="

# An unreadable file: a clear error and exit 1.
expect_exit 1 -- "$fjord" unit check "$work/missing.service"
contains "$work/out" "cannot read $work/missing.service: No such file or directory"
expect_exit 1 -- "$fjord" unit check --json "$work"
contains "$work/out" "is a directory"

# Binary garbage: diagnostics, not a crash.
head -c 4096 /dev/urandom >"$work/garbage.service"
"$fjord" unit check "$work/garbage.service" >"$work/out" 2>&1
code=$?
[[ $code -eq 1 ]] || fail "garbage: exit $code, want 1"

# A file name that is not a unit name is an error too.
cp nginx-cache.service "$work/nginx cache"
expect_exit 1 -- "$fjord" unit check "$work/nginx cache"
contains "$work/out" "not a unit name"

# No file at all is a usage error.
expect_exit 2 -- "$fjord" unit check

if ((failures > 0)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "unit_cli: all checks passed"
