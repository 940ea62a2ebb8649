// Cgroup backends (the runtime's second public header; src/agent uses it for units): cgroup v1 (one hierarchy per controller; also used
// on hybrid hosts, where a controller-less cgroup2 sits beside the v1 hierarchies) and cgroup v2
// (one unified tree). Detect() picks one from /proc/self/mountinfo.
//
// A container's cgroups are a map "controller -> directory" (v2: "unified" -> dir), stored in
// state.json so any later fjord process can kill, measure and remove them.
//
// Thread-safety: immutable after Detect(); methods are safe to call from several threads.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "runtime/runtime.h"

namespace fjord::runtime {

using CgroupDirs = std::map<std::string, std::filesystem::path>;

class CgroupBackend {
 public:
  virtual ~CgroupBackend() = default;

  // Reads the host's cgroup mounts. Fails only when no usable controller is mounted.
  static base::Result<std::unique_ptr<CgroupBackend>> Detect();

  // "v1", "hybrid" or "v2".
  virtual std::string_view Kind() const = 0;

  // Creates <parent>/<id> in every hierarchy and applies `limits`; device access is limited to
  // the nodes a container's /dev has unless `all_devices` (privileged). On failure nothing is left.
  virtual base::Result<CgroupDirs> Create(const std::string& parent, const std::string& id,
                                          const Limits& limits, bool all_devices) const = 0;

  // The file whose "oom_kill N" line counts OOM kills (v1 memory.oom_control, v2 memory.events).
  virtual std::filesystem::path OomFile(const CgroupDirs& dirs) const = 0;

  virtual base::Result<ContainerStats> Stats(const CgroupDirs& dirs) const = 0;

  // SIGKILLs every process in the cgroup (cgroup.kill, or freeze + kill + thaw) until it is empty.
  virtual base::Status KillAll(const CgroupDirs& dirs) const = 0;

  // Removes the directories; missing ones are fine. Kills leftovers first.
  virtual base::Status Remove(const CgroupDirs& dirs) const = 0;
};

// Every "cgroup.procs" file of `dirs`: the child writes "0" to each to join before it runs.
std::vector<std::string> CgroupProcsFiles(const CgroupDirs& dirs);

// True when a process with `pids` is in any of the cgroups (used by tests and Recover).
bool CgroupHasProcesses(const CgroupDirs& dirs);

}  // namespace fjord::runtime
