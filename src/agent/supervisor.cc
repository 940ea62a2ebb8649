// SupervisorImpl: the event loop, Apply's jobs, dependencies between units and recovery.
#include "agent/supervisor.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "agent/internal.h"
#include "base/state_root.h"
#include "net/runtime_network.h"

namespace fjord::agent {

using base::Result;
using base::Status;

namespace {

std::string FormatTime(int64_t ms) {
  time_t t = static_cast<time_t>(ms / 1000);
  struct tm tm;
  ::gmtime_r(&t, &tm);
  char buf[64];
  ::strftime(buf, sizeof buf, "%a %Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string Comm(pid_t pid) {
  std::string all = ReadProcFile("/proc/" + std::to_string(pid) + "/cmdline");
  std::replace(all.begin(), all.end(), '\0', ' ');
  while (!all.empty() && all.back() == ' ') all.pop_back();
  return all;
}

}  // namespace

class SupervisorImpl final : public Supervisor {
 public:
  explicit SupervisorImpl(Options options) : opts_(std::move(options)) {}
  ~SupervisorImpl() override { Detach(); }

  Status Init();
  void Apply(std::vector<UnitAssignment> units) override;
  std::vector<UnitStatus> List() const override;
  Result<UnitStatus> Get(std::string_view name) const override;
  std::string StatusText(std::string_view name) const override;
  Status Journal(std::string_view name, size_t lines, bool follow,
                 const std::function<bool(std::string_view)>& sink) const override;
  void Detach() override;
  void StopAll() override;

 private:
  void Loop();
  void Wake() const {
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
  }
  void ApplyLocked(std::vector<UnitAssignment> units);
  void ProcessJobs();
  bool StartBlocked(Service& s, std::string* dep_failure);
  bool StopBlocked(Service& s);
  void Propagate();
  void Reap();
  Service* Find(const std::string& name) {
    auto it = units_.find(name);
    return it == units_.end() ? nullptr : it->second.get();
  }
  std::vector<std::string> OrderedAfter(const Service& s);  // units s must start after

  Options opts_;
  std::unique_ptr<runtime::CgroupBackend> cgroups_;
  base::UniqueFd shim_fd_;
  base::UniqueFd wake_;
  Env env_;
  std::unique_ptr<runtime::Runtime> runtime_;

  mutable std::mutex mu_;
  std::condition_variable cv_;                             // signalled after every loop iteration
  std::map<std::string, std::unique_ptr<Service>> units_;  // guarded by mu_
  std::optional<std::vector<UnitAssignment>> pending_;     // guarded by mu_
  bool stop_all_ = false;                                  // guarded by mu_

  std::atomic<bool> quit_{false};
  std::thread thread_;
};

Result<std::unique_ptr<Supervisor>> Supervisor::Open(Options options) {
  auto s = std::make_unique<SupervisorImpl>(std::move(options));
  FJORD_RETURN_IF_ERROR(s->Init());
  return std::unique_ptr<Supervisor>(std::move(s));
}

Status SupervisorImpl::Init() {
  if (opts_.state_dir.empty()) return base::InvalidArgument("Supervisor: state_dir is empty");
  if (opts_.cgroup_parent.empty()) opts_.cgroup_parent = "fjord-" + opts_.machine_id;
  std::error_code ec;
  fs::create_directories(opts_.state_dir / "units", ec);
  if (ec) return base::ErrnoStatus("create " + opts_.state_dir.string(), ec.value());
  FJORD_ASSIGN_OR_RETURN(cgroups_, runtime::CgroupBackend::Detect());
  FJORD_ASSIGN_OR_RETURN(shim_fd_, ShimMemfd());
  wake_ = base::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) return base::ErrnoStatus("eventfd");
  env_.opts = &opts_;
  env_.cgroups = cgroups_.get();
  env_.shim_fd = shim_fd_.get();
  env_.runtime = [this]() -> Result<runtime::Runtime*> {
    if (!runtime_) {
      runtime::RuntimeOptions ro;
      ro.root = opts_.state_dir / "runtime";
      ro.cgroup_parent = opts_.cgroup_parent;
      // PublishPort= and Network=bridge: the host's bridge as `fjord run` sees it (same
      // environment, same lease directory under the state root), so both share one IPAM.
      auto bridge = net::BridgeConfigFromEnv(base::StateRoot());
      if (!bridge.ok()) return bridge.status().Wrap("bridge networking for containers");
      ro.network = net::RuntimeNetworkHooks(*bridge);
      auto rt = runtime::Runtime::Open(ro);
      if (!rt.ok()) return rt.status().Wrap("open the container runtime");
      runtime_ = std::move(*rt);
      (void)runtime_->Recover();
    }
    return runtime_.get();
  };
  // Recover first: re-adopt what the last agent left running.
  for (const auto& entry : fs::directory_iterator(opts_.state_dir / "units", ec)) {
    auto rec = ReadRecord(entry.path() / "record.json");
    if (!rec.ok()) continue;
    auto svc = std::make_unique<Service>(env_, rec->a);
    svc->Adopt(*rec);
    units_[rec->a.name] = std::move(svc);
  }
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

// ---- Apply and jobs ----

void SupervisorImpl::Apply(std::vector<UnitAssignment> units) {
  std::lock_guard lock(mu_);
  pending_ = std::move(units);
  Wake();
}

void SupervisorImpl::ApplyLocked(std::vector<UnitAssignment> units) {
  std::set<std::string> seen;
  for (auto& a : units) {
    if (!seen.insert(a.name).second) continue;
    Service* s = Find(a.name);
    if (s == nullptr) {
      bool launch = a.desired == api::UnitStateName::kLaunched;
      auto svc = std::make_unique<Service>(env_, std::move(a));
      svc->changed = true;
      svc->SaveRecord();
      if (launch) {
        svc->want_start = true;
        svc->launched_hash = svc->assignment().hash;
      }
      units_[svc->assignment().name] = std::move(svc);
      continue;
    }
    s->remove_when_stopped = false;
    if (s->assignment().hash != a.hash) {
      s->want_start = false;
      s->want_stop = true;
      s->replacement = std::move(a);
      continue;
    }
    s->replacement.reset();
    if (a.desired != api::UnitStateName::kLaunched) {
      s->want_start = false;
      s->launched_hash.clear();
      if (!s->inactive()) s->want_stop = true;
    } else if (s->launched_hash != a.hash) {
      s->want_stop = false;
      s->want_start = true;
      s->launched_hash = a.hash;
    }
    if (s->assignment().desired != a.desired) {
      s->set_desired(a.desired);
      s->SaveRecord();
    }
  }
  for (auto& [name, s] : units_) {
    if (seen.count(name) == 0) {
      s->want_start = false;
      s->want_stop = true;
      s->remove_when_stopped = true;
      s->replacement.reset();
    }
  }
}

// The units `s` is ordered after: its After= and every unit naming it in Before=.
std::vector<std::string> SupervisorImpl::OrderedAfter(const Service& s) {
  std::vector<std::string> out;
  out = s.deps().after;
  for (const auto& [name, other] : units_) {
    const auto& before = other->deps().before;
    if (std::find(before.begin(), before.end(), s.assignment().name) != before.end()) {
      out.push_back(name);
    }
  }
  return out;
}

bool SupervisorImpl::StartBlocked(Service& s, std::string* dep_failure) {
  if (!s.parsed()) return false;
  const unit::Dependencies& deps = s.deps();
  std::vector<std::string> after = OrderedAfter(s);
  std::vector<std::string> required = deps.requires_;
  required.insert(required.end(), deps.binds_to.begin(), deps.binds_to.end());
  for (const auto& r : required) {
    Service* d = Find(r);
    if (d == nullptr || !d->parsed()) {
      *dep_failure = "dependency " + r +
                     (d == nullptr ? " is not assigned to this machine" : " failed to load");
      return false;
    }
  }
  for (const auto& name : after) {
    Service* d = Find(name);
    if (d == nullptr) continue;
    bool starting = d->want_start || IsStarting(d->phase());
    if (starting) return true;
    bool is_required = std::find(required.begin(), required.end(), name) != required.end();
    if (is_required && !d->active_or_activating()) {
      *dep_failure =
          "dependency failed: " + name + " is " + std::string(ActiveStateName(d->phase()));
      return false;
    }
  }
  return false;
}

// Stop in reverse order: a unit waits while a unit ordered after it is still up.
bool SupervisorImpl::StopBlocked(Service& s) {
  for (const auto& [name, other] : units_) {
    if (other.get() == &s || other->inactive() || other->phase() == Phase::kAutoRestart) continue;
    if (!other->want_stop && ActiveStateName(other->phase()) != "deactivating") continue;
    auto after = OrderedAfter(*other);
    if (std::find(after.begin(), after.end(), s.assignment().name) != after.end()) return true;
  }
  return false;
}

void SupervisorImpl::ProcessJobs() {
  for (auto& [name, s] : units_) {
    if (s->want_stop && !StopBlocked(*s)) {
      s->want_stop = false;
      s->BeginStop(true);
    }
  }
  for (auto& [name, s] : units_) {
    if (!s->want_start || s->want_stop || !s->inactive()) {
      if (s->want_start && s->phase() == Phase::kAutoRestart) s->want_start = false;
      if (s->want_start && s->active_or_activating()) s->want_start = false;
      continue;
    }
    std::string failure;
    if (StartBlocked(*s, &failure)) continue;
    s->want_start = false;
    if (!failure.empty()) {
      s->FailStart("dependency", failure);
    } else {
      s->BeginStart();
    }
  }
}

// Requires= and BindsTo= propagate stops: BindsTo= whenever the other unit is down,
// Requires= when it was stopped on purpose.
void SupervisorImpl::Propagate() {
  for (auto& [name, s] : units_) {
    if (!s->parsed() || !s->active_or_activating() || s->want_stop) continue;
    const unit::Dependencies& deps = s->deps();
    bool stop = false;
    for (const auto& b : deps.binds_to) {
      Service* d = Find(b);
      if (d == nullptr || (!d->want_start && (d->inactive() || d->phase() == Phase::kAutoRestart ||
                                              ActiveStateName(d->phase()) == "deactivating"))) {
        stop = true;
      }
    }
    for (const auto& r : deps.requires_) {
      Service* d = Find(r);
      if (d == nullptr || (d->stop_requested() && !d->active_or_activating())) stop = true;
      if (d != nullptr && d->want_stop) stop = true;
    }
    if (stop) s->want_stop = true;
  }
}

// Units that finished stopping: forget removed ones, start the new content of changed ones.
void SupervisorImpl::Reap() {
  for (auto it = units_.begin(); it != units_.end();) {
    Service& s = *it->second;
    if (!s.inactive() || s.want_stop) {
      ++it;
      continue;
    }
    if (s.remove_when_stopped) {
      s.RemoveFiles();
      it = units_.erase(it);
      continue;
    }
    if (s.replacement) {
      UnitAssignment a = std::move(*s.replacement);
      bool launch = a.desired == api::UnitStateName::kLaunched;
      auto svc = std::make_unique<Service>(env_, std::move(a));
      svc->changed = true;
      if (launch) {
        svc->want_start = true;
        svc->launched_hash = svc->assignment().hash;
      }
      svc->SaveRecord();
      it->second = std::move(svc);
    }
    ++it;
  }
}

// ---- the loop ----

void SupervisorImpl::Loop() {
  std::vector<struct pollfd> fds;
  std::vector<Proc*> owners;
  std::vector<Service*> owner_units;
  while (!quit_) {
    std::vector<UnitStatus> changes;
    int timeout_ms = -1;
    {
      std::unique_lock lock(mu_);
      if (pending_) {
        ApplyLocked(std::move(*pending_));
        pending_.reset();
      }
      if (stop_all_) {
        for (auto& [_, s] : units_) {
          s->want_start = false;
          if (!s->inactive()) s->want_stop = true;
        }
      }
      for (int round = 0; round < 4; ++round) {  // let jobs settle within one wake-up
        Propagate();
        ProcessJobs();
        Reap();
      }
      fds.assign(1, {wake_.get(), POLLIN, 0});
      owners.assign(1, nullptr);
      owner_units.assign(1, nullptr);
      auto now = Clock::now();
      std::optional<Clock::time_point> next;
      for (auto& [_, s] : units_) {
        size_t before = fds.size();
        s->CollectPoll(fds, owners);
        owner_units.resize(fds.size(), s.get());
        (void)before;
        if (auto d = s->Deadline(); d && (!next || *d < *next)) next = d;
        if (s->changed) {
          s->changed = false;
          changes.push_back(s->Status());
        }
      }
      if (next) {
        auto ms = std::chrono::ceil<std::chrono::milliseconds>(*next - now).count();
        timeout_ms = static_cast<int>(std::clamp<int64_t>(ms, 0, 60'000));
      }
    }
    cv_.notify_all();
    if (opts_.on_change) {
      for (const auto& c : changes) opts_.on_change(c);
    }
    if (!changes.empty()) timeout_ms = 0;  // report changes made by the callbacks' effects
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) continue;
    if (quit_) break;
    std::unique_lock lock(mu_);
    if (fds[0].revents) {
      uint64_t v;
      (void)!::read(wake_.get(), &v, sizeof v);
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      Service* s = owner_units[i];
      Proc* p = owners[i];
      // The proc may have been replaced by an earlier event of this round: check it is current.
      if (p == nullptr || p == s->main_.get() || p == s->control_.get() || p == s->notify_tag()) {
        bool is_pidfd = p == nullptr || (p->pidfd && fds[i].fd == p->pidfd.get());
        s->OnProc(p, is_pidfd);
      }
    }
    auto now = Clock::now();
    for (auto& [_, s] : units_) {
      if (auto d = s->Deadline(); d && *d <= now) s->OnTime(now);
    }
  }
}

// ---- queries ----

std::vector<UnitStatus> SupervisorImpl::List() const {
  std::lock_guard lock(mu_);
  std::vector<UnitStatus> out;
  for (const auto& [_, s] : units_) out.push_back(s->Status());
  return out;
}

Result<UnitStatus> SupervisorImpl::Get(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = units_.find(std::string(name));
  if (it == units_.end()) {
    return base::NotFound("unit " + std::string(name) + " is not assigned to this machine");
  }
  return it->second->Status();
}

std::string SupervisorImpl::StatusText(std::string_view name) const {
  auto st = Get(name);
  std::ostringstream o;
  if (!st.ok()) {
    o << "Unit " << name << " could not be found.\n";
    return o.str();
  }
  std::string description;
  {
    std::lock_guard lock(mu_);
    auto it = units_.find(std::string(name));
    if (it != units_.end() && it->second->parsed()) {
      const unit::Unit& u = *it->second->parsed();
      // As systemctl: "Ticker %i" shows as "Ticker 1".
      unit::SpecifierContext ctx{u.name(), opts_.hostname, opts_.machine_id, ""};
      auto expanded = unit::ExpandSpecifiers(u.Description(), ctx);
      description = expanded.ok() ? *expanded : std::string(u.Description());
    }
  }
  bool bad = st->active_state == "failed";
  o << (bad ? "× " : st->active_state == "active" ? "● " : "○ ") << st->name;
  if (!description.empty()) o << " - " << description;
  o << "\n     Loaded: " << st->load_state << " (fleet unit; hash " << st->hash.substr(0, 12)
    << ")\n";
  o << "     Active: " << st->active_state;
  if (st->sub_state != st->active_state) o << " (" << st->sub_state << ")";
  if (st->result != "success") o << " (Result: " << st->result << ")";
  o << " since " << FormatTime(st->since_unix_ms) << "\n";
  if (!st->reason.empty()) o << "     Reason: " << st->reason << "\n";
  if (st->main_pid > 0) {
    o << "   Main PID: " << st->main_pid << " (" << Comm(st->main_pid) << ")\n";
  } else if (st->exit_status != 0) {
    bool killed = st->exit_status > 128 && st->exit_status <= 128 + 64;  // 200+: systemd's codes
    o << "   Main PID: (code=" << (killed ? "killed" : "exited") << ", status=" << st->exit_status
      << ")\n";
  }
  if (!st->status_text.empty()) o << "     Status: \"" << st->status_text << "\"\n";
  if (st->restarts > 0) o << "   Restarts: " << st->restarts << "\n";
  if (!st->container_id.empty()) o << "  Container: " << st->container_id << "\n";
  o << "     CGroup: /" << st->cgroup << "\n";
  std::vector<pid_t> pids;
  {
    std::lock_guard lock(mu_);
    auto it = units_.find(std::string(name));
    if (it != units_.end() && !it->second->cgroup_.empty()) {
      const auto& dirs = it->second->cgroup_;
      auto d = dirs.count("pids") ? dirs.at("pids") : dirs.begin()->second;
      std::ifstream in(d / "cgroup.procs");
      for (pid_t p; in >> p;) pids.push_back(p);
    }
  }
  for (size_t i = 0; i < pids.size(); ++i) {
    o << "             " << (i + 1 == pids.size() ? "└─" : "├─") << pids[i] << " " << Comm(pids[i])
      << "\n";
  }
  o << "\n";
  (void)Journal(name, 10, false, [&o](std::string_view line) {
    o << line << "\n";
    return true;
  });
  return o.str();
}

Status SupervisorImpl::Journal(std::string_view name, size_t lines, bool follow,
                               const std::function<bool(std::string_view)>& sink) const {
  std::string container_id;
  bool is_container = false;
  {
    std::lock_guard lock(mu_);
    auto it = units_.find(std::string(name));
    if (it == units_.end()) {
      return base::NotFound("unit " + std::string(name) + " is not assigned to this machine");
    }
    is_container = it->second->parsed() && it->second->parsed()->IsContainer();
    container_id = it->second->container_id_;
  }
  if (is_container) {
    if (container_id.empty()) return Status::Ok();
    // A Runtime is not thread-safe: the caller's thread reads the log through its own.
    runtime::RuntimeOptions ro;
    ro.root = opts_.state_dir / "runtime";
    ro.cgroup_parent = opts_.cgroup_parent;
    auto rt = runtime::Runtime::Open(ro);
    if (!rt.ok()) return rt.status().Wrap("journal of " + std::string(name));
    auto line_of = [](const runtime::LogRecord& rec) {
      return std::string(rec.timestamp) + " " + std::string(rec.text);
    };
    std::deque<std::string> tail;
    size_t seen = 0;  // records read so far
    Status st = (*rt)->Logs(container_id, false, [&](const runtime::LogRecord& rec) {
      ++seen;
      tail.push_back(line_of(rec));
      if (tail.size() > lines) tail.pop_front();
    });
    for (const auto& l : tail) {
      if (!sink(l)) return Status::Ok();
    }
    if (!follow || !st.ok()) return st;
    // Follow: read the log once more, from where the tail ended, and keep reading. While idle
    // the runtime asks keep_following, so a client that left (the empty line) ends it.
    size_t index = 0;
    bool client_gone = false;
    return (*rt)->Logs(
        container_id, true,
        [&](const runtime::LogRecord& rec) {
          if (index++ >= seen && !client_gone) client_gone = !sink(line_of(rec));
        },
        [&] { return !client_gone && !quit_ && sink(""); });
  }
  fs::path log = UnitDir(opts_.state_dir, std::string(name)) / "journal.log";
  for (const auto& l : TailLines(log, lines)) {
    if (!sink(l)) return Status::Ok();
  }
  if (!follow) return Status::Ok();
  // Follow: keep reading from the end; reopen when the shims rotated the file.
  std::ifstream in(log);
  in.seekg(0, std::ios::end);
  std::string partial;
  auto ino = [](const fs::path& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
  };
  ino_t cur = ino(log);
  while (!quit_) {
    std::string line;
    bool got = false;
    while (std::getline(in, line)) {
      if (in.eof()) {  // no newline yet: keep the fragment for later
        partial += line;
        break;
      }
      got = true;
      if (!sink(partial + line)) return Status::Ok();
      partial.clear();
    }
    in.clear();
    if (!got) {
      if (ino_t now = ino(log); now != cur && now != 0) {
        cur = now;
        in = std::ifstream(log);
        continue;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      // A quiet unit: ask whether the client is still there (the empty line is a keep-alive).
      if (!sink("")) return Status::Ok();
    }
  }
  return Status::Ok();
}

// ---- lifecycle ----

void SupervisorImpl::StopAll() {
  std::unique_lock lock(mu_);
  if (!thread_.joinable()) return;
  stop_all_ = true;
  Wake();
  cv_.wait(lock, [this] {
    for (const auto& [_, s] : units_) {
      // Also wait until the last change was collected, so on_change reports it.
      if (!s->inactive() || s->want_stop || s->changed) return false;
    }
    return true;
  });
  stop_all_ = false;
  // The agent's own cgroup parent goes too when nothing else (containers) is left in it.
  for (const auto& p : env_.cgroup_parents) ::rmdir(p.c_str());
  env_.cgroup_parents.clear();
}

void SupervisorImpl::Detach() {
  quit_ = true;
  Wake();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  for (auto& [_, s] : units_) s->SaveRecord();
}

}  // namespace fjord::agent
