// The code that runs inside a new container (private). RunContainerChild() is called in the
// child of clone(2) with new namespaces; everything it needs is computed before the fork, so the
// child only makes system calls. It never returns: it ends in execve of the init (the monitor
// binary in "init" mode) while a forked grandchild execs the workload.
//
// Errors are written to `error_fd` as "<exit code> <message>" and the child exits with that code
// (125 setup failure, 126 not executable, 127 not found).
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "runtime/runtime.h"

namespace fjord::runtime {

struct ChildMount {
  std::string source;       // host path
  std::string destination;  // path inside the container, relative to its root
  bool read_only = false;
};

struct ChildConfig {
  std::string overlay_options;           // lowerdir=...,upperdir=...,workdir=...
  std::string overlay_options_volatile;  // the same plus ",volatile" (tried first)
  std::string rootfs;           // mount point of the overlay
  std::vector<ChildMount> mounts;
  std::string hostname;
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string cwd;
  uid_t uid = 0;
  gid_t gid = 0;
  NetMode net = NetMode::kNone;
  bool read_only = false;
  bool privileged = false;
  bool user_namespace = false;  // wait for the id maps (one byte on go_fd) before anything
  uint64_t capabilities = 0;
  std::vector<sock_filter> seccomp;  // empty: none
  int error_fd = -1;                 // CLOEXEC pipe to the creator
  int go_fd = -1;                    // one byte from the creator: in the cgroups, networking ready
  int stdout_fd = -1;                // pipes to the monitor
  int stderr_fd = -1;
  int init_fd = -1;  // memfd with the monitor binary, exec'd as "init"
};

[[noreturn]] void RunContainerChild(const ChildConfig& config);

}  // namespace fjord::runtime
