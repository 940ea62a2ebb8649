// Small file and process helpers shared inside the runtime (private). Not thread-safe by
// themselves only where noted; all are plain functions of their arguments.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace fjord::runtime {

base::Result<std::string> ReadFile(const std::filesystem::path& path);
// Writes `data` to an existing file (cgroup and proc files): open, one write, close.
base::Status WriteExisting(const std::filesystem::path& path, std::string_view data);
// Writes a file atomically: tmp file in the same directory, then rename.
base::Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data);

// The start time of `pid` (field 22 of /proc/PID/stat, clock ticks since boot), or nullopt if
// the process does not exist. A pid plus its start time names one process even after reuse.
std::optional<uint64_t> ProcessStartTime(pid_t pid);
bool ProcessAlive(pid_t pid, uint64_t start_time);

// 32 lowercase hex characters from getrandom(2).
std::string RandomId();

}  // namespace fjord::runtime
