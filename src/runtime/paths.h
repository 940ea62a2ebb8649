// The runtime's on-disk layout, written down in one place (like Mesos' slave/paths.hpp).
// Everything a fjord process needs to re-adopt, stop or clean up a container lives here, so any
// later fjord invocation (a restarted agent, `fjord ps`, `fjord rm`) can take over.
//
//   ROOT/                              --root, default $FJORD_ROOT or /var/lib/fjord
//     trash/<id>.<rand>/               removed containers, deleted in the background (Recover()
//                                      deletes what a crash left); an auto-remove (--rm)
//                                      container's monitor moves its own dir here when it exits,
//                                      as <id>.<monitor pid>
//     names/<name> -> <id>             symlink; symlink(2) is atomic, so it reserves the name
//     mnt/                             every container's overlay root is mounted here, each in
//                                      its own mount namespace only, so it dies with it
//     containers/<id>/                 one directory per container, id = 32 lowercase hex
//       state.json                     written once by the creator, before the container
//                                      process exists: id, name, creator pid + start time (to
//                                      tell a live process from a reused pid), cgroup dirs,
//                                      auto_remove, and the ContainerSpec as given ("spec";
//                                      containers of older fjord versions have config.json)
//       running.json                   written once when the container runs: monitor and init
//                                      pids with their start times; its presence means "running"
//       start_error                    why the workload could not be exec'd (126/127 only)
//       exit                           written by the monitor (tmp + rename) when the container
//                                      ended: exit_code=, signal=, oom_killed=, finished_unix_ns=
//                                      key=value lines; its presence means "exited"
//       upper/ work/                   the overlay's per-container writable layer
//       container.log[.1 .2 ...]       stdout/stderr records, rotated by the monitor; format in
//                                      monitor/monitor.c ("<RFC3339Nano> <stream> <F|P> <text>");
//                                      created at the first output (older versions: log/)
//
// A container costs few inodes on purpose: on ext4 each one allocated and freed again is real
// work (without a journal, the allocator even skips recently freed inodes), and `fjord run --rm`
// creates and deletes all of them.
//
// Cgroups live outside ROOT: <hierarchy>/<cgroup_parent>/<id> for every v1 hierarchy fjord uses
// (cpu, cpuacct, memory, pids, freezer, devices) or once in the v2 tree; state.json lists them.
//
// Not thread-safe (plain functions of their arguments).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/state_root.h"

namespace fjord::runtime::paths {

inline std::filesystem::path DefaultRoot() { return base::StateRoot(); }
inline std::filesystem::path NamesDir(const std::filesystem::path& root) { return root / "names"; }
inline std::filesystem::path NameLink(const std::filesystem::path& root, const std::string& name) {
  return NamesDir(root) / name;
}
inline std::filesystem::path TrashDir(const std::filesystem::path& root) { return root / "trash"; }
inline std::filesystem::path ContainersDir(const std::filesystem::path& root) {
  return root / "containers";
}
inline std::filesystem::path ContainerDir(const std::filesystem::path& root,
                                          const std::string& id) {
  return ContainersDir(root) / id;
}
inline std::filesystem::path MountPoint(const std::filesystem::path& root) { return root / "mnt"; }
inline std::filesystem::path LegacyConfigFile(const std::filesystem::path& dir) {
  return dir / "config.json";
}
inline std::filesystem::path StateFile(const std::filesystem::path& dir) {
  return dir / "state.json";
}
inline std::filesystem::path RunningFile(const std::filesystem::path& dir) {
  return dir / "running.json";
}
inline std::filesystem::path StartErrorFile(const std::filesystem::path& dir) {
  return dir / "start_error";
}
inline std::filesystem::path ExitFile(const std::filesystem::path& dir) { return dir / "exit"; }
inline std::filesystem::path UpperDir(const std::filesystem::path& dir) { return dir / "upper"; }
inline std::filesystem::path WorkDir(const std::filesystem::path& dir) { return dir / "work"; }
inline std::filesystem::path LogFile(const std::filesystem::path& dir) {
  return dir / "container.log";
}
inline std::filesystem::path LegacyLogFile(const std::filesystem::path& dir) {
  return dir / "log" / "container.log";
}

}  // namespace fjord::runtime::paths
