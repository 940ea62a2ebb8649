#include "runtime/state.h"

#include <cerrno>
#include <nlohmann/json.hpp>

#include "base/strings.h"
#include "runtime/paths.h"
#include "runtime/sysutil.h"

namespace fjord::runtime {

namespace fs = std::filesystem;
using base::Result;
using base::Status;
using nlohmann::json;

namespace {

json SpecToJson(const ContainerSpec& s) {
  json mounts = json::array();
  for (const Mount& m : s.mounts) {
    mounts.push_back({{"source", m.source.string()},
                      {"destination", m.destination},
                      {"read_only", m.read_only}});
  }
  json ports = json::array();
  for (const PortPublish& p : s.ports) {
    ports.push_back({{"host_port", p.host_port},
                     {"container_port", p.container_port},
                     {"protocol", p.protocol}});
  }
  json layers = json::array();
  for (const auto& l : s.layers) layers.push_back(l.string());
  json limits = json::object();
  if (s.limits.cpus) limits["cpus"] = *s.limits.cpus;
  if (s.limits.cpu_weight) limits["cpu_weight"] = *s.limits.cpu_weight;
  if (s.limits.memory_bytes) limits["memory_bytes"] = *s.limits.memory_bytes;
  if (s.limits.pids_max) limits["pids_max"] = *s.limits.pids_max;
  json j = {{"name", s.name},
            {"rootfs", s.rootfs.string()},
            {"layers", layers},
            {"argv", s.argv},
            {"env", s.env},
            {"cwd", s.cwd},
            {"hostname", s.hostname},
            {"limits", limits},
            {"mounts", mounts},
            {"net", s.net == NetMode::kHost     ? "host"
                    : s.net == NetMode::kBridge ? "bridge"
                                                : "none"},
            {"ports", ports},
            {"read_only", s.read_only},
            {"privileged", s.privileged},
            {"user_namespace", s.user_namespace},
            {"user", s.user},
            {"stop_signal", s.stop_signal},
            {"log_max_bytes", s.log.max_bytes},
            {"log_max_files", s.log.max_files},
            {"auto_remove", s.auto_remove}};
  return j;
}

ContainerSpec SpecFromJson(const json& j) {
  ContainerSpec s;
  s.name = j.value("name", "");
  s.rootfs = j.value("rootfs", "");
  const json empty_array = json::array();
  const json& layers = j.contains("layers") ? j["layers"] : empty_array;
  for (const auto& l : layers) s.layers.emplace_back(l.get<std::string>());
  s.argv = j.value("argv", std::vector<std::string>{});
  s.env = j.value("env", std::vector<std::string>{});
  s.cwd = j.value("cwd", "/");
  s.hostname = j.value("hostname", "");
  json limits = j.contains("limits") ? j["limits"] : json::object();
  if (limits.contains("cpus")) s.limits.cpus = limits["cpus"].get<double>();
  if (limits.contains("cpu_weight")) s.limits.cpu_weight = limits["cpu_weight"].get<uint64_t>();
  if (limits.contains("memory_bytes")) {
    s.limits.memory_bytes = limits["memory_bytes"].get<uint64_t>();
  }
  if (limits.contains("pids_max")) s.limits.pids_max = limits["pids_max"].get<int64_t>();
  const json& mounts = j.contains("mounts") ? j["mounts"] : empty_array;
  for (const auto& m : mounts) {
    s.mounts.push_back(
        {m.value("source", ""), m.value("destination", ""), m.value("read_only", false)});
  }
  std::string net = j.value("net", "none");
  s.net = net == "host" ? NetMode::kHost : net == "bridge" ? NetMode::kBridge : NetMode::kNone;
  const json& ports = j.contains("ports") ? j["ports"] : empty_array;
  for (const auto& p : ports) {
    s.ports.push_back({p.value("host_port", uint16_t{0}), p.value("container_port", uint16_t{0}),
                       p.value("protocol", "tcp")});
  }
  s.read_only = j.value("read_only", false);
  s.privileged = j.value("privileged", false);
  s.user_namespace = j.value("user_namespace", false);
  s.user = j.value("user", "");
  s.stop_signal = j.value("stop_signal", 15);
  s.log.max_bytes = j.value("log_max_bytes", uint64_t{10} << 20);
  s.log.max_files = j.value("log_max_files", 3);
  s.auto_remove = j.value("auto_remove", false);
  return s;
}

}  // namespace

Result<ContainerSpec> ReadSpec(const fs::path& dir) {
  // state.json carries the spec; containers created before it did have a config.json.
  FJORD_ASSIGN_OR_RETURN(std::string text, ReadFile(paths::StateFile(dir)));
  try {
    json j = json::parse(text);
    if (j.contains("spec")) return SpecFromJson(j["spec"]);
    FJORD_ASSIGN_OR_RETURN(std::string legacy, ReadFile(paths::LegacyConfigFile(dir)));
    try {
      return SpecFromJson(json::parse(legacy));
    } catch (const json::exception& e) {
      return base::Internal(paths::LegacyConfigFile(dir).string() + ": " + e.what());
    }
  } catch (const json::exception& e) {
    return base::Internal(paths::StateFile(dir).string() + ": " + e.what());
  }
}

Status WriteState(const fs::path& dir, const ContainerState& s, const ContainerSpec& spec) {
  json cg = json::object();
  for (const auto& [k, v] : s.cgroups) cg[k] = v.string();
  json j = {{"id", s.id},
            {"name", s.name},
            {"creator_pid", s.creator_pid},
            {"creator_start", s.creator_start},
            {"cgroups", cg},
            {"stop_signal", s.stop_signal},
            {"bridge", s.bridge},
            {"auto_remove", s.auto_remove},
            {"created_unix", s.created_unix},
            {"spec", SpecToJson(spec)}};
  return WriteFileAtomic(paths::StateFile(dir), j.dump(2) + "\n");
}

Status WriteRunning(const fs::path& dir, const ContainerState& s) {
  json j = {{"monitor_pid", s.monitor_pid},
            {"monitor_start", s.monitor_start},
            {"init_pid", s.init_pid},
            {"init_start", s.init_start}};
  return WriteFileAtomic(paths::RunningFile(dir), j.dump(2) + "\n");
}

Status WriteStartError(const fs::path& dir, const std::string& error) {
  return WriteFileAtomic(paths::StartErrorFile(dir), error + "\n");
}

Result<ContainerState> ReadState(const fs::path& dir) {
  FJORD_ASSIGN_OR_RETURN(std::string text, ReadFile(paths::StateFile(dir)));
  ContainerState s;
  try {
    json j = json::parse(text);
    s.id = j.value("id", "");
    s.name = j.value("name", "");
    s.creator_pid = j.value("creator_pid", 0);
    s.creator_start = j.value("creator_start", uint64_t{0});
    const json empty_object = json::object();
    const json& cgroups = j.contains("cgroups") ? j["cgroups"] : empty_object;
    for (const auto& [k, v] : cgroups.items()) {
      s.cgroups[k] = v.get<std::string>();
    }
    s.stop_signal = j.value("stop_signal", 15);
    s.bridge = j.value("bridge", false);
    s.auto_remove = j.value("auto_remove", false);
    if (j.contains("spec")) {
      ContainerSpec spec = SpecFromJson(j["spec"]);
      s.argv = std::move(spec.argv);
      s.layers = std::move(spec.layers);
    }
    s.created_unix = j.value("created_unix", int64_t{0});
  } catch (const json::exception& e) {
    return base::Internal(paths::StateFile(dir).string() + ": " + e.what());
  }
  if (auto running = ReadFile(paths::RunningFile(dir)); running.ok()) {
    try {
      json j = json::parse(*running);
      s.monitor_pid = j.value("monitor_pid", 0);
      s.monitor_start = j.value("monitor_start", uint64_t{0});
      s.init_pid = j.value("init_pid", 0);
      s.init_start = j.value("init_start", uint64_t{0});
      s.status = "running";
    } catch (const json::exception& e) {
      return base::Internal(paths::RunningFile(dir).string() + ": " + e.what());
    }
  }
  if (auto error = ReadFile(paths::StartErrorFile(dir)); error.ok()) {
    s.error = std::string(base::TrimWhitespace(*error));
  }
  return s;
}

Result<ExitRecord> ReadExit(const fs::path& dir) {
  auto text = ReadFile(paths::ExitFile(dir));
  if (!text.ok()) {
    if (text.status().sys_errno() == ENOENT) return base::NotFound("not exited");
    return text.status();
  }
  ExitRecord r;
  for (const std::string& line : base::Split(*text, '\n')) {
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq);
    long long v = std::strtoll(line.c_str() + eq + 1, nullptr, 10);
    if (key == "exit_code") r.exit_code = static_cast<int>(v);
    if (key == "signal") r.signal = static_cast<int>(v);
    if (key == "oom_killed") r.oom_killed = v != 0;
    if (key == "finished_unix_ns") r.finished_unix_ns = v;
    if (key == "monitor_lost") r.monitor_lost = v != 0;
  }
  return r;
}

Status WriteExit(const fs::path& dir, const ExitRecord& r) {
  std::string body = "exit_code=" + std::to_string(r.exit_code) +
                     "\nsignal=" + std::to_string(r.signal) +
                     "\noom_killed=" + std::to_string(r.oom_killed ? 1 : 0) +
                     "\nfinished_unix_ns=" + std::to_string(r.finished_unix_ns) +
                     "\nmonitor_lost=" + std::to_string(r.monitor_lost ? 1 : 0) + "\n";
  return WriteFileAtomic(paths::ExitFile(dir), body);
}

}  // namespace fjord::runtime
