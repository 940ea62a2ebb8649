// UniqueFd and UniquePid: RAII owners for a file descriptor and a child process.
// A failure half-way through setup leaves nothing behind because every fd and pid is owned.
// Not thread-safe; move between threads, do not share.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <utility>

#include "base/status.h"

namespace fjord::base {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Owns a child process: if still set at destruction, the child is SIGKILLed and reaped.
class UniquePid {
 public:
  UniquePid() = default;
  explicit UniquePid(pid_t pid) : pid_(pid) {}
  UniquePid(UniquePid&& o) noexcept : pid_(o.release()) {}
  UniquePid& operator=(UniquePid&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  UniquePid(const UniquePid&) = delete;
  UniquePid& operator=(const UniquePid&) = delete;
  ~UniquePid() { reset(); }

  pid_t get() const { return pid_; }
  bool valid() const { return pid_ > 0; }
  pid_t release() { return std::exchange(pid_, -1); }
  void reset(pid_t pid = -1);

 private:
  pid_t pid_ = -1;
};

// A sealed memfd holding `size` bytes of `data` (an embedded helper binary to fexecve): written
// once, then sealed against writes and resizing, so it may be shared and executed safely.
Result<UniqueFd> SealedMemfd(const char* name, const unsigned char* data, size_t size);

}  // namespace fjord::base
