# Shared helpers of the cli_fleet tests. Source after setting $fjord and $json_check.
set -uo pipefail
work=$(mktemp -d /tmp/fjord-cli-fleet.XXXXXX)
failures=0
pids=()

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# expect_exit CODE -- command...: runs the command; stdout in $work/out, stderr in $work/err.
expect_exit() {
  local want=$1
  shift 2
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  if [[ $got -ne $want ]]; then
    fail "'$*' exited $got, want $want"
    sed 's/^/  out| /' "$work/out" >&2
    sed 's/^/  err| /' "$work/err" >&2
  fi
}

contains() {  # contains FILE TEXT
  grep -qF -- "$2" "$1" || { fail "$(basename "$1") lacks: $2"; sed 's/^/  | /' "$1" >&2; }
}
lacks() {  # lacks FILE TEXT
  if grep -qF -- "$2" "$1"; then fail "$(basename "$1") has: $2"; sed 's/^/  | /' "$1" >&2; fi
}
line_count() {  # line_count FILE N
  local n
  n=$(wc -l <"$1")
  [[ $n -eq $2 ]] || { fail "$(basename "$1") has $n lines, want $2"; sed 's/^/  | /' "$1" >&2; }
}
is_json() {  # is_json FILE [PATH [WANT]]
  local got
  if ! got=$("$json_check" "${@:2:1}" <"$1"); then
    fail "$(basename "$1") is not JSON or lacks ${2:-}"
    sed 's/^/  | /' "$1" >&2
    return
  fi
  if [[ $# -ge 3 && "$got" != "$3" ]]; then fail "JSON ${2}: got '$got', want '$3'"; fi
}

# count_rows UNIT ACTIVE SUB (anchored awk regexes): list-units rows that match. Columns are
# split on runs of tabs, as their padding depends on the other rows.
count_rows() {
  "$fjord" list-units --no-legend |
    awk -F'\t+' -v u="^($1)\$" -v a="^($2)\$" -v s="^($3)\$" '$1 ~ u && $3 ~ a && $4 ~ s' | wc -l
}

# wait_for SECONDS command...: polls until the command succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# start_server: a server on a free port with its own data dir; exports FJORD_ENDPOINT.
start_server() {
  "$fjord" server --listen 127.0.0.1:0 --data-dir "$work/server" --heartbeat-grace 3s \
    >"$work/server.url" 2>"$work/server.log" &
  server_pid=$!
  pids+=("$server_pid")
  if ! wait_for 20 grep -q http "$work/server.url"; then
    echo "FAIL: fjord server did not start" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  FJORD_ENDPOINT=$(head -1 "$work/server.url")
  export FJORD_ENDPOINT
}

cleanup_processes() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
}

finish() {
  if [[ $failures -gt 0 ]]; then
    echo "--- server log" >&2
    tail -40 "$work/server.log" >&2
    for log in "$work"/agent-*.log; do
      [[ -f $log ]] || continue
      echo "--- $(basename "$log")" >&2
      tail -30 "$log" >&2
    done
    echo "$failures failure(s)" >&2
    exit 1
  fi
  echo "all checks passed"
}
