// Store keys, unit validation and the unit -> scheduler request mapping.
#include <cctype>
#include <cstdio>
#include <string>

#include "server/impl.h"
#include "unit/unit.h"

namespace fjord::server {

std::string UnitKey(std::string_view unit) { return std::string(kUnitsPrefix) + std::string(unit); }
std::string UnitFileKey(std::string_view hash) {
  return std::string(kUnitFilesPrefix) + std::string(hash);
}
std::string MachineKey(std::string_view m) { return std::string(kMachinesPrefix) + std::string(m); }
std::string MachineMetaKey(std::string_view m) {
  return std::string(kMachineMetaPrefix) + std::string(m);
}
std::string SchedulePrefix(std::string_view m) {
  return std::string(kSchedulePrefix) + std::string(m) + "/";
}
std::string ScheduleKey(std::string_view m, std::string_view unit) {
  return SchedulePrefix(m) + std::string(unit);
}
std::string StateKey(std::string_view m, std::string_view unit) {
  return std::string(kStatesPrefix) + std::string(m) + "/" + std::string(unit);
}

bool SplitMachineUnitKey(std::string_view key, std::string_view prefix, std::string* machine,
                         std::string* unit) {
  if (key.substr(0, prefix.size()) != prefix) return false;
  key.remove_prefix(prefix.size());
  size_t slash = key.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == key.size()) return false;
  *machine = std::string(key.substr(0, slash));
  *unit = std::string(key.substr(slash + 1));
  return true;
}

int64_t UnixMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

http::Response ErrorResponse(int code, std::string_view message, std::string_view field) {
  return http::JsonError(code, message, field);
}

namespace {

std::vector<unit::UnitOption> Views(const std::vector<api::UnitOption>& options) {
  std::vector<unit::UnitOption> views;
  views.reserve(options.size());
  for (const auto& o : options) views.push_back({o.section, o.name, o.value});
  return views;
}

http::Response DiagnosticsResponse(const std::string& name,
                                   const std::vector<unit::Diagnostic>& diags) {
  api::ErrorBody body;
  body.error.code = 400;
  std::string first;
  for (const auto& d : diags) {
    if (d.severity == unit::Severity::kError && first.empty()) first = d.ToString();
    api::DiagnosticView v;
    v.severity = std::string(unit::SeverityName(d.severity));
    v.file = d.file;
    v.line = d.line;
    v.column = d.column;
    v.section = d.section;
    v.key = d.key;
    v.message = d.message;
    v.suggestion = d.suggestion;
    body.diagnostics.push_back(std::move(v));
  }
  body.error.message = "invalid unit `" + name + "`: " + first;
  body.error.field = "options";
  return http::Response::Json(400, api::ToJson(body));
}

}  // namespace

std::optional<http::Response> ValidateUnit(const std::string& name,
                                           const std::vector<api::UnitOption>& options,
                                           std::string* hash) {
  auto parsed_name = unit::UnitName::Parse(name);
  if (!parsed_name.ok()) {
    return ErrorResponse(
        400, "invalid unit name `" + name + "`: " + std::string(parsed_name.status().message()),
        "name");
  }
  std::vector<unit::UnitOption> views = Views(options);
  unit::ParseResult r = unit::ParseOptions(views, *parsed_name);
  if (!r.unit) return DiagnosticsResponse(name, r.diagnostics);
  *hash = unit::ContentHash(views);
  return std::nullopt;
}

std::optional<http::Response> ValidateName(const std::string& name) {
  auto parsed_name = unit::UnitName::Parse(name);
  if (!parsed_name.ok()) {
    return ErrorResponse(
        400, "invalid unit name `" + name + "`: " + std::string(parsed_name.status().message()),
        "name");
  }
  return std::nullopt;
}

std::optional<http::Response> ParseUnitText(const std::string& name, std::string_view text,
                                            std::vector<api::UnitOption>* options,
                                            std::string* hash) {
  auto parsed_name = unit::UnitName::Parse(name);
  if (!parsed_name.ok()) {
    return ErrorResponse(
        400, "invalid unit name `" + name + "`: " + std::string(parsed_name.status().message()),
        "name");
  }
  unit::ParseResult r = unit::ParseUnit(text, name, *parsed_name);
  if (!r.unit) return DiagnosticsResponse(name, r.diagnostics);
  options->clear();
  for (const auto& o : r.unit->options()) {
    options->push_back({std::string(o.section), std::string(o.name), std::string(o.value)});
  }
  *hash = unit::ContentHash(r.unit->options());
  return std::nullopt;
}

std::string EncodePageToken(std::string_view last) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(last.size() * 2);
  for (unsigned char c : last) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::optional<http::Response> PageAfter(const http::Request& req, std::string* after) {
  after->clear();
  if (auto token = req.query.Get("nextPageToken")) {
    auto decoded = DecodePageToken(*token);
    if (!decoded) {
      return ErrorResponse(400, "invalid value of nextPageToken query parameter", "nextPageToken");
    }
    *after = std::move(*decoded);
  }
  return std::nullopt;
}

std::optional<std::string> DecodePageToken(std::string_view token) {
  if (token.empty() || token.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < token.size(); i += 2) {
    int hi = nibble(token[i]), lo = nibble(token[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

// ---- Unit -> scheduler::TaskRequest

namespace {

scheduler::Operator OperatorOf(unit::Constraint::Op op) {
  switch (op) {
    case unit::Constraint::Op::kUnique:
      return scheduler::Operator::kUnique;
    case unit::Constraint::Op::kCluster:
      return scheduler::Operator::kCluster;
    case unit::Constraint::Op::kGroupBy:
      return scheduler::Operator::kGroupBy;
    case unit::Constraint::Op::kLike:
      return scheduler::Operator::kLike;
    case unit::Constraint::Op::kUnlike:
      return scheduler::Operator::kUnlike;
    case unit::Constraint::Op::kMaxPer:
      return scheduler::Operator::kMaxPer;
    case unit::Constraint::Op::kIs:
      return scheduler::Operator::kCluster;  // IS v == CLUSTER:v
  }
  return scheduler::Operator::kUnique;
}

}  // namespace

bool RequestDependsOnName(const std::vector<api::UnitOption>& options) {
  for (const auto& o : options) {
    const std::string& v = o.value;
    for (size_t i = v.find('%'); i != std::string::npos && i + 1 < v.size();
         i = v.find('%', i + 2)) {
      if (std::isalpha(static_cast<unsigned char>(v[i + 1]))) return true;
    }
  }
  return false;
}

std::string UnitRecordJson(std::string_view name, std::string_view hash, api::UnitStateName desired,
                           const std::vector<api::UnitOption>* inline_options) {
  api::ScheduledUnit u;
  u.name = std::string(name);
  u.hash = std::string(hash);
  u.desired_state = desired;
  if (inline_options != nullptr) u.options = *inline_options;
  return api::ToJson(u);
}

BodyPtr View::InternLocked(std::string hash, std::vector<api::UnitOption> options) {
  if (hash.empty()) hash = unit::ContentHash(Views(options));  // a record written without one
  if (BodyPtr found = FindBodyLocked(hash)) return found;
  auto body = std::make_shared<UnitBody>();
  body->hash = hash;
  body->options = std::move(options);
  body->options_json = api::OptionsToJson(body->options);
  // Hashes no unit holds any more are dropped when the table has doubled.
  if (bodies_.size() >= sweep_at_) {
    std::erase_if(bodies_, [](const auto& kv) { return kv.second.expired(); });
    sweep_at_ = std::max<size_t>(1024, 2 * bodies_.size());
  }
  bodies_[std::move(hash)] = body;
  return body;
}

BodyPtr View::FindBodyLocked(std::string_view hash) const {
  auto it = bodies_.find(std::string(hash));
  return it == bodies_.end() ? nullptr : it->second.lock();
}

UnitSchedulingInfo SchedulingInfoOf(std::string_view unit_name,
                                    const std::vector<api::UnitOption>& options) {
  UnitSchedulingInfo info;
  auto name = unit::UnitName::Parse(unit_name);
  if (!name.ok()) {
    info.reason = "invalid unit name: " + std::string(name.status().message());
    return info;
  }
  if (name->is_template()) {
    info.reason = "a template is not scheduled itself; submit or scale its instances";
    return info;
  }
  unit::ParseResult r = unit::ParseOptions(Views(options), *name);
  if (!r.unit) {
    info.reason = "unit does not parse any more: ";
    for (const auto& d : r.diagnostics) {
      if (d.severity == unit::Severity::kError) {
        info.reason += d.ToString();
        break;
      }
    }
    return info;
  }
  const unit::Unit& u = *r.unit;
  scheduler::TaskRequest& t = info.request;
  t.name = std::string(unit_name);
  const unit::FleetRequirements& fleet = u.fleet();
  t.global = fleet.global;
  t.machine_id = fleet.machine_id;
  if (!fleet.machine_of.empty()) t.machine_of = fleet.machine_of.front();
  for (const auto& m : fleet.metadata) t.machine_metadata.push_back({m.key, m.values});
  t.conflicts = fleet.conflicts;
  t.replaces = fleet.replaces;

  unit::ResourceRequests res = u.Resources();
  if (auto cpu = res.cpu_millicores()) t.resources.cpu_millis = *cpu;
  if (res.memory_max_bytes && *res.memory_max_bytes != unit::kInfiniteBytes) {
    t.resources.memory_bytes = static_cast<int64_t>(*res.memory_max_bytes);
  }
  if (res.disk_bytes && *res.disk_bytes != unit::kInfiniteBytes) {
    t.resources.disk_bytes = static_cast<int64_t>(*res.disk_bytes);
  }

  const unit::FjordRequirements& fj = u.fjord();
  for (const auto& p : fj.ports) {
    for (uint32_t port = p.first; port <= p.last && port != 0; ++port) {
      t.ports.push_back(static_cast<uint16_t>(port));
    }
  }
  for (const auto& c : fj.constraints) {
    scheduler::AttributeConstraint ac;
    ac.attribute = c.field;
    ac.op = OperatorOf(c.op);
    if (ac.op == scheduler::Operator::kMaxPer || ac.op == scheduler::Operator::kGroupBy) {
      ac.count = c.value.empty() ? 0 : std::strtoll(c.value.c_str(), nullptr, 10);
    } else {
      ac.value = c.value;
    }
    t.constraints.push_back(std::move(ac));
  }
  t.strategy = fj.strategy == unit::FjordRequirements::Strategy::kBinpack
                   ? scheduler::Strategy::kBinPack
                   : scheduler::Strategy::kDefault;
  t.affinity_units = fj.affinity;
  t.anti_affinity_units = fj.anti_affinity;
  if (base::Status st = scheduler::ValidateRequest(t); !st.ok()) {
    info.reason = "cannot be scheduled: " + std::string(st.message());
    return info;
  }
  info.schedulable = true;
  return info;
}

}  // namespace fjord::server
