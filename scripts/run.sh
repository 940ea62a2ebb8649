#!/usr/bin/env bash
# `make run`: fjord on this one machine. Checks the example units, then runs `fjord dev` (the
# server with its embedded store and one agent, in one process) in the foreground until Ctrl-C.
# Units keep running after it stops; the next `make run` re-adopts them.
#   Environment: FJORD_LISTEN (default 127.0.0.1:7777), FJORD_ROOT (state; default
#   /var/lib/fjord, this uses $FJORD_ROOT/dev).
set -euo pipefail
fjord=${1:-build/fjord}
here=$(cd "$(dirname "$0")/.." && pwd)
listen=${FJORD_LISTEN:-127.0.0.1:7777}
"$fjord" version
shopt -s nullglob
units=("$here"/examples/*.service)
if ((${#units[@]})); then
  echo "Checking the example units with \`fjord unit check\`:"
  "$fjord" unit check "${units[@]}" || true
fi
echo
echo "Starting fjord dev on $listen (Ctrl-C stops it). In another shell:"
echo "  export FJORD_ENDPOINT=http://$listen"
echo "  $fjord start examples/ticker@1.service      # an instance of examples/ticker@.service"
echo "  $fjord list-units; $fjord status ticker@1.service; $fjord journal -f ticker@1.service"
echo
exec "$fjord" dev --listen "$listen"
