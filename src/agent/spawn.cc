// Starting, re-adopting and watching unit shims (shim/shim.c).
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "agent/internal.h"

extern "C" const unsigned char fjord_unit_shim_start[];
extern "C" const unsigned char fjord_unit_shim_end[];

namespace fjord::agent {

using base::ErrnoStatus;
using base::Result;
using base::UniqueFd;

namespace {

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

}  // namespace

Result<UniqueFd> ShimMemfd() {
  return base::SealedMemfd("fjord-unit-shim", fjord_unit_shim_start,
                           static_cast<size_t>(fjord_unit_shim_end - fjord_unit_shim_start));
}

ShimStatus ReadShimStatus(const fs::path& file) {
  ShimStatus s;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    int n = std::atoi(v.c_str());
    if (k == "pid") s.pid = n;
    if (k == "state") {
      s.running = v == "running";
      s.exited = v == "exited";
    }
    if (k == "code") s.code = n;
    if (k == "signal") s.signal = n;
    if (k == "core") s.core = n != 0;
    if (k == "errno") s.err = n;
    if (k == "stage") s.stage = v;
  }
  return s;
}

std::string ReadProcFile(const std::string& path) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

pid_t ParentOf(pid_t pid) {
  std::string all = ReadProcFile("/proc/" + std::to_string(pid) + "/stat");
  auto rp = all.rfind(')');
  int ppid = 0;
  if (rp != std::string::npos) std::sscanf(all.c_str() + rp + 2, "%*c %d", &ppid);
  return ppid;
}

uint64_t ProcessStartTime(pid_t pid) {
  std::string all = ReadProcFile("/proc/" + std::to_string(pid) + "/stat");
  auto rp = all.rfind(')');
  if (rp == std::string::npos) return 0;
  std::istringstream rest(all.substr(rp + 2));
  std::string field;
  // Fields after the name start at 3 (state); starttime is field 22.
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 3 && field == "Z") return 0;  // a zombie is as good as gone
    if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
  }
  return 0;
}

Result<std::unique_ptr<Proc>> SpawnShim(int shim_fd, const SpawnRequest& req) {
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ":") + x;
    return s.empty() ? std::string("-") : s;
  };
  std::vector<std::string> args = {"fjord-unit-shim",
                                   req.status_file.string(),
                                   req.log_file.string(),
                                   std::to_string(req.log_max),
                                   req.forking ? "forking" : "simple",
                                   req.pidfile.empty() ? "-" : req.pidfile,
                                   req.cwd.empty() ? "-" : req.cwd,
                                   std::to_string(req.uid),
                                   std::to_string(req.gid),
                                   join(req.cgroup_procs),
                                   req.oom_score_adj ? std::to_string(*req.oom_score_adj) : "-",
                                   "--",
                                   req.path};
  for (const auto& a : req.argv) args.push_back(a);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = req.env;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  std::error_code ec;
  fs::remove(req.status_file, ec);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0) return ErrnoStatus("pipe for the unit shim");
  UniqueFd notify_r(pipefd[0]), notify_w(pipefd[1]);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("fork the unit shim");
  if (pid == 0) {
    // Only async-signal-safe calls from here on: the parent is multi-threaded.
    ::setsid();
    // The shim must not hold the agent's stdio (a pipe of whoever started the agent).
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    int w = ::fcntl(notify_w.get(), F_DUPFD, 10);  // above 4, so the dup2s cannot clobber
    int s = ::fcntl(shim_fd, F_DUPFD, 10);
    int n = req.notify_fd >= 0 ? ::fcntl(req.notify_fd, F_DUPFD, 10) : -1;
    ::dup2(w, 3);
    ::dup2(s, 4);
    ::fcntl(4, F_SETFD, FD_CLOEXEC);
    ::fcntl(3, F_SETFL, 0);                // blocking writes in the shim
    if (n >= 0) ::dup2(n, kShimNotifyFd);  // the shim keeps the unit's notify socket (notify.cc)
    ::syscall(SYS_close_range, n >= 0 ? kShimNotifyFd + 1U : 5U, ~0U, 0U);
    ::fexecve(4, argv.data(), envp.data());
    _exit(127);
  }
  auto p = std::make_unique<Proc>();
  p->shim_pid = pid;
  p->child = true;
  p->pidfd = UniqueFd(PidfdOpen(pid));
  p->notify = std::move(notify_r);
  p->status_file = req.status_file;
  p->shim_start = ProcessStartTime(pid);
  return p;
}

std::unique_ptr<Proc> AdoptShim(pid_t pid, uint64_t start, const fs::path& status_file) {
  if (pid <= 0) return nullptr;
  UniqueFd fd(PidfdOpen(pid));
  if (!fd) return nullptr;
  // A shim of an earlier Supervisor in this same process (Detach, then Open) is our child:
  // reap it when it is a zombie, so nothing lingers.
  if (ParentOf(pid) == ::getpid() && ProcessStartTime(pid) == 0) {
    ::waitpid(pid, nullptr, WNOHANG);
    return nullptr;
  }
  // Checked after opening the pidfd: the pid cannot be reused while we hold it.
  if (ProcessStartTime(pid) != start) return nullptr;
  auto p = std::make_unique<Proc>();
  p->shim_pid = pid;
  p->shim_start = start;
  p->pidfd = std::move(fd);
  p->child = ParentOf(pid) == ::getpid();
  p->status_file = status_file;
  p->st = ReadShimStatus(status_file);
  return p;
}

void PollProc(Proc& p, bool pidfd_ready) {
  if (p.done) return;
  char buf[64];
  bool notified = false;
  while (p.notify && ::read(p.notify.get(), buf, sizeof buf) > 0) notified = true;
  if (!pidfd_ready && p.pidfd) {
    struct pollfd pfd = {p.pidfd.get(), POLLIN, 0};
    pidfd_ready = ::poll(&pfd, 1, 0) > 0;
  }
  if (pidfd_ready || !p.pidfd) {
    if (p.child) {
      int st;
      while (::waitpid(p.shim_pid, &st, 0) < 0 && errno == EINTR) {
      }
    }
    p.st = ReadShimStatus(p.status_file);
    if (!p.st.exited) {
      // The shim died without a word (SIGKILLed): the process is lost, count it as killed.
      p.st.exited = true;
      p.st.running = false;
      p.st.code = 128 + SIGKILL;
      p.st.signal = SIGKILL;
    }
    p.done = true;
    p.pidfd.reset();
    p.notify.reset();
    return;
  }
  if (notified) p.st = ReadShimStatus(p.status_file);
}

}  // namespace fjord::agent
