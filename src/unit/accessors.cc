// Typed accessors over a validated Unit. Values were checked by ParseUnit, so a value that
// still fails to parse here can only come from a bug; it falls back to systemd's default.
#include <algorithm>
#include <cmath>
#include <csignal>
#include <unordered_map>

#include "base/strings.h"
#include "unit/unit_internal.h"

namespace fjord::unit {

namespace {

template <typename T>
T EnumOf(std::optional<std::string_view> v, T fallback,
         std::initializer_list<std::pair<std::string_view, T>> table) {
  if (!v) return fallback;
  for (const auto& [name, value] : table) {
    if (*v == name) return value;
  }
  return fallback;
}

std::vector<std::string> Words(const std::vector<std::string_view>& values) {
  std::vector<std::string> out;
  for (std::string_view v : values) {
    auto w = SplitWords(v);
    if (w.ok()) out.insert(out.end(), w->begin(), w->end());
  }
  return out;
}

}  // namespace

std::optional<int64_t> ResourceRequests::cpu_millicores() const {
  if (!cpu_quota_percent) return std::nullopt;
  return static_cast<int64_t>(std::llround(*cpu_quota_percent * 10.0));
}

std::string_view Unit::Description() const { return Get("Unit", "Description").value_or(""); }

ResourceRequests Unit::Resources() const {
  ResourceRequests r;
  auto nonempty = [&](std::string_view key) -> std::optional<std::string_view> {
    auto v = Get("Service", key);
    if (v && v->empty()) return std::nullopt;
    return v;
  };
  if (auto v = nonempty("CPUQuota")) {
    if (auto p = ParsePercent(*v); p.ok()) r.cpu_quota_percent = *p;
  }
  auto mem = nonempty("MemoryMax");
  if (!mem) mem = nonempty("MemoryLimit");
  if (mem) {
    if (mem->back() == '%') {
      if (auto p = ParsePercent(*mem); p.ok()) r.memory_max_percent = *p;
    } else if (auto b = ParseBytes(*mem); b.ok()) {
      r.memory_max_bytes = *b;
    }
  }
  if (auto v = nonempty("TasksMax")) {
    if (v->back() == '%') {
      if (auto p = ParsePercent(*v); p.ok()) r.tasks_max_percent = *p;
    } else if (*v == "infinity") {
      r.tasks_max = kInfiniteBytes;
    } else if (auto b = ParseBytes(*v); b.ok()) {
      r.tasks_max = *b;
    }
  }
  r.disk_bytes = fjord_.disk_bytes;
  return r;
}

ServiceType Unit::Type() const {
  using T = ServiceType;
  return EnumOf(Get("Service", "Type"), T::kSimple,
                {{"simple", T::kSimple},
                 {"exec", T::kExec},
                 {"forking", T::kForking},
                 {"oneshot", T::kOneshot},
                 {"dbus", T::kDbus},
                 {"notify", T::kNotify},
                 {"notify-reload", T::kNotify},
                 {"idle", T::kIdle}});
}

RestartPolicy Unit::Restart() const {
  using R = RestartPolicy;
  return EnumOf(Get("Service", "Restart"), R::kNo,
                {{"no", R::kNo},
                 {"on-success", R::kOnSuccess},
                 {"on-failure", R::kOnFailure},
                 {"on-abnormal", R::kOnAbnormal},
                 {"on-watchdog", R::kOnWatchdog},
                 {"on-abort", R::kOnAbort},
                 {"always", R::kAlways}});
}

std::chrono::microseconds Unit::RestartSec() const {
  auto v = Get("Service", "RestartSec");
  if (v && !v->empty()) {
    if (auto t = ParseTimeSpan(*v); t.ok()) return *t;
  }
  return std::chrono::milliseconds(100);
}

namespace {
// TimeoutSec= sets both; TimeoutStartSec=/TimeoutStopSec= one; the last assignment wins and
// 0 disables the timeout (systemd.service(5)).
std::chrono::microseconds Timeout(const std::vector<UnitOption>& opts, std::string_view key) {
  std::chrono::microseconds t = std::chrono::seconds(90);
  for (const UnitOption& o : opts) {
    if (o.section != "Service" || (o.name != key && o.name != "TimeoutSec")) continue;
    if (o.value.empty()) {
      t = std::chrono::seconds(90);
      continue;
    }
    if (auto v = ParseTimeSpan(o.value); v.ok()) t = v->count() == 0 ? kInfiniteTime : *v;
  }
  return t;
}
}  // namespace

std::chrono::microseconds Unit::TimeoutStartSec() const {
  return Timeout(options_, "TimeoutStartSec");
}
std::chrono::microseconds Unit::TimeoutStopSec() const {
  return Timeout(options_, "TimeoutStopSec");
}

KillMode Unit::GetKillMode() const {
  using K = KillMode;
  return EnumOf(Get("Service", "KillMode"), K::kControlGroup,
                {{"control-group", K::kControlGroup},
                 {"process", K::kProcess},
                 {"mixed", K::kMixed},
                 {"none", K::kNone}});
}

int Unit::KillSignal() const {
  auto v = Get("Service", "KillSignal");
  if (v && !v->empty()) {
    if (auto s = ParseSignal(*v); s.ok()) return *s;
  }
  return SIGTERM;
}

std::vector<EnvVar> Unit::Environment() const {
  std::vector<EnvVar> out;
  std::unordered_map<std::string, size_t> index;  // name -> position in out
  for (std::string_view v : GetAll("Service", "Environment")) {
    auto vars = ParseEnvironment(v);
    if (!vars.ok()) continue;
    for (EnvVar& e : *vars) {
      auto [it, inserted] = index.emplace(e.name, out.size());
      if (inserted) {
        out.push_back(std::move(e));
      } else {
        out[it->second].value = std::move(e.value);
      }
    }
  }
  return out;
}

std::vector<EnvironmentFile> Unit::EnvironmentFiles() const {
  std::vector<EnvironmentFile> out;
  for (std::string_view v : GetAll("Service", "EnvironmentFile")) {
    EnvironmentFile f;
    f.optional = !v.empty() && v[0] == '-';
    f.path = std::string(f.optional ? v.substr(1) : v);
    out.push_back(std::move(f));
  }
  return out;
}

std::string_view Unit::User() const { return Get("Service", "User").value_or(""); }
std::string_view Unit::WorkingDirectory() const {
  return Get("Service", "WorkingDirectory").value_or("");
}

Dependencies Unit::Deps() const {
  Dependencies d;
  d.after = Words(GetAll("Unit", "After"));
  d.before = Words(GetAll("Unit", "Before"));
  d.requires_ = Words(GetAll("Unit", "Requires"));
  d.wants = Words(GetAll("Unit", "Wants"));
  d.binds_to = Words(GetAll("Unit", "BindsTo"));
  d.conflicts = Words(GetAll("Unit", "Conflicts"));
  return d;
}

Result<std::vector<ExecCommand>> Unit::Exec(std::string_view key,
                                            const SpecifierContext& ctx) const {
  std::vector<ExecCommand> out;
  for (std::string_view v : GetAll("Service", key)) {
    FJORD_ASSIGN_OR_RETURN(auto cmds, ParseExecLine(v));
    for (ExecCommand& c : cmds) {
      // systemd resolves specifiers in each word after unquoting.
      auto expand = [&](std::string& w) -> Status {
        if (w.find('%') == std::string::npos) return Status::Ok();
        auto e = ExpandSpecifiers(w, ctx);
        if (!e.ok()) return e.status().Wrap(std::string(key) + "=" + std::string(v));
        w = std::move(*e);
        return Status::Ok();
      };
      FJORD_RETURN_IF_ERROR(expand(c.path));
      for (std::string& a : c.argv) FJORD_RETURN_IF_ERROR(expand(a));
      out.push_back(std::move(c));
    }
  }
  return out;
}

ContainerSpec Unit::Container() const {
  ContainerSpec c;
  c.image = std::string(Get("Container", "Image").value_or(""));
  c.exec = Words(GetAll("Container", "Exec"));
  c.entrypoint = Words(GetAll("Container", "Entrypoint"));
  for (std::string_view v : GetAll("Container", "Environment")) {
    auto vars = ParseEnvironment(v);
    if (vars.ok()) c.environment.insert(c.environment.end(), vars->begin(), vars->end());
  }
  for (std::string_view v : GetAll("Container", "PublishPort")) c.publish_ports.emplace_back(v);
  for (std::string_view v : GetAll("Container", "Volume")) c.volumes.emplace_back(v);
  c.name = std::string(Get("Container", "ContainerName").value_or(""));
  c.network = std::string(Get("Container", "Network").value_or(""));
  c.working_dir = std::string(Get("Container", "WorkingDir").value_or(""));
  c.user = std::string(Get("Container", "User").value_or(""));
  if (auto v = Get("Container", "ReadOnly"); v && !v->empty())
    c.read_only = ParseBool(*v).value_or(false);
  return c;
}

}  // namespace fjord::unit
