// Wire types of fjord's control-plane API, shared by server, agent and CLI.
//
// These are coreos/fleet's API v1 shapes exactly (Documentation/api-v1.md): camelCase JSON
// names, empty fields omitted on output, unknown fields ignored on input (as fleet's Go decoder
// does). Decoding validates types and enumerations and names the offending field:
//   field `desiredState`: must be one of inactive, loaded, launched, got "runnin"
// Semantic checks that need state (does the unit exist, may options change) belong to the
// server. fjord-native richer types extend this header later.
//
// Plain values; the functions are pure and thread-safe. JSON stays inside types.cc.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace fjord::api {

// fleet's job states: the desired or current state of a unit in the cluster.
enum class UnitStateName { kInactive, kLoaded, kLaunched };
std::string_view ToString(UnitStateName s);
// "inactive" | "loaded" | "launched".
base::Result<UnitStateName> ParseUnitStateName(std::string_view s);

struct UnitOption {
  std::string section;  // "Service"
  std::string name;     // "ExecStart"
  std::string value;    // "/usr/bin/sleep 1000"
  bool operator==(const UnitOption&) const = default;
};

// fleet's Unit: PUT/GET /fleet/v1/units/<name>.
struct Unit {
  std::string name;
  std::vector<UnitOption> options;
  std::optional<UnitStateName> desired_state;  // "desiredState"
  std::optional<UnitStateName> current_state;  // "currentState"; set by the server
  std::string machine_id;                      // "machineID"; set by the server
  bool operator==(const Unit&) const = default;
};

// fleet's UnitState: GET /fleet/v1/state, one per (unit, machine).
struct UnitState {
  std::string name;
  std::string hash;                  // content hash of the unit's options
  std::string machine_id;            // "machineID"
  std::string systemd_load_state;    // "systemdLoadState": loaded, not-found, ...
  std::string systemd_active_state;  // "systemdActiveState": active, failed, ...
  std::string systemd_sub_state;     // "systemdSubState": running, dead, ...
  bool operator==(const UnitState&) const = default;
};

// fleet's Machine: GET /fleet/v1/machines.
struct Machine {
  std::string id;
  std::string primary_ip;  // "primaryIP"
  std::map<std::string, std::string> metadata;
  bool operator==(const Machine&) const = default;
};

// List pages: {"units":[...],"nextPageToken":"..."}; an empty token means the last page.
struct UnitPage {
  std::vector<Unit> units;
  std::string next_page_token;
  bool operator==(const UnitPage&) const = default;
};
struct UnitStatePage {
  std::vector<UnitState> states;
  std::string next_page_token;
  bool operator==(const UnitStatePage&) const = default;
};
struct MachinePage {
  std::vector<Machine> machines;
  std::string next_page_token;
  bool operator==(const MachinePage&) const = default;
};

// The error body every non-2xx answer carries: {"error":{"code":N,"message":"...","field":"..."}}.
struct Error {
  int code = 0;
  std::string message;
  std::string field;  // the request field that was wrong, if one was
  bool operator==(const Error&) const = default;
};

std::string ToJson(const Unit& v);
std::string ToJson(const UnitState& v);
std::string ToJson(const Machine& v);
std::string ToJson(const UnitPage& v);
std::string ToJson(const UnitStatePage& v);
std::string ToJson(const MachinePage& v);
std::string ToJson(const Error& v);

// Decoding failures are kInvalidArgument; the message names the field.
base::Result<Unit> UnitFromJson(std::string_view json);
base::Result<UnitState> UnitStateFromJson(std::string_view json);
base::Result<Machine> MachineFromJson(std::string_view json);
base::Result<UnitPage> UnitPageFromJson(std::string_view json);
base::Result<UnitStatePage> UnitStatePageFromJson(std::string_view json);
base::Result<MachinePage> MachinePageFromJson(std::string_view json);
base::Result<Error> ErrorFromJson(std::string_view json);

// The field a decoding error names ("desiredState", "options[2].section"), for the "field" of
// an error body; empty when the error is not about one field (e.g. not JSON at all).
std::string FieldOfDecodeError(const base::Status& status);

}  // namespace fjord::api
