// Parsers for the JSON documents an image carries (OCI index/manifest, image config, docker's
// manifest.json) and for the store's own index. Each takes the text and the file name it came
// from, so every error reads "<file>: field `<path>`: <what is wrong>". No exceptions escape.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "image/image_store.h"

namespace fjord::image {

inline constexpr std::string_view kOciIndexMediaType = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kDockerListMediaType =
    "application/vnd.docker.distribution.manifest.list.v2+json";

struct Descriptor {
  std::string media_type;
  std::string digest;  // validated sha256:<hex>
  int64_t size = -1;
  std::map<std::string, std::string> annotations;
  std::string os, architecture;  // from "platform", empty if absent
};

// index.json (or a nested image index blob): its "manifests".
base::Result<std::vector<Descriptor>> ParseOciIndex(std::string_view json, std::string_view file);

struct OciManifest {
  Descriptor config;
  std::vector<Descriptor> layers;
};
base::Result<OciManifest> ParseOciManifest(std::string_view json, std::string_view file);

struct ParsedConfig {
  ImageConfig config;
  std::vector<std::string> diff_ids;  // rootfs.diff_ids, lowest layer first
  std::string os, architecture;
};
base::Result<ParsedConfig> ParseImageConfig(std::string_view json, std::string_view file);

// One entry of docker save's manifest.json.
struct DockerManifestEntry {
  std::string config;                  // path inside the archive
  std::vector<std::string> repo_tags;  // may be empty
  std::vector<std::string> layers;     // paths inside the archive, lowest first
};
base::Result<std::vector<DockerManifestEntry>> ParseDockerManifest(std::string_view json,
                                                                   std::string_view file);

// The store's index.json (see paths.h).
struct IndexEntry {
  std::string id;                   // config digest
  std::vector<std::string> names;   // canonical references
  std::vector<std::string> layers;  // diff_ids, lowest first
  uint64_t size_bytes = 0;
  int64_t created_unix = 0;
};
base::Result<std::vector<IndexEntry>> ParseStoreIndex(std::string_view json, std::string_view file);
std::string SerializeStoreIndex(const std::vector<IndexEntry>& entries);

}  // namespace fjord::image
