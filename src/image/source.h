// Reading an image source (an OCI image layout or a `docker save` tree, already on disk as a
// directory) into import plans: which config and layer files to take and what digests they
// must have. Nothing is written here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace fjord::image {

struct LayerPlan {
  std::string path;         // relative to the source directory
  std::string blob_digest;  // the raw blob's digest (OCI); empty for docker-save layers
  int64_t blob_size = -1;   // -1 when unknown
};

struct ImagePlan {
  std::string config_path;
  std::string config_digest;  // expected digest (OCI); empty for docker-save (id is computed)
  int64_t config_size = -1;
  std::vector<LayerPlan> layers;
  std::vector<std::string> names;  // canonical references found in the source
};

// Reads the source directory `dir_fd`; `display` names it in errors. Prefers docker's
// manifest.json when both it and an OCI index exist (docker >= 25 writes both).
base::Result<std::vector<ImagePlan>> ReadSource(int dir_fd, std::string_view display);

}  // namespace fjord::image
