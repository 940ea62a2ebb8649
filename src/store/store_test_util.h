// Test helpers shared by the store's tests: a temp dir that cleans up, and the two backends.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "store/store.h"

namespace fjord::store::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fjord-store-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct MemoryBackend {
  static constexpr const char* kName = "memory";
  std::unique_ptr<Store> Open(const Options& options) { return NewMemoryStore(options); }
};

struct SqliteBackend {
  static constexpr const char* kName = "sqlite";
  TempDir dir;
  int n = 0;
  std::unique_ptr<Store> Open(const Options& options) {
    auto s = OpenSqliteStore(dir.path() / ("store" + std::to_string(n++) + ".db"), options);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
};

}  // namespace fjord::store::testing
