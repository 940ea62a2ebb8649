// One unit's state machine: systemd's service states (systemd.service(5), systemd.kill(5)).
//
//   dead/failed -> start-pre -> start -> start-post -> running|exited
//   running -> stop (ExecStop) -> stop-sigterm -> stop-sigkill -> stop-post (ExecStopPost)
//           -> final-sigterm -> final-sigkill -> dead|failed [-> auto-restart -> start-pre]
//
// A failing start step skips to stop-sigterm, so ExecStopPost= still runs (as in systemd).
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "agent/internal.h"
#include "base/strings.h"

namespace fjord::agent {

using base::Result;

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Clock::time_point After(std::chrono::microseconds d) {
  if (d == unit::kInfiniteTime) return Clock::time_point::max();
  return Clock::now() + d;
}

std::string SignalName(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : std::to_string(sig);
}

std::string_view ExitCodeName(int code) {
  switch (code) {
    case 200:
      return "CHDIR";
    case 203:
      return "EXEC";
    case 216:
      return "GROUP";
    case 217:
      return "USER";
    case 219:
      return "CGROUP";
    default:
      return "";
  }
}

bool IsCleanSignal(int sig) {
  return sig == SIGHUP || sig == SIGINT || sig == SIGTERM || sig == SIGPIPE;
}

std::string_view PhaseKey(Phase p) {
  switch (p) {
    case Phase::kCondition:
      return "ExecCondition";
    case Phase::kStartPre:
      return "ExecStartPre";
    case Phase::kStart:
      return "ExecStart";
    case Phase::kStartPost:
      return "ExecStartPost";
    case Phase::kStop:
      return "ExecStop";
    case Phase::kStopPost:
      return "ExecStopPost";
    default:
      return "";
  }
}

uint64_t MachineMemory() {
  std::ifstream in("/proc/meminfo");
  std::string k;
  uint64_t kb = 0;
  in >> k >> kb;
  return kb * 1024;
}

}  // namespace

std::vector<pid_t> ReadProcs(const runtime::CgroupDirs& dirs) {
  std::vector<pid_t> pids;
  if (dirs.empty()) return pids;
  auto it = dirs.find("pids");
  std::ifstream in((it != dirs.end() ? it->second : dirs.begin()->second) / "cgroup.procs");
  pid_t p;
  while (in >> p) pids.push_back(p);
  return pids;
}

std::string_view SubStateName(Phase p) {
  static constexpr std::string_view kNames[] = {
      "dead",          "failed",       "start-pre", "start",
      "start-post",    "running",      "exited",    "stop",
      "stop-sigterm",  "stop-sigkill", "stop-post", "final-sigterm",
      "final-sigkill", "auto-restart", "condition", "reload"};
  return kNames[static_cast<int>(p)];
}

std::string_view ActiveStateName(Phase p) {
  switch (p) {
    case Phase::kDead:
      return "inactive";
    case Phase::kFailed:
      return "failed";
    case Phase::kRunning:
    case Phase::kExited:
      return "active";
    case Phase::kCondition:
    case Phase::kStartPre:
    case Phase::kStart:
    case Phase::kStartPost:
    case Phase::kAutoRestart:
      return "activating";
    case Phase::kReload:
      return "reloading";
    default:
      return "deactivating";
  }
}

Service::Service(Env& env, UnitAssignment a) : env_(env), a_(std::move(a)) {
  since_ms_ = NowMs();
  auto name = unit::UnitName::Parse(a_.name);
  if (!name.ok()) {
    load_state_ = "error";
    load_error_ = std::string(name.status().message());
    return;
  }
  for (const auto& o : a_.options) views_.push_back({o.section, o.name, o.value});
  unit::ParseResult pr = unit::ParseOptions(views_, *name);
  if (!pr.unit) {
    load_state_ = "bad-setting";
    for (const auto& d : pr.diagnostics) {
      if (d.severity == unit::Severity::kError) {
        load_error_ = d.ToString();
        break;
      }
    }
    return;
  }
  unit_ = std::move(pr.unit);
  deps_ = unit_->Deps();
}

Service::~Service() = default;

bool Service::active_or_activating() const {
  auto s = ActiveStateName(phase_);
  return s == "active" || s == "reloading" || (s == "activating" && phase_ != Phase::kAutoRestart);
}

void Service::SetPhase(Phase p) {
  if (ActiveStateName(p) != ActiveStateName(phase_)) since_ms_ = NowMs();
  if (p != Phase::kRunning && p != Phase::kReload) watchdog_at_.reset();
  phase_ = p;
  changed = true;
  SaveRecord();
}

void Service::Fail(std::string_view result, std::string reason) {
  if (result_ == "success") {
    result_ = std::string(result);
    reason_ = std::move(reason);
  }
}

std::string Service::CgroupPath() const { return env_.opts->cgroup_parent + "/" + a_.name; }

void Service::FailStart(std::string result, std::string reason) {
  result_ = "success";
  Fail(result, std::move(reason));
  SetPhase(Phase::kFailed);
}

std::vector<unit::ExecCommand> Service::ExecList(std::string_view key) {
  if (key.empty() || !unit_) return {};
  unit::SpecifierContext ctx{unit_->name(), env_.opts->hostname, env_.opts->machine_id, ""};
  auto r = unit_->Exec(key, ctx);
  if (!r.ok()) {
    Fail("resources", std::string(key) + ": " + std::string(r.status().message()));
    return {};
  }
  return *r;
}

uint64_t Service::OomKills() const {
  if (cgroup_.empty()) return 0;
  std::ifstream in(env_.cgroups->OomFile(cgroup_));
  std::string k;
  uint64_t v;
  while (in >> k >> v) {
    if (k == "oom_kill") return v;
  }
  return 0;
}

// ---- starting ----

void Service::BeginStart() {
  if (!unit_) {
    FailStart("resources", load_error_);
    return;
  }
  if (phase_ != Phase::kDead && phase_ != Phase::kFailed && phase_ != Phase::kAutoRestart) return;
  stop_requested_ = false;
  result_ = "success";
  reason_.clear();
  deadline_.reset();
  // systemd's start rate limit (StartLimitIntervalSec=10s, StartLimitBurst=5 by default).
  auto interval = std::chrono::microseconds(std::chrono::seconds(10));
  if (auto v = unit_->Get("Unit", "StartLimitIntervalSec"); v && !v->empty()) {
    if (auto t = unit::ParseTimeSpan(*v); t.ok()) interval = *t;
  }
  size_t burst = 5;
  if (auto v = unit_->Get("Unit", "StartLimitBurst"); v && !v->empty()) {
    burst = static_cast<size_t>(std::max(0, std::atoi(std::string(*v).c_str())));
  }
  auto now = Clock::now();
  while (!recent_starts_.empty() && interval != unit::kInfiniteTime &&
         now - recent_starts_.front() > interval) {
    recent_starts_.pop_front();
  }
  if (burst > 0 && interval.count() > 0 && recent_starts_.size() >= burst) {
    FailStart("start-limit-hit",
              "start request repeated too quickly (StartLimitBurst=" + std::to_string(burst) + ")");
    return;
  }
  recent_starts_.push_back(now);
  status_text_.clear();
  main_pid_override_ = 0;
  watchdog_override_.reset();
  kill_signal_override_ = 0;
  stop_by_notify_ = false;
  NoteTypeOnce();
  if (WantsNotify() && !OpenNotify()) {
    SetPhase(Phase::kFailed);
    return;
  }
  if (unit_->IsContainer()) {
    StartContainer();
    return;
  }
  // A cgroup kept from the last run (KillMode=process leftovers) is reused, as systemd does.
  if (!cgroup_.empty()) {
    cgroup_ = StartCgroup(true);
  } else {
    cgroup_ = StartCgroup(false);
  }
  if (cgroup_.empty()) return;
  oom_base_ = OomKills();
  RunPhase(Phase::kCondition);
}

runtime::CgroupDirs Service::StartCgroup(bool reuse) {
  if (reuse && !ReadProcs(cgroup_).empty()) return cgroup_;
  if (reuse) (void)env_.cgroups->Remove(cgroup_);
  runtime::Limits limits;
  unit::ResourceRequests res = unit_->Resources();
  if (res.cpu_quota_percent) limits.cpus = *res.cpu_quota_percent / 100.0;
  if (res.memory_max_bytes && *res.memory_max_bytes != unit::kInfiniteBytes) {
    limits.memory_bytes = res.memory_max_bytes;
  } else if (res.memory_max_percent) {
    limits.memory_bytes = static_cast<uint64_t>(MachineMemory() * *res.memory_max_percent / 100);
  }
  if (res.tasks_max && *res.tasks_max != unit::kInfiniteBytes) {
    limits.pids_max = static_cast<int64_t>(*res.tasks_max);
  } else if (res.tasks_max_percent) {
    std::ifstream in("/proc/sys/kernel/pid_max");
    int64_t pid_max = 32768;
    in >> pid_max;
    limits.pids_max =
        static_cast<int64_t>(static_cast<double>(pid_max) * *res.tasks_max_percent / 100);
  }
  const std::string& parent = env_.opts->cgroup_parent;
  auto dirs = env_.cgroups->Create(parent, a_.name, limits, true);
  if (!dirs.ok() && dirs.status().sys_errno() == EEXIST) {
    // Left behind by an earlier run of this unit (another hash, or an agent that died before
    // removing it): learn the hierarchies from a probe, kill what is left and remove it.
    if (auto probe = env_.cgroups->Create(parent, a_.name + ".probe", {}, true); probe.ok()) {
      runtime::CgroupDirs stale;
      for (const auto& [c, d] : *probe) stale[c] = d.parent_path() / a_.name;
      (void)env_.cgroups->Remove(*probe);
      (void)env_.cgroups->Remove(stale);
    }
    dirs = env_.cgroups->Create(parent, a_.name, limits, true);
  }
  if (!dirs.ok()) {
    FailStart("resources",
              "create cgroup " + CgroupPath() + ": " + std::string(dirs.status().message()));
    return {};
  }
  for (const auto& [_, d] : *dirs) env_.cgroup_parents.insert(d.parent_path());
  return *dirs;
}

void Service::RunPhase(Phase p) {
  SetPhase(p);
  bool stopping = p == Phase::kStop || p == Phase::kStopPost;
  bool oneshot = unit_->Type() == unit::ServiceType::kOneshot;
  auto timeout = stopping ? unit_->TimeoutStopSec() : unit_->TimeoutStartSec();
  // systemd: oneshot services have no start timeout unless one is set.
  if (oneshot && !stopping && !unit_->Get("Service", "TimeoutStartSec") &&
      !unit_->Get("Service", "TimeoutSec")) {
    timeout = unit::kInfiniteTime;
  }
  deadline_ = After(timeout);
  list_ = ExecList(PhaseKey(p));
  list_index_ = 0;
  if (result_ != "success" && !stopping) {  // the Exec lines did not expand
    EnterSignal(Phase::kStopSigterm, false);
    return;
  }
  if (p == Phase::kStart && !oneshot) {
    StartMain();
    return;
  }
  RunNext();
}

void Service::RunNext() {
  while (list_index_ < list_.size()) {
    const unit::ExecCommand cmd = list_[list_index_++];
    if (SpawnCommand(cmd, false)) return;
    if (cmd.ignore_failure) continue;
    if (IsStarting(phase_)) {
      EnterSignal(Phase::kStopSigterm, false);
      return;
    }
  }
  AfterList();
}

void Service::AfterList() {
  switch (phase_) {
    case Phase::kCondition:
      RunPhase(Phase::kStartPre);
      break;
    case Phase::kStartPre:
      RunPhase(Phase::kStart);
      break;
    case Phase::kStart:
      RunPhase(Phase::kStartPost);
      break;
    case Phase::kStartPost:
      if (main_ && !main_->done) {
        deadline_.reset();
        SetPhase(Phase::kRunning);
        ArmWatchdog();
      } else if (auto remain = unit_->Get("Service", "RemainAfterExit");
                 remain && unit::ParseBool(*remain).value_or(false)) {
        deadline_.reset();
        SetPhase(Phase::kExited);
      } else {
        EnterStop();
      }
      break;
    case Phase::kStop:
      EnterSignal(Phase::kStopSigterm, false);
      break;
    case Phase::kStopPost:
      EnterSignal(Phase::kFinalSigterm, false);
      break;
    default:
      break;
  }
}

void Service::StartMain() {
  if (list_.empty()) {
    Fail("resources", "no ExecStart= to run");
    EnterSignal(Phase::kStopSigterm, false);
    return;
  }
  if (!SpawnCommand(list_[0], true)) {
    EnterSignal(Phase::kStopSigterm, false);
    return;
  }
  // Type=simple (and idle, dbus) is started once forked; exec and forking wait for the shim's
  // word, notify for READY=1.
  auto type = unit_->Type();
  if (type != unit::ServiceType::kExec && type != unit::ServiceType::kForking &&
      type != unit::ServiceType::kNotify) {
    RunPhase(Phase::kStartPost);
  }
}

Result<std::vector<std::string>> Service::BuildEnv(const unit::ExecCommand& cmd, long* uid,
                                                   long* gid, std::string* cwd) {
  std::vector<unit::EnvVar> env = {
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}};
  if (notify_.fd) env.push_back({"NOTIFY_SOCKET", notify_.address});
  std::string home = "/root";
  std::string user(unit_->User());
  bool privileged = cmd.full_privileges || cmd.no_setuid || cmd.ambient_magic;
  if (!user.empty()) {
    struct passwd pw, *found = nullptr;
    char buf[4096];
    bool numeric = std::all_of(user.begin(), user.end(), ::isdigit);
    if (numeric) {
      ::getpwuid_r(static_cast<uid_t>(std::stoul(user)), &pw, buf, sizeof buf, &found);
    } else {
      ::getpwnam_r(user.c_str(), &pw, buf, sizeof buf, &found);
    }
    if (!found && !numeric) {
      return base::Status(base::Code::kNotFound,
                          "User=" + user + ": no such user (status=217/USER)");
    }
    if (!privileged) {
      *uid = found ? found->pw_uid : std::stol(user);
      *gid = found ? found->pw_gid : std::stol(user);
    }
    if (found) {
      home = found->pw_dir;
      env.push_back({"HOME", home});
      env.push_back({"USER", found->pw_name});
      env.push_back({"LOGNAME", found->pw_name});
      env.push_back({"SHELL", found->pw_shell});
    }
  }
  if (main_ && !main_->done && main_->st.pid > 0) {
    env.push_back({"MAINPID", std::to_string(main_->st.pid)});
  }
  // systemd.exec(5): what ExecStop=/ExecStopPost= learn about how the service went.
  if (phase_ == Phase::kStop || phase_ == Phase::kStopPost) {
    env.push_back({"SERVICE_RESULT", result_});
    if (main_ && main_->done) {
      bool killed = main_->st.signal != 0;
      env.push_back({"EXIT_CODE", killed ? (main_->st.core ? "dumped" : "killed") : "exited"});
      env.push_back({"EXIT_STATUS", killed ? SignalName(main_->st.signal).substr(3)
                                           : std::to_string(main_->st.code)});
    }
  }
  auto set = [&env](unit::EnvVar v) {
    for (auto& e : env) {
      if (e.name == v.name) {
        e.value = std::move(v.value);
        return;
      }
    }
    env.push_back(std::move(v));
  };
  for (auto& v : unit_->Environment()) set(v);
  // EnvironmentFile= settings override Environment= ones (systemd.exec(5)).
  for (const auto& f : unit_->EnvironmentFiles()) {
    std::ifstream in(f.path);
    if (!in) {
      if (f.optional) continue;
      return base::Status(base::Code::kNotFound,
                          "EnvironmentFile=" + f.path + ": " + std::strerror(errno));
    }
    std::string line;
    while (std::getline(in, line)) {
      std::string_view t = base::TrimWhitespace(line);
      if (t.empty() || t[0] == '#' || t[0] == ';') continue;
      auto eq = t.find('=');
      if (eq == std::string_view::npos) continue;
      std::string k(base::TrimWhitespace(t.substr(0, eq)));
      std::string v(base::TrimWhitespace(t.substr(eq + 1)));
      if (v.size() >= 2 && (v[0] == '"' || v[0] == '\'') && v.back() == v[0]) {
        v = v.substr(1, v.size() - 2);
      }
      set({k, v});
    }
  }
  std::string wd(unit_->WorkingDirectory());
  bool wd_optional = !wd.empty() && wd[0] == '-';
  if (wd_optional) wd.erase(0, 1);
  if (wd == "~") wd = home;
  if (wd.empty()) wd = "/";
  if (wd_optional && ::access(wd.c_str(), X_OK) != 0) wd = "/";
  *cwd = wd;
  std::vector<std::string> out;
  for (const auto& e : env) out.push_back(e.name + "=" + e.value);
  (void)cmd;
  return out;
}

bool Service::SpawnCommand(const unit::ExecCommand& cmd, bool main) {
  std::string key(PhaseKey(phase_));
  SpawnRequest req;
  auto env = BuildEnv(cmd, &req.uid, &req.gid, &req.cwd);
  if (!env.ok()) {
    bool missing_file = base::StartsWith(env.status().message(), "EnvironmentFile");
    Fail(missing_file ? "resources" : "exit-code", std::string(env.status().message()));
    if (main) exit_status_ = missing_file ? 0 : 217;
    return false;
  }
  req.env = *env;
  if (main && WatchdogUsec().count() > 0) {
    req.env.push_back("WATCHDOG_USEC=" + std::to_string(WatchdogUsec().count()));
  }
  if (main && notify_.fd) req.notify_fd = notify_.fd.get();
  std::vector<unit::EnvVar> vars;
  for (const auto& e : req.env) {
    auto eq = e.find('=');
    vars.push_back({e.substr(0, eq), e.substr(eq + 1)});
  }
  req.path = cmd.path;
  req.argv = cmd.no_env_expand ? cmd.argv : unit::ExpandExecArgv(cmd.argv, vars);
  fs::path dir = UnitDir(env_.opts->state_dir, a_.name);
  req.status_file = dir / (key + "." + std::to_string(spawn_seq_++) + ".status");
  req.log_file = dir / "journal.log";
  req.log_max = env_.opts->journal_max_bytes;
  req.forking = main && unit_->Type() == unit::ServiceType::kForking;
  if (auto pf = unit_->Get("Service", "PIDFile"); pf && req.forking) req.pidfile = *pf;
  req.cgroup_procs = runtime::CgroupProcsFiles(cgroup_);
  if (auto adj = unit_->Get("Service", "OOMScoreAdjust"); adj && !adj->empty()) {
    req.oom_score_adj = std::atoi(std::string(*adj).c_str());
  }
  auto proc = SpawnShim(env_.shim_fd, req);
  if (!proc.ok()) {
    Fail("resources", key + "=" + cmd.path + ": " + std::string(proc.status().message()));
    return false;
  }
  (*proc)->key = key;
  (*proc)->cmd = cmd;
  (main ? main_ : control_) = std::move(*proc);
  if (main) SaveRecord();
  return true;
}

// ---- process events ----

void Service::CollectPoll(std::vector<struct pollfd>& fds, std::vector<Proc*>& owners) {
  // First: a READY=1 sent just before the process exited is read before its exit.
  if (notify_.fd) {
    fds.push_back({notify_.fd.get(), POLLIN, 0});
    owners.push_back(&notify_tag_);
  }
  if (container_pidfd_) {
    fds.push_back({container_pidfd_.get(), POLLIN, 0});
    owners.push_back(nullptr);
  }
  for (Proc* p : {main_.get(), control_.get()}) {
    if (!p || p->done) continue;
    if (p->pidfd) {
      fds.push_back({p->pidfd.get(), POLLIN, 0});
      owners.push_back(p);
    }
    if (p->notify) {
      fds.push_back({p->notify.get(), POLLIN, 0});
      owners.push_back(p);
    }
  }
}

void Service::OnProc(Proc* p, bool pidfd_ready) {
  if (p == &notify_tag_) {
    OnNotify();
    return;
  }
  if (p == nullptr) {
    if (container_pidfd_) OnContainerExit();
    return;
  }
  bool was_running = p->st.running;
  PollProc(*p, pidfd_ready);
  bool killing = phase_ == Phase::kStopSigterm || phase_ == Phase::kStopSigkill ||
                 phase_ == Phase::kFinalSigterm || phase_ == Phase::kFinalSigkill;
  if (!was_running && p->st.running && killing && !stop_by_notify_) {
    // The stop began before the shim reported its child (it writes the pid after the exec,
    // and the child joins the cgroup just before): that process missed the signal.
    SignalPhase(phase_);
  }
  if (p == main_.get()) {
    if (!was_running && p->st.running) changed = true;
    if (p->done) {
      OnMainExit();
    } else if (p->st.running && phase_ == Phase::kStart &&
               unit_->Type() != unit::ServiceType::kNotify) {
      RunPhase(Phase::kStartPost);  // Type=exec: exec'd; Type=forking: the daemon is up
    }
  } else if (p == control_.get() && p->done) {
    OnControlExit();
  }
}

void Service::ClassifyExit(const ShimStatus& st, bool main) {
  const std::string what = (main ? std::string("ExecStart") : control_->key) + "=" +
                           (main ? main_->cmd.path : control_->cmd.path);
  if (OomKills() > oom_base_) {
    Fail("oom-kill", "a process of the unit was killed by the OOM killer (" + what + ")");
  } else if (st.err != 0) {
    std::string code = std::to_string(st.code) + "/" + std::string(ExitCodeName(st.code));
    std::string target = st.stage == "chdir" ? "WorkingDirectory" : st.stage;
    Fail("exit-code", st.stage == "exec"
                          ? what + ": " + std::strerror(st.err) + " (status=" + code + ")"
                          : what + ": failed at step " + target + ": " + std::strerror(st.err) +
                                " (status=" + code + ")");
  } else if (st.signal != 0) {
    Fail(st.core ? "core-dump" : "signal", what + " killed by signal " + SignalName(st.signal));
  } else {
    Fail("exit-code", what + " exited with status " + std::to_string(st.code));
  }
}

void Service::OnMainExit() {
  if (notify_.fd) OnNotify();  // what it said before it exited comes first
  const ShimStatus& st = main_->st;
  exit_status_ = st.code;
  changed = true;
  bool clean = (st.signal == 0 && st.code == 0 && st.err == 0) ||
               (st.signal != 0 && IsCleanSignal(st.signal) && OomKills() == oom_base_);
  switch (phase_) {
    case Phase::kStart:
    case Phase::kStartPost:
    case Phase::kRunning:
    case Phase::kReload:
      if (!clean) {
        ClassifyExit(st, true);
        EnterSignal(Phase::kStopSigterm, false);
      } else if (phase_ == Phase::kRunning || phase_ == Phase::kReload) {
        EnterStop();
      } else if (phase_ == Phase::kStart && unit_->Type() == unit::ServiceType::kNotify) {
        Fail("protocol", "ExecStart=" + main_->cmd.path + " exited before sending READY=1");
        EnterSignal(Phase::kStopSigterm, false);
      } else if (phase_ == Phase::kStart) {
        RunPhase(Phase::kStartPost);  // Type=exec: a quick clean exit is a successful start
      }
      break;
    case Phase::kStopSigterm:
    case Phase::kStopSigkill:
    case Phase::kFinalSigterm:
    case Phase::kFinalSigkill:
      if (!clean && st.signal != SIGKILL && !IsCleanSignal(st.signal) && st.signal != 0) {
        ClassifyExit(st, true);
      }
      OnTime(Clock::now());
      break;
    default:
      break;
  }
}

void Service::OnControlExit() {
  const ShimStatus st = control_->st;
  changed = true;
  if (phase_ == Phase::kStart) exit_status_ = st.code;  // Type=oneshot: ExecStart= runs here
  bool failed = st.code != 0 && !control_->cmd.ignore_failure;
  // systemd.service(5): ExecCondition= exiting 1..254 skips the unit without a failure.
  if (phase_ == Phase::kCondition && failed && st.signal == 0 && st.code < 255 && st.err == 0) {
    reason_ = "condition not met: " + control_->key + "=" + control_->cmd.path +
              " exited with status " + std::to_string(st.code);
    EnterSignal(Phase::kStopSigterm, false);
    return;
  }
  switch (phase_) {
    case Phase::kCondition:
    case Phase::kStartPre:
    case Phase::kStart:
    case Phase::kStartPost:
      if (failed) {
        ClassifyExit(st, false);
        EnterSignal(Phase::kStopSigterm, false);
      } else {
        RunNext();
      }
      break;
    case Phase::kStop:
    case Phase::kStopPost:
      if (failed) ClassifyExit(st, false);
      RunNext();
      break;
    default:
      OnTime(Clock::now());
      break;
  }
}

// ---- stopping ----

void Service::BeginStop(bool requested) {
  stop_requested_ = stop_requested_ || requested;
  switch (phase_) {
    case Phase::kAutoRestart:
      deadline_.reset();
      SetPhase(result_ == "success" ? Phase::kDead : Phase::kFailed);
      break;
    case Phase::kCondition:
    case Phase::kStartPre:
    case Phase::kStart:
    case Phase::kStartPost:
      if (unit_ && unit_->IsContainer()) {
        StopContainer();
      } else {
        EnterSignal(Phase::kStopSigterm, false);
      }
      break;
    case Phase::kRunning:
    case Phase::kExited:
    case Phase::kReload:
      EnterStop();
      break;
    default:
      break;
  }
}

void Service::EnterStop() {
  if (unit_->IsContainer()) {
    StopContainer();
    return;
  }
  bool was_up = phase_ == Phase::kRunning || phase_ == Phase::kExited ||
                phase_ == Phase::kStartPost || phase_ == Phase::kReload;
  if (was_up) {
    RunPhase(Phase::kStop);
  } else {
    EnterSignal(Phase::kStopSigterm, false);
  }
}

void Service::Signal(int sig, bool all) {
  if (all) {
    for (pid_t p : ReadProcs(cgroup_)) ::kill(p, sig);
  }
  for (Proc* p : {main_.get(), control_.get()}) {
    if (p && !p->done && p->st.pid > 0) ::kill(p->st.pid, sig);
  }
  if (main_pid_override_ > 0 && main_ && !main_->done) ::kill(main_pid_override_, sig);
  if (sig != SIGKILL && sig != SIGCONT) Signal(SIGCONT, all);
}

bool Service::ProcsDone() const {
  for (Proc* p : {main_.get(), control_.get()}) {
    if (p && !p->done) return false;
  }
  return true;
}

bool Service::NothingLeft() const {
  if (!ProcsDone()) return false;
  auto mode = unit_->GetKillMode();
  if (mode == unit::KillMode::kControlGroup || mode == unit::KillMode::kMixed) {
    return ReadProcs(cgroup_).empty();
  }
  return true;
}

void Service::EnterSignal(Phase p, bool final_kill) {
  (void)final_kill;
  SetPhase(p);
  stop_by_notify_ = false;
  SignalPhase(p);
  deadline_ = After(unit_->TimeoutStopSec());
  poll_at_ = Clock::now() + std::chrono::milliseconds(10);
  OnTime(Clock::now());
}

void Service::SignalPhase(Phase p) {
  bool term = p == Phase::kStopSigterm || p == Phase::kFinalSigterm;
  int sig = term ? unit_->KillSignal() : SIGKILL;
  // After a watchdog timeout the main process gets WatchdogSignal= first (systemd.service(5)).
  if (p == Phase::kStopSigterm && kill_signal_override_ != 0) sig = kill_signal_override_;
  switch (unit_->GetKillMode()) {
    case unit::KillMode::kControlGroup:
      Signal(sig, true);
      break;
    case unit::KillMode::kMixed:
      Signal(sig, !term);
      break;
    case unit::KillMode::kProcess:
      Signal(sig, false);
      break;
    case unit::KillMode::kNone:
      break;
  }
}

void Service::EnterStopPost() { RunPhase(Phase::kStopPost); }

void Service::EnterDead() {
  deadline_.reset();
  poll_at_.reset();
  if (!cgroup_.empty() && ReadProcs(cgroup_).empty()) {
    (void)env_.cgroups->Remove(cgroup_);
    cgroup_.clear();
  }
  for (auto* p : {&main_, &control_}) {
    if (*p && (*p)->done) {
      std::error_code ec;
      fs::remove((*p)->status_file, ec);
    }
  }
  control_.reset();
  CloseNotify();
  main_pid_override_ = 0;
  SetPhase(result_ == "success" ? Phase::kDead : Phase::kFailed);
  if (ShouldRestart()) {
    deadline_ = After(unit_->RestartSec());
    SetPhase(Phase::kAutoRestart);
  }
}

bool Service::ShouldRestart() const {
  if (stop_requested_ || a_.desired != api::UnitStateName::kLaunched) return false;
  if (result_ == "start-limit-hit" || result_ == "dependency") return false;
  bool success = result_ == "success";
  bool abnormal = result_ == "signal" || result_ == "core-dump" || result_ == "timeout" ||
                  result_ == "watchdog";
  switch (unit_->Restart()) {
    case unit::RestartPolicy::kNo:
      return false;
    case unit::RestartPolicy::kAlways:
      return true;
    case unit::RestartPolicy::kOnSuccess:
      return success;
    case unit::RestartPolicy::kOnFailure:
      return !success;
    case unit::RestartPolicy::kOnAbnormal:
      return abnormal;
    case unit::RestartPolicy::kOnAbort:
      return result_ == "signal" || result_ == "core-dump";
    case unit::RestartPolicy::kOnWatchdog:
      return result_ == "watchdog";
  }
  return false;
}

// ---- timers ----

std::optional<Clock::time_point> Service::Deadline() const {
  std::optional<Clock::time_point> d;
  for (const auto& t : {deadline_, poll_at_, watchdog_at_}) {
    if (t && (!d || *t < *d)) d = t;
  }
  return d;
}

void Service::OnTime(Clock::time_point now) {
  if (unit_ && unit_->IsContainer()) {
    if (deadline_ && now >= *deadline_) {
      deadline_.reset();
      if (phase_ == Phase::kAutoRestart) {
        ++restarts_;
        BeginStart();
      } else if (phase_ == Phase::kStopSigterm || phase_ == Phase::kStopSigkill) {
        OnContainerTimeout();
      }
    }
    return;
  }
  if (watchdog_at_ && now >= *watchdog_at_) {
    OnWatchdog();
    return;
  }
  bool killing = phase_ == Phase::kStopSigterm || phase_ == Phase::kStopSigkill ||
                 phase_ == Phase::kFinalSigterm || phase_ == Phase::kFinalSigkill;
  bool term_phase = phase_ == Phase::kStopSigterm || phase_ == Phase::kFinalSigterm;
  if (term_phase && unit_->GetKillMode() == unit::KillMode::kMixed && ProcsDone() &&
      !ReadProcs(cgroup_).empty()) {
    // KillMode=mixed: the main process got the stop signal and is gone; the rest gets SIGKILL.
    EnterSignal(phase_ == Phase::kStopSigterm ? Phase::kStopSigkill : Phase::kFinalSigkill, false);
    return;
  }
  if (killing && NothingLeft()) {
    poll_at_.reset();
    deadline_.reset();
    if (phase_ == Phase::kStopSigterm || phase_ == Phase::kStopSigkill) {
      EnterStopPost();
    } else {
      EnterDead();
    }
    return;
  }
  if (killing && poll_at_ && now >= *poll_at_) {
    poll_at_ = now + std::chrono::milliseconds(20);
  }
  if (!deadline_ || now < *deadline_) return;
  deadline_.reset();
  switch (phase_) {
    case Phase::kCondition:
    case Phase::kStartPre:
    case Phase::kStart:
    case Phase::kStartPost:
      Fail("timeout", std::string(SubStateName(phase_)) + " operation timed out after " +
                          std::to_string(unit_->TimeoutStartSec().count() / 1000) + " ms");
      EnterSignal(Phase::kStopSigterm, false);
      break;
    case Phase::kStop:
      Fail("timeout", "ExecStop= timed out");
      EnterSignal(Phase::kStopSigterm, false);
      break;
    case Phase::kStopSigterm:
      if (stop_by_notify_) {  // STOPPING=1 but still there after TimeoutStopSec=: signal now
        EnterSignal(Phase::kStopSigterm, false);
        break;
      }
      Fail("timeout", "processes did not exit on " + SignalName(unit_->KillSignal()) +
                          " within TimeoutStopSec=, killed with SIGKILL");
      EnterSignal(Phase::kStopSigkill, false);
      break;
    case Phase::kStopSigkill:
      EnterStopPost();
      break;
    case Phase::kStopPost:
      EnterSignal(Phase::kFinalSigterm, false);
      break;
    case Phase::kFinalSigterm:
      EnterSignal(Phase::kFinalSigkill, false);
      break;
    case Phase::kFinalSigkill:
      EnterDead();
      break;
    case Phase::kAutoRestart:
      ++restarts_;
      BeginStart();
      break;
    case Phase::kReload:  // RELOADING=1 without READY=1: the reload failed, the unit runs on
      AppendJournal(UnitDir(env_.opts->state_dir, a_.name) / "journal.log",
                    "fjord: reload timed out: no READY=1 within TimeoutStartSec=");
      SetPhase(Phase::kRunning);
      break;
    default:
      break;
  }
}

// ---- status ----

UnitStatus Service::Status() const {
  UnitStatus s;
  s.name = a_.name;
  s.hash = a_.hash;
  s.load_state = load_state_;
  s.active_state = std::string(ActiveStateName(phase_));
  s.sub_state = std::string(SubStateName(phase_));
  s.result = result_;
  s.reason = load_state_ == "loaded" ? reason_ : load_error_;
  if (main_ && !main_->done) s.main_pid = main_->st.pid;
  if (main_ && !main_->done && main_pid_override_ > 0) s.main_pid = main_pid_override_;
  s.status_text = status_text_;
  if (unit_ && unit_->IsContainer() && !container_id_.empty()) s.main_pid = main_pid_container_;
  s.exit_status = exit_status_;
  s.restarts = restarts_;
  s.since_unix_ms = since_ms_;
  s.container_id = container_id_;
  s.cgroup = CgroupPath();
  return s;
}

}  // namespace fjord::agent
