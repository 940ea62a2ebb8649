#!/usr/bin/env bash
# Installs every Debian package fjord needs to build, test and benchmark.
# Idempotent: packages already present are skipped, so a warm machine pays nothing.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache g++ clang libclang-rt-14-dev pkg-config
  # musl, for the tiny static container monitor (src/runtime/CMakeLists.txt)
  musl-tools
  # libraries
  libcli11-dev nlohmann-json3-dev libboost-dev libsqlite3-dev libspdlog-dev libfmt-dev
  libarchive-dev libseccomp-dev libssl-dev
  # libarchive's own dependencies, for linking it statically (see CMakeLists.txt)
  liblz4-dev libzstd-dev libbz2-dev liblzma-dev zlib1g-dev libxml2-dev nettle-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # runtime helpers used by tests and the README tour
  busybox-static iproute2 iptables curl jq util-linux procps
  # runtime benchmark: crun as the baseline for `fjord run` latency, conmon for monitor memory
  crun conmon
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  SUDO=sudo
else
  SUDO=
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
