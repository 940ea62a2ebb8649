// fjord::unit: systemd unit files as systemd and fleet read them.
//
// ParseUnit() reads a unit file (systemd.syntax(7)), checks every section, key and value it
// knows ([Unit], [Service], [Install], [X-Fleet], and fjord's [Container] and [X-Fjord]) and
// returns the Unit plus diagnostics a person can act on (file:line:column, severity, the key
// and a suggestion). A Unit exists only when there is no error; warnings do not stop it.
//
// Unit::options() is the canonical form fleet's API uses (ordered {section, name, value}),
// Serialize() turns it back into text and ContentHash() hashes that text (SHA-1, as fleet).
// Typed accessors (resources, timeouts, restart, environment, Exec lines, fleet and fjord
// scheduling requirements) read an already validated Unit and therefore do not fail.
//
// Everything here is a pure function of its arguments: no I/O, no globals that change.
// All types are values; const methods are safe to call from several threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace fjord::unit {

using base::Result;
using base::Status;

// ---------------------------------------------------------------------------------------------
// Diagnostics

enum class Severity { kError, kWarning };
std::string_view SeverityName(Severity s);  // "error" / "warning"

struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when about the whole file
  int column = 0;  // 1-based byte column; 0 when about the whole line or file
  Severity severity = Severity::kError;
  std::string section;     // without brackets; empty when not about a section
  std::string key;         // empty when not about a key
  std::string message;     // a sentence for a person: what is wrong and how to fix it
  std::string suggestion;  // e.g. the nearest known key; empty when there is none

  // "file:line:column: warning: message" (line/column omitted when 0).
  std::string ToString() const;
};

bool HasErrors(const std::vector<Diagnostic>& diags);

// ---------------------------------------------------------------------------------------------
// Unit names and specifiers

// A validated unit name: prefix[@instance].type, systemd's characters, at most 255 bytes.
class UnitName {
 public:
  static Result<UnitName> Parse(std::string_view name);

  const std::string& str() const { return name_; }
  std::string_view prefix() const;        // "hello" in "hello@1.service"
  std::string_view instance() const;      // "1"; empty for templates and plain units
  std::string_view type() const;          // "service"
  std::string_view without_type() const;  // "hello@1"
  bool is_template() const;               // "hello@.service"
  bool is_instance() const;               // "hello@1.service"

  // hello@.service + "1" -> hello@1.service. Fails if this is not a template or the
  // instance has characters systemd does not allow (escape it with UnitNameEscape first).
  Result<UnitName> Instantiate(std::string_view instance) const;
  // hello@1.service -> hello@.service; anything else -> itself.
  UnitName Template() const;

  friend bool operator==(const UnitName&, const UnitName&) = default;

 private:
  std::string name_;
  size_t at_ = std::string::npos;  // position of '@', npos if none
  size_t dot_ = 0;                 // position of the '.' before the type
};

// systemd-escape: '/' -> '-', bytes outside [A-Za-z0-9:_.] (and a leading '.') -> \xNN.
std::string UnitNameEscape(std::string_view s);
// The reverse ('-' -> '/', \xNN -> byte); %I and %P use it.
Result<std::string> UnitNameUnescape(std::string_view s);

// What specifiers expand to. Host fields left empty make %H/%m/%b an error.
struct SpecifierContext {
  std::optional<UnitName> unit;
  std::string hostname;
  std::string machine_id;
  std::string boot_id;
};

// Expands %n %N %p %P %i %I %f %j %J %H %m %b %%. Fails on unknown specifiers and on
// specifiers the context cannot answer, naming the specifier.
Result<std::string> ExpandSpecifiers(std::string_view value, const SpecifierContext& ctx);

// ---------------------------------------------------------------------------------------------
// Values (systemd's grammar)

// yes/no/true/false/on/off/1/0, case-insensitive.
Result<bool> ParseBool(std::string_view s);

inline constexpr std::chrono::microseconds kInfiniteTime = std::chrono::microseconds::max();
// "5min 20s", "1h30m", "100ms", "1.5h", bare number = seconds, "infinity". Overflow fails.
Result<std::chrono::microseconds> ParseTimeSpan(std::string_view s);

inline constexpr uint64_t kInfiniteBytes = UINT64_MAX;
// "512M", "1.5G", "100" (bytes); K/M/G/T/P/E are powers of 1024; "infinity". Overflow fails.
Result<uint64_t> ParseBytes(std::string_view s);

// "50%", "250%", "12.5%" -> percent as a number (may exceed 100).
Result<double> ParsePercent(std::string_view s);

// ---------------------------------------------------------------------------------------------
// Exec lines (systemd.service(5) "Command lines")

struct ExecCommand {
  std::string path;               // the executable
  std::vector<std::string> argv;  // argv[0] first (differs from path with '@')
  bool ignore_failure = false;    // '-': a non-zero exit is not a failure
  bool separate_argv0 = false;    // '@': the second word is argv[0]
  bool no_env_expand = false;     // ':': no $VAR expansion
  bool full_privileges = false;   // '+': runs without User=/sandboxing
  bool no_setuid = false;         // '!': privileged, but no user change
  bool ambient_magic = false;     // '!!': like '!' only where ambient capabilities are missing

  friend bool operator==(const ExecCommand&, const ExecCommand&) = default;
};

// One Exec line: commands separated by a lone ';' word (escape it as "\;"). Unquotes and
// unescapes (systemd's C escapes) but does not expand variables or specifiers.
Result<std::vector<ExecCommand>> ParseExecLine(std::string_view value);

struct EnvVar {
  std::string name;
  std::string value;
  friend bool operator==(const EnvVar&, const EnvVar&) = default;
};
// One Environment= value: quoted, space separated NAME=value words.
Result<std::vector<EnvVar>> ParseEnvironment(std::string_view value);

// Replaces $NAME (a whole word: split into words), ${NAME} (inline) and $$ (literal $) in
// every argv word as systemd does when it starts a command. Unset variables expand to nothing.
std::vector<std::string> ExpandExecArgv(const std::vector<std::string>& argv,
                                        const std::vector<EnvVar>& env);

// ---------------------------------------------------------------------------------------------
// Scheduling requirements

// fleet's [X-Fleet] (deprecated X-Condition* aliases folded in). Specifiers in the values are
// expanded with the unit's name, as fleet does.
struct FleetRequirements {
  bool global = false;
  std::string machine_id;               // MachineID=: run only there
  std::vector<std::string> machine_of;  // MachineOf=: run beside these units
  struct Metadata {
    std::string key;
    std::vector<std::string> values;  // a machine matches if it has any of them
  };
  std::vector<Metadata> metadata;      // every key must match (AND); values of a key OR
  std::vector<std::string> conflicts;  // globs of units that must not share the machine
  std::vector<std::string> replaces;   // units this one evicts

  friend bool operator==(const FleetRequirements&, const FleetRequirements&) = default;
};

// Go path.Match glob (*, ?, [...]) as fleet matches Conflicts= and Replaces=.
bool GlobMatch(std::string_view pattern, std::string_view name);

// fjord's [X-Fjord].
struct Constraint {  // Marathon style: field OPERATOR [value]
  enum class Op { kUnique, kCluster, kGroupBy, kLike, kUnlike, kMaxPer, kIs };
  std::string field;
  Op op = Op::kUnique;
  std::string value;
  friend bool operator==(const Constraint&, const Constraint&) = default;
};
struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;
  std::string protocol = "tcp";
  friend bool operator==(const PortRange&, const PortRange&) = default;
};
struct FjordRequirements {
  std::optional<uint64_t> disk_bytes;
  std::vector<PortRange> ports;
  uint32_t instances = 1;
  std::vector<Constraint> constraints;
  enum class Strategy { kSpread, kBinpack } strategy = Strategy::kSpread;
  std::vector<std::string> affinity;       // unit globs to run beside
  std::vector<std::string> anti_affinity;  // unit globs to keep away from
  friend bool operator==(const FjordRequirements&, const FjordRequirements&) = default;
};

// ---------------------------------------------------------------------------------------------
// The unit

// One assignment. The fields are views: in a Unit's options() they point into the Unit's own
// immutable text buffer (shared by its copies, so they stay valid as long as any copy lives);
// options built by a caller (ParseOptions, Serialize) must point at text that outlives the call.
// Views rather than strings because parsing copies each option once per unit otherwise.
struct UnitOption {
  std::string_view section;
  std::string_view name;
  std::string_view value;
  friend bool operator==(const UnitOption&, const UnitOption&) = default;
};

struct ResourceRequests {
  std::optional<double> cpu_quota_percent;   // CPUQuota=; 100 = one CPU
  std::optional<uint64_t> memory_max_bytes;  // MemoryMax= (or MemoryLimit=); kInfiniteBytes
  std::optional<double> memory_max_percent;  // MemoryMax=N% (of the machine's RAM)
  std::optional<uint64_t> tasks_max;         // TasksMax= as a count; kInfiniteBytes = infinity
  std::optional<double> tasks_max_percent;   // TasksMax=N% (of the system limit)
  std::optional<uint64_t> disk_bytes;        // [X-Fjord] Disk=
  // CPUQuota as millicores (50% -> 500); nullopt when unset.
  std::optional<int64_t> cpu_millicores() const;
};

enum class ServiceType { kSimple, kExec, kForking, kOneshot, kDbus, kNotify, kIdle };
enum class RestartPolicy {
  kNo,
  kOnSuccess,
  kOnFailure,
  kOnAbnormal,
  kOnWatchdog,
  kOnAbort,
  kAlways
};
enum class KillMode { kControlGroup, kProcess, kMixed, kNone };

struct Dependencies {
  std::vector<std::string> after, before, requires_, wants, binds_to, conflicts;
};

struct EnvironmentFile {
  std::string path;
  bool optional = false;  // '-' prefix: a missing file is fine
};

// podman Quadlet-style [Container].
struct ContainerSpec {
  std::string image;
  std::vector<std::string> exec;        // Exec=, split with systemd quoting
  std::vector<std::string> entrypoint;  // Entrypoint=
  std::vector<EnvVar> environment;
  std::vector<std::string> publish_ports;  // PublishPort= as written (host:container/proto)
  std::vector<std::string> volumes;        // Volume= as written
  std::string name;                        // ContainerName=
  std::string network;
  std::string working_dir;
  std::string user;
  bool read_only = false;
};

class Unit {
 public:
  const UnitName& name() const { return name_; }
  // The canonical options: grouped by section in order of first appearance, file order inside
  // a section, values after line continuation and trimming, nothing expanded. The views live
  // as long as this Unit or any copy of it.
  const std::vector<UnitOption>& options() const { return options_; }

  bool HasSection(std::string_view section) const;
  // The last assignment of section.key (nullopt if none, "" if reset).
  std::optional<std::string_view> Get(std::string_view section, std::string_view key) const;
  // Every assignment after the last empty one (systemd's list semantics).
  std::vector<std::string_view> GetAll(std::string_view section, std::string_view key) const;

  // Typed accessors (accessors.cc). Defaults are systemd's.
  std::string_view Description() const;
  ResourceRequests Resources() const;
  ServiceType Type() const;
  RestartPolicy Restart() const;
  std::chrono::microseconds RestartSec() const;       // default 100ms
  std::chrono::microseconds TimeoutStartSec() const;  // default 90s; 0 or infinity -> kInfiniteTime
  std::chrono::microseconds TimeoutStopSec() const;   // same rules
  KillMode GetKillMode() const;
  int KillSignal() const;                   // default SIGTERM
  std::vector<EnvVar> Environment() const;  // later assignments of a name win; order kept
  std::vector<EnvironmentFile> EnvironmentFiles() const;
  std::string_view User() const;
  std::string_view WorkingDirectory() const;
  Dependencies Deps() const;
  // key: ExecStart, ExecStartPre, ExecStartPost, ExecStop, ExecStopPost, ExecReload,
  // ExecCondition. Specifiers are expanded with ctx first (as systemd does).
  Result<std::vector<ExecCommand>> Exec(std::string_view key, const SpecifierContext& ctx) const;
  bool IsContainer() const { return HasSection("Container"); }
  ContainerSpec Container() const;

  const FleetRequirements& fleet() const { return fleet_; }
  const FjordRequirements& fjord() const { return fjord_; }

 private:
  friend struct UnitBuilder;
  UnitName name_;
  std::shared_ptr<const char[]> text_;  // what options_ view; immutable, shared by copies
  std::vector<UnitOption> options_;
  FleetRequirements fleet_;
  FjordRequirements fjord_;
};

struct ParseResult {
  std::optional<Unit> unit;             // set when diagnostics hold no error
  std::vector<Diagnostic> diagnostics;  // in line order
};

// Parses and validates one unit file. file_name is used in diagnostics only.
ParseResult ParseUnit(std::string_view text, std::string_view file_name, const UnitName& name);

// Validates an option list from the API (the trust boundary): the same checks as ParseUnit
// on Serialize(options), plus the shape of each option (no newlines, no '=' in names).
ParseResult ParseOptions(const std::vector<UnitOption>& options, const UnitName& name);

// The text of an option list: "[Section]\nName=Value\n", sections grouped in order of first
// appearance, a blank line between sections (fleet/go-systemd's serialization).
std::string Serialize(const std::vector<UnitOption>& options);

// Lowercase hex SHA-1 of Serialize(options), fleet's unit hash.
std::string ContentHash(const std::vector<UnitOption>& options);

}  // namespace fjord::unit
