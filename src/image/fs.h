// File-system helpers private to the image module: fd-relative opens that cannot escape a
// directory, atomic file replacement, recursive removal and the store's flock.
// Not thread-safe objects; the functions are reentrant.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "base/fd.h"
#include "base/status.h"

namespace fjord::image {

// Opens `path` (relative) beneath `dir_fd` with openat2(RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS):
// neither `..` nor a symlink can lead outside `dir_fd`. An escape attempt fails with EXDEV.
base::Result<base::UniqueFd> OpenBeneath(int dir_fd, std::string_view path, int flags,
                                         mode_t mode = 0);

// Opens a directory by absolute or cwd-relative path.
base::Result<base::UniqueFd> OpenDir(const std::filesystem::path& path);

// Reads a whole file opened beneath `dir_fd`, refusing anything larger than `max_bytes`.
base::Result<std::string> ReadFileBeneath(int dir_fd, std::string_view path, size_t max_bytes);
base::Result<std::string> ReadFile(const std::filesystem::path& path, size_t max_bytes);

// Replaces `path` atomically: writes a temp file beside it, fsyncs, renames, fsyncs the dir.
base::Status WriteFileAtomic(const std::filesystem::path& path, std::string_view content);

// Removes `name` in `dir_fd` and, if it is a directory, everything below it, never following
// symlinks. A missing `name` is not an error.
base::Status RemoveTreeAt(int dir_fd, const std::string& name);
base::Status RemoveTree(const std::filesystem::path& path);

// Creates a fresh, empty directory `parent/<prefix>XXXXXX` (mode 0700).
base::Result<std::filesystem::path> MakeTempDir(const std::filesystem::path& parent,
                                                std::string_view prefix);

// fsyncs a directory so a rename inside it survives a crash.
base::Status SyncDir(const std::filesystem::path& dir);

// An exclusive flock(2) held until destruction. Serialises store mutations across processes.
class FileLock {
 public:
  static base::Result<FileLock> Acquire(const std::filesystem::path& path);
  FileLock(FileLock&&) = default;
  FileLock& operator=(FileLock&&) = default;

 private:
  explicit FileLock(base::UniqueFd fd) : fd_(std::move(fd)) {}
  base::UniqueFd fd_;  // closing the fd drops the lock
};

// Deletes a directory tree on destruction unless released. Keeps failures from leaving
// half-built layers or staging copies behind.
class TempDirGuard {
 public:
  explicit TempDirGuard(std::filesystem::path path) : path_(std::move(path)) {}
  TempDirGuard(const TempDirGuard&) = delete;
  TempDirGuard& operator=(const TempDirGuard&) = delete;
  ~TempDirGuard();
  const std::filesystem::path& path() const { return path_; }
  void Release() { path_.clear(); }

 private:
  std::filesystem::path path_;
};

}  // namespace fjord::image
