#include "api/protocol.h"

#include <nlohmann/json.hpp>

#include "api/json_util.h"

namespace fjord::api {
namespace {

using namespace internal;  // NOLINT: the shared JSON helpers of this module

void PutIfNonZero(json& j, const char* key, int64_t v) {
  if (v != 0) j[key] = v;
}

json OptionsJson(const std::vector<UnitOption>& options) {
  json list = json::array();
  for (const auto& o : options) list.push_back(OptionJson(o));
  return list;
}

json StringsJson(const std::vector<std::string>& v) { return json(v); }

// ---- encoders ----

json ResourcesJson(const Resources& r) {
  json j = json::object();
  PutIfNonZero(j, "cpuMillis", r.cpu_millis);
  PutIfNonZero(j, "memoryBytes", r.memory_bytes);
  PutIfNonZero(j, "diskBytes", r.disk_bytes);
  return j;
}

json RegistrationJson(const MachineRegistration& m) {
  json j = json::object();
  PutIf(j, "id", m.id);
  PutIf(j, "primaryIP", m.primary_ip);
  if (!m.metadata.empty()) j["metadata"] = m.metadata;
  j["capacity"] = ResourcesJson(m.capacity);
  PutIf(j, "agentURL", m.agent_url);
  PutIf(j, "version", m.version);
  return j;
}

json ScheduledUnitJson(const ScheduledUnit& u) {
  json j = json::object();
  PutIf(j, "name", u.name);
  PutIf(j, "hash", u.hash);
  j["desiredState"] = std::string(ToString(u.desired_state));
  if (!u.options.empty()) j["options"] = OptionsJson(u.options);
  return j;
}

json DiagnosticJson(const DiagnosticView& d) {
  json j = json::object();
  PutIf(j, "severity", d.severity);
  PutIf(j, "file", d.file);
  PutIfNonZero(j, "line", d.line);
  PutIfNonZero(j, "column", d.column);
  PutIf(j, "section", d.section);
  PutIf(j, "key", d.key);
  PutIf(j, "message", d.message);
  PutIf(j, "suggestion", d.suggestion);
  return j;
}

void WriteOptions(JsonWriter& w, const std::vector<UnitOption>& options) {
  w.BeginArray();
  for (const auto& o : options) {
    w.BeginObject();
    w.Key("section");
    w.String(o.section);
    w.Key("name");
    w.String(o.name);
    w.Key("value");
    w.String(o.value);
    w.EndObject();
  }
  w.EndArray();
}

void WriteStatusReport(JsonWriter& w, const UnitStatusReport& r) {
  w.BeginObject();
  w.StringField("name", r.state.name);
  w.StringField("hash", r.state.hash);
  w.StringField("machineID", r.state.machine_id);
  w.StringField("systemdLoadState", r.state.systemd_load_state);
  w.StringField("systemdActiveState", r.state.systemd_active_state);
  w.StringField("systemdSubState", r.state.systemd_sub_state);
  w.StringField("result", r.result);
  w.StringField("reason", r.reason);
  w.IntField("mainPID", r.main_pid);
  w.IntField("exitStatus", r.exit_status);
  w.IntField("restarts", r.restarts);
  w.IntField("sinceUnixMs", r.since_unix_ms);
  w.StringField("containerID", r.container_id);
  w.EndObject();
}

void WriteUnitView(JsonWriter& w, const UnitView& u) {
  w.BeginObject();
  w.StringField("name", u.name);
  w.StringField("hash", u.hash);
  w.Key("desiredState");
  w.String(ToString(u.desired_state));
  if (u.current_state) {
    w.Key("currentState");
    w.String(ToString(*u.current_state));
  }
  w.StringField("machineID", u.machine_id);
  if (u.global) {
    w.Key("global");
    w.Bool(true);
  }
  w.StringField("reason", u.reason);
  if (!u.states.empty()) {
    w.Key("states");
    w.BeginArray();
    for (const auto& r : u.states) WriteStatusReport(w, r);
    w.EndArray();
  }
  if (!u.options.empty()) {
    w.Key("options");
    WriteOptions(w, u.options);
  }
  w.EndObject();
}

// The JSON that `write` produces.
template <typename Write>
std::string Written(Write write) {
  std::string out;
  JsonWriter w(&out);
  write(w);
  return out;
}

json MachineViewJson(const MachineView& m) {
  json j = RegistrationJson(m.machine);
  j["alive"] = m.alive;
  PutIfNonZero(j, "lastSeenUnixMs", m.last_seen_unix_ms);
  j["free"] = ResourcesJson(m.free);
  j["units"] = m.units;
  return j;
}

// ---- decoders ----

base::Status DecodeResources(const Reader& r, std::string_view key, Resources& out) {
  const json* obj = nullptr;
  FJORD_RETURN_IF_ERROR(r.Object(key, obj));
  if (obj == nullptr) return base::Status::Ok();
  Reader rr(*obj, r.Field(key) + ".");
  FJORD_RETURN_IF_ERROR(rr.Int("cpuMillis", out.cpu_millis));
  FJORD_RETURN_IF_ERROR(rr.Int("memoryBytes", out.memory_bytes));
  FJORD_RETURN_IF_ERROR(rr.Int("diskBytes", out.disk_bytes));
  for (auto [name, v] :
       {std::pair{"cpuMillis", out.cpu_millis}, std::pair{"memoryBytes", out.memory_bytes},
        std::pair{"diskBytes", out.disk_bytes}}) {
    if (v < 0) return rr.Error(name, "must not be negative");
  }
  return base::Status::Ok();
}

base::Status DecodeRegistrationFields(const Reader& r, MachineRegistration& m) {
  FJORD_RETURN_IF_ERROR(r.String("id", m.id));
  FJORD_RETURN_IF_ERROR(r.String("primaryIP", m.primary_ip));
  FJORD_RETURN_IF_ERROR(DecodeStringMap(r, "metadata", m.metadata));
  FJORD_RETURN_IF_ERROR(DecodeResources(r, "capacity", m.capacity));
  FJORD_RETURN_IF_ERROR(r.String("agentURL", m.agent_url));
  FJORD_RETURN_IF_ERROR(r.String("version", m.version));
  return base::Status::Ok();
}

base::Result<MachineRegistration> DecodeRegistration(const json& j, const std::string& path) {
  MachineRegistration m;
  FJORD_RETURN_IF_ERROR(DecodeRegistrationFields(Reader(j, path), m));
  return m;
}

base::Result<RegistrationReply> DecodeRegistrationReply(const json& j, const std::string& path) {
  Reader r(j, path);
  RegistrationReply v;
  FJORD_RETURN_IF_ERROR(r.Int("heartbeatIntervalMs", v.heartbeat_interval_ms));
  FJORD_RETURN_IF_ERROR(r.Int("graceMs", v.grace_ms));
  return v;
}

base::Result<ScheduledUnit> DecodeScheduledUnit(const json& j, const std::string& path) {
  Reader r(j, path);
  ScheduledUnit u;
  FJORD_RETURN_IF_ERROR(r.String("name", u.name, /*required=*/true));
  FJORD_RETURN_IF_ERROR(r.String("hash", u.hash));
  std::optional<UnitStateName> desired;
  FJORD_RETURN_IF_ERROR(r.State("desiredState", desired));
  if (!desired) return r.Error("desiredState", "required");
  u.desired_state = *desired;
  FJORD_RETURN_IF_ERROR(DecodeOptions(r, "options", u.options));
  return u;
}

base::Result<UnitFile> DecodeUnitFile(const json& j, const std::string& path) {
  Reader r(j, path);
  UnitFile f;
  FJORD_RETURN_IF_ERROR(r.String("hash", f.hash, /*required=*/true));
  FJORD_RETURN_IF_ERROR(DecodeOptions(r, "options", f.options));
  return f;
}

base::Result<UnitStatusReport> DecodeStatusReport(const json& j, const std::string& path) {
  Reader r(j, path);
  UnitStatusReport v;
  FJORD_ASSIGN_OR_RETURN(v.state, DecodeUnitState(j, path));
  FJORD_RETURN_IF_ERROR(r.String("result", v.result));
  FJORD_RETURN_IF_ERROR(r.String("reason", v.reason));
  FJORD_RETURN_IF_ERROR(r.Int("mainPID", v.main_pid));
  FJORD_RETURN_IF_ERROR(r.Int("exitStatus", v.exit_status));
  FJORD_RETURN_IF_ERROR(r.Int("restarts", v.restarts));
  FJORD_RETURN_IF_ERROR(r.Int("sinceUnixMs", v.since_unix_ms));
  FJORD_RETURN_IF_ERROR(r.String("containerID", v.container_id));
  return v;
}

base::Result<DiagnosticView> DecodeDiagnostic(const json& j, const std::string& path) {
  Reader r(j, path);
  DiagnosticView d;
  FJORD_RETURN_IF_ERROR(r.String("severity", d.severity));
  FJORD_RETURN_IF_ERROR(r.String("file", d.file));
  FJORD_RETURN_IF_ERROR(r.Int("line", d.line));
  FJORD_RETURN_IF_ERROR(r.Int("column", d.column));
  FJORD_RETURN_IF_ERROR(r.String("section", d.section));
  FJORD_RETURN_IF_ERROR(r.String("key", d.key));
  FJORD_RETURN_IF_ERROR(r.String("message", d.message));
  FJORD_RETURN_IF_ERROR(r.String("suggestion", d.suggestion));
  return d;
}

base::Result<UnitView> DecodeUnitView(const json& j, const std::string& path) {
  Reader r(j, path);
  UnitView u;
  FJORD_RETURN_IF_ERROR(r.String("name", u.name));
  FJORD_RETURN_IF_ERROR(r.String("hash", u.hash));
  std::optional<UnitStateName> desired;
  FJORD_RETURN_IF_ERROR(r.State("desiredState", desired));
  u.desired_state = desired.value_or(UnitStateName::kInactive);
  FJORD_RETURN_IF_ERROR(r.State("currentState", u.current_state));
  FJORD_RETURN_IF_ERROR(r.String("machineID", u.machine_id));
  FJORD_RETURN_IF_ERROR(r.Bool("global", u.global));
  FJORD_RETURN_IF_ERROR(r.String("reason", u.reason));
  std::string unused_token;
  FJORD_RETURN_IF_ERROR(DecodeList(j, "states", DecodeStatusReport, u.states, unused_token));
  FJORD_RETURN_IF_ERROR(DecodeOptions(r, "options", u.options));
  return u;
}

base::Result<MachineView> DecodeMachineView(const json& j, const std::string& path) {
  Reader r(j, path);
  MachineView m;
  FJORD_RETURN_IF_ERROR(DecodeRegistrationFields(r, m.machine));
  FJORD_RETURN_IF_ERROR(r.Bool("alive", m.alive));
  FJORD_RETURN_IF_ERROR(r.Int("lastSeenUnixMs", m.last_seen_unix_ms));
  FJORD_RETURN_IF_ERROR(DecodeResources(r, "free", m.free));
  FJORD_RETURN_IF_ERROR(r.Int("units", m.units));
  return m;
}

}  // namespace

std::string ToJson(const Resources& v) { return Dump(ResourcesJson(v)); }
std::string ToJson(const MachineRegistration& v) { return Dump(RegistrationJson(v)); }

std::string ToJson(const RegistrationReply& v) {
  return Dump(json{{"heartbeatIntervalMs", v.heartbeat_interval_ms}, {"graceMs", v.grace_ms}});
}

std::string ToJson(const ScheduledUnit& v) { return Dump(ScheduledUnitJson(v)); }

std::string ToJson(const UnitFile& v) {
  return Dump(json{{"hash", v.hash}, {"options", OptionsJson(v.options)}});
}

std::string OptionsToJson(const std::vector<UnitOption>& options) {
  return Dump(OptionsJson(options));
}

std::string ToJson(const Schedule& v) {
  json list = json::array();
  for (const auto& u : v.units) list.push_back(ScheduledUnitJson(u));
  return Dump(json{{"revision", v.revision}, {"units", std::move(list)}});
}

std::string ToJson(const UnitStatusReport& v) {
  return Written([&](JsonWriter& w) { WriteStatusReport(w, v); });
}

std::string ToJson(const StateReport& v) {
  return Written([&](JsonWriter& w) {
    w.BeginObject();
    w.Key("states");
    w.BeginArray();
    for (const auto& r : v.states) WriteStatusReport(w, r);
    w.EndArray();
    w.EndObject();
  });
}

std::string ToJson(const ErrorBody& v) {
  json e = {{"code", v.error.code}, {"message", v.error.message}};
  PutIf(e, "field", v.error.field);
  if (!v.diagnostics.empty()) {
    json list = json::array();
    for (const auto& d : v.diagnostics) list.push_back(DiagnosticJson(d));
    e["diagnostics"] = std::move(list);
  }
  return Dump(json{{"error", std::move(e)}});
}

std::string ToJson(const PutUnitRequest& v) {
  json j = json::object();
  if (v.desired_state) j["desiredState"] = std::string(ToString(*v.desired_state));
  PutIf(j, "unitFile", v.unit_file);
  if (!v.options.empty()) j["options"] = OptionsJson(v.options);
  return Dump(j);
}

std::string ToJson(const UnitView& v) {
  return Written([&](JsonWriter& w) { WriteUnitView(w, v); });
}

// Unit lists are the largest answers (100,000 units is a page): written directly, not through
// a DOM (encoding 100,000 pending units: 0.25 s through nlohmann's DOM, see docs/BENCHMARKS.md).
std::string ToJson(const UnitViewPage& v) {
  std::string out;
  out.reserve(v.units.size() * 192 + 64);
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("units");
  w.BeginArray();
  for (const auto& u : v.units) WriteUnitView(w, u);
  w.EndArray();
  w.StringField("nextPageToken", v.next_page_token);
  w.EndObject();
  return out;
}

std::string ToJson(const MachineView& v) { return Dump(MachineViewJson(v)); }

std::string ToJson(const MachineViewPage& v) {
  json list = json::array();
  for (const auto& m : v.machines) list.push_back(MachineViewJson(m));
  json j = {{"machines", std::move(list)}};
  PutIf(j, "nextPageToken", v.next_page_token);
  return Dump(j);
}

std::string ToJson(const ScaleRequest& v) {
  json j = {{"instances", v.instances}};
  if (v.desired_state) j["desiredState"] = std::string(ToString(*v.desired_state));
  return Dump(j);
}

std::string ToJson(const ScaleReply& v) {
  return Dump(json{{"added", StringsJson(v.added)},
                   {"removed", StringsJson(v.removed)},
                   {"pending", StringsJson(v.pending)}});
}

base::Result<MachineRegistration> MachineRegistrationFromJson(std::string_view text) {
  return DecodeTop<MachineRegistration>(text, DecodeRegistration);
}

base::Result<RegistrationReply> RegistrationReplyFromJson(std::string_view text) {
  return DecodeTop<RegistrationReply>(text, DecodeRegistrationReply);
}

base::Result<UnitFile> UnitFileFromJson(std::string_view text) {
  return DecodeTop<UnitFile>(text, DecodeUnitFile);
}

base::Result<ScheduledUnit> ScheduledUnitFromJson(std::string_view text) {
  return DecodeTop<ScheduledUnit>(text, DecodeScheduledUnit);
}

base::Result<Schedule> ScheduleFromJson(std::string_view text) {
  FJORD_ASSIGN_OR_RETURN(json j, ParseObject(text));
  Schedule s;
  FJORD_RETURN_IF_ERROR(Reader(j, "").Int("revision", s.revision));
  std::string unused_token;
  FJORD_RETURN_IF_ERROR(DecodeList(j, "units", DecodeScheduledUnit, s.units, unused_token));
  return s;
}

base::Result<UnitStatusReport> UnitStatusReportFromJson(std::string_view text) {
  return DecodeTop<UnitStatusReport>(text, DecodeStatusReport);
}

base::Result<StateReport> StateReportFromJson(std::string_view text) {
  FJORD_ASSIGN_OR_RETURN(json j, ParseObject(text));
  StateReport r;
  std::string unused_token;
  FJORD_RETURN_IF_ERROR(DecodeList(j, "states", DecodeStatusReport, r.states, unused_token));
  return r;
}

base::Result<ErrorBody> ErrorBodyFromJson(std::string_view text) {
  FJORD_ASSIGN_OR_RETURN(Error error, ErrorFromJson(text));
  FJORD_ASSIGN_OR_RETURN(json j, ParseObject(text));
  ErrorBody body{std::move(error), {}};
  std::string unused_token;
  FJORD_RETURN_IF_ERROR(
      DecodeList(j["error"], "diagnostics", DecodeDiagnostic, body.diagnostics, unused_token));
  return body;
}

base::Result<PutUnitRequest> PutUnitRequestFromJson(std::string_view text) {
  FJORD_ASSIGN_OR_RETURN(json j, ParseObject(text));
  Reader r(j, "");
  PutUnitRequest req;
  FJORD_RETURN_IF_ERROR(r.State("desiredState", req.desired_state));
  FJORD_RETURN_IF_ERROR(r.String("unitFile", req.unit_file));
  FJORD_RETURN_IF_ERROR(DecodeOptions(r, "options", req.options));
  if (!req.unit_file.empty() && !req.options.empty()) {
    return r.Error("unitFile", "give either unitFile or options, not both");
  }
  return req;
}

base::Result<UnitView> UnitViewFromJson(std::string_view text) {
  return DecodeTop<UnitView>(text, DecodeUnitView);
}

base::Result<UnitViewPage> UnitViewPageFromJson(std::string_view text) {
  FJORD_ASSIGN_OR_RETURN(json j, ParseObject(text));
  UnitViewPage p;
  FJORD_RETURN_IF_ERROR(DecodeList(j, "units", DecodeUnitView, p.units, p.next_page_token));
  return p;
}

base::Result<MachineView> MachineViewFromJson(std::string_view text) {
  return DecodeTop<MachineView>(text, DecodeMachineView);
}

base::Result<MachineViewPage> MachineViewPageFromJson(std::string_view text) {
  FJORD_ASSIGN_OR_RETURN(json j, ParseObject(text));
  MachineViewPage p;
  FJORD_RETURN_IF_ERROR(
      DecodeList(j, "machines", DecodeMachineView, p.machines, p.next_page_token));
  return p;
}

base::Result<ScaleRequest> ScaleRequestFromJson(std::string_view text) {
  FJORD_ASSIGN_OR_RETURN(json j, ParseObject(text));
  Reader r(j, "");
  ScaleRequest req;
  if (r.Get("instances") == nullptr) return r.Error("instances", "required");
  FJORD_RETURN_IF_ERROR(r.Int("instances", req.instances));
  if (req.instances < 0) return r.Error("instances", "must not be negative");
  FJORD_RETURN_IF_ERROR(r.State("desiredState", req.desired_state));
  return req;
}

base::Result<ScaleReply> ScaleReplyFromJson(std::string_view text) {
  FJORD_ASSIGN_OR_RETURN(json j, ParseObject(text));
  Reader r(j, "");
  ScaleReply v;
  FJORD_RETURN_IF_ERROR(r.StringList("added", v.added));
  FJORD_RETURN_IF_ERROR(r.StringList("removed", v.removed));
  FJORD_RETURN_IF_ERROR(r.StringList("pending", v.pending));
  return v;
}

}  // namespace fjord::api
