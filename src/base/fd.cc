#include "base/fd.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace fjord::base {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);  // close errors are not actionable here
  fd_ = fd;
}

void UniquePid::reset(pid_t pid) {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = pid;
}

Result<UniqueFd> SealedMemfd(const char* name, const unsigned char* data, size_t size) {
  UniqueFd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return ErrnoStatus(std::string("memfd_create for ") + name);
  while (size > 0) {
    ssize_t n = ::write(fd.get(), data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(std::string("write ") + name + " to its memfd");
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
  return fd;
}

}  // namespace fjord::base
