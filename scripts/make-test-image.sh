#!/usr/bin/env bash
# Builds a small two-layer busybox image for tests and the README tour, with only tar, gzip,
# sha256sum and the shell (no docker, no network).
#
#   scripts/make-test-image.sh OUT [--format oci|docker] [--name REF]
#
# OUT ending in .tar is written as a tar archive, otherwise as a directory (which must not
# exist). --format oci (default) writes an OCI image layout with gzip layers; --format docker
# writes a `docker save` archive (manifest.json, uncompressed <id>/layer.tar). --name defaults
# to fjord-test/busybox:latest.
#
# Layer 1: /bin/busybox (Debian's busybox-static) with symlinks for common applets, minimal
# /etc/passwd and /etc/group, /tmp, plus /removed.txt and /opaque/old.txt.
# Layer 2: /etc/fjord-release, a whiteout of /removed.txt, and /opaque made opaque (old.txt
# hidden, new.txt added). So a correct import + overlay stack shows: no /removed.txt,
# /opaque/new.txt only.
set -euo pipefail

usage() {
  echo "usage: $0 OUT [--format oci|docker] [--name REF]" >&2
  exit 2
}

(($# >= 1)) || usage
out=$1
shift
format=oci
name=fjord-test/busybox:latest
while (($#)); do
  case $1 in
    --format) format=${2:?--format needs oci or docker}; shift 2 ;;
    --name) name=${2:?--name needs a reference}; shift 2 ;;
    *) usage ;;
  esac
done
[[ $format == oci || $format == docker ]] || { echo "$0: --format must be oci or docker" >&2; exit 2; }
[[ -e $out ]] && { echo "$0: $out already exists" >&2; exit 1; }
busybox=/bin/busybox
[[ -x $busybox ]] || { echo "$0: $busybox missing; install busybox-static" >&2; exit 1; }

case $(uname -m) in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Layer trees.
l1=$work/layer1
l2=$work/layer2
mkdir -p "$l1"/{bin,etc,tmp,root,opaque} "$l2"/{etc,opaque}
cp "$busybox" "$l1/bin/busybox"
for applet in sh ash ls cat echo true false sleep ps id env mkdir rm cp mv ln touch grep \
  head tail wc sed awk kill hostname uname mount umount stat test printf pwd whoami date \
  find chmod chown; do
  ln -s busybox "$l1/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
  >"$l1/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$l1/etc/group"
chmod 1777 "$l1/tmp"
chmod 700 "$l1/root"
echo "this file is deleted by layer 2" >"$l1/removed.txt"
echo "hidden by the opaque directory in layer 2" >"$l1/opaque/old.txt"
echo "fjord test image" >"$l2/etc/fjord-release"
: >"$l2/.wh.removed.txt"
: >"$l2/opaque/.wh..wh..opq"
echo "from layer 2" >"$l2/opaque/new.txt"

# Deterministic tars: same inputs, same digests.
mktar() { tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$1" -cf "$2" .; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
mktar "$l1" "$work/l1.tar"
mktar "$l2" "$work/l2.tar"
diff1=$(sha "$work/l1.tar")
diff2=$(sha "$work/l2.tar")

config=$(printf '{"architecture":"%s","os":"linux","created":"1970-01-01T00:00:00Z",' "$arch"
  printf '"config":{"Cmd":["sh"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"},'
  printf '"rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]},' "$diff1" "$diff2"
  printf '"history":[{"created_by":"make-test-image.sh: busybox"},{"created_by":"make-test-image.sh: whiteouts"}]}')

img=$work/image
mkdir -p "$img"
if [[ $format == oci ]]; then
  mkdir -p "$img/blobs/sha256"
  blob() {  # file -> prints digest hex, stores the blob
    local h
    h=$(sha "$1")
    cp "$1" "$img/blobs/sha256/$h"
    echo "$h"
  }
  gzip -n -c "$work/l1.tar" >"$work/l1.tar.gz"
  gzip -n -c "$work/l2.tar" >"$work/l2.tar.gz"
  g1=$(blob "$work/l1.tar.gz")
  g2=$(blob "$work/l2.tar.gz")
  printf '%s' "$config" >"$work/config.json"
  c=$(blob "$work/config.json")
  size() { stat -c %s "$1"; }
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",%s%s}' \
    "$(printf '"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},' "$c" "$(size "$work/config.json")")" \
    "$(printf '"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]' "$g1" "$(size "$work/l1.tar.gz")" "$g2" "$(size "$work/l2.tar.gz")")" \
    >"$work/manifest.json"
  m=$(blob "$work/manifest.json")
  printf '{"imageLayoutVersion":"1.0.0"}' >"$img/oci-layout"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$m" "$(size "$work/manifest.json")" "$name" "${name##*:}" >"$img/index.json"
else
  c=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
  printf '%s' "$config" >"$img/$c.json"
  layers=()
  for i in 1 2; do
    id=$(printf '%s-%s' "$c" "$i" | sha256sum | cut -d' ' -f1)  # legacy v1 ids are arbitrary
    mkdir -p "$img/$id"
    cp "$work/l$i.tar" "$img/$id/layer.tar"
    echo "1.0" >"$img/$id/VERSION"
    printf '{"id":"%s"}' "$id" >"$img/$id/json"
    layers+=("\"$id/layer.tar\"")
  done
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":[%s,%s]}]' \
    "$c" "$name" "${layers[0]}" "${layers[1]}" >"$img/manifest.json"
fi

if [[ $out == *.tar ]]; then
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$img" -cf "$out" .
else
  mv "$img" "$out"
fi
