// Runtime implementation: the creator side (this process) of a container's life.
//
// Start: reserve the name, create the state dir and cgroups, fork P. P clones the container
// child C (new namespaces) and then execs the embedded monitor, so the monitor is C's parent and
// owns it; C joins its cgroups, builds its root and execs the init, which forks the workload.
// Any error before the workload's execve comes back on a CLOEXEC pipe; a guard undoes
// everything when Start fails.
#include "runtime/runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <span>
#include <thread>

#include "base/fd.h"
#include "base/strings.h"
#include "runtime/cgroups.h"
#include "runtime/container_child.h"
#include "runtime/hardening.h"
#include "runtime/log_reader.h"
#include "runtime/paths.h"
#include "runtime/state.h"
#include "runtime/sysutil.h"

extern "C" const unsigned char fjord_monitor_start[];
extern "C" const unsigned char fjord_monitor_end[];

namespace fjord::runtime {

namespace fs = std::filesystem;
using base::ErrnoStatus;
using base::Result;
using base::Status;
using base::UniqueFd;

namespace {

// --userns: container ids 0..kUsernsSize-1 are host ids kUsernsBase.. (like a subuid range).
constexpr uid_t kUsernsBase = 100000;
constexpr uid_t kUsernsSize = 65536;

Status WriteIdMaps(pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid);
  const std::string map = "0 " + std::to_string(kUsernsBase) + " " + std::to_string(kUsernsSize);
  FJORD_RETURN_IF_ERROR(WriteExisting(proc + "/uid_map", map).Wrap("user namespace"));
  FJORD_RETURN_IF_ERROR(WriteExisting(proc + "/setgroups", "deny").Wrap("user namespace"));
  return WriteExisting(proc + "/gid_map", map).Wrap("user namespace");
}

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

int64_t NowUnix() { return static_cast<int64_t>(std::time(nullptr)); }

Status MakeDir(const fs::path& p) {
  if (::mkdir(p.c_str(), 0755) < 0 && errno != EEXIST) return ErrnoStatus("mkdir " + p.string());
  return Status::Ok();
}

// Every change to ROOT/names (reserving a name, releasing it, dropping stale links) is made
// under an exclusive flock on that directory, by fjord processes and monitors alike
// (monitor.c, Unpublish): looking where a link points and unlinking it are then one step, so a
// name released by one container is never unlinked from under the next one to take it.
class NamesLock {
 public:
  explicit NamesLock(const fs::path& root)
      : fd_(::open(paths::NamesDir(root).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
    if (fd_) {
      while (::flock(fd_.get(), LOCK_EX) < 0 && errno == EINTR) {
      }
    }
  }

 private:
  UniqueFd fd_;
};

// Unlinks ROOT/names/<name> if it still names container `id`. The caller holds a NamesLock.
void ReleaseNameLocked(const fs::path& root, const std::string& name, const std::string& id) {
  char target[256];
  const fs::path link = paths::NameLink(root, name);
  ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
  if (n > 0 && std::string_view(target, static_cast<size_t>(n)) == id) ::unlink(link.c_str());
}

bool ValidName(std::string_view n) {
  if (n.empty() || n.size() > 128 || !std::isalnum(static_cast<unsigned char>(n[0]))) return false;
  for (char ch : n) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '.' && ch != '-') {
      return false;
    }
  }
  return true;
}

bool ValidContainerPath(std::string_view p) {
  if (p.empty() || p[0] != '/') return false;
  for (const std::string& part : base::Split(p, '/')) {
    if (part == "..") return false;
  }
  return true;
}

Result<std::pair<uid_t, gid_t>> ParseUser(std::string_view user) {
  if (user.empty()) return std::pair<uid_t, gid_t>{0, 0};
  auto parts = base::Split(user, ':');
  auto num = [](const std::string& s, unsigned long& out) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
    out = std::strtoul(s.c_str(), nullptr, 10);
    return out < 0xffffffffUL;
  };
  unsigned long uid = 0, gid = 0;
  if (parts.size() > 2 || !num(parts[0], uid) || (parts.size() == 2 && !num(parts[1], gid))) {
    return base::InvalidArgument("--user " + base::QuoteForDisplay(user) +
                                 ": expected numeric UID or UID:GID, e.g. 1000:1000");
  }
  if (parts.size() == 1) gid = uid;
  return std::pair<uid_t, gid_t>{static_cast<uid_t>(uid), static_cast<gid_t>(gid)};
}

Status Validate(ContainerSpec& s, bool have_bridge) {
  if (s.argv.empty() || s.argv[0].empty()) {
    return base::InvalidArgument(
        "no command given: put it after `--`, e.g. -- /bin/sh -c 'echo hi'");
  }
  if (!s.name.empty() && !ValidName(s.name)) {
    return base::InvalidArgument("--name " + base::QuoteForDisplay(s.name) +
                                 ": use letters, digits, `_`, `.` or `-`, starting with a letter "
                                 "or digit (at most 128)");
  }
  if (s.rootfs.empty() && s.layers.empty()) {
    return base::InvalidArgument("no root filesystem: give --rootfs DIR or --image REF");
  }
  if (!s.rootfs.empty()) {
    std::error_code ec;
    s.rootfs = fs::absolute(s.rootfs, ec);
    if (!fs::is_directory(s.rootfs, ec)) {
      return base::NotFound("rootfs " + s.rootfs.string() +
                            " does not exist or is not a directory");
    }
  }
  for (const auto& l : s.layers) {
    std::error_code ec;
    if (!fs::is_directory(l, ec))
      return base::NotFound("image layer " + l.string() + " is missing");
  }
  for (Mount& m : s.mounts) {
    std::error_code ec;
    m.source = fs::absolute(m.source, ec);
    if (!fs::exists(m.source, ec)) {
      return base::NotFound("volume source " + m.source.string() +
                            " does not exist; create it first");
    }
    if (!ValidContainerPath(m.destination)) {
      return base::InvalidArgument("volume destination " + base::QuoteForDisplay(m.destination) +
                                   ": must be an absolute path without `..`");
    }
  }
  if (!ValidContainerPath(s.cwd)) {
    return base::InvalidArgument("--workdir " + base::QuoteForDisplay(s.cwd) +
                                 ": must be an absolute path without `..`");
  }
  if (s.hostname.size() > 64) return base::InvalidArgument("--hostname: at most 64 characters");
  if (s.limits.memory_bytes && *s.limits.memory_bytes < (4u << 20)) {
    return base::InvalidArgument("--memory: at least 4M is needed to start a container");
  }
  if (s.limits.pids_max && *s.limits.pids_max < 1) {
    return base::InvalidArgument("--pids-max: must be at least 1");
  }
  if (s.limits.cpus && (*s.limits.cpus <= 0 || *s.limits.cpus > 1024)) {
    return base::InvalidArgument("--cpu-quota: must be more than 0% and at most 1024 CPUs");
  }
  if (s.net == NetMode::kBridge && !have_bridge) {
    return base::FailedPrecondition(
        "--net bridge: bridge networking is not available in this build; use --net none or host");
  }
  if (!s.ports.empty() && s.net != NetMode::kBridge) {
    return base::InvalidArgument("--publish needs --net bridge");
  }
  FJORD_RETURN_IF_ERROR(ParseUser(s.user).status());
  if (s.log.max_files < 1) s.log.max_files = 1;
  if (s.log.max_bytes < 4096) s.log.max_bytes = 4096;
  return Status::Ok();
}

// Undoes a half-made container unless dismissed.
class StartGuard {
 public:
  explicit StartGuard(std::function<void()> undo) : undo_(std::move(undo)) {}
  ~StartGuard() {
    if (undo_) undo_();
  }
  void Dismiss() { undo_ = nullptr; }

 private:
  std::function<void()> undo_;
};

Result<UniqueFd> NewMonitorMemfd() {
  return base::SealedMemfd("fjord-monitor", fjord_monitor_start,
                           static_cast<size_t>(fjord_monitor_end - fjord_monitor_start));
}

// The monitor's memfd, written once per process (sealed, so sharing it is safe) and kept open:
// a long-lived caller (the agent) starts many containers.
Result<int> MonitorMemfd() {
  static const Result<UniqueFd> memfd = NewMonitorMemfd();
  if (!memfd.ok()) return memfd.status();
  return memfd->get();
}

struct Pipe {
  UniqueFd read, write;
};

Result<Pipe> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return ErrnoStatus("pipe");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Waits until `pid` (with `start`) has exited, or `timeout` passed. Reaps it if it is our child.
bool WaitProcessExit(pid_t pid, uint64_t start, std::chrono::milliseconds timeout) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd || !ProcessAlive(pid, start)) {
    ::waitpid(pid, nullptr, WNOHANG);
    return true;
  }
  struct pollfd pfd = {pidfd.get(), POLLIN, 0};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    int ms = timeout.count() < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, left.count()));
    int r = ::poll(&pfd, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r > 0) {
      ::waitpid(pid, nullptr, WNOHANG);
      return true;
    }
    if (r == 0) return false;
    return !ProcessAlive(pid, start);
  }
}

// Starts deleting `dir` in a detached helper and returns at once. Freeing an ext4 directory's
// blocks costs a synchronous discard each on hosts mounted with `discard` (tens of ms per
// container); no caller should wait for that, nor for the helper to be scheduled: fork, unlike
// posix_spawn (vfork), returns before the child runs, which on a busy host is milliseconds
// sooner. The child only execs the embedded monitor ("rmtree" mode), so it is safe in a
// threaded caller. Returns a pidfd to reap it with, or an invalid fd when `dir` was deleted here
// instead. Recover() deletes what a crash left.
UniqueFd RemoveInBackground(const fs::path& dir) {
  auto monitor = MonitorMemfd();
  if (monitor.ok()) {
    std::string arg0 = "fjord-monitor", arg1 = "rmtree", arg2 = dir.string();
    char* argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
    char* envp[] = {nullptr};
    pid_t child = ::fork();
    if (child == 0) {
      ::fexecve(*monitor, argv, envp);
      _exit(127);
    }
    if (child > 0) {
      UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
      if (!pidfd) {  // cannot reap it later without risking a recycled pid: wait now
        while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
        }
      }
      return pidfd;
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return UniqueFd();
}

// Reaps the background helpers that have finished; the others stay in `helpers`.
void ReapFinished(std::vector<UniqueFd>& helpers) {
  std::erase_if(helpers, [](const UniqueFd& pidfd) {
    siginfo_t info = {};
    const auto fd = static_cast<id_t>(pidfd.get());
    int rc;
    while ((rc = ::waitid(P_PIDFD, fd, &info, WEXITED | WNOHANG)) < 0 && errno == EINTR) {
    }
    // Done when reaped (si_pid set) or not ours to reap (ECHILD: SIGCHLD is ignored).
    return rc < 0 || info.si_pid != 0;
  });
}

class RuntimeImpl final : public Runtime {
 public:
  RuntimeImpl(RuntimeOptions options, std::unique_ptr<CgroupBackend> cgroups)
      : options_(std::move(options)), cgroups_(std::move(cgroups)) {}

  Status Recover() override;
  Result<Started> Start(const ContainerSpec& spec, UniqueFd* attach) override;
  Result<ContainerInfo> Wait(std::string_view name_or_id) override;
  Status Kill(std::string_view name_or_id, int sig) override;
  Status Stop(std::string_view name_or_id, std::chrono::milliseconds timeout) override;
  Status Destroy(std::string_view name_or_id, bool force) override;
  Result<ContainerInfo> Inspect(std::string_view name_or_id) override;
  Result<std::vector<ContainerInfo>> List() override;
  Result<ContainerStats> Stats(std::string_view name_or_id) override;
  Status Logs(std::string_view name_or_id, bool follow,
              const std::function<void(const LogRecord&)>& sink,
              const std::function<bool()>& keep_following) override;

 private:
  Result<std::string> ResolveId(std::string_view name_or_id) const;
  ContainerInfo InfoOf(const std::string& id, const ContainerState& st) const;
  Result<ChildConfig> MakeChildConfig(const ContainerSpec& spec, const std::string& id);
  // Kills and removes what a container still holds (processes, cgroups, network).
  void Teardown(const ContainerState& st);
  // Detaches an exited container from the bridge (address lease, veth, published ports), so
  // its host ports are free again; idempotent.
  void ReleaseNetwork(const ContainerState& st);
  // Starts the monitor process; returns its pid, the container's init pid comes on `pid_pipe`.
  // With `hold_read` (else -1) the monitor removes the container when it exits (auto-remove).
  Result<pid_t> ForkMonitor(const ChildConfig& cfg, const fs::path& dir, const ContainerSpec& spec,
                            const CgroupDirs& cgroups, int pid_pipe_write, int monitor_fd,
                            int out_read, int err_read, int attach_write, int hold_read,
                            int go_write);

  // The monitor died (killed, OOM, host trouble) before it recorded the exit: nobody owns the
  // container any more. Kills what is left and records it as killed.
  void MarkMonitorLost(const ContainerState& st);
  // Removes an exited (or never started) container: stops what `st` names, when given, moves
  // the directory to the trash and releases the name.
  Status Remove(const std::string& id, const ContainerState* st);
  // Deletes `dir` in the background (RemoveInBackground), reaping earlier helpers that are done.
  void RemoveLater(const fs::path& dir);

  RuntimeOptions options_;
  std::unique_ptr<CgroupBackend> cgroups_;
  // Pidfds of deletion helpers still running. Those left when we exit are reaped by init; a
  // long-lived caller reaps them on its next removal.
  std::vector<UniqueFd> helpers_;
};

Result<std::string> RuntimeImpl::ResolveId(std::string_view name_or_id) const {
  std::string key(name_or_id);
  if (key.empty() || key.find('/') != std::string::npos || key == "." || key == "..") {
    return base::InvalidArgument("container name " + base::QuoteForDisplay(key) + " is not valid");
  }
  char target[256];
  ssize_t n = ::readlink(paths::NameLink(options_.root, key).c_str(), target, sizeof(target) - 1);
  if (n > 0) {
    target[n] = '\0';
    if (fs::exists(paths::ContainerDir(options_.root, target))) return std::string(target);
  }
  // An id or a unique id prefix.
  std::string found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(paths::ContainersDir(options_.root), ec)) {
    std::string id = e.path().filename();
    if (base::StartsWith(id, key)) {
      if (!found.empty()) {
        return base::InvalidArgument("container id prefix `" + key + "` is ambiguous");
      }
      found = id;
    }
  }
  if (found.empty()) return base::NotFound("no such container: " + base::QuoteForDisplay(key));
  return found;
}

ContainerInfo RuntimeImpl::InfoOf(const std::string& id, const ContainerState& st) const {
  ContainerInfo info;
  info.id = id;
  info.name = st.name;
  info.dir = paths::ContainerDir(options_.root, id);
  info.monitor_pid = st.monitor_pid;
  info.init_pid = st.init_pid;
  info.error = st.error;
  info.created_unix = st.created_unix;
  info.state = st.status == "running" ? State::kRunning : State::kCreating;
  if (auto ex = ReadExit(info.dir); ex.ok()) {
    info.state = State::kExited;
    info.exit_code = ex->exit_code;
    info.oom_killed = ex->oom_killed;
    info.finished_unix = ex->finished_unix_ns / 1000000000;
    if (ex->monitor_lost && info.error.empty()) {
      info.error = "the container's monitor died; the container was killed";
    }
  }
  info.argv = st.argv;
  info.layers = st.layers;
  if (info.argv.empty()) {  // a container of an older fjord: its spec is in config.json
    if (auto spec = ReadSpec(info.dir); spec.ok()) {
      info.argv = spec->argv;
      info.layers = spec->layers;
    }
  }
  return info;
}

Result<ContainerInfo> RuntimeImpl::Inspect(std::string_view name_or_id) {
  FJORD_ASSIGN_OR_RETURN(std::string id, ResolveId(name_or_id));
  FJORD_ASSIGN_OR_RETURN(ContainerState st, ReadState(paths::ContainerDir(options_.root, id)));
  return InfoOf(id, st);
}

Result<std::vector<ContainerInfo>> RuntimeImpl::List() {
  std::vector<ContainerInfo> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(paths::ContainersDir(options_.root), ec)) {
    auto st = ReadState(e.path());
    if (!st.ok()) continue;  // being created; Recover() judges it
    out.push_back(InfoOf(e.path().filename(), *st));
  }
  std::sort(out.begin(), out.end(), [](const ContainerInfo& a, const ContainerInfo& b) {
    return a.created_unix != b.created_unix ? a.created_unix > b.created_unix : a.id < b.id;
  });
  return out;
}

Result<ContainerStats> RuntimeImpl::Stats(std::string_view name_or_id) {
  FJORD_ASSIGN_OR_RETURN(std::string id, ResolveId(name_or_id));
  FJORD_ASSIGN_OR_RETURN(ContainerState st, ReadState(paths::ContainerDir(options_.root, id)));
  if (st.cgroups.empty())
    return base::FailedPrecondition("container " + st.name + " has no cgroup");
  return cgroups_->Stats(st.cgroups);
}

void RuntimeImpl::RemoveLater(const fs::path& dir) {
  ReapFinished(helpers_);
  if (UniqueFd pidfd = RemoveInBackground(dir)) helpers_.push_back(std::move(pidfd));
}

void RuntimeImpl::Teardown(const ContainerState& st) {
  if (st.init_pid > 0 && ProcessAlive(st.init_pid, st.init_start)) ::kill(st.init_pid, SIGKILL);
  if (!st.cgroups.empty()) (void)cgroups_->Remove(st.cgroups);
  ReleaseNetwork(st);
}

void RuntimeImpl::MarkMonitorLost(const ContainerState& st) {
  Teardown(st);
  ExitRecord rec;
  rec.exit_code = 128 + SIGKILL;
  rec.signal = SIGKILL;
  rec.monitor_lost = true;
  rec.finished_unix_ns = NowUnix() * 1000000000LL;
  (void)WriteExit(paths::ContainerDir(options_.root, st.id), rec);
}

void RuntimeImpl::ReleaseNetwork(const ContainerState& st) {
  if (st.bridge && options_.network.detach) (void)options_.network.detach(st.id);
}

Status RuntimeImpl::Recover() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(paths::ContainersDir(options_.root), ec)) {
    const fs::path dir = e.path();
    const std::string id = dir.filename();
    auto st = ReadState(dir);
    if (!st.ok()) {
      // The creator writes state.json right after mkdir; an old dir without it is debris.
      struct stat sb;
      if (::stat(dir.c_str(), &sb) == 0 && std::time(nullptr) - sb.st_mtime > 60) {
        fs::remove_all(dir, ec);
      }
      continue;
    }
    bool exited = ReadExit(dir).ok();
    if (st->status == "creating") {
      if (ProcessAlive(st->creator_pid, st->creator_start)) continue;
      Teardown(*st);
      fs::remove_all(dir, ec);
      NamesLock lock(options_.root);
      ReleaseNameLocked(options_.root, st->name, id);
      continue;
    }
    if (!exited) {
      if (ProcessAlive(st->monitor_pid, st->monitor_start)) continue;
      MarkMonitorLost(*st);
      if (st->auto_remove) (void)Remove(id, &*st);
      continue;
    }
    // Exited: the monitor removes the cgroups; finish the job if it died half-way.
    const bool monitor_alive = ProcessAlive(st->monitor_pid, st->monitor_start);
    bool leftover = false;
    for (const auto& [_, d] : st->cgroups) leftover |= fs::exists(d, ec);
    if (leftover && !monitor_alive) {
      Teardown(*st);
    } else {
      ReleaseNetwork(*st);  // exited on its own since the last fjord command
    }
    // --rm that its monitor could not finish (a bridge container, or a monitor that died).
    if (st->auto_remove && !monitor_alive) (void)Remove(id, &*st);
  }
  // Removals a crashed fjord left half-done; younger entries are still being deleted by the
  // background process of a recent rm (deleting them here too would only wait on its discards).
  for (const auto& e : fs::directory_iterator(paths::TrashDir(options_.root), ec)) {
    struct stat sb;
    if (::lstat(e.path().c_str(), &sb) == 0 && std::time(nullptr) - sb.st_ctime > 60) {
      // A monitor that died while removing its --rm container may have left the cgroups.
      if (auto st = ReadState(e.path()); st.ok()) Teardown(*st);
      RemoveLater(e.path());
    }
  }
  // Names whose container is gone (Start makes the directory under the same lock as the link).
  NamesLock lock(options_.root);
  for (const auto& e : fs::directory_iterator(paths::NamesDir(options_.root), ec)) {
    std::error_code lec;
    fs::path target = fs::read_symlink(e.path(), lec);
    if (lec || !fs::exists(paths::ContainerDir(options_.root, target.string()), lec)) {
      ::unlink(e.path().c_str());
    }
  }
  return Status::Ok();
}

Result<ChildConfig> RuntimeImpl::MakeChildConfig(const ContainerSpec& spec, const std::string& id) {
  const fs::path dir = paths::ContainerDir(options_.root, id);
  ChildConfig c;
  std::string lower;
  if (!spec.rootfs.empty()) {
    lower = spec.rootfs.string();
  } else {
    for (auto it = spec.layers.rbegin(); it != spec.layers.rend(); ++it) {
      if (!lower.empty()) lower += ":";
      lower += it->string();
    }
  }
  c.overlay_options = "lowerdir=" + lower + ",upperdir=" + paths::UpperDir(dir).string() +
                      ",workdir=" + paths::WorkDir(dir).string();
  if (c.overlay_options.size() > 4000) {
    return base::InvalidArgument("too many image layers for one overlay mount");
  }
  c.overlay_options_volatile = c.overlay_options + ",volatile";
  c.rootfs = paths::MountPoint(options_.root).string();
  for (const Mount& m : spec.mounts) {
    c.mounts.push_back({m.source.string(), m.destination.substr(1), m.read_only});
  }
  c.hostname = spec.hostname.empty() ? id.substr(0, 12) : spec.hostname;
  c.argv = spec.argv;
  c.env = spec.env;
  auto has = [&](std::string_view key) {
    for (const std::string& e : c.env) {
      if (base::StartsWith(e, std::string(key) + "=")) return true;
    }
    return false;
  };
  if (!has("PATH")) c.env.push_back(std::string("PATH=") + kDefaultPath);
  if (!has("HOSTNAME")) c.env.push_back("HOSTNAME=" + c.hostname);
  if (!has("HOME")) c.env.push_back("HOME=/root");
  c.cwd = spec.cwd;
  FJORD_ASSIGN_OR_RETURN(auto ids, ParseUser(spec.user));
  c.uid = ids.first;
  c.gid = ids.second;
  c.net = spec.net;
  c.read_only = spec.read_only;
  c.privileged = spec.privileged;
  c.user_namespace = spec.user_namespace;
  c.capabilities = DefaultCapabilities();
  if (!spec.privileged) {
    const std::span<const sock_filter> filter = DefaultSeccompFilter();
    c.seccomp.assign(filter.begin(), filter.end());
  }
  return c;
}

Result<pid_t> RuntimeImpl::ForkMonitor(const ChildConfig& cfg, const fs::path& dir,
                                       const ContainerSpec& spec, const CgroupDirs& cgroups,
                                       int pid_pipe_write, int monitor_fd, int out_read,
                                       int err_read, int attach_write, int hold_read,
                                       int go_write) {
  // Everything the monitor's argv needs, built before fork.
  std::vector<std::string> args = {"fjord-monitor",
                                   "monitor",
                                   dir.string(),
                                   "",
                                   std::to_string(out_read),
                                   std::to_string(err_read),
                                   std::to_string(spec.log.max_bytes),
                                   std::to_string(spec.log.max_files)};
  fs::path oom = cgroups_->OomFile(cgroups);
  args.push_back(oom.empty() ? "-" : oom.string());
  args.push_back(attach_write >= 0 ? std::to_string(attach_write) : "-");
  const bool monitor_removes = hold_read >= 0;
  args.push_back(monitor_removes ? spec.name : "-");
  args.push_back(monitor_removes ? std::to_string(hold_read) : "-");
  const size_t first_cgroup = args.size();
  for (const auto& [_, d] : cgroups) {
    bool dup = false;
    for (size_t i = first_cgroup; i < args.size(); i++) dup |= args[i] == d.string();
    if (!dup) args.push_back(d.string());
  }
  int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
  if (spec.net != NetMode::kHost) flags |= CLONE_NEWNET;
  if (spec.user_namespace) flags |= CLONE_NEWUSER;
  // Without bridge networking P itself maps ids, joins the child to its cgroups and releases it:
  // the creator is then off the critical path (one process hop less before the workload runs).
  const bool p_releases = go_write >= 0;
  const std::vector<std::string> procs_files = CgroupProcsFiles(cgroups);
  const std::string id_map = "0 " + std::to_string(kUsernsBase) + " " + std::to_string(kUsernsSize);

  pid_t p = ::fork();
  if (p < 0) return ErrnoStatus("fork the container monitor");
  if (p > 0) return p;
  // P: detach from the caller's session so a terminal's Ctrl-C reaches only `fjord run`.
  ::setsid();
  int null_fd = ::open("/dev/null", O_RDWR);
  if (null_fd >= 0) {
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
    if (null_fd > 2) ::close(null_fd);
  }
  long child = ::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (child == 0) RunContainerChild(cfg);
  if (child < 0) {
    char msg[256];
    std::snprintf(msg, sizeof(msg), "125 clone the container's namespaces: %s",
                  std::strerror(errno));
    (void)!::write(cfg.error_fd, msg, std::strlen(msg));
    _exit(125);
  }
  pid_t c = static_cast<pid_t>(child);
  (void)!::write(pid_pipe_write, &c, sizeof(c));
  if (p_releases) {
    char path[64], pid_text[16];
    std::snprintf(pid_text, sizeof(pid_text), "%d", c);
    auto write_file = [&](const char* file, const std::string& text) {
      int fd = ::open(file, O_WRONLY | O_CLOEXEC);
      bool ok =
          fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
      int err = errno;
      if (fd >= 0) ::close(fd);
      if (ok) return;
      char msg[512];
      std::snprintf(msg, sizeof(msg), "125 write %s: %s", file, std::strerror(err));
      (void)!::write(cfg.error_fd, msg, std::strlen(msg));
      ::kill(c, SIGKILL);
      _exit(125);
    };
    if (spec.user_namespace) {
      for (const char* f : {"uid_map", "setgroups", "gid_map"}) {
        std::snprintf(path, sizeof(path), "/proc/%d/%s", c, f);
        write_file(path, std::strcmp(f, "setgroups") == 0 ? std::string("deny") : id_map);
      }
      (void)!::write(go_write, "m", 1);
    }
    for (const std::string& procs : procs_files) write_file(procs.c_str(), pid_text);
    (void)!::write(go_write, "g", 1);
  }
  // Spare the monitor in an OOM (like containerd's shim). Without CAP_SYS_RESOURCE a negative
  // score is refused: that is fine, the monitor is tiny anyway.
  if (int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC); fd >= 0) {
    (void)!::write(fd, "-999", 4);
    ::close(fd);
  }
  args[3] = std::to_string(c);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  // The log pipes must survive the exec; every other fd is CLOEXEC.
  ::fcntl(out_read, F_SETFD, 0);
  ::fcntl(err_read, F_SETFD, 0);
  if (attach_write >= 0) ::fcntl(attach_write, F_SETFD, 0);
  if (monitor_removes) ::fcntl(hold_read, F_SETFD, 0);
  ::fexecve(monitor_fd, argv.data(), envp);
  // No monitor: nothing would own the container. Kill it and report.
  ::kill(c, SIGKILL);
  char msg[256];
  std::snprintf(msg, sizeof(msg), "125 exec the container monitor: %s", std::strerror(errno));
  (void)!::write(cfg.error_fd, msg, std::strlen(msg));
  _exit(125);
}

Result<Started> RuntimeImpl::Start(const ContainerSpec& spec_in, UniqueFd* attach) {
  ContainerSpec spec = spec_in;
  FJORD_RETURN_IF_ERROR(Validate(spec, static_cast<bool>(options_.network.attach)));
  const std::string id = RandomId();
  if (spec.name.empty()) spec.name = id.substr(0, 12);
  const std::string name = spec.name;
  const fs::path dir = paths::ContainerDir(options_.root, id);
  const fs::path link = paths::NameLink(options_.root, name);

  {
    NamesLock lock(options_.root);
    if (::symlink(id.c_str(), link.c_str()) < 0) {
      if (errno == EEXIST) {
        return base::AlreadyExists("the name `" + name +
                                   "` is already in use; remove it with "
                                   "`fjord rm " +
                                   name + "` or choose another --name");
      }
      return ErrnoStatus("reserve the name " + link.string());
    }
    if (Status made = MakeDir(dir); !made.ok()) {
      ::unlink(link.c_str());
      return made;
    }
  }
  ContainerState st;
  st.id = id;
  st.name = name;
  st.creator_pid = ::getpid();
  st.creator_start = ProcessStartTime(st.creator_pid).value_or(0);
  st.stop_signal = spec.stop_signal;
  st.bridge = spec.net == NetMode::kBridge;
  st.auto_remove = spec.auto_remove;
  st.created_unix = NowUnix();
  StartGuard guard([&] {
    // The monitor writes the exit record once the init dies: let it finish before the directory
    // goes, or it would recreate it (a failed bridge attach left `containers/<id>/exit`).
    if (st.init_pid > 0 && ProcessAlive(st.init_pid, st.init_start)) ::kill(st.init_pid, SIGKILL);
    if (st.monitor_pid > 0) {
      WaitProcessExit(st.monitor_pid, st.monitor_start, std::chrono::seconds(10));
    }
    Teardown(st);
    std::error_code ec;
    fs::remove_all(dir, ec);
    NamesLock lock(options_.root);
    ReleaseNameLocked(options_.root, name, id);
  });
  for (const fs::path& d : {paths::UpperDir(dir), paths::WorkDir(dir)}) {
    FJORD_RETURN_IF_ERROR(MakeDir(d));
  }
  if (spec.user_namespace) {
    // The overlay's writable dirs belong to the container's root; the rest stays the host's.
    for (const fs::path& d : {paths::UpperDir(dir), paths::WorkDir(dir)}) {
      if (::chown(d.c_str(), kUsernsBase, kUsernsBase) < 0) {
        return ErrnoStatus("chown " + d.string());
      }
    }
  }
  // state.json names the cgroups, so a crash from here on leaves nothing Recover() cannot find.
  FJORD_ASSIGN_OR_RETURN(
      st.cgroups, cgroups_->Create(options_.cgroup_parent, id, spec.limits, spec.privileged));
  FJORD_RETURN_IF_ERROR(WriteState(dir, st, spec));

  FJORD_ASSIGN_OR_RETURN(ChildConfig cfg, MakeChildConfig(spec, id));
  FJORD_ASSIGN_OR_RETURN(const int monitor_fd, MonitorMemfd());
  FJORD_ASSIGN_OR_RETURN(Pipe err_pipe, MakePipe());
  FJORD_ASSIGN_OR_RETURN(Pipe go_pipe, MakePipe());
  FJORD_ASSIGN_OR_RETURN(Pipe pid_pipe, MakePipe());
  FJORD_ASSIGN_OR_RETURN(Pipe out_pipe, MakePipe());
  FJORD_ASSIGN_OR_RETURN(Pipe errout_pipe, MakePipe());
  // The monitor removes an auto-remove container, except one on the bridge: the network is
  // released by fjord (the attached client, or the next command's Recover), which then removes
  // it. The monitor waits for EOF on this pipe before it removes the state directory: ours closes
  // when Start returns, before the guard (declared earlier) runs.
  Pipe hold_pipe;
  if (spec.auto_remove && spec.net != NetMode::kBridge) {
    FJORD_ASSIGN_OR_RETURN(hold_pipe, MakePipe());
  }
  Pipe attach_pipe;
  if (attach != nullptr) {
    FJORD_ASSIGN_OR_RETURN(attach_pipe, MakePipe());
    // Room for bursts, so the container rarely waits for the attached client.
    ::fcntl(attach_pipe.write.get(), F_SETPIPE_SZ, 1 << 20);
  }
  cfg.error_fd = err_pipe.write.get();
  cfg.go_fd = go_pipe.read.get();
  cfg.stdout_fd = out_pipe.write.get();
  cfg.stderr_fd = errout_pipe.write.get();
  cfg.init_fd = monitor_fd;

  const int attach_write = attach_pipe.write.valid() ? attach_pipe.write.get() : -1;
  FJORD_ASSIGN_OR_RETURN(pid_t monitor,
                         ForkMonitor(cfg, dir, spec, st.cgroups, pid_pipe.write.get(), monitor_fd,
                                     out_pipe.read.get(), errout_pipe.read.get(), attach_write,
                                     hold_pipe.read.get(), st.bridge ? -1 : go_pipe.write.get()));
  st.monitor_pid = monitor;
  st.monitor_start = ProcessStartTime(monitor).value_or(0);
  // Only the child's ends stay open in the children; ours close so EOF means "they are gone".
  err_pipe.write.reset();
  go_pipe.read.reset();
  pid_pipe.write.reset();
  out_pipe = {};
  errout_pipe = {};
  attach_pipe.write.reset();
  hold_pipe.read.reset();

  pid_t init = 0;
  if (::read(pid_pipe.read.get(), &init, sizeof(init)) != sizeof(init)) {
    std::string msg = ReadAll(err_pipe.read.get());
    hold_pipe.write.reset();
    WaitProcessExit(monitor, st.monitor_start, std::chrono::seconds(5));
    return base::Internal(msg.size() > 4 ? msg.substr(4) : "the container monitor failed to start");
  }
  st.init_pid = init;
  st.init_start = ProcessStartTime(init).value_or(0);
  st.status = "running";
  FJORD_RETURN_IF_ERROR(WriteRunning(dir, st));
  if (st.bridge) {
    // The container child waits for "go" before it forks the workload: map its ids, join it to
    // its cgroups (nothing of the workload ever runs outside them) and attach its network.
    if (spec.user_namespace) {
      FJORD_RETURN_IF_ERROR(WriteIdMaps(init));
      if (::write(go_pipe.write.get(), "m", 1) != 1) return ErrnoStatus("release the child");
    }
    for (const std::string& procs : CgroupProcsFiles(st.cgroups)) {
      FJORD_RETURN_IF_ERROR(WriteExisting(procs, std::to_string(init)).Wrap("join cgroup"));
    }
    Status net = options_.network.attach(id, init, spec.ports);
    if (!net.ok()) return net.Wrap("attach container " + name + " to the bridge");
    if (::write(go_pipe.write.get(), "g", 1) != 1) return ErrnoStatus("release the container");
  }
  go_pipe.write.reset();

  // EOF once both the workload and the init have exec'd; a message means one of them failed.
  std::string msg = ReadAll(err_pipe.read.get());
  if (!msg.empty()) {
    int code = std::atoi(msg.c_str());
    std::string text = msg.substr(std::min(msg.size(), msg.find(' ') + 1));
    if (code == 126 || code == 127) {
      // The container ran and failed to exec: it exists, exited, with the reason recorded.
      FJORD_RETURN_IF_ERROR(WriteStartError(dir, text));
      guard.Dismiss();
      if (attach != nullptr) *attach = std::move(attach_pipe.read);
      return Started{id, text, code, init};
    }
    ::kill(init, SIGKILL);
    hold_pipe.write.reset();
    WaitProcessExit(monitor, st.monitor_start, std::chrono::seconds(10));
    return base::Internal("start container " + name + ": " + text);
  }
  guard.Dismiss();
  if (attach != nullptr) *attach = std::move(attach_pipe.read);
  return Started{id, "", 0, init};
}

Result<ContainerInfo> RuntimeImpl::Wait(std::string_view name_or_id) {
  FJORD_ASSIGN_OR_RETURN(std::string id, ResolveId(name_or_id));
  const fs::path dir = paths::ContainerDir(options_.root, id);
  FJORD_ASSIGN_OR_RETURN(ContainerState st, ReadState(dir));
  std::error_code ec;
  if (!ReadExit(dir).ok()) {
    WaitProcessExit(st.monitor_pid, st.monitor_start, std::chrono::milliseconds(-1));
    if (!ReadExit(dir).ok() && fs::exists(dir, ec)) MarkMonitorLost(st);  // the monitor died
  }
  ReleaseNetwork(st);
  if (!fs::exists(dir, ec)) {
    return base::NotFound("container " + st.name + " exited and was removed (--rm)");
  }
  ContainerInfo info = InfoOf(id, st);
  if (st.auto_remove) (void)Remove(id, &st);  // what its monitor left to fjord (bridge, or died)
  return info;
}

Status RuntimeImpl::Kill(std::string_view name_or_id, int sig) {
  FJORD_ASSIGN_OR_RETURN(std::string id, ResolveId(name_or_id));
  const fs::path dir = paths::ContainerDir(options_.root, id);
  FJORD_ASSIGN_OR_RETURN(ContainerState st, ReadState(dir));
  if (ReadExit(dir).ok() || !ProcessAlive(st.init_pid, st.init_start)) {
    return base::FailedPrecondition("container " + st.name + " is not running");
  }
  // A pidfd pins the process: no signal to a recycled pid.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, st.init_pid, 0)));
  if (!pidfd || !ProcessAlive(st.init_pid, st.init_start)) {
    return base::FailedPrecondition("container " + st.name + " is not running");
  }
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) < 0 && errno != ESRCH) {
    return ErrnoStatus("signal container " + st.name);
  }
  return Status::Ok();
}

Status RuntimeImpl::Stop(std::string_view name_or_id, std::chrono::milliseconds timeout) {
  FJORD_ASSIGN_OR_RETURN(std::string id, ResolveId(name_or_id));
  const fs::path dir = paths::ContainerDir(options_.root, id);
  std::error_code ec;
  auto state = ReadState(dir);
  if (!state.ok() && !fs::exists(dir, ec)) return Status::Ok();  // exited, auto-removed
  FJORD_RETURN_IF_ERROR(state.status());
  const ContainerState& st = *state;
  // Exited; or exited and auto-removed by its monitor.
  auto ended = [&] { return ReadExit(dir).ok() || !fs::exists(dir, ec); };
  if (ended()) {
    ReleaseNetwork(st);
    return Status::Ok();
  }
  if (timeout.count() > 0) {
    (void)Kill(id, st.stop_signal);
    if (WaitProcessExit(st.monitor_pid, st.monitor_start, timeout) && ended()) {
      ReleaseNetwork(st);
      return Status::Ok();
    }
  }
  // Out of patience: every process in the cgroup, then the init (its pid namespace goes too).
  if (!st.cgroups.empty()) (void)cgroups_->KillAll(st.cgroups);
  if (ProcessAlive(st.init_pid, st.init_start)) ::kill(st.init_pid, SIGKILL);
  WaitProcessExit(st.monitor_pid, st.monitor_start, std::chrono::seconds(10));
  if (!ended()) FJORD_RETURN_IF_ERROR(Recover());
  ReleaseNetwork(st);
  return Status::Ok();
}

Status RuntimeImpl::Destroy(std::string_view name_or_id, bool force) {
  FJORD_ASSIGN_OR_RETURN(std::string id, ResolveId(name_or_id));
  const fs::path dir = paths::ContainerDir(options_.root, id);
  auto st = ReadState(dir);
  if (st.ok() && !ReadExit(dir).ok() && st->status == "running") {
    if (!force) {
      return base::FailedPrecondition("container " + st->name +
                                      " is running; stop it first or use `fjord rm --force`");
    }
    // NotFound: it exited meanwhile and its monitor removed it (--rm).
    if (Status stopped = Stop(id, std::chrono::milliseconds(0));
        !stopped.ok() && stopped.code() != base::Code::kNotFound) {
      return stopped;
    }
  }
  return Remove(id, st.ok() ? &*st : nullptr);
}

Status RuntimeImpl::Remove(const std::string& id, const ContainerState* st) {
  if (st != nullptr) Teardown(*st);
  // Gone from every view at once; the files themselves are deleted in the background.
  const fs::path dir = paths::ContainerDir(options_.root, id);
  const fs::path trash = paths::TrashDir(options_.root) / (id + "." + RandomId().substr(0, 8));
  if (::rename(dir.c_str(), trash.c_str()) < 0) {
    // ENOENT: an auto-remove container's monitor was quicker.
    if (errno != ENOENT) return ErrnoStatus("move " + dir.string() + " to " + trash.string());
  } else {
    RemoveLater(trash);
  }
  if (st != nullptr) {
    NamesLock lock(options_.root);
    ReleaseNameLocked(options_.root, st->name, id);
  }
  return Status::Ok();
}

Status RuntimeImpl::Logs(std::string_view name_or_id, bool follow,
                         const std::function<void(const LogRecord&)>& sink,
                         const std::function<bool()>& keep_following) {
  FJORD_ASSIGN_OR_RETURN(std::string id, ResolveId(name_or_id));
  const fs::path dir = paths::ContainerDir(options_.root, id);
  FJORD_ASSIGN_OR_RETURN(ContainerState st, ReadState(dir));
  std::function<bool()> running = [&] {
    if (keep_following && !keep_following()) return false;
    return !ReadExit(dir).ok() && ProcessAlive(st.monitor_pid, st.monitor_start);
  };
  std::error_code ec;
  const fs::path log =
      fs::exists(paths::LegacyLogFile(dir), ec) ? paths::LegacyLogFile(dir) : paths::LogFile(dir);
  return ReadContainerLog(log, follow ? &running : nullptr, follow ? st.monitor_pid : 0, sink);
}

}  // namespace

std::string ContainerInfo::StatusString() const {
  switch (state) {
    case State::kCreating:
      return "creating";
    case State::kRunning:
      return "running";
    case State::kExited:
      return oom_killed ? "oom-killed" : "exited (" + std::to_string(exit_code) + ")";
  }
  return "unknown";
}

Result<std::unique_ptr<Runtime>> Runtime::Open(RuntimeOptions options) {
  if (options.root.empty()) options.root = paths::DefaultRoot();
  std::error_code ec;
  options.root = fs::absolute(options.root, ec);
  for (const fs::path& d :
       {options.root, paths::ContainersDir(options.root), paths::NamesDir(options.root),
        paths::TrashDir(options.root), paths::MountPoint(options.root)}) {
    fs::create_directories(d, ec);
    if (ec) return base::Internal("create state directory " + d.string() + ": " + ec.message());
  }
  if (!ValidName(options.cgroup_parent)) {
    return base::InvalidArgument("cgroup parent " + base::QuoteForDisplay(options.cgroup_parent) +
                                 " is not a valid cgroup name");
  }
  FJORD_ASSIGN_OR_RETURN(auto cgroups, CgroupBackend::Detect());
  return std::unique_ptr<Runtime>(new RuntimeImpl(std::move(options), std::move(cgroups)));
}

Result<uint64_t> ParseByteSize(std::string_view text) {
  std::string t(base::TrimWhitespace(text));
  if (t.empty()) return base::InvalidArgument("empty size; use e.g. 256M");
  size_t i = 0;
  while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) i++;
  if (i == 0 || i > 18) {
    return base::InvalidArgument("bad size " + base::QuoteForDisplay(t) +
                                 ": use a number with an optional unit k, M, G or T, e.g. 256M");
  }
  uint64_t n = std::strtoull(t.substr(0, i).c_str(), nullptr, 10);
  std::string unit = base::AsciiLower(t.substr(i));
  int shift = 0;
  if (unit.empty() || unit == "b") {
    shift = 0;
  } else if (unit == "k" || unit == "kb" || unit == "kib") {
    shift = 10;
  } else if (unit == "m" || unit == "mb" || unit == "mib") {
    shift = 20;
  } else if (unit == "g" || unit == "gb" || unit == "gib") {
    shift = 30;
  } else if (unit == "t" || unit == "tb" || unit == "tib") {
    shift = 40;
  } else {
    return base::InvalidArgument("bad size " + base::QuoteForDisplay(t) + ": unknown unit `" +
                                 unit + "`; use k, M, G or T");
  }
  if (shift > 0 && n > (UINT64_MAX >> shift)) {
    return base::InvalidArgument("size " + base::QuoteForDisplay(t) + " is too large");
  }
  return n << shift;
}

Result<double> ParseCpuQuota(std::string_view text) {
  std::string t(base::TrimWhitespace(text));
  bool percent = !t.empty() && t.back() == '%';
  if (percent) t.pop_back();
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  if (t.empty() || end == nullptr || *end != '\0' || !(v > 0) || v > 102400) {
    return base::InvalidArgument("bad CPU quota " + base::QuoteForDisplay(text) +
                                 ": use a percentage of one CPU (50%) or a number of CPUs (0.5)");
  }
  return percent ? v / 100.0 : v;
}

}  // namespace fjord::runtime
