// Private to src/agent: the on-disk layout, the shim spawner and the per-unit state machine.
//
// On-disk layout under Supervisor::Options::state_dir:
//   units/<unit name>/record.json     what the unit is and what runs (rewritten atomically)
//   units/<unit name>/journal.log     "<RFC3339 UTC> <text>" lines of all its processes (+ .1)
//   units/<unit name>/<Key>.<n>.status  the shim's status file of one process (shim/shim.c)
//   units/<unit name>/notify          the unit's sd_notify(3) socket (notify.cc), while it runs
//   runtime/                          fjord::runtime root for [Container] units
//
// Everything here runs on the supervisor thread (or under its mutex); nothing is thread-safe
// on its own.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/supervisor.h"
#include "base/fd.h"
#include "base/status.h"
#include "runtime/cgroups.h"
#include "runtime/runtime.h"
#include "unit/unit.h"

namespace fjord::agent {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

inline fs::path UnitDir(const fs::path& state_dir, const std::string& name) {
  return state_dir / "units" / name;
}

// ---- spawn.cc ----

// What one shim reported in its status file.
struct ShimStatus {
  pid_t pid = 0;
  bool running = false;
  bool exited = false;
  int code = 0;    // exit code, 128+N for signal N
  int signal = 0;  // N when killed by a signal
  bool core = false;
  int err = 0;        // errno of a failed setup step
  std::string stage;  // "exec", "chdir", "user", "group", "cgroup"
};
ShimStatus ReadShimStatus(const fs::path& file);

struct SpawnRequest {
  fs::path status_file, log_file;
  uint64_t log_max = 0;
  bool forking = false;
  std::string pidfile;  // empty: none
  std::string cwd;      // empty: the shim's
  long uid = -1, gid = -1;
  std::vector<std::string> cgroup_procs;
  std::optional<int> oom_score_adj;  // OOMScoreAdjust=
  std::string path;
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "K=V"
  int notify_fd = -1;            // the unit's notify socket, held by the main shim as kShimNotifyFd
};

// The fd number under which a main shim holds its unit's notify socket (notify.cc).
inline constexpr int kShimNotifyFd = 5;

// A shim, running or re-adopted.
struct Proc {
  std::string key;  // "ExecStart"
  unit::ExecCommand cmd;
  pid_t shim_pid = 0;
  uint64_t shim_start = 0;  // /proc/<pid>/stat starttime, to recognise it after a restart
  bool child = false;       // ours to reap
  base::UniqueFd pidfd;     // readable when the shim exited
  base::UniqueFd notify;    // the shim writes a byte when it rewrote its status file
  fs::path status_file;
  ShimStatus st;
  bool done = false;  // the shim exited and st is final
};

// The shim binary in a sealed memfd (created once per supervisor).
base::Result<base::UniqueFd> ShimMemfd();
base::Result<std::unique_ptr<Proc>> SpawnShim(int shim_fd, const SpawnRequest& req);
uint64_t ProcessStartTime(pid_t pid);  // 0 when gone
pid_t ParentOf(pid_t pid);             // 0 when gone
// A /proc file's text, or what could be read of it: a process that exits meanwhile makes
// read(2) fail (ESRCH), which must not throw as an istreambuf_iterator would.
std::string ReadProcFile(const std::string& path);
// Re-adopts a shim from a record; nullptr when it is gone (its status file tells the rest).
std::unique_ptr<Proc> AdoptShim(pid_t pid, uint64_t start, const fs::path& status_file);
// Drains the notify pipe, reaps the shim when it exited and rereads the status file.
void PollProc(Proc& p, bool pidfd_ready);

// ---- journal.cc ----

std::vector<std::string> TailLines(const fs::path& log, size_t lines);

// ---- notify.cc ----

// One unit's sd_notify(3) socket: AF_UNIX, SOCK_DGRAM, SO_PASSCRED (the kernel stamps every
// datagram with the sender's pid, which NotifyAccess= checks). The agent reads it; the main
// shim holds a copy at kShimNotifyFd, so the socket (bound name and queued datagrams) lives on
// while no agent runs, and the next agent takes it back with pidfd_getfd(2).
struct NotifySocket {
  base::UniqueFd fd;
  std::string address;  // NOTIFY_SOCKET: a path, or "@name" (abstract) when the path is too long
};
struct NotifyMessage {
  pid_t pid = 0;
  std::vector<std::pair<std::string, std::string>> fields;  // "KEY=VALUE" lines, in order
};
// Binds a fresh socket for the unit whose directory is `dir` (replacing a stale one).
base::Result<NotifySocket> CreateNotifySocket(const fs::path& dir);
// Takes the socket back from a re-adopted main shim; checks it is bound to `address`.
base::Result<NotifySocket> AdoptNotifySocket(int shim_pidfd, const std::string& address);
// Reads every queued datagram (closing any fds passed with them); never blocks.
std::vector<NotifyMessage> DrainNotify(int fd);
// Parses one datagram (exposed for tests and the fuzzer): newline-separated KEY=VALUE lines.
NotifyMessage ParseNotify(std::string_view datagram, pid_t pid);
void RemoveNotifySocket(const NotifySocket& s);
// Appends one "<RFC3339 UTC> <text>" line to a unit's journal as the shims write them.
void AppendJournal(const fs::path& log, std::string_view text);
// The processes in a unit's cgroup (the pids hierarchy's, or the first directory's).
std::vector<pid_t> ReadProcs(const runtime::CgroupDirs& dirs);

// ---- service.cc ----

// Shared by every unit of one supervisor.
struct Env {
  const Supervisor::Options* opts = nullptr;
  const runtime::CgroupBackend* cgroups = nullptr;
  int shim_fd = -1;
  std::set<fs::path> cgroup_parents;  // every <hierarchy>/<cgroup_parent> used; StopAll removes
  // Opened on first use: [Container] units only.
  std::function<base::Result<runtime::Runtime*>()> runtime;
};

enum class Phase {
  kDead,
  kFailed,
  kStartPre,
  kStart,
  kStartPost,
  kRunning,
  kExited,
  kStop,
  kStopSigterm,
  kStopSigkill,
  kStopPost,
  kFinalSigterm,
  kFinalSigkill,
  kAutoRestart,
  kCondition,  // ExecCondition= (before start-pre)
  kReload,     // Type=notify: between RELOADING=1 and READY=1
};
inline bool IsStarting(Phase p) {
  return p == Phase::kCondition || p == Phase::kStartPre || p == Phase::kStart ||
         p == Phase::kStartPost;
}
std::string_view SubStateName(Phase p);
std::string_view ActiveStateName(Phase p);

// One unit: systemd's service state machine, driven by the supervisor's loop.
class Service {
 public:
  Service(Env& env, UnitAssignment a);
  ~Service();

  const UnitAssignment& assignment() const { return a_; }
  void set_desired(api::UnitStateName d) { a_.desired = d; }
  const std::optional<unit::Unit>& parsed() const { return unit_; }
  const unit::Dependencies& deps() const { return deps_; }  // empty when not loaded
  Phase phase() const { return phase_; }
  bool loaded() const { return unit_.has_value(); }
  bool stop_requested() const { return stop_requested_; }

  // Job requests from Apply/dependencies; the supervisor calls Begin* when ordering allows.
  void BeginStart();
  void BeginStop(bool requested);
  // A start that could not even begin (dependency failed, not loaded).
  void FailStart(std::string result, std::string reason);

  // Loop hooks.
  // Adds this unit's fds; owners gets the Proc of each (nullptr: the container's monitor;
  // notify_tag(): the notify socket).
  void CollectPoll(std::vector<struct pollfd>& fds, std::vector<Proc*>& owners);
  void OnProc(Proc* p, bool pidfd_ready);  // p == nullptr: the container's monitor exited
  const Proc* notify_tag() const { return &notify_tag_; }
  std::optional<Clock::time_point> Deadline() const;
  void OnTime(Clock::time_point now);

  UnitStatus Status() const;
  std::string CgroupPath() const;
  bool active_or_activating() const;
  bool inactive() const { return phase_ == Phase::kDead || phase_ == Phase::kFailed; }

  // Recovery (supervisor.cc reads the record and hands the pieces here).
  void Adopt(const struct Record& r);
  void SaveRecord() const;
  // Forget the unit on disk (after it was stopped for good).
  void RemoveFiles();

  bool changed = false;  // set on every visible change; the supervisor reports and clears it
  // Supervisor bookkeeping: the hash a start was last requested for (so a level-triggered
  // Apply does not rerun a finished oneshot or retry a failed unit), and pending jobs.
  std::string launched_hash;
  bool want_start = false;
  bool want_stop = false;
  bool remove_when_stopped = false;
  std::optional<UnitAssignment> replacement;  // a new hash waiting for this one to stop

 private:
  void SetPhase(Phase p);
  void Fail(std::string_view result, std::string reason);
  void RunPhase(Phase p);  // runs the Exec list of p from index 0, or moves on
  void RunNext();          // the next command of the current Exec list, or the next phase
  void AfterList();        // the Exec list of phase_ completed
  bool SpawnCommand(const unit::ExecCommand& cmd, bool main);
  void StartMain();
  runtime::CgroupDirs StartCgroup(bool reuse);  // empty (and failed) on error
  void EnterStop();
  void EnterSignal(Phase p, bool final_kill);
  void SignalPhase(Phase p);  // sends p's signal as KillMode= says
  void EnterStopPost();
  void EnterDead();
  void OnMainExit();
  void OnControlExit();
  bool NothingLeft() const;
  bool ProcsDone() const;  // main and control processes have exited
  void Signal(int sig, bool all);
  bool ShouldRestart() const;
  std::vector<unit::ExecCommand> ExecList(std::string_view key);
  base::Result<std::vector<std::string>> BuildEnv(const unit::ExecCommand& cmd, long* uid,
                                                  long* gid, std::string* cwd);
  uint64_t OomKills() const;
  void ClassifyExit(const ShimStatus& st, bool main);
  // Containers (container_unit.cc).
  void StartContainer();
  void StopContainer();
  void OnContainerExit();
  void AdoptContainer();
  void OnContainerTimeout();
  // sd_notify (notify.cc).
  bool WantsNotify() const;  // Type=notify, WatchdogSec= or NotifyAccess= other than none
  std::string NotifyAccess() const;
  bool OpenNotify();  // false (and failed) when the socket cannot be made
  void CloseNotify();
  void AdoptNotify(const struct Record& r);
  void AdoptMainShim(const struct Record& r);
  void AdoptNotifyStart(const struct Record& r);
  void OnNotify();
  bool NotifyAllowed(pid_t pid);
  void HandleNotify(const NotifyMessage& m);
  std::chrono::microseconds WatchdogUsec() const;
  void ArmWatchdog();
  void OnWatchdog();
  int WatchdogSignal() const;
  void NoteTypeOnce();                  // Type=dbus: says once in the journal how fjord runs it
  int64_t StartDeadlineUnixMs() const;  // Type=notify in start: when TimeoutStartSec= ends

  Env& env_;
  UnitAssignment a_;
  std::vector<unit::UnitOption> views_;
  std::optional<unit::Unit> unit_;
  unit::Dependencies deps_;  // cached: the loop consults it for every unit on every wake-up
  std::string load_state_ = "loaded";
  std::string load_error_;

  Phase phase_ = Phase::kDead;
  std::string result_ = "success";
  std::string reason_;
  int exit_status_ = 0;
  uint32_t restarts_ = 0;
  int64_t since_ms_ = 0;
  bool stop_requested_ = false;
  std::deque<Clock::time_point> recent_starts_;
  std::optional<Clock::time_point> deadline_;
  std::optional<Clock::time_point> poll_at_;  // cgroup emptiness checks while killing

  std::vector<unit::ExecCommand> list_;  // the Exec list being run
  size_t list_index_ = 0;
  int spawn_seq_ = 0;
  std::unique_ptr<Proc> main_;
  std::unique_ptr<Proc> control_;
  runtime::CgroupDirs cgroup_;
  uint64_t oom_base_ = 0;
  std::string container_id_;
  base::UniqueFd container_pidfd_;
  pid_t main_pid_container_ = 0;
  // sd_notify state.
  NotifySocket notify_;
  Proc notify_tag_;              // owner tag of notify_.fd in CollectPoll; never a process
  std::string status_text_;      // STATUS=
  pid_t main_pid_override_ = 0;  // MAINPID=
  std::optional<std::chrono::microseconds> watchdog_override_;  // WATCHDOG_USEC=
  std::optional<Clock::time_point> watchdog_at_;
  int kill_signal_override_ = 0;  // WatchdogSignal= after a watchdog timeout
  bool stop_by_notify_ = false;   // STOPPING=1: waiting for the service to exit on its own
  bool type_noted_ = false;
  friend class SupervisorImpl;
};

// What record.json holds.
struct Record {
  UnitAssignment a;
  std::string phase;
  std::string result;
  uint32_t restarts = 0;
  int64_t since_ms = 0;
  pid_t main_shim = 0;
  uint64_t main_shim_start = 0;
  std::string main_status_file;
  std::string main_cmd;
  runtime::CgroupDirs cgroup;
  std::string container_id;
  std::string launched_hash;
  std::string notify_address;     // the unit's NOTIFY_SOCKET while it runs
  std::string status_text;        // STATUS=
  pid_t main_pid_override = 0;    // MAINPID=
  int64_t start_deadline_ms = 0;  // Type=notify waiting for READY=1 (unix ms; 0: none)
};
base::Result<Record> ReadRecord(const fs::path& file);

}  // namespace fjord::agent
