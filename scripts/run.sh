#!/usr/bin/env bash
# `make run`: what fjord can do on one machine today. Until the server exists (issue 4) this checks
# the example units and shows the result; it does not pretend to start a cluster.
set -euo pipefail
fjord=${1:-build/fjord}
here=$(cd "$(dirname "$0")/.." && pwd)
"$fjord" version
shopt -s nullglob
units=("$here"/examples/*.service)
if ((${#units[@]})); then
  echo "Checking example units with \`fjord unit check\`:"
  "$fjord" unit check "${units[@]}" || true
fi
echo
echo "fjord has no server yet: there is no API or dashboard to open. See README.md for the tour."
