#include "runtime/container_child.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

namespace fjord::runtime {
namespace {

// Everything below runs in the freshly cloned child: plain system calls, errors reported once.
[[noreturn]] void Fail(const ChildConfig& c, int code, const char* fmt, const char* arg, int err) {
  char msg[1024];
  int n = std::snprintf(msg, sizeof(msg), "%d ", code);
  n += std::snprintf(msg + n, sizeof(msg) - static_cast<size_t>(n), fmt, arg);
  if (err != 0 && n < static_cast<int>(sizeof(msg))) {
    std::snprintf(msg + n, sizeof(msg) - static_cast<size_t>(n), ": %s", std::strerror(err));
  }
  if (c.error_fd >= 0) (void)!write(c.error_fd, msg, std::strlen(msg));
  _exit(code);
}

int OpenAt2(int dirfd, const char* path, uint64_t flags) {
  struct open_how how;
  std::memset(&how, 0, sizeof(how));
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
}

// Opens `rel` (a path inside the container) with the container's root as "/", so symlinks in
// the rootfs cannot point a mount outside it. Missing components are created as directories (or
// the last as an empty file when `file`). Returns an O_PATH fd.
int OpenInRoot(const ChildConfig& c, int rootfd, const char* rel, bool file) {
  char path[PATH_MAX];
  std::snprintf(path, sizeof(path), "%s", rel);
  size_t len = std::strlen(path);
  for (size_t i = 1; i <= len; i++) {
    if (path[i] != '/' && path[i] != '\0') continue;
    char saved = path[i];
    path[i] = '\0';
    int fd = OpenAt2(rootfd, path, O_PATH);
    if (fd < 0 && errno == ENOENT) {
      char* slash = std::strrchr(path, '/');
      const char* name = slash ? slash + 1 : path;
      int parent = rootfd;
      if (slash != nullptr && slash != path) {
        *slash = '\0';
        parent = OpenAt2(rootfd, path, O_PATH | O_DIRECTORY);
        *slash = '/';
      }
      if (parent < 0) Fail(c, 125, "open parent of /%s in the container", rel, errno);
      bool last = saved == '\0';
      int rc =
          (last && file) ? mknodat(parent, name, S_IFREG | 0644, 0) : mkdirat(parent, name, 0755);
      if (rc < 0 && errno != EEXIST) Fail(c, 125, "create /%s in the container", rel, errno);
      if (parent != rootfd) close(parent);
      fd = OpenAt2(rootfd, path, O_PATH);
    }
    if (fd < 0) Fail(c, 125, "open /%s in the container", rel, errno);
    path[i] = saved;
    if (i == len) return fd;
    close(fd);
  }
  return OpenAt2(rootfd, ".", O_PATH);
}

void FdPath(int fd, char* out, size_t cap) { std::snprintf(out, cap, "/proc/self/fd/%d", fd); }

// Mounts at `rel` inside the container; `optional` failures are ignored.
void MountIn(const ChildConfig& c, int rootfd, const char* rel, const char* source,
             const char* fstype, unsigned long flags, const char* data, bool file = false,
             bool optional = false) {
  int fd = OpenInRoot(c, rootfd, rel, file);
  char target[64];
  FdPath(fd, target, sizeof(target));
  if (mount(source, target, fstype, flags, data) < 0 && !optional) {
    Fail(c, 125, "mount /%s in the container", rel, errno);
  }
  close(fd);
}

// Makes an existing mount at `rel` read-only (re-opened: the old fd points under the mount).
void RemountReadOnly(const ChildConfig& c, int rootfd, const char* rel, bool optional) {
  int fd = OpenAt2(rootfd, rel, O_PATH);
  if (fd < 0) {
    if (optional) return;
    Fail(c, 125, "open /%s in the container", rel, errno);
  }
  char target[64];
  FdPath(fd, target, sizeof(target));
  // A bind remount replaces the per-mount flags: keep nosuid/nodev/noexec as they were.
  unsigned long keep = 0;
  struct statvfs sv;
  if (statvfs(target, &sv) == 0) {
    if (sv.f_flag & ST_NOSUID) keep |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV) keep |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) keep |= MS_NOEXEC;
  }
  if (mount(nullptr, target, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, nullptr) < 0 &&
      !optional) {
    Fail(c, 125, "make /%s read-only", rel, errno);
  }
  close(fd);
}

void SetupDev(const ChildConfig& c, int rootfd) {
  MountIn(c, rootfd, "dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
  int dev = OpenAt2(rootfd, "dev", O_PATH | O_DIRECTORY);
  if (dev < 0) Fail(c, 125, "open /%s in the container", "dev", errno);
  struct Node {
    const char* name;
    unsigned major, minor;
  };
  static const Node kNodes[] = {{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
                                {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
  for (const Node& n : kNodes) {
    if (mknodat(dev, n.name, S_IFCHR | 0666, makedev(n.major, n.minor)) == 0) {
      fchmodat(dev, n.name, 0666, 0);  // undo the umask
      continue;
    }
    // No CAP_MKNOD (user namespace): bind the host's node instead.
    char rel[64], host[64];
    std::snprintf(rel, sizeof(rel), "dev/%s", n.name);
    std::snprintf(host, sizeof(host), "/dev/%s", n.name);
    MountIn(c, rootfd, rel, host, nullptr, MS_BIND, nullptr, true);
  }
  MountIn(c, rootfd, "dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
          "newinstance,ptmxmode=0666,mode=0620", false, true);
  symlinkat("pts/ptmx", dev, "ptmx");
  MountIn(c, rootfd, "dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
          "mode=1777,size=65536k");
  MountIn(c, rootfd, "dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr,
          false, true);
  symlinkat("/proc/self/fd", dev, "fd");
  symlinkat("/proc/self/fd/0", dev, "stdin");
  symlinkat("/proc/self/fd/1", dev, "stdout");
  symlinkat("/proc/self/fd/2", dev, "stderr");
  close(dev);
}

void MaskPaths(const ChildConfig& c, int rootfd) {
  static const char* const kMaskedFiles[] = {"proc/kcore",         "proc/keys",
                                             "proc/timer_list",    "proc/sched_debug",
                                             "proc/latency_stats", "proc/timer_stats"};
  for (const char* rel : kMaskedFiles) {
    int fd = OpenAt2(rootfd, rel, O_PATH);
    if (fd < 0) continue;
    char target[64];
    FdPath(fd, target, sizeof(target));
    char devnull[PATH_MAX];
    std::snprintf(devnull, sizeof(devnull), "%s/dev/null", c.rootfs.c_str());
    if (mount(devnull, target, nullptr, MS_BIND, nullptr) < 0) {
      Fail(c, 125, "mask /%s", rel, errno);
    }
    close(fd);
  }
  for (const char* rel : {"proc/acpi", "proc/scsi", "sys/firmware"}) {
    int fd = OpenAt2(rootfd, rel, O_PATH | O_DIRECTORY);
    if (fd < 0) continue;
    char target[64];
    FdPath(fd, target, sizeof(target));
    if (mount("tmpfs", target, "tmpfs", MS_RDONLY, "size=0") < 0) {
      Fail(c, 125, "mask /%s", rel, errno);
    }
    close(fd);
  }
  for (const char* rel : {"proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger"}) {
    int fd = OpenAt2(rootfd, rel, O_PATH);
    if (fd < 0) continue;
    char target[64];
    FdPath(fd, target, sizeof(target));
    if (mount(target, target, nullptr, MS_BIND | MS_REC, nullptr) < 0) {
      Fail(c, 125, "bind /%s", rel, errno);
    }
    close(fd);
    RemountReadOnly(c, rootfd, rel, false);
  }
}

void SetupMounts(const ChildConfig& c) {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) {
    Fail(c, 125, "make %s a private mount", "/", errno);
  }
  // "volatile" (Linux 5.10+) skips syncing the upper layer when the container's mount
  // namespace goes away: that sync costs milliseconds on every container exit, and a writable
  // layer is scratch space that no later mount reuses (a crash leaves it to Recover()).
  if (mount("overlay", c.rootfs.c_str(), "overlay", 0, c.overlay_options_volatile.c_str()) < 0 &&
      mount("overlay", c.rootfs.c_str(), "overlay", 0, c.overlay_options.c_str()) < 0) {
    Fail(c, 125, "mount the overlay root at %s", c.rootfs.c_str(), errno);
  }
  int rootfd = open(c.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) Fail(c, 125, "open %s", c.rootfs.c_str(), errno);
  MountIn(c, rootfd, "proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  SetupDev(c, rootfd);
  unsigned long sys_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (c.privileged ? 0 : MS_RDONLY);
  int sysfd = OpenInRoot(c, rootfd, "sys", false);
  char target[64];
  FdPath(sysfd, target, sizeof(target));
  if (mount("sysfs", target, "sysfs", sys_flags, nullptr) < 0) {
    // Sharing the host's network namespace can forbid a new sysfs: bind the host's read-only.
    if (mount("/sys", target, nullptr, MS_BIND | MS_REC, nullptr) < 0) {
      Fail(c, 125, "mount /%s in the container", "sys", errno);
    }
    if (!c.privileged) RemountReadOnly(c, rootfd, "sys", false);
  }
  close(sysfd);
  for (const ChildMount& m : c.mounts) {
    struct stat st;
    bool file = stat(m.source.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
    MountIn(c, rootfd, m.destination.c_str(), m.source.c_str(), nullptr, MS_BIND | MS_REC, nullptr,
            file);
    if (m.read_only) RemountReadOnly(c, rootfd, m.destination.c_str(), false);
  }
  if (!c.privileged) MaskPaths(c, rootfd);
  if (c.read_only) RemountReadOnly(c, rootfd, ".", false);
  close(rootfd);
  if (chdir(c.rootfs.c_str()) < 0) Fail(c, 125, "chdir %s", c.rootfs.c_str(), errno);
  if (syscall(SYS_pivot_root, ".", ".") < 0)
    Fail(c, 125, "pivot_root into %s", c.rootfs.c_str(), errno);
  if (umount2(".", MNT_DETACH) < 0) Fail(c, 125, "detach the old root%s", "", errno);
  if (chdir("/") < 0) Fail(c, 125, "chdir %s", "/", errno);
}

void LoopbackUp() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return;
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof(ifr));
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP;
    ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  close(s);
}

void DropPrivileges(const ChildConfig& c) {
  if (!c.privileged) {
    for (int cap = 0; cap < 64; cap++) {
      if (c.capabilities & (1ull << cap)) continue;
      if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL) break;
    }
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  }
  // In a user namespace setgroups is denied (a requirement for an unprivileged gid map) and the
  // supplementary groups are already none that are mapped.
  if (!c.user_namespace && setgroups(0, nullptr) < 0) Fail(c, 125, "setgroups%s", "", errno);
  if (setresgid(c.gid, c.gid, c.gid) < 0) Fail(c, 125, "setgid%s", "", errno);
  if (setresuid(c.uid, c.uid, c.uid) < 0) Fail(c, 125, "setuid%s", "", errno);
  if (!c.privileged && c.uid == 0) {
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    std::memset(data, 0, sizeof(data));
    for (int i = 0; i < 2; i++) {
      auto word = static_cast<uint32_t>(c.capabilities >> (32 * i));
      data[i].effective = word;
      data[i].permitted = word;
    }
    if (syscall(SYS_capset, &hdr, data) < 0) Fail(c, 125, "capset%s", "", errno);
  }
  if (!c.privileged) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) Fail(c, 125, "no_new_privs%s", "", errno);
  }
  if (!c.seccomp.empty()) {
    struct sock_fprog prog;
    prog.len = static_cast<unsigned short>(c.seccomp.size());
    prog.filter = const_cast<sock_filter*>(c.seccomp.data());
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
      Fail(c, 125, "load the seccomp filter%s", "", errno);
    }
  }
}

// execve with a PATH search in the container's environment; maps failures to 126/127.
[[noreturn]] void ExecWorkload(const ChildConfig& c, char* const* argv, char* const* envp) {
  const char* file = argv[0];
  if (std::strchr(file, '/') != nullptr) {
    execve(file, argv, envp);
    int err = errno;
    Fail(c, err == ENOENT ? 127 : 126, "exec \"%s\"", file, err);
  }
  const char* path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const std::string& e : c.env) {
    if (e.rfind("PATH=", 0) == 0) path = e.c_str() + 5;
  }
  int saw_eacces = 0;
  const char* p = path;
  while (true) {
    const char* colon = std::strchr(p, ':');
    size_t len = colon ? static_cast<size_t>(colon - p) : std::strlen(p);
    char candidate[PATH_MAX];
    std::snprintf(candidate, sizeof(candidate), "%.*s/%s", static_cast<int>(len), p, file);
    execve(candidate, argv, envp);
    if (errno == EACCES || errno == ENOEXEC || errno == EISDIR) saw_eacces = errno;
    if (colon == nullptr) break;
    p = colon + 1;
  }
  if (saw_eacces != 0) Fail(c, 126, "exec \"%s\"", file, saw_eacces);
  Fail(c, 127, "exec \"%s\": executable file not found in $PATH", file, 0);
}

// `init_exec_fd`: the read end of a pipe whose only other writer is the init-to-be, closed by its
// exec (CLOEXEC): the workload must not run while PID 1 still holds the capabilities it drops
// at that exec (a workload reading /proc/1/status would see them).
[[noreturn]] void RunWorkload(const ChildConfig& c, int init_exec_fd) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) Fail(c, 125, "open %s in the container", "/dev/null", errno);
  if (dup2(null_fd, 0) < 0 || dup2(c.stdout_fd, 1) < 0 || dup2(c.stderr_fd, 2) < 0) {
    Fail(c, 125, "set up stdio%s", "", errno);
  }
  if (chdir(c.cwd.c_str()) < 0) {
    // Like docker's WORKDIR: a missing working directory is created.
    int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    int fd = rootfd >= 0 ? OpenInRoot(c, rootfd, c.cwd.c_str() + 1, false) : -1;
    if (fd >= 0) close(fd);
    if (chdir(c.cwd.c_str()) < 0) Fail(c, 125, "working directory %s", c.cwd.c_str(), errno);
  }
  std::vector<char*> argv, envp;
  for (const std::string& a : c.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : c.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  DropPrivileges(c);
  char none_read;
  while (read(init_exec_fd, &none_read, 1) < 0 && errno == EINTR) {
  }
  close(init_exec_fd);
  ExecWorkload(c, argv.data(), envp.data());
}

}  // namespace

void RunContainerChild(const ChildConfig& c) {
  // The creator moves this process into the container's cgroups while the mounts are built
  // (the first cgroup migration waits for an RCU grace period: overlap it); "go" says it is done.
  if (c.user_namespace) {
    // Until the creator has written our uid/gid maps we are nobody in the new namespace.
    char mapped = 0;
    if (read(c.go_fd, &mapped, 1) != 1) Fail(c, 125, "no user namespace mapping%s", "", 0);
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
      Fail(c, 125, "become root in the user namespace%s", "", errno);
    }
  }
  SetupMounts(c);
  if (!c.hostname.empty() && sethostname(c.hostname.data(), c.hostname.size()) < 0) {
    Fail(c, 125, "set hostname %s", c.hostname.c_str(), errno);
  }
  if (c.net == NetMode::kNone) LoopbackUp();
  char go = 0;
  if (read(c.go_fd, &go, 1) != 1) Fail(c, 125, "the creator went away before the start%s", "", 0);
  close(c.go_fd);
  // A private cgroup namespace, now that we are in the container's cgroup: it shows as "/".
  (void)unshare(CLONE_NEWCGROUP);
  int init_exec[2];
  if (pipe2(init_exec, O_CLOEXEC) < 0) Fail(c, 125, "pipe%s", "", errno);
  pid_t workload = fork();
  if (workload < 0) Fail(c, 125, "fork the workload%s", "", errno);
  if (workload == 0) {
    close(init_exec[1]);
    RunWorkload(c, init_exec[0]);
  }
  close(init_exec[0]);  // init_exec[1] stays open until the exec below
  close(c.stdout_fd);
  close(c.stderr_fd);
  // The init needs no privilege to reap and forward signals: it keeps none, so a workload that
  // got hold of it would gain nothing.
  if (!c.privileged) {
    for (int cap = 0; cap < 64; cap++) {
      if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL) break;
    }
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  }
  char pid_arg[16];
  std::snprintf(pid_arg, sizeof(pid_arg), "%d", workload);
  char arg0[] = "fjord-init";
  char arg1[] = "init";
  char* const argv[] = {arg0, arg1, pid_arg, nullptr};
  char* const envp[] = {nullptr};
  fexecve(c.init_fd, argv, envp);
  // Without the init, the workload would run without a reaper: stop it and report.
  int err = errno;
  kill(workload, SIGKILL);
  Fail(c, 125, "exec the container init%s", "", err);
}

}  // namespace fjord::runtime
