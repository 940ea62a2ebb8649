// Runtime: fjord's native container runtime (no Docker). One Runtime object manages the
// containers under one state root (layout in runtime/paths.h).
//
// A container is: an overlay root (the rootfs or image layers as read-only lowers, a private
// upper), new pid/mount/uts/ipc(/net) namespaces, a cgroup (v1, v2 or hybrid hosts) created
// before the workload runs, docker's default capabilities, no_new_privs and a default seccomp
// filter. Each container is owned by a tiny static monitor process (monitor/monitor.c), so it
// outlives the fjord process that started it; any later Runtime over the same root re-adopts
// it, and Recover() cleans up what a crashed fjord or monitor left behind.
//
// Thread-safety: a Runtime is not thread-safe; use one per thread. Several processes may share
// one root: names are reserved atomically and every file is written by rename.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "base/status.h"

namespace fjord::runtime {

enum class NetMode { kNone, kHost, kBridge };

struct Mount {
  std::filesystem::path source;  // host path; must exist
  std::string destination;       // absolute path inside the container
  bool read_only = false;
};

struct PortPublish {
  uint16_t host_port = 0;
  uint16_t container_port = 0;
  std::string protocol = "tcp";
};

struct Limits {
  std::optional<double> cpus;            // CPU quota in CPUs: 0.5 = 50% of one CPU
  std::optional<uint64_t> cpu_weight;    // 1..10000, cgroup v2 scale (100 = default)
  std::optional<uint64_t> memory_bytes;  // hard limit, no swap on top
  std::optional<int64_t> pids_max;
};

struct LogOptions {
  uint64_t max_bytes = 10ull << 20;  // per file
  int max_files = 3;                 // container.log + (max_files - 1) rotated files
};

struct ContainerSpec {
  std::string name;                           // empty: the short id is the name
  std::filesystem::path rootfs;               // used as the one read-only lower layer, or
  std::vector<std::filesystem::path> layers;  // image layers, lowest first (rootfs empty)
  std::vector<std::string> argv;              // argv[0] is looked up in the container's PATH
  std::vector<std::string> env;               // "K=V"; PATH and HOME get defaults
  std::string cwd = "/";
  std::string hostname;  // empty: the short id
  Limits limits;
  std::vector<Mount> mounts;
  NetMode net = NetMode::kNone;
  std::vector<PortPublish> ports;  // only with NetMode::kBridge
  bool read_only = false;          // root filesystem read-only
  bool privileged = false;         // all capabilities, no seccomp, /sys writable
  std::string user;                // "UID[:GID]", numeric; empty = 0:0
  // A user namespace: container uid/gid 0..65535 are host 100000..165535. Files of the rootfs
  // then belong to an unmapped owner (read-only for the container); new files are its own.
  bool user_namespace = false;
  int stop_signal = 15;  // SIGTERM
  LogOptions log;
  // Removed as soon as it exits (docker's --rm), by its monitor, attached or not. A bridge
  // container is removed by the next fjord command instead (its network is released there).
  bool auto_remove = false;
};

enum class State { kCreating, kRunning, kExited };

struct ContainerInfo {
  std::string id;
  std::string name;
  State state = State::kCreating;
  pid_t monitor_pid = 0;
  pid_t init_pid = 0;  // host pid of the container's PID 1
  int exit_code = 0;   // 128+N when killed by signal N
  bool oom_killed = false;
  std::string error;  // why the workload could not start (exec error), or monitor loss
  std::vector<std::string> argv;
  std::vector<std::filesystem::path> layers;  // image layers it runs on (empty for --rootfs)
  int64_t created_unix = 0;
  int64_t finished_unix = 0;
  std::filesystem::path dir;

  // "running", "exited (3)", "oom-killed", "creating".
  std::string StatusString() const;
};

struct ContainerStats {
  uint64_t cpu_usage_ns = 0;
  uint64_t memory_bytes = 0;
  uint64_t pids = 0;
};

// What Start reports.
struct Started {
  std::string id;
  // Set when the workload could not be exec'd: the container exited with exec_exit_code (126
  // or 127), and this is why (Inspect().error says the same, while the container exists).
  std::string exec_error;
  int exec_exit_code = 0;
  pid_t init_pid = 0;  // host pid of the container's PID 1 (signals for it go there)
};

// How a container ended, as the last record of an attach stream reports it.
struct AttachedExit {
  int exit_code = 0;  // 128+N when killed by signal N
  int signal = 0;
  bool oom_killed = false;
};

// Optional bridge networking, wired by the caller (src/net). Attach runs after the container's
// network namespace exists and before its workload starts; Detach runs on stop/rm/recover.
struct NetworkHooks {
  std::function<base::Status(const std::string& id, pid_t netns_pid,
                             const std::vector<PortPublish>& ports)>
      attach;
  std::function<base::Status(const std::string& id)> detach;
};

struct RuntimeOptions {
  std::filesystem::path root;           // state root (see paths.h)
  std::string cgroup_parent = "fjord";  // cgroups go to <hierarchy>/<cgroup_parent>/<id>
  NetworkHooks network;
};

// A record of a container's output, as read back from its log.
struct LogRecord {
  std::string_view timestamp;  // RFC 3339 with nanoseconds, UTC
  bool is_stderr = false;
  bool partial = false;  // the text did not end with a newline in the stream
  std::string_view text;
};

class Runtime {
 public:
  virtual ~Runtime() = default;

  // Opens the root (creating it) and detects the host's cgroup layout. Does not recover.
  static base::Result<std::unique_ptr<Runtime>> Open(RuntimeOptions options);

  // Re-adopts running containers; cleans up what a dead fjord or monitor left behind (half-created
  // containers, cgroups and processes of containers whose monitor died). Call before other work.
  virtual base::Status Recover() = 0;

  // Creates and starts a container; returns once the workload was exec'd (or failed to: then
  // the container has already exited with 126/127, and exec_error says why). A setup failure
  // returns an error and leaves nothing behind.
  // With `attach`, it receives a pipe that carries the container's output as log records
  // (ReadLogStream), then how it exited: a foreground run reads it instead of the log file.
  virtual base::Result<Started> Start(const ContainerSpec& spec,
                                      base::UniqueFd* attach = nullptr) = 0;

  // Blocks until the container has exited; returns its final info.
  virtual base::Result<ContainerInfo> Wait(std::string_view name_or_id) = 0;

  // Sends `sig` to the container's init, which forwards it to the workload.
  virtual base::Status Kill(std::string_view name_or_id, int sig) = 0;

  // The stop signal, then after `timeout` SIGKILL to every process in the container's cgroup.
  virtual base::Status Stop(std::string_view name_or_id, std::chrono::milliseconds timeout) = 0;

  // Removes an exited container (state, logs, name); `force` stops a running one first.
  virtual base::Status Destroy(std::string_view name_or_id, bool force) = 0;

  virtual base::Result<ContainerInfo> Inspect(std::string_view name_or_id) = 0;
  virtual base::Result<std::vector<ContainerInfo>> List() = 0;
  virtual base::Result<ContainerStats> Stats(std::string_view name_or_id) = 0;

  // Calls `sink` for each log record in order; with `follow`, keeps reading (across rotation)
  // until the container has exited and its log is drained, or until `keep_following` (asked
  // at least once a second while following; empty: always true) returns false.
  virtual base::Status Logs(std::string_view name_or_id, bool follow,
                            const std::function<void(const LogRecord&)>& sink,
                            const std::function<bool()>& keep_following = {}) = 0;
};

// Reads log records from `fd` (an attach pipe from Start) until EOF. Returns how the container
// exited, or nullopt when the stream ended without saying (its monitor died, or is older).
base::Result<std::optional<AttachedExit>> ReadLogStream(
    int fd, const std::function<void(const LogRecord&)>& sink);

// Parses "256M", "1G", "512k", "1024" (bytes; binary units) into bytes.
base::Result<uint64_t> ParseByteSize(std::string_view text);
// Parses "50%" (of one CPU) or "0.5" (CPUs) into CPUs.
base::Result<double> ParseCpuQuota(std::string_view text);

}  // namespace fjord::runtime
