#include "api/types.h"

#include <nlohmann/json.hpp>

#include "api/json_util.h"
#include "base/strings.h"

namespace fjord::api {
namespace internal {

json OptionJson(const UnitOption& o) {
  return {{"section", o.section}, {"name", o.name}, {"value", o.value}};
}

json UnitJson(const Unit& u) {
  json j = json::object();
  PutIf(j, "name", u.name);
  if (!u.options.empty()) {
    json opts = json::array();
    for (const auto& o : u.options) opts.push_back(OptionJson(o));
    j["options"] = std::move(opts);
  }
  if (u.desired_state) j["desiredState"] = std::string(ToString(*u.desired_state));
  if (u.current_state) j["currentState"] = std::string(ToString(*u.current_state));
  PutIf(j, "machineID", u.machine_id);
  return j;
}

json UnitStateJson(const UnitState& s) {
  json j = json::object();
  PutIf(j, "name", s.name);
  PutIf(j, "hash", s.hash);
  PutIf(j, "machineID", s.machine_id);
  PutIf(j, "systemdLoadState", s.systemd_load_state);
  PutIf(j, "systemdActiveState", s.systemd_active_state);
  PutIf(j, "systemdSubState", s.systemd_sub_state);
  return j;
}

json MachineJson(const Machine& m) {
  json j = json::object();
  PutIf(j, "id", m.id);
  PutIf(j, "primaryIP", m.primary_ip);
  if (!m.metadata.empty()) j["metadata"] = m.metadata;
  return j;
}

base::Status DecodeOptions(const Reader& r, std::string_view key, std::vector<UnitOption>& out) {
  const json* opts = nullptr;
  FJORD_RETURN_IF_ERROR(r.Array(key, opts));
  if (opts == nullptr) return base::Status::Ok();
  for (size_t i = 0; i < opts->size(); ++i) {
    const json& o = (*opts)[i];
    std::string where = r.Field(key) + "[" + std::to_string(i) + "]";
    if (!o.is_object()) {
      return base::InvalidArgument("field `" + where +
                                   "`: must be an object with section, "
                                   "name and value, got " +
                                   TypeName(o));
    }
    Reader ro(o, where + ".");
    UnitOption opt;
    FJORD_RETURN_IF_ERROR(ro.String("section", opt.section, /*required=*/true));
    FJORD_RETURN_IF_ERROR(ro.String("name", opt.name, /*required=*/true));
    if (ro.Get("value") == nullptr) return ro.Error("value", "required");
    FJORD_RETURN_IF_ERROR(ro.String("value", opt.value));
    out.push_back(std::move(opt));
  }
  return base::Status::Ok();
}

base::Status DecodeStringMap(const Reader& r, std::string_view key,
                             std::map<std::string, std::string>& out) {
  const json* md = r.Get(key);
  if (md == nullptr) return base::Status::Ok();
  if (!md->is_object()) return r.Error(key, "must be an object, got " + TypeName(*md));
  for (const auto& [k, v] : md->items()) {
    if (!v.is_string()) {
      return r.Error(std::string(key) + "." + k, "must be a string, got " + TypeName(v));
    }
    out[k] = v.get<std::string>();
  }
  return base::Status::Ok();
}

namespace {

base::Result<Unit> DecodeUnit(const json& j, const std::string& path) {
  Reader r(j, path);
  Unit u;
  FJORD_RETURN_IF_ERROR(r.String("name", u.name));
  FJORD_RETURN_IF_ERROR(DecodeOptions(r, "options", u.options));
  FJORD_RETURN_IF_ERROR(r.State("desiredState", u.desired_state));
  FJORD_RETURN_IF_ERROR(r.State("currentState", u.current_state));
  FJORD_RETURN_IF_ERROR(r.String("machineID", u.machine_id));
  return u;
}

}  // namespace

base::Result<UnitState> DecodeUnitState(const json& j, const std::string& path) {
  Reader r(j, path);
  UnitState s;
  FJORD_RETURN_IF_ERROR(r.String("name", s.name));
  FJORD_RETURN_IF_ERROR(r.String("hash", s.hash));
  FJORD_RETURN_IF_ERROR(r.String("machineID", s.machine_id));
  FJORD_RETURN_IF_ERROR(r.String("systemdLoadState", s.systemd_load_state));
  FJORD_RETURN_IF_ERROR(r.String("systemdActiveState", s.systemd_active_state));
  FJORD_RETURN_IF_ERROR(r.String("systemdSubState", s.systemd_sub_state));
  return s;
}

namespace {

base::Result<Machine> DecodeMachine(const json& j, const std::string& path) {
  Reader r(j, path);
  Machine m;
  FJORD_RETURN_IF_ERROR(r.String("id", m.id));
  FJORD_RETURN_IF_ERROR(r.String("primaryIP", m.primary_ip));
  FJORD_RETURN_IF_ERROR(DecodeStringMap(r, "metadata", m.metadata));
  return m;
}

}  // namespace
}  // namespace internal

using namespace internal;  // NOLINT: this file is the other half of json_util.h

std::string_view ToString(UnitStateName s) {
  switch (s) {
    case UnitStateName::kInactive:
      return "inactive";
    case UnitStateName::kLoaded:
      return "loaded";
    case UnitStateName::kLaunched:
      return "launched";
  }
  return "inactive";
}

base::Result<UnitStateName> ParseUnitStateName(std::string_view s) {
  if (s == "inactive") return UnitStateName::kInactive;
  if (s == "loaded") return UnitStateName::kLoaded;
  if (s == "launched") return UnitStateName::kLaunched;
  return base::InvalidArgument("must be one of inactive, loaded, launched, got " +
                               base::QuoteForDisplay(s));
}

std::string ToJson(const Unit& v) { return Dump(UnitJson(v)); }
std::string ToJson(const UnitState& v) { return Dump(UnitStateJson(v)); }
std::string ToJson(const Machine& v) { return Dump(MachineJson(v)); }

std::string ToJson(const UnitPage& v) {
  json list = json::array();
  for (const auto& u : v.units) list.push_back(UnitJson(u));
  json j = {{"units", std::move(list)}};
  PutIf(j, "nextPageToken", v.next_page_token);
  return Dump(j);
}

std::string ToJson(const UnitStatePage& v) {
  json list = json::array();
  for (const auto& s : v.states) list.push_back(UnitStateJson(s));
  json j = {{"states", std::move(list)}};
  PutIf(j, "nextPageToken", v.next_page_token);
  return Dump(j);
}

std::string ToJson(const MachinePage& v) {
  json list = json::array();
  for (const auto& m : v.machines) list.push_back(MachineJson(m));
  json j = {{"machines", std::move(list)}};
  PutIf(j, "nextPageToken", v.next_page_token);
  return Dump(j);
}

std::string ToJson(const Error& v) {
  json e = {{"code", v.code}, {"message", v.message}};
  PutIf(e, "field", v.field);
  return Dump(json{{"error", std::move(e)}});
}

base::Result<Unit> UnitFromJson(std::string_view text) { return DecodeTop<Unit>(text, DecodeUnit); }
base::Result<UnitState> UnitStateFromJson(std::string_view text) {
  return DecodeTop<UnitState>(text, DecodeUnitState);
}
base::Result<Machine> MachineFromJson(std::string_view text) {
  return DecodeTop<Machine>(text, DecodeMachine);
}

base::Result<UnitPage> UnitPageFromJson(std::string_view text) {
  FJORD_ASSIGN_OR_RETURN(json j, ParseObject(text));
  UnitPage p;
  FJORD_RETURN_IF_ERROR(DecodeList(j, "units", DecodeUnit, p.units, p.next_page_token));
  return p;
}

base::Result<UnitStatePage> UnitStatePageFromJson(std::string_view text) {
  FJORD_ASSIGN_OR_RETURN(json j, ParseObject(text));
  UnitStatePage p;
  FJORD_RETURN_IF_ERROR(DecodeList(j, "states", DecodeUnitState, p.states, p.next_page_token));
  return p;
}

base::Result<MachinePage> MachinePageFromJson(std::string_view text) {
  FJORD_ASSIGN_OR_RETURN(json j, ParseObject(text));
  MachinePage p;
  FJORD_RETURN_IF_ERROR(DecodeList(j, "machines", DecodeMachine, p.machines, p.next_page_token));
  return p;
}

base::Result<Error> ErrorFromJson(std::string_view text) {
  FJORD_ASSIGN_OR_RETURN(json j, ParseObject(text));
  Reader top(j, "");
  const json* e = top.Get("error");
  if (e == nullptr || !e->is_object()) return top.Error("error", "must be an object");
  Reader r(*e, "error.");
  Error out;
  const json* code = r.Get("code");
  if (code == nullptr || !code->is_number_integer()) return r.Error("code", "must be an integer");
  out.code = code->get<int>();
  FJORD_RETURN_IF_ERROR(r.String("message", out.message));
  FJORD_RETURN_IF_ERROR(r.String("field", out.field));
  return out;
}

std::string FieldOfDecodeError(const base::Status& status) {
  const std::string m(status.message());
  const std::string prefix = "field `";
  if (m.compare(0, prefix.size(), prefix) != 0) return "";
  size_t end = m.find('`', prefix.size());
  return end == std::string::npos ? "" : m.substr(prefix.size(), end - prefix.size());
}

}  // namespace fjord::api
