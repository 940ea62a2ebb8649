#!/usr/bin/env bash
# `make run`: what fjord can do on one machine today. Until the server exists (issue 4) this checks
# the example units and points at the local container verbs; it does not pretend to start a cluster.
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
echo "fjord has no server yet (issue 4): there is no API or dashboard to open."
echo "Containers run locally today: see the README's tour (fjord image import, fjord run, fjord ps)."
