# Helpers shared by the integration scripts that run one case each (`script FJORD CASE`).
# Source after setting CASE. A script may define on_failure() to print its state on failure.

fail() {
  echo "FAIL [$CASE]: $*" >&2
  if declare -F on_failure >/dev/null; then on_failure >&2; fi
  exit 1
}

expect_eq() {  # expect_eq WANT GOT WHAT
  [[ "$1" == "$2" ]] || fail "$3: want '$1', got '$2'"
}

wait_for() {  # wait_for SECONDS COMMAND...: polls until COMMAND succeeds
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

# free_24 PREFIX: "PREFIX.N" for a /24 that no route of this host uses yet (N from the pid, so
# parallel cases pick different ones), e.g. free_24 10.250 -> 10.250.17.
free_24() {
  local i n routes
  routes=$(ip -4 route show)
  for ((i = 0; i < 250; i++)); do
    n=$((($$ + i) % 250 + 1))
    grep -q "^${1//./\\.}\.$n\." <<<"$routes" || { echo "$1.$n"; return; }
  done
  echo "no free $1.x.0/24" >&2
  exit 1
}
