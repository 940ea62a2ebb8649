#!/usr/bin/env bash
# Runs every benchmark built in BUILD_DIR. Figures go to stdout; docs/BENCHMARKS.md records them.
set -euo pipefail
build_dir=${1:-build}
shopt -s nullglob
for b in "$build_dir"/bench/bench_*; do
  [[ -x $b && -f $b ]] || continue
  echo "== $(basename "$b")"
  "$b"
done
