// Known keys of [Unit], [Service], [Install], [X-Fleet], [X-Fjord] and [Container], with the
// grammar of each value. Lookup is one hash probe per option; suggestions for unknown keys are
// computed only when a key is unknown.
#include <csignal>
#include <cstring>
#include <deque>
#include <unordered_map>

#include "base/strings.h"
#include "unit/unit_internal.h"

namespace fjord::unit {

namespace {

enum class VType : uint8_t {
  kAny,
  kBool,
  kTime,
  kBytes,
  kBytesOrPercent,  // MemoryMax=: bytes, N% of RAM, infinity
  kPercent,         // CPUQuota=
  kTasks,           // number, N%, infinity
  kInt,
  kEnum,  // extra: "a|b|c"
  kSignal,
  kExec,
  kEnv,
  kUnitNames,  // space separated unit names
  kFleetBool,  // fleet reads only "true"
  kWords,      // quoted words (syntax checked)
  kInstances,
  kPorts,
  kConstraint,
  kIgnored,  // accepted and ignored with a warning (extra: why)
};

struct KeyInfo {
  KeyInfo(std::string_view n, VType t = VType::kAny, std::string_view e = {},
          std::string_view r = {})
      : name(n), type(t), extra(e), replacement(r) {}
  std::string_view name;
  VType type;
  std::string_view extra;        // enum values, or why a key is ignored
  std::string_view replacement;  // non-empty: deprecated in favour of this key
};

using Table = std::vector<KeyInfo>;

const Table& UnitKeys() {
  static const Table* t = [] {
    auto* t = new Table{
        {"Description"},
        {"Documentation", VType::kWords},
        {"Requires", VType::kUnitNames},
        {"Requisite", VType::kUnitNames},
        {"Wants", VType::kUnitNames},
        {"BindsTo", VType::kUnitNames},
        {"PartOf", VType::kUnitNames},
        {"Upholds", VType::kUnitNames},
        {"Conflicts", VType::kUnitNames},
        {"Before", VType::kUnitNames},
        {"After", VType::kUnitNames},
        {"OnFailure", VType::kUnitNames},
        {"OnSuccess", VType::kUnitNames},
        {"PropagatesReloadTo", VType::kUnitNames},
        {"ReloadPropagatedFrom", VType::kUnitNames},
        {"PropagatesStopTo", VType::kUnitNames},
        {"StopPropagatedFrom", VType::kUnitNames},
        {"JoinsNamespaceOf", VType::kUnitNames},
        {"RequiresMountsFor", VType::kWords},
        {"OnFailureJobMode", VType::kEnum,
         "fail|replace|replace-irreversibly|isolate|flush|ignore-dependencies|ignore-requirements"},
        {"IgnoreOnIsolate", VType::kBool},
        {"StopWhenUnneeded", VType::kBool},
        {"RefuseManualStart", VType::kBool},
        {"RefuseManualStop", VType::kBool},
        {"AllowIsolate", VType::kBool},
        {"DefaultDependencies", VType::kBool},
        {"CollectMode", VType::kEnum, "inactive|inactive-or-failed"},
        {"FailureAction"},
        {"SuccessAction"},
        {"FailureActionExitStatus", VType::kInt},
        {"SuccessActionExitStatus", VType::kInt},
        {"JobTimeoutSec", VType::kTime},
        {"JobRunningTimeoutSec", VType::kTime},
        {"JobTimeoutAction"},
        {"JobTimeoutRebootArgument"},
        {"StartLimitIntervalSec", VType::kTime},
        {"StartLimitBurst", VType::kInt},
        {"StartLimitAction"},
        {"RebootArgument"},
        {"SourcePath"},
        {"StartLimitInterval", VType::kTime, {}, "StartLimitIntervalSec"},
        {"OnFailureIsolate", VType::kBool, {}, "OnFailureJobMode"},
    };
    for (std::string_view c : {"Architecture",
                               "Firmware",
                               "Virtualization",
                               "Host",
                               "KernelCommandLine",
                               "KernelVersion",
                               "Credential",
                               "Environment",
                               "Security",
                               "Capability",
                               "ACPower",
                               "NeedsUpdate",
                               "FirstBoot",
                               "PathExists",
                               "PathExistsGlob",
                               "PathIsDirectory",
                               "PathIsSymbolicLink",
                               "PathIsMountPoint",
                               "PathIsReadWrite",
                               "PathIsEncrypted",
                               "DirectoryNotEmpty",
                               "FileNotEmpty",
                               "FileIsExecutable",
                               "User",
                               "Group",
                               "ControlGroupController",
                               "Memory",
                               "CPUs",
                               "CPUFeature",
                               "OSRelease",
                               "MemoryPressure",
                               "CPUPressure",
                               "IOPressure"}) {
      static std::deque<std::string> names;  // owns the generated names; never moves them
      names.push_back("Condition" + std::string(c));
      t->push_back({names.back()});
      names.push_back("Assert" + std::string(c));
      t->push_back({names.back()});
    }
    return t;
  }();
  return *t;
}

constexpr std::string_view kLimits[] = {
    "LimitCPU",      "LimitFSIZE", "LimitDATA",   "LimitSTACK",   "LimitCORE",  "LimitRSS",
    "LimitNOFILE",   "LimitAS",    "LimitNPROC",  "LimitMEMLOCK", "LimitLOCKS", "LimitSIGPENDING",
    "LimitMSGQUEUE", "LimitNICE",  "LimitRTPRIO", "LimitRTTIME"};

const Table& ServiceKeys() {
  static const Table* t = [] {
    auto* t = new Table{
        // systemd.service(5)
        {"Type", VType::kEnum, "simple|exec|forking|oneshot|dbus|notify|notify-reload|idle"},
        {"ExitType", VType::kEnum, "main|cgroup"},
        {"RemainAfterExit", VType::kBool},
        {"GuessMainPID", VType::kBool},
        {"PIDFile"},
        {"BusName"},
        {"ExecStart", VType::kExec},
        {"ExecStartPre", VType::kExec},
        {"ExecStartPost", VType::kExec},
        {"ExecCondition", VType::kExec},
        {"ExecReload", VType::kExec},
        {"ExecStop", VType::kExec},
        {"ExecStopPost", VType::kExec},
        {"RestartSec", VType::kTime},
        {"RestartSteps", VType::kInt},
        {"RestartMaxDelaySec", VType::kTime},
        {"TimeoutStartSec", VType::kTime},
        {"TimeoutStopSec", VType::kTime},
        {"TimeoutAbortSec", VType::kTime},
        {"TimeoutSec", VType::kTime},
        {"TimeoutStartFailureMode", VType::kEnum, "terminate|abort|kill"},
        {"TimeoutStopFailureMode", VType::kEnum, "terminate|abort|kill"},
        {"RuntimeMaxSec", VType::kTime},
        {"RuntimeRandomizedExtraSec", VType::kTime},
        {"WatchdogSec", VType::kTime},
        {"Restart", VType::kEnum,
         "no|on-success|on-failure|on-abnormal|on-watchdog|on-abort|always"},
        {"RestartMode", VType::kEnum, "normal|direct"},
        {"SuccessExitStatus", VType::kWords},
        {"RestartPreventExitStatus", VType::kWords},
        {"RestartForceExitStatus", VType::kWords},
        {"RootDirectoryStartOnly", VType::kBool},
        {"NonBlocking", VType::kBool},
        {"NotifyAccess", VType::kEnum, "none|main|exec|all"},
        {"Sockets", VType::kUnitNames},
        {"FileDescriptorStoreMax", VType::kInt},
        {"FileDescriptorStorePreserve", VType::kEnum, "no|yes|restart"},
        {"USBFunctionDescriptors"},
        {"USBFunctionStrings"},
        {"OOMPolicy", VType::kEnum, "continue|stop|kill"},
        {"OpenFile"},
        {"ReloadSignal", VType::kSignal},
        {"PermissionsStartOnly", VType::kBool, {}, "the '+' prefix on Exec lines"},
        {"StartLimitInterval", VType::kTime, {}, "StartLimitIntervalSec= in [Unit]"},
        {"StartLimitBurst", VType::kInt, {}, "StartLimitBurst= in [Unit]"},
        {"StartLimitAction", VType::kAny, {}, "StartLimitAction= in [Unit]"},
        {"FailureAction", VType::kAny, {}, "FailureAction= in [Unit]"},
        {"RebootArgument", VType::kAny, {}, "RebootArgument= in [Unit]"},
        // systemd.kill(5)
        {"KillMode", VType::kEnum, "control-group|process|mixed|none"},
        {"KillSignal", VType::kSignal},
        {"RestartKillSignal", VType::kSignal},
        {"SendSIGHUP", VType::kBool},
        {"SendSIGKILL", VType::kBool},
        {"FinalKillSignal", VType::kSignal},
        {"WatchdogSignal", VType::kSignal},
        // systemd.resource-control(5)
        {"CPUAccounting", VType::kBool},
        {"CPUWeight"},
        {"StartupCPUWeight"},
        {"CPUQuota", VType::kPercent},
        {"CPUQuotaPeriodSec", VType::kTime},
        {"AllowedCPUs"},
        {"StartupAllowedCPUs"},
        {"AllowedMemoryNodes"},
        {"StartupAllowedMemoryNodes"},
        {"MemoryAccounting", VType::kBool},
        {"MemoryMin", VType::kBytesOrPercent},
        {"MemoryLow", VType::kBytesOrPercent},
        {"MemoryHigh", VType::kBytesOrPercent},
        {"MemoryMax", VType::kBytesOrPercent},
        {"MemorySwapMax", VType::kBytesOrPercent},
        {"MemoryZSwapMax", VType::kBytesOrPercent},
        {"TasksAccounting", VType::kBool},
        {"TasksMax", VType::kTasks},
        {"IOAccounting", VType::kBool},
        {"IOWeight"},
        {"StartupIOWeight"},
        {"IODeviceWeight"},
        {"IOReadBandwidthMax"},
        {"IOWriteBandwidthMax"},
        {"IOReadIOPSMax"},
        {"IOWriteIOPSMax"},
        {"IODeviceLatencyTargetSec"},
        {"IPAccounting", VType::kBool},
        {"IPAddressAllow"},
        {"IPAddressDeny"},
        {"IPIngressFilterPath"},
        {"IPEgressFilterPath"},
        {"BPFProgram"},
        {"SocketBindAllow"},
        {"SocketBindDeny"},
        {"RestrictNetworkInterfaces"},
        {"DeviceAllow"},
        {"DevicePolicy", VType::kEnum, "auto|closed|strict"},
        {"Slice", VType::kUnitNames},
        {"Delegate"},
        {"DisableControllers"},
        {"ManagedOOMSwap", VType::kEnum, "auto|kill"},
        {"ManagedOOMMemoryPressure", VType::kEnum, "auto|kill"},
        {"ManagedOOMMemoryPressureLimit"},
        {"ManagedOOMPreference", VType::kEnum, "none|avoid|omit"},
        {"MemoryPressureWatch", VType::kEnum, "auto|on|off|skip"},
        {"MemoryPressureThresholdSec", VType::kTime},
        {"CPUShares", VType::kInt, {}, "CPUWeight"},
        {"StartupCPUShares", VType::kInt, {}, "StartupCPUWeight"},
        {"MemoryLimit", VType::kBytesOrPercent, {}, "MemoryMax"},
        {"BlockIOAccounting", VType::kBool, {}, "IOAccounting"},
        {"BlockIOWeight", VType::kAny, {}, "IOWeight"},
        {"StartupBlockIOWeight", VType::kAny, {}, "StartupIOWeight"},
        {"BlockIODeviceWeight", VType::kAny, {}, "IODeviceWeight"},
        {"BlockIOReadBandwidth", VType::kAny, {}, "IOReadBandwidthMax"},
        {"BlockIOWriteBandwidth", VType::kAny, {}, "IOWriteBandwidthMax"},
        // systemd.exec(5)
        {"ExecSearchPath"},
        {"WorkingDirectory"},
        {"RootDirectory"},
        {"RootImage"},
        {"RootImageOptions"},
        {"RootHash"},
        {"RootHashSignature"},
        {"RootVerity"},
        {"MountAPIVFS", VType::kBool},
        {"ProtectProc", VType::kEnum, "noaccess|invisible|ptraceable|default"},
        {"ProcSubset", VType::kEnum, "all|pid"},
        {"BindPaths"},
        {"BindReadOnlyPaths"},
        {"MountImages"},
        {"ExtensionImages"},
        {"ExtensionDirectories"},
        {"User"},
        {"Group"},
        {"DynamicUser", VType::kBool},
        {"SupplementaryGroups"},
        {"PAMName"},
        {"CapabilityBoundingSet"},
        {"AmbientCapabilities"},
        {"NoNewPrivileges", VType::kBool},
        {"SecureBits"},
        {"SELinuxContext"},
        {"AppArmorProfile"},
        {"SmackProcessLabel"},
        {"UMask"},
        {"CoredumpFilter"},
        {"KeyringMode", VType::kEnum, "inherit|private|shared"},
        {"OOMScoreAdjust", VType::kInt},
        {"TimerSlackNSec"},
        {"Personality"},
        {"IgnoreSIGPIPE", VType::kBool},
        {"Nice", VType::kInt},
        {"CPUSchedulingPolicy", VType::kEnum, "other|batch|idle|fifo|rr"},
        {"CPUSchedulingPriority", VType::kInt},
        {"CPUSchedulingResetOnFork", VType::kBool},
        {"CPUAffinity"},
        {"NUMAPolicy"},
        {"NUMAMask"},
        {"IOSchedulingClass"},
        {"IOSchedulingPriority", VType::kInt},
        {"ProtectSystem"},
        {"ProtectHome"},
        {"RuntimeDirectory"},
        {"StateDirectory"},
        {"CacheDirectory"},
        {"LogsDirectory"},
        {"ConfigurationDirectory"},
        {"RuntimeDirectoryMode"},
        {"StateDirectoryMode"},
        {"CacheDirectoryMode"},
        {"LogsDirectoryMode"},
        {"ConfigurationDirectoryMode"},
        {"RuntimeDirectoryPreserve", VType::kEnum, "no|yes|restart"},
        {"TimeoutCleanSec", VType::kTime},
        {"ReadWritePaths"},
        {"ReadOnlyPaths"},
        {"InaccessiblePaths"},
        {"ExecPaths"},
        {"NoExecPaths"},
        {"TemporaryFileSystem"},
        {"PrivateTmp", VType::kBool},
        {"PrivateDevices", VType::kBool},
        {"PrivateNetwork", VType::kBool},
        {"NetworkNamespacePath"},
        {"PrivateIPC", VType::kBool},
        {"IPCNamespacePath"},
        {"MemoryKSM", VType::kBool},
        {"PrivateUsers"},
        {"ProtectHostname", VType::kBool},
        {"ProtectClock", VType::kBool},
        {"ProtectKernelTunables", VType::kBool},
        {"ProtectKernelModules", VType::kBool},
        {"ProtectKernelLogs", VType::kBool},
        {"ProtectControlGroups", VType::kBool},
        {"RestrictAddressFamilies"},
        {"RestrictFileSystems"},
        {"RestrictNamespaces"},
        {"LockPersonality", VType::kBool},
        {"MemoryDenyWriteExecute", VType::kBool},
        {"RestrictRealtime", VType::kBool},
        {"RestrictSUIDSGID", VType::kBool},
        {"RemoveIPC", VType::kBool},
        {"PrivateMounts", VType::kBool},
        {"MountFlags", VType::kEnum, "shared|slave|private"},
        {"SystemCallFilter"},
        {"SystemCallErrorNumber"},
        {"SystemCallArchitectures"},
        {"SystemCallLog"},
        {"Environment", VType::kEnv},
        {"EnvironmentFile"},
        {"PassEnvironment"},
        {"UnsetEnvironment"},
        {"StandardInput"},
        {"StandardOutput"},
        {"StandardError"},
        {"StandardInputText"},
        {"StandardInputData"},
        {"LogLevelMax"},
        {"LogExtraFields"},
        {"LogRateLimitIntervalSec", VType::kTime},
        {"LogRateLimitBurst", VType::kInt},
        {"LogFilterPatterns"},
        {"LogNamespace"},
        {"SyslogIdentifier"},
        {"SyslogFacility"},
        {"SyslogLevel"},
        {"SyslogLevelPrefix", VType::kBool},
        {"TTYPath"},
        {"TTYReset", VType::kBool},
        {"TTYVHangup", VType::kBool},
        {"TTYRows", VType::kInt},
        {"TTYColumns", VType::kInt},
        {"TTYVTDisallocate", VType::kBool},
        {"LoadCredential"},
        {"LoadCredentialEncrypted"},
        {"ImportCredential"},
        {"SetCredential"},
        {"SetCredentialEncrypted"},
        {"UtmpIdentifier"},
        {"UtmpMode", VType::kEnum, "init|login|user"},
    };
    for (std::string_view l : kLimits) t->push_back({l});
    return t;
  }();
  return *t;
}

const Table& InstallKeys() {
  static const Table t = {{"Alias", VType::kUnitNames},      {"WantedBy", VType::kUnitNames},
                          {"RequiredBy", VType::kUnitNames}, {"UpheldBy", VType::kUnitNames},
                          {"Also", VType::kUnitNames},       {"DefaultInstance"}};
  return t;
}

const Table& FleetKeys() {
  static const Table t = {
      {"Global", VType::kFleetBool},
      {"MachineID"},
      {"MachineOf", VType::kWords},
      {"MachineMetadata", VType::kWords},
      {"Conflicts", VType::kWords},
      {"Replaces", VType::kWords},
      {"X-ConditionMachineID", VType::kAny, {}, "MachineID"},
      {"X-ConditionMachineBootID", VType::kAny, {}, "MachineID"},
      {"X-ConditionMachineOf", VType::kWords, {}, "MachineOf"},
      {"X-ConditionMachineMetadata", VType::kWords, {}, "MachineMetadata"},
      {"X-Conflicts", VType::kWords, {}, "Conflicts"},
  };
  return t;
}

const Table& FjordKeys() {
  static const Table t = {
      {"Disk", VType::kBytes},
      {"Ports", VType::kPorts},
      {"Instances", VType::kInstances},
      {"Constraint", VType::kConstraint},
      {"Strategy", VType::kEnum, "spread|binpack"},
      {"Affinity", VType::kWords},
      {"AntiAffinity", VType::kWords},
  };
  return t;
}

const Table& ContainerKeys() {
  static const Table t = {
      {"Image"},
      {"Exec", VType::kWords},
      {"Entrypoint", VType::kWords},
      {"Environment", VType::kEnv},
      {"EnvironmentFile"},
      {"EnvironmentHost", VType::kBool},
      {"PublishPort"},
      {"ExposeHostPort"},
      {"Volume"},
      {"Mount"},
      {"Tmpfs"},
      {"ContainerName"},
      {"Network"},
      {"WorkingDir"},
      {"User"},
      {"Group"},
      {"UserNS"},
      {"ReadOnly", VType::kBool},
      {"ReadOnlyTmpfs", VType::kBool},
      {"RunInit", VType::kBool},
      {"NoNewPrivileges", VType::kBool},
      {"Label"},
      {"Annotation"},
      {"AddCapability"},
      {"DropCapability"},
      {"AddDevice"},
      {"HostName"},
      {"IP"},
      {"IP6"},
      {"DNS"},
      {"DNSSearch"},
      {"DNSOption"},
      {"HealthCmd"},
      {"HealthInterval"},
      {"HealthRetries", VType::kInt},
      {"HealthTimeout"},
      {"HealthStartPeriod"},
      {"HealthOnFailure", VType::kEnum, "none|kill|restart|stop"},
      {"LogDriver"},
      {"Notify", VType::kBool},
      {"Pull", VType::kEnum, "always|missing|never|newer"},
      {"SeccompProfile"},
      {"SecurityLabelDisable", VType::kBool},
      {"ShmSize"},
      {"StopTimeout", VType::kInt},
      {"Timezone"},
      {"Ulimit"},
      {"Secret"},
      {"Sysctl"},
      {"AutoUpdate"},
      {"Pod"},
      {"Rootfs"},
      {"PodmanArgs", VType::kIgnored,
       "fjord runs containers itself, not through podman, so these arguments are not used"},
      {"GlobalArgs", VType::kIgnored,
       "fjord runs containers itself, not through podman, so these arguments are not used"},
  };
  return t;
}

// A read-only open-addressing hash set of a table's keys: one short inline hash and usually
// one comparison per lookup (std::unordered_map cost several times more per option).
class Index {
 public:
  explicit Index(const Table& t) {
    size_t cap = 16;
    while (cap < t.size() * 3) cap <<= 1;
    slots_.assign(cap, nullptr);
    for (const KeyInfo& k : t) {
      size_t i = Hash(k.name) & (cap - 1);
      while (slots_[i] != nullptr) i = (i + 1) & (cap - 1);
      slots_[i] = &k;
    }
  }
  const KeyInfo* Find(std::string_view key) const {
    size_t mask = slots_.size() - 1;
    for (size_t i = Hash(key) & mask;; i = (i + 1) & mask) {
      const KeyInfo* k = slots_[i];
      if (k == nullptr) return nullptr;
      if (k->name.size() == key.size() && k->name == key) return k;
    }
  }

 private:
  // The length and the first and last 8 bytes (overlapping for short keys): two loads instead
  // of a multiply per byte. Keys alike at both ends only cost a longer probe.
  static size_t Hash(std::string_view s) {
    uint64_t a = 0, b = 0;
    size_t n = s.size();
    if (n >= 8) {
      std::memcpy(&a, s.data(), 8);
      std::memcpy(&b, s.data() + n - 8, 8);
    } else {
      for (char c : s) a = (a << 8) | static_cast<unsigned char>(c);
    }
    uint64_t h = a * 0x9E3779B97F4A7C15ULL ^ (b + n) * 0xC2B2AE3D27D4EB4FULL;
    return static_cast<size_t>(h ^ (h >> 32));
  }
  std::vector<const KeyInfo*> slots_;
};

Index MakeIndex(const Table& t) { return Index(t); }

const Table* TableFor(SectionKind kind) {
  switch (kind) {
    case SectionKind::kUnit:
      return &UnitKeys();
    case SectionKind::kService:
      return &ServiceKeys();
    case SectionKind::kInstall:
      return &InstallKeys();
    case SectionKind::kXFleet:
      return &FleetKeys();
    case SectionKind::kXFjord:
      return &FjordKeys();
    case SectionKind::kContainer:
      return &ContainerKeys();
    default:
      return nullptr;
  }
}

// Lowercased key names of each table, in table order (for suggestions).
const std::vector<std::string>& LoweredFor(SectionKind kind) {
  static const auto* lowered = [] {
    auto* v = new std::vector<std::vector<std::string>>();
    for (SectionKind k : {SectionKind::kUnit, SectionKind::kService, SectionKind::kInstall,
                          SectionKind::kXFleet, SectionKind::kXFjord, SectionKind::kContainer}) {
      auto& names = v->emplace_back();
      for (const KeyInfo& info : *TableFor(k)) names.push_back(base::AsciiLower(info.name));
    }
    return v;
  }();
  return (*lowered)[static_cast<size_t>(kind)];
}

const Index* IndexFor(SectionKind kind) {
  static const Index kIdx[] = {MakeIndex(UnitKeys()),    MakeIndex(ServiceKeys()),
                               MakeIndex(InstallKeys()), MakeIndex(FleetKeys()),
                               MakeIndex(FjordKeys()),   MakeIndex(ContainerKeys())};
  size_t i = static_cast<size_t>(kind);
  return i < std::size(kIdx) ? &kIdx[i] : nullptr;
}

std::string_view SectionOf(SectionKind k) {
  switch (k) {
    case SectionKind::kUnit:
      return "Unit";
    case SectionKind::kService:
      return "Service";
    case SectionKind::kInstall:
      return "Install";
    case SectionKind::kXFleet:
      return "X-Fleet";
    case SectionKind::kXFjord:
      return "X-Fjord";
    case SectionKind::kContainer:
      return "Container";
    default:
      return "";
  }
}

// Levenshtein distance if it is at most `limit`, else limit + 1. Only the diagonal band
// |i - j| <= limit is computed (Ukkonen), so the cost is O(len * limit); lengths <= 64.
size_t BoundedDistance(std::string_view a, std::string_view b, size_t limit) {
  constexpr size_t kMax = 65;
  const size_t over = limit + 1;
  if (a.size() >= kMax || b.size() >= kMax) return over;
  if ((a.size() > b.size() ? a.size() - b.size() : b.size() - a.size()) > limit) return over;
  size_t prev[kMax], cur[kMax];
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t lo = i > limit ? i - limit : 1, hi = std::min(b.size(), i + limit);
    cur[0] = i;
    if (lo > 1) cur[lo - 1] = over;
    size_t row_min = lo == 1 ? cur[0] : over;
    for (size_t j = lo; j <= hi; ++j) {
      size_t up = (j <= i - 1 + limit) ? prev[j] : over;
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({up + 1, cur[j - 1] + 1, sub, over});
      row_min = std::min(row_min, cur[j]);
    }
    if (hi < b.size()) cur[hi + 1] = over;
    if (row_min >= over) return over;
    std::copy(cur, cur + std::min(b.size(), hi + 1) + 1, prev);
  }
  return std::min(prev[b.size()], over);
}

// The nearest known key: a case-insensitive match first, then the smallest edit distance
// (at most 3 edits and a third of the key's length, so wild guesses are not offered).
std::string NearestKey(std::string_view key, const Table& table,
                       const std::vector<std::string>& names) {
  if (key.size() > 40) return {};  // the longest known key is 31 bytes
  std::string lower = base::AsciiLower(key);
  for (size_t i = 0; i < table.size(); ++i) {
    if (names[i] == lower) return std::string(table[i].name);
  }
  size_t limit = std::min<size_t>(3, std::max<size_t>(1, key.size() / 3));
  std::string_view found;
  for (size_t i = 0; i < table.size(); ++i) {
    size_t a = names[i].size(), b = lower.size();
    if ((a > b ? a - b : b - a) > limit) continue;
    size_t d = BoundedDistance(lower, names[i], limit);
    if (d <= limit) {
      limit = d == 0 ? 0 : d - 1;  // only strictly closer keys replace this one
      found = table[i].name;
      if (d == 0) break;
    }
  }
  return std::string(found);
}

std::string Q(std::string_view s) { return base::QuoteForDisplay(s); }

void CheckSpecifiers(const ParsedOption& o, DiagSink& sink) {
  std::string_view v = o.value;
  for (size_t i = v.find('%'); i != std::string::npos; i = v.find('%', i + 2)) {
    if (i + 1 == v.size()) {
      sink.Add(Severity::kError, o.line, o.value_col + static_cast<int>(i), o.section, o.name,
               "a lone '%' ends the value of " + std::string(o.name) +
                   "=; write %% for a literal percent sign");
      return;
    }
    if (!IsKnownSpecifier(v[i + 1])) {
      sink.Add(Severity::kError, o.line, o.value_col + static_cast<int>(i), o.section, o.name,
               "unknown specifier " + Q(v.substr(i, 2)) + " in " + std::string(o.name) +
                   "=; write %% for a literal percent sign (known: %n %N %p %P %i %I %H %m %b "
                   "and systemd's others)");
      return;
    }
  }
}

Status CheckInt(std::string_view v) {
  std::string_view s = v;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string_view::npos) {
    return base::InvalidArgument(Q(v) + " is not an integer");
  }
  return Status::Ok();
}

Status CheckEnum(std::string_view v, std::string_view allowed) {
  size_t start = 0;
  while (start <= allowed.size()) {
    size_t bar = allowed.find('|', start);
    if (bar == std::string_view::npos) bar = allowed.size();
    if (allowed.substr(start, bar - start) == v) return Status::Ok();
    start = bar + 1;
  }
  std::string list(allowed);
  for (char& c : list) c = c == '|' ? ',' : c;
  return base::InvalidArgument(Q(v) + " is not one of: " + list);
}

Status CheckValue(const KeyInfo& k, const ParsedOption& o) {
  std::string_view v = o.value;
  switch (k.type) {
    case VType::kAny:
    case VType::kIgnored:
    case VType::kPorts:       // checked with the whole [X-Fjord] section
    case VType::kConstraint:  // likewise
    case VType::kInstances:
    case VType::kFleetBool:  // fleet's own rules, in validate.cc
      return Status::Ok();
    case VType::kBool:
      return base::StatusOf(ParseBool(v));
    case VType::kTime:
      return base::StatusOf(ParseTimeSpan(v));
    case VType::kBytes:
      return base::StatusOf(ParseBytes(v));
    case VType::kPercent: {
      auto p = ParsePercent(v);
      if (p.ok() && *p <= 0) return base::InvalidArgument("CPU quota must be above 0%");
      return base::StatusOf(p);
    }
    case VType::kBytesOrPercent:
    case VType::kTasks:
      if (!v.empty() && v.back() == '%') return base::StatusOf(ParsePercent(v));
      if (k.type == VType::kTasks && v != "infinity") return CheckInt(v);
      return base::StatusOf(ParseBytes(v));
    case VType::kInt:
      return CheckInt(v);
    case VType::kEnum:
      return CheckEnum(v, k.extra);
    case VType::kSignal:
      return base::StatusOf(ParseSignal(v));
    case VType::kExec:
      return CheckExecLine(v);
    case VType::kEnv:
      return CheckEnvironment(v);
    case VType::kWords:
      return CheckWordsSyntax(v);
    case VType::kUnitNames: {
      if (!ContainsAny(v, "\"'\\%")) {  // plain names: no copies
        Status st;
        ForEachPlainWord(v, [&](std::string_view w) {
          st = CheckUnitName(w);
          return st.ok();
        });
        return st;
      }
      FJORD_ASSIGN_OR_RETURN(auto words, SplitWords(v));
      for (const std::string& w : words) {
        if (w.find('%') != std::string::npos) continue;  // expanded later
        FJORD_RETURN_IF_ERROR(UnitName::Parse(w));
      }
      return Status::Ok();
    }
  }
  return Status::Ok();
}

bool IsExecKey(std::string_view name) { return base::StartsWith(name, "Exec"); }

}  // namespace

SectionKind ClassifySection(std::string_view name) {
  // The common sections first; a dozen comparisons cost less than hashing the name.
  static constexpr std::pair<std::string_view, SectionKind> kSections[] = {
      {"Unit", SectionKind::kUnit},           {"Service", SectionKind::kService},
      {"Install", SectionKind::kInstall},     {"X-Fleet", SectionKind::kXFleet},
      {"X-Fjord", SectionKind::kXFjord},      {"Container", SectionKind::kContainer},
      {"Socket", SectionKind::kUnchecked},    {"Timer", SectionKind::kUnchecked},
      {"Path", SectionKind::kUnchecked},      {"Mount", SectionKind::kUnchecked},
      {"Automount", SectionKind::kUnchecked}, {"Swap", SectionKind::kUnchecked},
      {"Slice", SectionKind::kUnchecked},     {"Scope", SectionKind::kUnchecked},
  };
  for (const auto& [known, kind] : kSections) {
    if (known == name) return kind;
  }
  if (base::StartsWith(name, "X-")) return SectionKind::kExtension;
  return SectionKind::kUnknown;
}

void CheckOption(const ParsedOption& o, SectionKind kind, DiagSink& sink) {
  const Index* idx = IndexFor(kind);
  if (idx == nullptr) return;
  const std::string_view key = o.name;
  const KeyInfo* found = idx->Find(key);
  if (found == nullptr) {
    const Table& table = *TableFor(kind);
    std::string near =
        sink.TakeSuggestionBudget() ? NearestKey(key, table, LoweredFor(kind)) : std::string();
    std::string msg = "unknown key " + Q(key) + " in [" + std::string(o.section) + "]";
    if (!near.empty()) msg += "; did you mean \"" + near + "\"?";
    // A key of another section is a common slip; say where it belongs.
    if (near.empty()) {
      for (SectionKind other : {SectionKind::kUnit, SectionKind::kService, SectionKind::kInstall,
                                SectionKind::kXFleet, SectionKind::kXFjord}) {
        if (other != kind && IndexFor(other)->Find(key) != nullptr) {
          msg += "; " + std::string(key) + "= belongs in [" + std::string(SectionOf(other)) + "]";
          break;
        }
      }
    }
    msg += near.empty() ? ";" : "";
    msg += (IsExecKey(key) || IsExecKey(near))
               ? " systemd ignores unknown keys, so this line would never run"
               : " systemd ignores unknown keys, so this setting would have no effect";
    // fleet refuses a unit with an unknown [X-Fleet] key; systemd only ignores other keys.
    if (kind == SectionKind::kXFleet) {
      msg = "unknown key " + Q(key) + " in [X-Fleet]" +
            (near.empty() ? "" : "; did you mean \"" + near + "\"?") +
            " fleet refuses units with unknown [X-Fleet] keys";
    }
    sink.Add(kind == SectionKind::kXFleet ? Severity::kError : Severity::kWarning, o.line,
             o.key_col, o.section, key, std::move(msg), near);
    return;
  }
  const KeyInfo& info = *found;
  if (!info.replacement.empty()) {
    sink.Add(
        Severity::kWarning, o.line, o.key_col, o.section, key,
        std::string(key) + "= is deprecated; use " + std::string(info.replacement) + " instead",
        std::string(info.replacement));
  }
  if (info.type == VType::kIgnored) {
    sink.Warn(o, false, std::string(key) + "= is ignored: " + std::string(info.extra));
    return;
  }
  // systemd resolves specifiers only in text-like settings, not in numbers, sizes or enums
  // (CPUQuota=20% has no specifier).
  if (info.type == VType::kAny || info.type == VType::kExec || info.type == VType::kEnv ||
      info.type == VType::kUnitNames || info.type == VType::kWords) {
    CheckSpecifiers(o, sink);
  }
  if (o.value.empty()) return;  // an empty assignment resets the setting
  Status st = CheckValue(info, o);
  if (!st.ok()) {
    sink.Error(o, true,
               "invalid " + std::string(key) + "=: " + std::string(st.message()) +
                   "; systemd would ignore this line");
  }
}

Result<int> ParseSignal(std::string_view s) {
  static const std::unordered_map<std::string_view, int> kSignals = {
      {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"ILL", SIGILL},
      {"TRAP", SIGTRAP}, {"ABRT", SIGABRT},     {"BUS", SIGBUS},   {"FPE", SIGFPE},
      {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},
      {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT},
      {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
      {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},
      {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
      {"IO", SIGIO},     {"POLL", SIGPOLL},     {"PWR", SIGPWR},   {"SYS", SIGSYS},
  };
  std::string_view n = s;
  if (base::StartsWith(n, "SIG")) n.remove_prefix(3);
  auto it = kSignals.find(n);
  if (it != kSignals.end()) return it->second;
  auto number = [](std::string_view d) -> int {
    if (d.empty() || d.size() > 3 || d.find_first_not_of("0123456789") != std::string_view::npos)
      return -1;
    return std::stoi(std::string(d));
  };
  int rt_max = SIGRTMAX - SIGRTMIN;
  if (base::StartsWith(n, "RTMIN")) {
    int k = n.size() == 5 ? 0 : (n[5] == '+' ? number(n.substr(6)) : -1);
    if (k >= 0 && k <= rt_max) return SIGRTMIN + k;
  } else if (base::StartsWith(n, "RTMAX")) {
    int k = n.size() == 5 ? 0 : (n[5] == '-' ? number(n.substr(6)) : -1);
    if (k >= 0 && k <= rt_max) return SIGRTMAX - k;
  } else if (int k = number(s); k > 0 && k <= SIGRTMAX) {
    return k;
  }
  return base::InvalidArgument(Q(s) + " is not a signal; write e.g. SIGTERM or 15");
}

}  // namespace fjord::unit
