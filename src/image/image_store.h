// ImageStore: the local, content-addressed store of container images.
//
// Layout under `root` (documented in image/paths.h): blobs by sha256 digest, each layer
// unpacked exactly once into its own directory, and an index of names -> image id. Starting a
// container from an image copies nothing: the runtime stacks `Image::layers` with overlayfs.
//
// Thread-safety: an ImageStore object is not thread-safe. Several processes may open the same root
// concurrently; mutations take an exclusive flock on the root, so they serialise.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace fjord::image {

// The parts of the OCI image config a runtime honours.
struct ImageConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "KEY=VALUE"
  std::string working_dir;
  std::string user;
  std::string stop_signal;  // e.g. "SIGQUIT"; empty means SIGTERM
};

struct Image {
  std::string id;                             // "sha256:<hex>" of the image config blob
  std::vector<std::string> names;             // references, e.g. "busybox:latest"
  std::vector<std::filesystem::path> layers;  // unpacked layer directories, lowest first,
                                              // each once (overlay's lowerdir= option
                                              // lists them the other way: topmost first)
  ImageConfig config;
  uint64_t size_bytes = 0;   // unpacked size on disk
  int64_t created_unix = 0;  // when it was imported
};

class ImageStore {
 public:
  virtual ~ImageStore() = default;

  // Opens (creating if needed) the store at `root`, e.g. /var/lib/fjord/images.
  static base::Result<std::unique_ptr<ImageStore>> Open(const std::filesystem::path& root);

  // Imports an OCI image layout (directory or tar) or a `docker save` archive. `name`, when set,
  // becomes a reference to the image (a tag in the archive is used otherwise).
  virtual base::Result<Image> Import(const std::filesystem::path& source,
                                     std::optional<std::string> name) = 0;

  // Resolves a reference: "name", "name:tag", a full "sha256:..." id or a unique id prefix.
  // "name" without a tag means "name:latest".
  virtual base::Result<Image> Resolve(std::string_view ref) const = 0;

  virtual base::Result<std::vector<Image>> List() const = 0;

  // Removes a reference; the image's blobs and layers go when no reference is left. Given an
  // id (or id prefix), removes the image with all its references.
  virtual base::Status Remove(std::string_view ref) = 0;
};

// The image store directory of a fjord root: `<root>/images`, where root is `fjord_root` when
// non-empty, else $FJORD_ROOT, else /var/lib/fjord. The on-disk layout is in image/paths.h.
std::filesystem::path ImageStoreDir(const std::filesystem::path& fjord_root = {});

}  // namespace fjord::image
