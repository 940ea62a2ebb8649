// sd_notify(3) for the agent's units: Type=notify, NotifyAccess=, WatchdogSec=, STATUS=,
// MAINPID=, STOPPING=1, RELOADING=1 (systemd.service(5)).
//
// Each unit that wants notifications gets its own AF_UNIX datagram socket, bound at
// units/<name>/notify (or an abstract name when that path does not fit in sun_path), with
// SO_PASSCRED so the kernel stamps every datagram with the sender's pid. The agent polls it;
// the main process's shim holds a copy as fd kShimNotifyFd (close-on-exec there, so the unit's
// process does not inherit it). While no agent runs, the socket stays bound and datagrams queue
// in it (up to net.unix.max_dgram_qlen); the next agent takes the same socket back from the
// re-adopted shim with pidfd_getfd(2) and reads what was queued, so a READY=1 sent during an
// agent restart is not lost.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "agent/internal.h"
#include "base/strings.h"

namespace fjord::agent {

using base::Result;
using base::UniqueFd;

namespace {

constexpr size_t kMaxDatagram = 4096;    // systemd's limit for one notification
constexpr int kMaxMessagesPerWake = 64;  // the rest waits for the next poll round

// sockaddr_un for an address as NOTIFY_SOCKET spells it ('@' = abstract namespace).
socklen_t MakeAddr(const std::string& address, struct sockaddr_un* sa) {
  std::memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  std::memcpy(sa->sun_path, address.data(), std::min(address.size(), sizeof sa->sun_path - 1));
  if (address[0] == '@') sa->sun_path[0] = '\0';
  return static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + address.size());
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<NotifySocket> CreateNotifySocket(const fs::path& dir) {
  std::string path = (dir / "notify").string();
  NotifySocket s;
  struct sockaddr_un sa;
  if (path.size() < sizeof sa.sun_path) {
    s.address = path;
  } else {
    // Too long for a path socket: an abstract name derived from the path, so it is stable.
    char name[64];
    std::snprintf(name, sizeof name, "@fjord-notify-%016llx",
                  static_cast<unsigned long long>(Fnv1a(path)));
    s.address = name;
  }
  s.fd = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s.fd) return base::ErrnoStatus("notify socket: socket");
  int one = 1;
  if (::setsockopt(s.fd.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0) {
    return base::ErrnoStatus("notify socket: SO_PASSCRED");
  }
  if (s.address[0] != '@') ::unlink(path.c_str());  // a stale socket of an earlier run
  socklen_t len = MakeAddr(s.address, &sa);
  if (::bind(s.fd.get(), reinterpret_cast<struct sockaddr*>(&sa), len) < 0) {
    return base::ErrnoStatus("notify socket: bind " + s.address);
  }
  // A service with User= must be able to send (the unit directory is searchable by all).
  if (s.address[0] != '@') ::chmod(path.c_str(), 0666);
  return s;
}

Result<NotifySocket> AdoptNotifySocket(int shim_pidfd, const std::string& address) {
  if (address.empty()) return base::InvalidArgument("no notify socket recorded");
  int fd = static_cast<int>(::syscall(SYS_pidfd_getfd, shim_pidfd, kShimNotifyFd, 0));
  if (fd < 0) return base::ErrnoStatus("pidfd_getfd of the shim's notify socket");
  NotifySocket s;
  s.fd = UniqueFd(fd);  // pidfd_getfd sets close-on-exec
  s.address = address;
  // The fd number could hold something else (a shim from before notify support): check it.
  struct sockaddr_un got;
  socklen_t got_len = sizeof got;
  std::string bound;
  if (::getsockname(fd, reinterpret_cast<struct sockaddr*>(&got), &got_len) == 0 &&
      got.sun_family == AF_UNIX && got_len > offsetof(struct sockaddr_un, sun_path)) {
    size_t n = got_len - offsetof(struct sockaddr_un, sun_path);
    bound = got.sun_path[0] == '\0' ? "@" + std::string(got.sun_path + 1, n - 1)
                                    : std::string(got.sun_path, ::strnlen(got.sun_path, n));
  }
  if (bound != address) {
    return base::Status(base::Code::kNotFound,
                        "the shim's fd " + std::to_string(kShimNotifyFd) + " is not " + address);
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return s;
}

NotifyMessage ParseNotify(std::string_view datagram, pid_t pid) {
  NotifyMessage m;
  m.pid = pid;
  for (std::string_view line : base::Split(datagram, '\n')) {
    auto eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    m.fields.emplace_back(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
  }
  return m;
}

std::vector<NotifyMessage> DrainNotify(int fd) {
  std::vector<NotifyMessage> out;
  if (fd < 0) return out;
  for (int i = 0; i < kMaxMessagesPerWake; ++i) {
    char buf[kMaxDatagram + 1];
    alignas(struct cmsghdr) char
        control[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 253)];
    struct iovec iov = {buf, sizeof buf};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN: drained
    }
    pid_t pid = 0;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
        struct ucred cred;
        std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
        pid = cred.pid;
      } else if (c->cmsg_type == SCM_RIGHTS) {
        // FDSTORE= is not supported: never keep what a service passes.
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t k = 0; k < count; ++k) {
          int passed;
          std::memcpy(&passed, CMSG_DATA(c) + k * sizeof(int), sizeof passed);
          ::close(passed);
        }
      }
    }
    // As systemd: a truncated datagram or one without credentials is dropped.
    if (static_cast<size_t>(n) > kMaxDatagram || (msg.msg_flags & MSG_TRUNC) || pid <= 0) continue;
    out.push_back(ParseNotify(std::string_view(buf, static_cast<size_t>(n)), pid));
  }
  return out;
}

void RemoveNotifySocket(const NotifySocket& s) {
  if (!s.address.empty() && s.address[0] != '@') ::unlink(s.address.c_str());
}

void AppendJournal(const fs::path& log, std::string_view text) {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  ::gmtime_r(&ts.tv_sec, &tm);
  char head[64];
  std::snprintf(head, sizeof head, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
  std::string line = head + std::string(text) + "\n";
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return;
  (void)!::write(fd, line.data(), line.size());
  ::close(fd);
}

// ---- the Service side ----

std::chrono::microseconds Service::WatchdogUsec() const {
  if (watchdog_override_) return *watchdog_override_;
  if (!unit_) return {};
  auto v = unit_->Get("Service", "WatchdogSec");
  if (!v || v->empty()) return {};
  auto t = unit::ParseTimeSpan(*v);
  if (!t.ok() || *t == unit::kInfiniteTime) return {};
  return *t;
}

std::string Service::NotifyAccess() const {
  if (!unit_) return "none";
  if (auto v = unit_->Get("Service", "NotifyAccess"); v && !v->empty()) return std::string(*v);
  // systemd.service(5): main when Type=notify or WatchdogSec= is set, else none.
  bool wants = unit_->Type() == unit::ServiceType::kNotify || WatchdogUsec().count() > 0;
  return wants ? "main" : "none";
}

bool Service::WantsNotify() const {
  return unit_ && !unit_->IsContainer() && NotifyAccess() != "none";
}

bool Service::OpenNotify() {
  if (notify_.fd) return true;
  auto s = CreateNotifySocket(UnitDir(env_.opts->state_dir, a_.name));
  if (!s.ok()) {
    Fail("resources", std::string(s.status().message()));
    return false;
  }
  notify_ = std::move(*s);
  return true;
}

void Service::CloseNotify() {
  RemoveNotifySocket(notify_);
  notify_.fd.reset();
  notify_.address.clear();
}

void Service::AdoptNotify(const Record& r) {
  if (r.notify_address.empty()) return;
  if (main_ && main_->pidfd) {
    auto s = AdoptNotifySocket(main_->pidfd.get(), r.notify_address);
    if (s.ok()) {
      notify_ = std::move(*s);
      return;
    }
    // Bind a fresh socket at the same path: the service's NOTIFY_SOCKET still names it, only
    // datagrams queued in the old one are lost. (An abstract name is still held: no socket.)
    auto fresh = CreateNotifySocket(UnitDir(env_.opts->state_dir, a_.name));
    if (fresh.ok() && fresh->address == r.notify_address) {
      notify_ = std::move(*fresh);
      AppendJournal(UnitDir(env_.opts->state_dir, a_.name) / "journal.log",
                    "fjord: notify socket re-created after an agent restart (" +
                        std::string(s.status().message()) +
                        "); notifications sent meanwhile were lost");
      return;
    }
  }
  notify_.address = r.notify_address;  // so that CloseNotify removes the stale path
}

bool Service::NotifyAllowed(pid_t pid) {
  std::string access = NotifyAccess();
  if (access == "none" || pid <= 0) return false;
  // The shim writes its child's pid only after the exec succeeded, so a quick service can
  // talk first: then the sender whose parent is the shim is that child.
  auto pid_of = [pid](Proc* p) -> pid_t {
    if (p == nullptr) return 0;
    if (p->st.pid == 0 && !p->done) p->st.pid = ReadShimStatus(p->status_file).pid;
    if (p->st.pid == 0 && !p->done && p->shim_pid > 0 && ParentOf(pid) == p->shim_pid) {
      p->st.pid = pid;
    }
    return p->st.pid;
  };
  if (pid == pid_of(main_.get()) || (main_pid_override_ > 0 && pid == main_pid_override_)) {
    return true;
  }
  if (access == "main") return false;
  if (pid == pid_of(control_.get())) return true;
  if (access == "exec") return false;
  auto pids = ReadProcs(cgroup_);
  return std::find(pids.begin(), pids.end(), pid) != pids.end();
}

void Service::OnNotify() {
  for (const NotifyMessage& m : DrainNotify(notify_.fd.get())) {
    if (!notify_.fd) return;  // a transition closed it (the unit went dead)
    if (NotifyAllowed(m.pid)) HandleNotify(m);
  }
}

void Service::HandleNotify(const NotifyMessage& m) {
  bool ready = false, stopping = false, reloading = false, watchdog = false, trigger = false;
  for (const auto& [k, v] : m.fields) {
    if (k == "READY") {
      ready = v == "1";
    } else if (k == "STOPPING") {
      stopping = v == "1";
    } else if (k == "RELOADING") {
      reloading = v == "1";
    } else if (k == "STATUS") {
      status_text_ = v.substr(0, 1024);
      changed = true;
    } else if (k == "MAINPID") {
      // Only a process of this unit may become its main process.
      pid_t pid = std::atoi(v.c_str());
      auto pids = ReadProcs(cgroup_);
      if (pid > 0 && std::find(pids.begin(), pids.end(), pid) != pids.end()) {
        main_pid_override_ = pid;
        changed = true;
        SaveRecord();  // signals must reach it even after a kill -9 of the agent
      }
    } else if (k == "WATCHDOG") {
      watchdog = watchdog || v == "1";
      trigger = trigger || v == "trigger";
    } else if (k == "WATCHDOG_USEC") {
      char* end = nullptr;
      unsigned long long us = std::strtoull(v.c_str(), &end, 10);
      if (end != v.c_str() && *end == '\0' && us > 0) {
        watchdog_override_ = std::chrono::microseconds(us);
        watchdog = true;
      }
    }
  }
  if (trigger && watchdog_at_) {
    OnWatchdog();
    return;
  }
  if (watchdog && watchdog_at_) ArmWatchdog();
  if (stopping && (phase_ == Phase::kRunning || phase_ == Phase::kReload)) {
    // The service stops on its own: no ExecStop=, no signal until TimeoutStopSec= passes.
    SetPhase(Phase::kStopSigterm);
    stop_by_notify_ = true;
    deadline_ = Clock::now() + unit_->TimeoutStopSec();
    if (unit_->TimeoutStopSec() == unit::kInfiniteTime) deadline_ = Clock::time_point::max();
    poll_at_ = Clock::now() + std::chrono::milliseconds(10);
    return;
  }
  if (reloading && phase_ == Phase::kRunning) {
    SetPhase(Phase::kReload);
    auto t = unit_->TimeoutStartSec();
    deadline_ = t == unit::kInfiniteTime ? Clock::time_point::max() : Clock::now() + t;
    return;
  }
  if (!ready) return;
  if (phase_ == Phase::kStart && unit_->Type() == unit::ServiceType::kNotify) {
    RunPhase(Phase::kStartPost);
  } else if (phase_ == Phase::kReload) {
    deadline_.reset();
    SetPhase(Phase::kRunning);
  }
}

void Service::ArmWatchdog() {
  auto us = WatchdogUsec();
  if (us.count() > 0) {
    watchdog_at_ = Clock::now() + us;
  } else {
    watchdog_at_.reset();
  }
}

int Service::WatchdogSignal() const {
  auto v = unit_->Get("Service", "WatchdogSignal");
  if (!v || v->empty()) return SIGABRT;
  std::string s(*v);
  if (std::all_of(s.begin(), s.end(), ::isdigit)) return std::atoi(s.c_str());
  if (base::StartsWith(s, "SIG")) s = s.substr(3);
  for (int sig = 1; sig < NSIG; ++sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    if (abbrev && s == abbrev) return sig;
  }
  return SIGABRT;
}

void Service::OnWatchdog() {
  watchdog_at_.reset();
  if (phase_ != Phase::kRunning && phase_ != Phase::kReload) return;
  Fail("watchdog", "watchdog timeout: no WATCHDOG=1 within " +
                       std::to_string(WatchdogUsec().count() / 1000) + " ms (WatchdogSec=)");
  kill_signal_override_ = WatchdogSignal();
  EnterSignal(Phase::kStopSigterm, false);
}

void Service::NoteTypeOnce() {
  if (type_noted_ || !unit_ || unit_->Type() != unit::ServiceType::kDbus) return;
  type_noted_ = true;
  AppendJournal(UnitDir(env_.opts->state_dir, a_.name) / "journal.log",
                "fjord: Type=dbus runs as Type=simple: fjord does not watch D-Bus, so the unit "
                "counts as started once its process is forked, not when BusName= appears");
}

int64_t Service::StartDeadlineUnixMs() const {
  if (phase_ != Phase::kStart || !deadline_ || *deadline_ == Clock::time_point::max()) return 0;
  if (!unit_ || unit_->Type() != unit::ServiceType::kNotify) return 0;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline_ - Clock::now());
  return NowUnixMs() + std::max<int64_t>(0, left.count());
}

}  // namespace fjord::agent
