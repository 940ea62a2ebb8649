// Reading a container's log (private). The monitor writes records to container.log and rotates
// it to container.log.1 .. .N (see monitor/monitor.c for the record format).
// Not thread-safe; one reader per call.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string_view>

#include "base/status.h"
#include "runtime/runtime.h"

namespace fjord::runtime {

// Parses one record line (without its newline). nullopt if the line is not a record.
std::optional<LogRecord> ParseLogRecord(std::string_view line);

// Reads the rotated files oldest first, then `path`. With `running` set, follows `path` across
// rotations (inotify) until running() is false and the files are drained; `monitor_pid` (when
// not 0) wakes the loop as soon as the monitor exits.
base::Status ReadContainerLog(const std::filesystem::path& path,
                              const std::function<bool()>* running, pid_t monitor_pid,
                              const std::function<void(const LogRecord&)>& sink);

}  // namespace fjord::runtime
