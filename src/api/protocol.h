// fjord's native wire types: the agent protocol (registration, heartbeat, per-machine schedule,
// state reports) and the native /v1 API views. docs/PROTOCOL.md describes the endpoints that
// carry them; api/types.h keeps fleet's /fleet/v1 shapes.
//
// Same conventions as types.h: camelCase JSON, empty fields omitted on output, unknown fields
// ignored on input, decoding errors are kInvalidArgument naming the field. Plain values; pure,
// thread-safe functions. JSON stays inside protocol.cc.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/types.h"
#include "base/status.h"

namespace fjord::api {

// "capacity" / "free" of a machine: {"cpuMillis":2000,"memoryBytes":8589934592,"diskBytes":0}.
struct Resources {
  int64_t cpu_millis = 0;  // 1000 = one core
  int64_t memory_bytes = 0;
  int64_t disk_bytes = 0;
  bool operator==(const Resources&) const = default;
};

// PUT /v1/machines/{id} (agent -> server); also what /machines/<id> holds in the store.
struct MachineRegistration {
  std::string id;          // "id"
  std::string primary_ip;  // "primaryIP"
  std::map<std::string, std::string> metadata;
  Resources capacity;
  std::string agent_url;  // "agentURL": where the agent serves /agent/v1 (status, journal)
  std::string version;    // fjord version of the agent
  bool operator==(const MachineRegistration&) const = default;
};

// The answer to a registration: how often to heartbeat and after how long without one the
// server declares the machine lost.
struct RegistrationReply {
  int64_t heartbeat_interval_ms = 1000;  // "heartbeatIntervalMs"
  int64_t grace_ms = 10000;              // "graceMs"
  bool operator==(const RegistrationReply&) const = default;
};

// One unit placed on a machine, as the agent receives it ("/schedule/<machine>/<unit>").
struct ScheduledUnit {
  std::string name;
  std::string hash;                                      // fleet content hash of `options`
  UnitStateName desired_state = UnitStateName::kLoaded;  // "desiredState": loaded | launched
  std::vector<UnitOption> options;
  bool operator==(const ScheduledUnit&) const = default;
};

// A unit's content as the server stores it once under /unitfiles/<hash>, shared by every unit
// with that content (fleet's registry did the same); /units/<name> then holds a ScheduledUnit
// without options.
struct UnitFile {
  std::string hash;
  std::vector<UnitOption> options;
  bool operator==(const UnitFile&) const = default;
};

// GET /v1/machines/{id}/schedule: the machine's complete schedule at `revision`. The agent
// long-polls with ?waitIndex=<revision> and diffs (level-triggered).
struct Schedule {
  int64_t revision = 0;
  std::vector<ScheduledUnit> units;
  bool operator==(const Schedule&) const = default;
};

// A unit's state on one machine as the agent reports it: fleet's UnitState plus detail.
struct UnitStatusReport {
  UnitState state;            // fleet fields, flat in JSON (name, hash, machineID, systemd*)
  std::string result;         // "result": systemd's Result=: success, exit-code, timeout, ...
  std::string reason;         // "reason": human-readable cause of a failure
  int64_t main_pid = 0;       // "mainPID"
  int64_t exit_status = 0;    // "exitStatus"
  int64_t restarts = 0;       // "restarts"
  int64_t since_unix_ms = 0;  // "sinceUnixMs": when the active state last changed
  std::string container_id;   // "containerID"
  bool operator==(const UnitStatusReport&) const = default;
};

// PUT /v1/machines/{id}/states: the complete set of units the agent has (full replace).
struct StateReport {
  std::vector<UnitStatusReport> states;
  bool operator==(const StateReport&) const = default;
};

// A parser diagnostic carried in a 400 answer's error body ("diagnostics").
struct DiagnosticView {
  std::string severity;  // "error" | "warning"
  std::string file;
  int64_t line = 0;
  int64_t column = 0;
  std::string section;
  std::string key;
  std::string message;
  std::string suggestion;
  bool operator==(const DiagnosticView&) const = default;
};

// {"error":{"code":400,"message":"...","field":"...","diagnostics":[...]}}; Error (types.h)
// without diagnostics is the same shape.
struct ErrorBody {
  Error error;
  std::vector<DiagnosticView> diagnostics;
  bool operator==(const ErrorBody&) const = default;
};

// PUT /v1/units/{name}: either the unit file text or canonical options (not both); for an
// existing unit, only desiredState may be given (fleet's semantics).
struct PutUnitRequest {
  std::optional<UnitStateName> desired_state;  // "desiredState"; absent: inactive on create
  std::string unit_file;                       // "unitFile"
  std::vector<UnitOption> options;
  bool operator==(const PutUnitRequest&) const = default;
};

// GET /v1/units and /v1/units/{name}: desired state, placement and reported states together.
struct UnitView {
  std::string name;
  std::string hash;
  UnitStateName desired_state = UnitStateName::kInactive;
  std::optional<UnitStateName> current_state;
  std::string machine_id;                // "machineID"; empty when unscheduled or global
  bool global = false;                   // [X-Fleet] Global=true
  std::string reason;                    // why the unit is not scheduled, if it is not
  std::vector<UnitStatusReport> states;  // one per machine that reports it
  std::vector<UnitOption> options;       // only on GET /v1/units/{name}
  bool operator==(const UnitView&) const = default;
};

struct UnitViewPage {
  std::vector<UnitView> units;
  std::string next_page_token;  // "nextPageToken"
  bool operator==(const UnitViewPage&) const = default;
};

// GET /v1/machines: registration plus liveness and what is left.
struct MachineView {
  MachineRegistration machine;    // flat in JSON
  bool alive = false;             // "alive"
  int64_t last_seen_unix_ms = 0;  // "lastSeenUnixMs": last heartbeat the server received
  Resources free;                 // "free": capacity minus placed units' requests
  int64_t units = 0;              // "units": placed unit instances
  bool operator==(const MachineView&) const = default;
};

struct MachineViewPage {
  std::vector<MachineView> machines;
  std::string next_page_token;
  bool operator==(const MachineViewPage&) const = default;
};

// PUT /v1/units/{template}/scale, e.g. {"instances":50}. The template must be submitted.
struct ScaleRequest {
  int64_t instances = 0;
  std::optional<UnitStateName> desired_state;  // of new instances; default launched
  bool operator==(const ScaleRequest&) const = default;
};

struct ScaleReply {
  std::vector<std::string> added;    // instance names created
  std::vector<std::string> removed;  // destroyed, newest first
  std::vector<std::string> pending;  // "web@7.service: reason" (created but not placed)
  bool operator==(const ScaleReply&) const = default;
};

std::string ToJson(const Resources& v);
std::string ToJson(const MachineRegistration& v);
std::string ToJson(const RegistrationReply& v);
std::string ToJson(const ScheduledUnit& v);
// A unit's options as a JSON array, the form of ScheduledUnit's "options".
std::string OptionsToJson(const std::vector<UnitOption>& options);
std::string ToJson(const UnitFile& v);
std::string ToJson(const Schedule& v);
std::string ToJson(const UnitStatusReport& v);
std::string ToJson(const StateReport& v);
std::string ToJson(const ErrorBody& v);
std::string ToJson(const PutUnitRequest& v);
std::string ToJson(const UnitView& v);
std::string ToJson(const UnitViewPage& v);
std::string ToJson(const MachineView& v);
std::string ToJson(const MachineViewPage& v);
std::string ToJson(const ScaleRequest& v);
std::string ToJson(const ScaleReply& v);

base::Result<MachineRegistration> MachineRegistrationFromJson(std::string_view json);
base::Result<RegistrationReply> RegistrationReplyFromJson(std::string_view json);
base::Result<ScheduledUnit> ScheduledUnitFromJson(std::string_view json);
base::Result<UnitFile> UnitFileFromJson(std::string_view json);
base::Result<Schedule> ScheduleFromJson(std::string_view json);
base::Result<UnitStatusReport> UnitStatusReportFromJson(std::string_view json);
base::Result<StateReport> StateReportFromJson(std::string_view json);
base::Result<ErrorBody> ErrorBodyFromJson(std::string_view json);
base::Result<PutUnitRequest> PutUnitRequestFromJson(std::string_view json);
base::Result<UnitView> UnitViewFromJson(std::string_view json);
base::Result<UnitViewPage> UnitViewPageFromJson(std::string_view json);
base::Result<MachineView> MachineViewFromJson(std::string_view json);
base::Result<MachineViewPage> MachineViewPageFromJson(std::string_view json);
base::Result<ScaleRequest> ScaleRequestFromJson(std::string_view json);
base::Result<ScaleReply> ScaleReplyFromJson(std::string_view json);

}  // namespace fjord::api
