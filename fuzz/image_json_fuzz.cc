// Feeds arbitrary bytes to every JSON parser of the image module and to reference parsing:
// they must return a Status, never crash or throw.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "image/manifest.h"
#include "image/reference.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)fjord::image::ParseOciIndex(text, "index.json");
  (void)fjord::image::ParseOciManifest(text, "manifest");
  (void)fjord::image::ParseImageConfig(text, "config");
  (void)fjord::image::ParseDockerManifest(text, "manifest.json");
  if (auto idx = fjord::image::ParseStoreIndex(text, "index.json"); idx.ok()) {
    (void)fjord::image::ParseStoreIndex(fjord::image::SerializeStoreIndex(*idx), "again");
  }
  (void)fjord::image::ParseReference(text.substr(0, text.find('\n')));
  return 0;
}
