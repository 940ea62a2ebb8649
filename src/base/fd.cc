#include "base/fd.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

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

}  // namespace fjord::base
