// Safe tar extraction for image layers and image archives.
//
// Every entry is created relative to the destination directory's fd; parents are opened with
// openat2(RESOLVE_BENEATH), so `..`, absolute paths and symlinks cannot place anything outside
// it (such entries are rejected with an error naming them). Hard links must point inside the
// same archive. The input may be an uncompressed, gzip, zstd, xz or bzip2 tar; while reading,
// both the raw bytes (the blob digest) and the uncompressed stream (the diff_id) are hashed.
//
// Layer mode converts OCI whiteouts into overlayfs form, as containerd's overlay snapshotter
// does: `.wh.<name>` becomes a 0/0 character device `<name>`, `.wh..wh..opq` sets
// `trusted.overlay.opaque=y` on its directory. It keeps owners (when running as root),
// permissions, times, xattrs (except trusted.overlay.*, which only whiteouts may set) and
// device nodes. Archive mode (for staging an image tar) allows only files, directories and
// links, with plain permissions. Thread-compatible: no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace fjord::image {

struct UnpackOptions {
  bool layer = true;  // false: archive mode (see above)
};

struct UnpackResult {
  std::string raw_digest;  // sha256 of the bytes as read (the blob)
  uint64_t raw_size = 0;
  std::string diff_digest;  // sha256 of the uncompressed tar stream (the diff_id)
  uint64_t file_bytes = 0;  // total size of the regular files written
};

// Unpacks the tar read from `src_fd` into the directory `dest_dir_fd`. On error the
// destination holds a partial tree: callers unpack into a temporary directory.
base::Result<UnpackResult> Unpack(int src_fd, int dest_dir_fd, const UnpackOptions& options);

// Hashes the blob read from `src_fd` (raw and uncompressed) without unpacking it.
base::Result<UnpackResult> DigestBlob(int src_fd);
// sha256 of the bytes read from `src_fd`, even when they are not a valid archive.
base::Result<std::string> RawDigest(int src_fd);

// Normalises an entry path: drops "." components, repeated and trailing "/"; returns "" for the
// root itself. Rejects `..` components and absolute paths.
base::Result<std::string> CleanEntryPath(std::string_view raw);

}  // namespace fjord::image
