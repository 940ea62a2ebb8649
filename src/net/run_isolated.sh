#!/bin/sh
# Runs a net test binary inside a private network namespace whose host side is unfriendly:
# FORWARD policy DROP, and bridged frames not passed to iptables (as without br_netfilter),
# so the module is shown to depend on neither. Exit 77 (skip) when not root.
set -eu
[ "$(id -u)" = 0 ] || exit 77
exec unshare --net sh -euc '
  ip link set lo up
  iptables -P FORWARD DROP
  nf=/proc/sys/net/bridge/bridge-nf-call-iptables
  if [ -w "$nf" ]; then echo 0 > "$nf"; fi
  exec "$@"' sh "$@"
