// Test helpers for the image module (unit and integration tests only): build tars in memory,
// compress them, and write OCI image layouts with chosen layers and config. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace fjord::image::testing {

struct TarEntry {
  std::string path{};
  char type = 'f';     // f file, d dir, l symlink, h hard link, c char dev, b block dev, p fifo
  std::string data{};  // file contents
  std::string link{};  // symlink or hard link target
  mode_t mode = 0644;
  uid_t uid = 0;
  gid_t gid = 0;
  unsigned major = 0, minor = 0;
  std::map<std::string, std::string> xattrs{};
};

enum class Compression { kNone, kGzip, kZstd };

// A pax tar of `entries`, in order.
std::string MakeTar(const std::vector<TarEntry>& entries);
std::string Compress(const std::string& data, Compression c);

struct OciLayout {
  std::string id;                        // config digest
  std::vector<std::string> layer_blobs;  // blob paths relative to the layout, lowest first
};

// Writes an OCI image layout to `dir` (created): one manifest with `tars` (uncompressed) as
// layers compressed with `c`, a config whose Env holds `env`, named `name` when non-empty.
OciLayout WriteOciLayout(const std::filesystem::path& dir, const std::vector<std::string>& tars,
                         Compression c, const std::string& name, const std::string& env);

// Writes a `docker save` tree to `dir`: manifest.json, <hex>.json config, <n>/layer.tar.
std::string WriteDockerSave(const std::filesystem::path& dir, const std::vector<std::string>& tars,
                            const std::string& name, const std::string& env);

// Writes every regular file below `dir` into a tar at `out` (archive member paths relative).
void TarDirectory(const std::filesystem::path& dir, const std::filesystem::path& out);

void WriteFile(const std::filesystem::path& path, const std::string& data);
std::string ReadFileOrDie(const std::filesystem::path& path);

// A fresh directory under $TMPDIR, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace fjord::image::testing
