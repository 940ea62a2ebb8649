// fjord::agent::Supervisor: the per-machine init system of a fjord agent.
//
// The agent hands Apply() the complete list of units the server placed on this machine; the
// supervisor makes the machine match it the way systemd would run those unit files:
// ExecStartPre/ExecStart/ExecStartPost/ExecStop/ExecStopPost with their prefixes,
// Type=simple/exec/oneshot/forking/notify (idle and dbus as simple), sd_notify with
// NotifyAccess= and WatchdogSec=, timeouts, Restart=, KillMode=/KillSignal=, Environment=,
// EnvironmentFile=, WorkingDirectory=, User=, ordering and requirement dependencies between
// the units of this machine, and one cgroup per unit under Options::cgroup_parent with
// CPUQuota=, MemoryMax= (MemoryLimit=) and TasksMax=. [Container] units run through
// fjord::runtime. State names and results are systemd's (see UnitStatus).
//
// Units outlive the supervisor: every process of a unit is the child of a tiny static shim
// (shim/shim.c) that writes its exit status and output to files under state_dir, so after
// Detach() or kill -9 of the agent a new Open() over the same state_dir re-adopts running
// units (same main PID, no restart) and applies Restart= to the ones that died meanwhile.
// On-disk layout: internal.h; design notes: README.md.
//
// Threads: Open() starts one supervisor thread running an event loop (pidfds of the shims,
// their notification pipes, timers, an eventfd to wake it). Apply/List/Get/StatusText/Journal
// may be called from any thread; on_change runs on the supervisor thread without internal
// locks held, so it may call List()/Get(), but must be quick. The destructor detaches (as
// Detach()); call StopAll() first to stop the units.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/types.h"
#include "base/status.h"

namespace fjord::agent {

// One unit the server placed on this machine.
struct UnitAssignment {
  std::string name;  // "web@1.service"
  std::string hash;  // fleet content hash of the options (unit::ContentHash)
  api::UnitStateName desired = api::UnitStateName::kLaunched;  // kLoaded: load only; kLaunched: run
  std::vector<api::UnitOption> options;                        // canonical options (api/types.h)
};

struct UnitStatus {
  std::string name, hash;
  std::string load_state;    // "loaded" | "not-found" | "bad-setting" | "error"
  std::string active_state;  // "active" | "inactive" | "failed" | "activating" |
                             // "deactivating" | "reloading"
  std::string sub_state;  // "running" | "exited" | "dead" | "failed" | "condition" | "start-pre" |
                          // "start" | "start-post" | "stop" | "stop-sigterm" | "stop-sigkill" |
                          // "stop-post" | "final-sigterm" | "final-sigkill" | "auto-restart"
                          // | "reload"
  std::string result;     // "success" | "exit-code" | "signal" | "core-dump" | "timeout" |
                          // "oom-kill" | "resources" | "start-limit-hit" | "dependency" |
                          // "protocol" (Type=notify exited before READY=1) | "watchdog"
  std::string reason;     // for a person: "ExecStart=/usr/bin/nope: No such file or directory"
  std::string status_text;  // the service's last STATUS= (sd_notify), as systemctl's Status:
  int main_pid = 0;
  int exit_status = 0;  // last main process exit (128+N for signal N)
  uint32_t restarts = 0;
  int64_t since_unix_ms = 0;  // when active_state last changed
  std::string container_id;   // [Container] units
  std::string cgroup;         // "<cgroup_parent>/<name>"
};

class Supervisor {
 public:
  struct Options {
    std::filesystem::path state_dir;   // all on-disk state: per-unit records, logs, runtime root
    std::string cgroup_parent;         // per agent, e.g. "fjord-<machine-id>"
    std::string machine_id, hostname;  // for specifiers (%m %H %n %i ...)
    std::function<void(const UnitStatus&)> on_change;  // see the threading note above
    // Where [Container] units find images; empty: image::ImageStoreDir(base::StateRoot()),
    // as `fjord image` uses.
    std::filesystem::path image_root;
    uint64_t journal_max_bytes = 4ull << 20;  // per unit; rotated once to journal.log.1
  };

  // Creates state_dir if needed, re-adopts the units recorded there and starts the thread.
  static base::Result<std::unique_ptr<Supervisor>> Open(Options options);
  virtual ~Supervisor() = default;

  // Level-triggered: `units` is the complete set for this machine. Absent units are stopped
  // and forgotten; kLoaded ones are stopped and kept loaded; kLaunched ones are started unless
  // already running, failed with the same hash (as systemd, a failed unit is not retried until
  // its content or desired state changes) or auto-restarting; a changed hash restarts the unit.
  // Returns at once; the work happens on the supervisor thread.
  virtual void Apply(std::vector<UnitAssignment> units) = 0;

  virtual std::vector<UnitStatus> List() const = 0;
  virtual base::Result<UnitStatus> Get(std::string_view name) const = 0;
  // Like `systemctl status NAME`: header, Loaded/Active lines, Main PID, CGroup, last log lines.
  virtual std::string StatusText(std::string_view name) const = 0;
  // The last `lines` lines of the unit's output (stdout and stderr of all its processes,
  // "<RFC3339 UTC> <text>"). With follow, keeps streaming until sink returns false or the
  // supervisor stops (a [Container] unit's stream also ends when the container has exited);
  // while idle, sink gets an empty line now and then, so a caller whose client left can stop
  // it. Runs on the caller's thread. [Container] units: the container's log.
  virtual base::Status Journal(std::string_view name, size_t lines, bool follow,
                               const std::function<bool(std::string_view line)>& sink) const = 0;

  // Stops supervising and leaves the units running; a later Open re-adopts them. Idempotent.
  virtual void Detach() = 0;
  // Stops every unit (ExecStop, KillSignal, TimeoutStopSec, ExecStopPost) and waits for it.
  virtual void StopAll() = 0;
};

}  // namespace fjord::agent
