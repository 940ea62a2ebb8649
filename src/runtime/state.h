// Serialization of a container's config.json and state.json (private; layout in paths.h).
// Plain functions; not thread-safe only in the sense that files are shared between processes:
// every write is atomic (tmp + rename).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "base/status.h"
#include "runtime/cgroups.h"
#include "runtime/runtime.h"

namespace fjord::runtime {

struct ContainerState {
  std::string id;
  std::string name;
  std::string status = "creating";  // "creating" | "running"; "exit" file means exited
  pid_t creator_pid = 0;
  uint64_t creator_start = 0;
  pid_t monitor_pid = 0;
  uint64_t monitor_start = 0;
  pid_t init_pid = 0;
  uint64_t init_start = 0;
  CgroupDirs cgroups;
  std::string error;
  int stop_signal = 15;
  bool bridge = false;
  bool auto_remove = false;  // removed once exited (by its monitor, or by Recover)
  int64_t created_unix = 0;
  // From the spec in state.json; empty for containers of older fjord versions (ReadSpec).
  std::vector<std::string> argv;
  std::vector<std::filesystem::path> layers;
};

struct ExitRecord {
  int exit_code = 0;
  int signal = 0;
  bool oom_killed = false;
  int64_t finished_unix_ns = 0;
  bool monitor_lost = false;
};

// The spec as given to Start (from state.json, or an older container's config.json).
base::Result<ContainerSpec> ReadSpec(const std::filesystem::path& dir);
// Each state file is written once and never replaced: renaming over an existing file makes ext4
// allocate blocks at once (auto_da_alloc), and freeing them later costs a synchronous discard on
// hosts mounted with `discard`; short-lived containers then never touch the disk at all.
//   state.json    identity, creator, cgroups and the spec (before the container process exists)
//   running.json  monitor and init pids with start times (once they exist)
//   start_error   why the workload could not be exec'd (126/127 only)
base::Status WriteState(const std::filesystem::path& dir, const ContainerState& state,
                        const ContainerSpec& spec);
base::Status WriteRunning(const std::filesystem::path& dir, const ContainerState& state);
base::Status WriteStartError(const std::filesystem::path& dir, const std::string& error);
// Merges the three files; status is "running" once running.json exists.
base::Result<ContainerState> ReadState(const std::filesystem::path& dir);
// nullopt-like: NotFound when the container has not exited.
base::Result<ExitRecord> ReadExit(const std::filesystem::path& dir);
base::Status WriteExit(const std::filesystem::path& dir, const ExitRecord& record);

}  // namespace fjord::runtime
