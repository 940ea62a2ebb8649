// Image references as docker writes them: [registry[:port]/]path[:tag][@sha256:digest].
// "name" without tag or digest means "name:latest". Names are kept as written (no implicit
// docker.io/library/ prefix), so `busybox` and `docker.io/library/busybox` are different names.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace fjord::image {

struct Reference {
  std::string repository;  // e.g. "registry:5000/a/b"
  std::string tag;         // e.g. "v1"; "latest" when neither tag nor digest was given
  std::string digest;      // e.g. "sha256:..."; empty unless written with @

  // Canonical text: "repo:tag", "repo@digest" or "repo:tag@digest".
  std::string String() const;
};

// Parses and validates; errors say which part is wrong, e.g. "repository must be lowercase".
base::Result<Reference> ParseReference(std::string_view text);

// True for a candidate image id or id prefix: "sha256:<hex>" or 1..64 lowercase hex digits.
bool LooksLikeId(std::string_view text);

}  // namespace fjord::image
