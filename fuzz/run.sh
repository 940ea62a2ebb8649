#!/usr/bin/env bash
# Runs every fuzz target built in BUILD_DIR for SECONDS each, starting from the committed seed
# corpus (fuzz/corpus/<target>/). New inputs go to a scratch copy, never into the repo.
set -euo pipefail
build_dir=${1:?build dir}
seconds=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
shopt -s nullglob
targets=("$build_dir"/fuzz/fuzz_*)
if ((${#targets[@]} == 0)); then
  echo "fuzz: no targets built in $build_dir/fuzz" >&2
  exit 1
fi
for target in "${targets[@]}"; do
  [[ -x $target && -f $target ]] || continue
  name=$(basename "$target")
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  seeds="$here/corpus/${name#fuzz_}"
  dict="$here/${name#fuzz_}.dict"
  args=(-max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  [[ -f $dict ]] && args+=(-dict="$dict")
  echo "fuzz: $name for ${seconds}s"
  "$target" "${args[@]}" "$work" "$seeds" 2>&1 | tail -n 12
  rm -rf "$work"
done
echo "fuzz: all targets ran clean"
