// Unpacks arbitrary bytes as an image layer: it must fail cleanly or succeed, and nothing may
// ever appear outside the layer directory.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "image/fs.h"
#include "image/unpack.h"

namespace {

struct Dirs {
  std::filesystem::path base, root, outside;
  Dirs() {
    std::string tmpl = std::filesystem::temp_directory_path().string() + "/fjord-fuzz-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    base = tmpl;
    root = base / "a" / "b" / "root";  // deep, so `../..` tricks have somewhere to land
    outside = base / "a";
  }
  ~Dirs() {
    std::error_code ec;
    std::filesystem::remove_all(base, ec);
  }
};

size_t CountOutside(const Dirs& d) {
  size_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(d.base)) {
    if (e.path().string().rfind(d.root.string(), 0) != 0) ++n;
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Dirs dirs;
  std::filesystem::create_directories(dirs.root);
  size_t before = CountOutside(dirs);
  int in = ::memfd_create("layer", MFD_CLOEXEC);
  if (in < 0 || ::write(in, data, size) != static_cast<ssize_t>(size)) std::abort();
  ::lseek(in, 0, SEEK_SET);
  int root = ::open(dirs.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  (void)fjord::image::Unpack(in, root, fjord::image::UnpackOptions{.layer = true});
  ::close(root);
  ::close(in);
  if (CountOutside(dirs) != before) std::abort();  // something escaped the layer directory
  (void)fjord::image::RemoveTree(dirs.root);
  return 0;
}
