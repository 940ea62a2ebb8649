// The on-disk layout of an image store, written down in one place.
//
//   <root>/                  e.g. /var/lib/fjord/images ($FJORD_ROOT/images)
//     lock                   flock(2) target; every mutation (import, rm) holds it exclusively
//     index.json             {"version":1,"images":[{"id","names","layers","size","created"}]}:
//                            image id (config digest) -> references, diff_ids (lowest first),
//                            unpacked size, import time. Replaced atomically (temp, fsync,
//                            rename); readers take no lock.
//     blobs/sha256/<hex>     image config blobs; an image's id is its config's digest
//     layers/sha256/<hex>/   one unpacked layer per diff_id (sha256 of the uncompressed tar),
//                            shared by every image that uses it
//       fs/                  the layer tree, whiteouts in overlayfs form; an overlay lowerdir
//       size                 bytes of regular files in fs/, decimal
//     tmp/                   staging (layers being unpacked, image tars being read, trees being
//                            deleted); emptied by the next mutation, under the lock
//
// A layer or blob appears under its final name only by rename(2) of a complete, synced tree, so
// a crash leaves either nothing or the whole thing. Layers and blobs no image in index.json
// refers to are deleted by `rm` (the refcount is a scan of index.json).
#pragma once

#include <filesystem>
#include <string_view>

#include "image/digest.h"

namespace fjord::image {

struct StorePaths {
  explicit StorePaths(std::filesystem::path r)
      : root(std::move(r)),
        lock(root / "lock"),
        index(root / "index.json"),
        blobs(root / "blobs" / "sha256"),
        layers(root / "layers" / "sha256"),
        tmp(root / "tmp") {}

  std::filesystem::path Blob(std::string_view digest) const {
    return blobs / std::string(DigestHex(digest));
  }
  std::filesystem::path Layer(std::string_view diff_id) const {
    return layers / std::string(DigestHex(diff_id));
  }
  std::filesystem::path LayerFs(std::string_view diff_id) const { return Layer(diff_id) / "fs"; }
  std::filesystem::path LayerSize(std::string_view diff_id) const {
    return Layer(diff_id) / "size";
  }

  std::filesystem::path root, lock, index, blobs, layers, tmp;
};

}  // namespace fjord::image
