#include "runtime/cgroups.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <sstream>
#include <thread>

#include "base/strings.h"
#include "runtime/sysutil.h"

namespace fjord::runtime {

namespace fs = std::filesystem;
using base::ErrnoStatus;
using base::Result;
using base::Status;

namespace {

struct CgroupMounts {
  std::map<std::string, fs::path> v1;  // controller -> mount point
  fs::path unified;                    // cgroup2 mount point, empty if none
};

CgroupMounts ReadMounts() {
  CgroupMounts m;
  auto info = ReadFile("/proc/self/mountinfo");
  if (!info.ok()) return m;
  std::istringstream in(*info);
  std::string line;
  while (std::getline(in, line)) {
    // "<id> <parent> <maj:min> <root> <mountpoint> <opts> [optional...] - <fstype> <src> <super>"
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    auto head = base::SplitWhitespace(std::string_view(line).substr(0, dash));
    auto tail = base::SplitWhitespace(std::string_view(line).substr(dash + 3));
    if (head.size() < 5 || tail.size() < 3) continue;
    fs::path mount_point{std::string(head[4])};
    if (tail[0] == "cgroup2") {
      if (m.unified.empty()) m.unified = mount_point;
    } else if (tail[0] == "cgroup") {
      for (const std::string& opt : base::Split(tail[2], ',')) {
        for (const char* c : {"cpu", "cpuacct", "memory", "pids", "freezer", "devices"}) {
          if (opt == c && !m.v1.count(opt)) m.v1[opt] = mount_point;
        }
      }
    }
  }
  return m;
}

uint64_t ParseU64(std::string_view s) { return std::strtoull(std::string(s).c_str(), nullptr, 10); }

uint64_t ReadU64(const fs::path& p) {
  auto r = ReadFile(p);
  return r.ok() ? ParseU64(base::TrimWhitespace(*r)) : 0;
}

// "key value" line lookup in files like cpu.stat or memory.events.
uint64_t ReadKeyed(const fs::path& p, std::string_view key) {
  auto r = ReadFile(p);
  if (!r.ok()) return 0;
  for (const std::string& line : base::Split(*r, '\n')) {
    auto words = base::SplitWhitespace(line);
    if (words.size() == 2 && words[0] == key) return ParseU64(words[1]);
  }
  return 0;
}

std::vector<pid_t> ReadProcs(const fs::path& dir) {
  std::vector<pid_t> pids;
  auto r = ReadFile(dir / "cgroup.procs");
  if (!r.ok()) return pids;
  for (auto w : base::SplitWhitespace(*r)) pids.push_back(static_cast<pid_t>(ParseU64(w)));
  return pids;
}

Status MkdirParent(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST)
    return ErrnoStatus("mkdir " + dir.string());
  return Status::Ok();
}

void RemoveDirs(const CgroupDirs& dirs) {
  for (const auto& [name, dir] : dirs) {
    for (int attempt = 0; attempt < 400; attempt++) {
      if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) break;
      for (pid_t p : ReadProcs(dir)) ::kill(p, SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

// Kills until `dir` is empty; `freeze`/`thaw` stop processes from forking while we kill.
Status KillLoop(const fs::path& dir, const std::function<void(bool)>& freeze) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    std::vector<pid_t> pids = ReadProcs(dir);
    if (pids.empty()) return Status::Ok();
    freeze(true);
    for (pid_t p : ReadProcs(dir)) ::kill(p, SIGKILL);
    freeze(false);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return base::Status(base::Code::kDeadlineExceeded,
                      "processes left in cgroup " + dir.string() + " after 10 s of SIGKILL");
}

class V1Backend final : public CgroupBackend {
 public:
  explicit V1Backend(CgroupMounts mounts) : mounts_(std::move(mounts)) {}

  std::string_view Kind() const override { return mounts_.unified.empty() ? "v1" : "hybrid"; }

  Result<CgroupDirs> Create(const std::string& parent, const std::string& id, const Limits& limits,
                            bool all_devices) const override {
    CgroupDirs dirs;
    for (const auto& [controller, mount] : mounts_.v1) {
      fs::path p = mount;
      // Several controllers may share one hierarchy (cpu,cpuacct): create the directory once.
      for (const auto& [_, existing] : dirs) {
        if (existing == mount / parent / id) p.clear();
      }
      fs::path dir = mount / parent / id;
      if (!p.empty()) {
        if (Status st = MkdirParent(mount / parent); !st.ok()) {
          RemoveDirs(dirs);
          return st;
        }
        if (::mkdir(dir.c_str(), 0755) < 0) {
          Status st = ErrnoStatus("create cgroup " + dir.string());
          RemoveDirs(dirs);
          return st;
        }
      }
      dirs[controller] = dir;
    }
    if (Status st = Apply(dirs, limits, all_devices); !st.ok()) {
      RemoveDirs(dirs);
      return st;
    }
    return dirs;
  }

  fs::path OomFile(const CgroupDirs& dirs) const override {
    auto it = dirs.find("memory");
    return it == dirs.end() ? fs::path() : it->second / "memory.oom_control";
  }

  Result<ContainerStats> Stats(const CgroupDirs& dirs) const override {
    ContainerStats s;
    if (auto it = dirs.find("cpuacct"); it != dirs.end()) {
      s.cpu_usage_ns = ReadU64(it->second / "cpuacct.usage");
    }
    if (auto it = dirs.find("memory"); it != dirs.end()) {
      s.memory_bytes = ReadU64(it->second / "memory.usage_in_bytes");
    }
    if (auto it = dirs.find("pids"); it != dirs.end()) {
      s.pids = ReadU64(it->second / "pids.current");
    }
    return s;
  }

  Status KillAll(const CgroupDirs& dirs) const override {
    auto freezer = dirs.find("freezer");
    auto procs_dir = freezer != dirs.end() ? freezer->second : dirs.begin()->second;
    auto freeze = [&](bool on) {
      if (freezer == dirs.end()) return;
      (void)WriteExisting(freezer->second / "freezer.state", on ? "FROZEN" : "THAWED");
    };
    return KillLoop(procs_dir, freeze);
  }

  Status Remove(const CgroupDirs& dirs) const override {
    if (!dirs.empty() && CgroupHasProcesses(dirs)) (void)KillAll(dirs);
    RemoveDirs(dirs);
    return Status::Ok();
  }

 private:
  static Status Apply(const CgroupDirs& dirs, const Limits& limits, bool all_devices) {
    auto dir = [&](const char* c) -> const fs::path* {
      auto it = dirs.find(c);
      return it == dirs.end() ? nullptr : &it->second;
    };
    if (limits.cpus || limits.cpu_weight) {
      const fs::path* cpu = dir("cpu");
      if (cpu == nullptr) return base::FailedPrecondition("no cpu cgroup controller mounted");
      if (limits.cpus) {
        FJORD_RETURN_IF_ERROR(WriteExisting(*cpu / "cpu.cfs_period_us", "100000"));
        auto quota = static_cast<int64_t>(*limits.cpus * 100000);
        if (quota < 1000) quota = 1000;  // the kernel's minimum is 1 ms
        FJORD_RETURN_IF_ERROR(WriteExisting(*cpu / "cpu.cfs_quota_us", std::to_string(quota)));
      }
      if (limits.cpu_weight) {
        // v2 weight 100 is v1 shares 1024.
        uint64_t shares = *limits.cpu_weight * 1024 / 100;
        if (shares < 2) shares = 2;
        FJORD_RETURN_IF_ERROR(WriteExisting(*cpu / "cpu.shares", std::to_string(shares)));
      }
    }
    if (limits.memory_bytes) {
      const fs::path* mem = dir("memory");
      if (mem == nullptr) return base::FailedPrecondition("no memory cgroup controller mounted");
      std::string v = std::to_string(*limits.memory_bytes);
      FJORD_RETURN_IF_ERROR(WriteExisting(*mem / "memory.limit_in_bytes", v));
      // No swap on top of the limit, when swap accounting exists.
      if (fs::exists(*mem / "memory.memsw.limit_in_bytes")) {
        (void)WriteExisting(*mem / "memory.memsw.limit_in_bytes", v);
      }
      (void)WriteExisting(*mem / "memory.swappiness", "0");
    }
    if (limits.pids_max) {
      const fs::path* pids = dir("pids");
      if (pids == nullptr) return base::FailedPrecondition("no pids cgroup controller mounted");
      FJORD_RETURN_IF_ERROR(WriteExisting(*pids / "pids.max", std::to_string(*limits.pids_max)));
    }
    if (const fs::path* dev = dir("devices"); dev != nullptr && !all_devices) {
      // Only the nodes fjord creates in the container's /dev (and mknod, as docker allows).
      FJORD_RETURN_IF_ERROR(WriteExisting(*dev / "devices.deny", "a"));
      for (const char* rule : {"c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm",
                               "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm"}) {
        FJORD_RETURN_IF_ERROR(WriteExisting(*dev / "devices.allow", rule));
      }
    }
    return Status::Ok();
  }

  CgroupMounts mounts_;
};

class V2Backend final : public CgroupBackend {
 public:
  explicit V2Backend(fs::path mount) : mount_(std::move(mount)) {}

  std::string_view Kind() const override { return "v2"; }

  Result<CgroupDirs> Create(const std::string& parent, const std::string& id, const Limits& limits,
                            bool all_devices) const override {
    // Controllers must be enabled in every ancestor's subtree_control.
    (void)WriteExisting(mount_ / "cgroup.subtree_control", "+cpu +memory +pids");
    FJORD_RETURN_IF_ERROR(MkdirParent(mount_ / parent));
    (void)WriteExisting(mount_ / parent / "cgroup.subtree_control", "+cpu +memory +pids");
    fs::path dir = mount_ / parent / id;
    if (::mkdir(dir.c_str(), 0755) < 0) return ErrnoStatus("create cgroup " + dir.string());
    // v2 has no devices files (it takes a BPF program); /dev holds only safe nodes anyway.
    (void)all_devices;
    CgroupDirs dirs{{"unified", dir}};
    if (Status st = Apply(dir, limits); !st.ok()) {
      RemoveDirs(dirs);
      return st;
    }
    return dirs;
  }

  fs::path OomFile(const CgroupDirs& dirs) const override {
    return dirs.at("unified") / "memory.events";
  }

  Result<ContainerStats> Stats(const CgroupDirs& dirs) const override {
    const fs::path& d = dirs.at("unified");
    ContainerStats s;
    s.cpu_usage_ns = ReadKeyed(d / "cpu.stat", "usage_usec") * 1000;
    s.memory_bytes = ReadU64(d / "memory.current");
    s.pids = ReadU64(d / "pids.current");
    return s;
  }

  Status KillAll(const CgroupDirs& dirs) const override {
    const fs::path& d = dirs.at("unified");
    if (fs::exists(d / "cgroup.kill")) (void)WriteExisting(d / "cgroup.kill", "1");
    return KillLoop(d, [&](bool on) { (void)WriteExisting(d / "cgroup.freeze", on ? "1" : "0"); });
  }

  Status Remove(const CgroupDirs& dirs) const override {
    if (!dirs.empty() && CgroupHasProcesses(dirs)) (void)KillAll(dirs);
    RemoveDirs(dirs);
    return Status::Ok();
  }

 private:
  static Status Apply(const fs::path& d, const Limits& limits) {
    if (limits.cpus) {
      auto quota = static_cast<int64_t>(*limits.cpus * 100000);
      if (quota < 1000) quota = 1000;
      FJORD_RETURN_IF_ERROR(WriteExisting(d / "cpu.max", std::to_string(quota) + " 100000"));
    }
    if (limits.cpu_weight) {
      FJORD_RETURN_IF_ERROR(WriteExisting(d / "cpu.weight", std::to_string(*limits.cpu_weight)));
    }
    if (limits.memory_bytes) {
      FJORD_RETURN_IF_ERROR(WriteExisting(d / "memory.max", std::to_string(*limits.memory_bytes)));
      if (fs::exists(d / "memory.swap.max")) (void)WriteExisting(d / "memory.swap.max", "0");
    }
    if (limits.pids_max) {
      FJORD_RETURN_IF_ERROR(WriteExisting(d / "pids.max", std::to_string(*limits.pids_max)));
    }
    return Status::Ok();
  }

  fs::path mount_;
};

}  // namespace

std::unique_ptr<CgroupBackend> CgroupBackend::OpenV2(const fs::path& mount) {
  return std::unique_ptr<CgroupBackend>(new V2Backend(mount));
}

Result<std::unique_ptr<CgroupBackend>> CgroupBackend::Detect() {
  CgroupMounts m = ReadMounts();
  bool v1_usable = m.v1.count("memory") || m.v1.count("cpu") || m.v1.count("pids");
  if (v1_usable) return std::unique_ptr<CgroupBackend>(new V1Backend(std::move(m)));
  if (!m.unified.empty()) {
    auto controllers = ReadFile(m.unified / "cgroup.controllers");
    if (controllers.ok() && !base::TrimWhitespace(*controllers).empty()) {
      return std::unique_ptr<CgroupBackend>(new V2Backend(m.unified));
    }
  }
  return base::FailedPrecondition(
      "no usable cgroup controllers: neither v1 hierarchies (cpu, memory, pids) nor a cgroup2 "
      "mount with controllers found in /proc/self/mountinfo");
}

std::vector<std::string> CgroupProcsFiles(const CgroupDirs& dirs) {
  std::vector<std::string> out;
  for (const auto& [_, dir] : dirs) {
    std::string f = (dir / "cgroup.procs").string();
    bool dup = false;
    for (const auto& o : out) dup |= o == f;
    if (!dup) out.push_back(f);
  }
  return out;
}

bool CgroupHasProcesses(const CgroupDirs& dirs) {
  for (const auto& [_, dir] : dirs) {
    if (!ReadProcs(dir).empty()) return true;
  }
  return false;
}

}  // namespace fjord::runtime
