// Private to src/agent: the on-disk layout, the shim spawner and the per-unit state machine.
//
// On-disk layout under Supervisor::Options::state_dir:
//   units/<unit name>/record.json     what the unit is and what runs (rewritten atomically)
//   units/<unit name>/journal.log     "<RFC3339 UTC> <text>" lines of all its processes (+ .1)
//   units/<unit name>/<Key>.<n>.status  the shim's status file of one process (shim/shim.c)
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
};

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
// A /proc file's text, or what could be read of it: a process that exits meanwhile makes
// read(2) fail (ESRCH), which must not throw as an istreambuf_iterator would.
std::string ReadProcFile(const std::string& path);
// Re-adopts a shim from a record; nullptr when it is gone (its status file tells the rest).
std::unique_ptr<Proc> AdoptShim(pid_t pid, uint64_t start, const fs::path& status_file);
// Drains the notify pipe, reaps the shim when it exited and rereads the status file.
void PollProc(Proc& p, bool pidfd_ready);

// ---- journal.cc ----

std::vector<std::string> TailLines(const fs::path& log, size_t lines);

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
  // Adds this unit's fds; owners gets the Proc of each (nullptr: the container's monitor).
  void CollectPoll(std::vector<struct pollfd>& fds, std::vector<Proc*>& owners);
  void OnProc(Proc* p, bool pidfd_ready);  // p == nullptr: the container's monitor exited
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
};
base::Result<Record> ReadRecord(const fs::path& file);

}  // namespace fjord::agent
