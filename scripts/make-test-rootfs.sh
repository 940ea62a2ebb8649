#!/usr/bin/env bash
# Builds a minimal root filesystem in DIR from Debian's busybox-static: /bin/busybox plus one
# symlink per applet, and the few files a shell expects. Fast (no downloads); used by the runtime
# tests and benchmarks.   Usage: scripts/make-test-rootfs.sh DIR
set -euo pipefail
dir=${1:?usage: make-test-rootfs.sh DIR}
busybox=/bin/busybox
# Debian's busybox-static installs /bin/busybox; a dynamic one would need libc in the rootfs.
if ! "$busybox" --list >/dev/null 2>&1 || [[ $(LC_ALL=C ldd "$busybox" 2>&1 || true) != *"not a dynamic"* ]]; then
  echo "make-test-rootfs: $busybox is missing or not static; install busybox-static" >&2
  exit 1
fi
mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,var}
chmod 1777 "$dir/tmp"
cp "$busybox" "$dir/bin/busybox"
# One symlink per applet. They point where busybox itself lives on the host (/usr/bin/busybox
# with merged /usr), so the rootfs gets that path too.
"$busybox" --install -s "$dir/bin"
real=$(readlink -f "$busybox")
if [[ $real != /bin/busybox ]]; then
  mkdir -p "$dir$(dirname "$real")"
  ln -sf /bin/busybox "$dir$real"
fi
echo "root:x:0:0:root:/root:/bin/sh" >"$dir/etc/passwd"
echo "root:x:0:" >"$dir/etc/group"
echo "fjord-test" >"$dir/etc/hostname"
