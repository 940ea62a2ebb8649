// Private to src/scheduler: the Scheduler's state and its small data structures.
#pragma once

#include <bit>
#include <cstdint>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "scheduler/scheduler.h"

namespace fjord::scheduler {

inline constexpr uint32_t kNone = 0xffffffffu;
// Pseudo-attribute for per-machine counts (affinity and anti-affinity to groups).
inline constexpr uint32_t kMachineAttr = 255;
inline constexpr size_t kMaxAttributes = 254;

// Free-resource levels: bitset i holds the machines with at least kCpuLevels[i] free, so a scan
// skips 64 machines at once that cannot fit a request (a bucket index over free resources).
inline constexpr int64_t kCpuLevels[] = {0, 50, 100, 250, 500, 1000, 2000, 4000, 8000, 16000};
inline constexpr int64_t kMiB = int64_t{1} << 20;
inline constexpr int64_t kMemLevels[] = {0,           64 * kMiB,    128 * kMiB,  256 * kMiB,
                                         512 * kMiB,  1024 * kMiB,  2048 * kMiB, 4096 * kMiB,
                                         8192 * kMiB, 16384 * kMiB, 32768 * kMiB};
template <size_t N>
int LevelFor(const int64_t (&levels)[N], int64_t need) {
  int i = 0;
  while (i + 1 < static_cast<int>(N) && levels[i + 1] <= need) ++i;
  return i;
}

// A fixed-size bitset over machine indices; word access lets filters AND 64 machines at a time.
class Bitset {
 public:
  void Resize(size_t bits) { words_.resize((bits + 63) / 64, 0); }
  void Set(size_t i) { words_[i >> 6] |= uint64_t{1} << (i & 63); }
  void Reset(size_t i) { words_[i >> 6] &= ~(uint64_t{1} << (i & 63)); }
  void Assign(size_t i, bool v) { v ? Set(i) : Reset(i); }
  bool Test(size_t i) const { return (words_[i >> 6] >> (i & 63)) & 1; }
  size_t word_count() const { return words_.size(); }
  const uint64_t* data() const { return words_.data(); }
  uint64_t* data() { return words_.data(); }
  size_t Count() const {
    size_t n = 0;
    for (uint64_t w : words_) n += std::popcount(w);
    return n;
  }
  size_t bytes() const { return words_.capacity() * sizeof(uint64_t); }

 private:
  std::vector<uint64_t> words_;
};

// Open-addressing uint64 -> uint32 counter map; entries are never erased (a count drops to 0),
// which keeps probing simple and the key set is bounded by (group, attribute, value) triples used.
class CountMap {
 public:
  uint32_t Get(uint64_t key) const;
  void Add(uint64_t key, int32_t delta);
  size_t bytes() const { return slots_.capacity() * sizeof(Slot); }

 private:
  struct Slot {
    uint64_t key;  // key + 1; 0 = empty
    uint32_t value;
  };
  static uint64_t Hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
  }
  void Grow();
  std::vector<Slot> slots_;
  size_t used_ = 0;
};

inline uint64_t CountKey(uint32_t group, uint32_t attr, uint32_t value) {
  return (uint64_t{group} << 40) | (uint64_t{attr} << 32) | value;
}

// Glob match with fleet's pattern syntax (Go path.Match): * ? [set] [!set] [a-z] and \ escapes.
bool GlobMatch(std::string_view pattern, std::string_view name);
bool HasGlobMeta(std::string_view pattern);

// The first 8 bytes of a unit name packed in a word, so a scan over a machine's tasks can reject
// most glob patterns by their literal prefix without touching the (scattered) name strings.
inline uint64_t NamePrefix(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i)
    v |= uint64_t{static_cast<uint8_t>(s[i])} << (8 * i);
  return v;
}

struct PrefixFilter {
  uint64_t mask = 0, bits = 0;
  bool MayMatch(uint64_t prefix) const { return (prefix & mask) == bits; }
};

inline PrefixFilter PrefixFilterOf(std::string_view pattern) {
  size_t n = 0;
  while (n < 8 && n < pattern.size() && pattern[n] != '*' && pattern[n] != '?' &&
         pattern[n] != '[' && pattern[n] != '\\') {
    ++n;
  }
  uint64_t mask = n == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * n)) - 1;
  return PrefixFilter{mask, NamePrefix(pattern.substr(0, n)) & mask};
}

// SplitMix64: small, fast and deterministic for a given seed.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t s_;
};

// Machines passing a request's metadata-only constraints, cached per distinct constraint set.
struct CandidateSet {
  Bitset bits;
  uint64_t epoch = 0;  // alive-set epoch the value lists below were computed for
  std::unordered_map<uint32_t, std::vector<uint32_t>> values;  // attr -> values present
};

// A request resolved against the snapshot for one placement.
struct Compiled {
  struct Dyn {
    Operator op;
    uint32_t attr;     // kNone: no machine has the attribute
    uint32_t value;    // CLUSTER anchor (kNone: free), unused otherwise
    int64_t count;     // MAX_PER limit
    uint32_t min = 0;  // GROUP_BY: fewest tasks of the group on any value
    size_t index;      // in request.constraints
  };
  const TaskRequest* req = nullptr;
  uint32_t group = kNone;
  CandidateSet* statics = nullptr;
  uint32_t only_machine = kNone;  // MachineID / MachineOf resolved
  bool impossible = false;        // MachineID/MachineOf cannot be met; reason below
  std::string impossible_reason;
  Strategy strategy = Strategy::kSpread;
  int cpu_level = 0, mem_level = 0;
  std::vector<Dyn> dyn;
  std::vector<uint32_t> affinity_groups;  // kNone entries: group unknown (never satisfied)
  std::vector<uint32_t> anti_groups;
  bool scan_names = false;  // conflicts/replaces/unit affinities need the machine's task names
  std::vector<PrefixFilter> conflict_pf, anti_pf, affinity_pf, replace_pf;
};

enum class Filter : uint8_t {
  kOk,
  kLost,
  kStatic,   // metadata-only constraints (the explain path names which)
  kMachine,  // MachineID / MachineOf
  kCpu,
  kMemory,
  kDisk,
  kPort,
  kConstraint,  // request.constraints[index]
  kAffinityGroup,
  kAntiAffinityGroup,
  kConflicts,
  kReplaces,
  kAffinityUnit,
  kAntiAffinityUnit,
  kExcludedBy,  // a task already on the machine excludes this one
};

struct Verdict {
  Filter filter = Filter::kOk;
  uint32_t index = 0;  // constraint / pattern index or the excluding task
};

// Tasks already placed that exclude others (Conflicts, Replaces, anti-affinity): kept so the
// check runs both ways.
struct Exclusion {
  std::vector<std::string> patterns;   // globs over unit names
  std::vector<PrefixFilter> prefixes;  // of patterns
  std::vector<uint32_t> groups;
};

struct ExcluderEntry {
  uint32_t task;
  uint32_t group;              // excluded group, or kNone for a pattern entry
  PrefixFilter prefix;         // of *pattern
  const std::string* pattern;  // points into task_exclusions (map nodes never move)
};

inline constexpr uint8_t kGlobalFlag = 1;
inline constexpr uint8_t kExcluderFlag = 2;

struct Group {
  std::string name;
  std::vector<uint32_t> tasks;
  std::vector<uint32_t> tracked;  // attributes with maintained counts
};

struct Scheduler::Impl {
  SchedulerOptions opts;
  Rng rng{1};

  // Interned metadata strings.
  std::unordered_map<std::string, uint32_t> string_ids;
  std::vector<std::string> strings;
  uint32_t Intern(std::string_view s);
  uint32_t FindString(std::string_view s) const;

  // Machines, struct-of-arrays.
  std::vector<std::string> machine_ids;
  std::unordered_map<std::string, uint32_t> machine_by_id;
  std::vector<int64_t> cap_cpu, cap_mem, cap_disk, free_cpu, free_mem, free_disk;
  std::vector<std::vector<uint16_t>> used_ports;
  std::vector<std::vector<uint32_t>> machine_tasks;
  std::vector<std::vector<uint64_t>> machine_prefixes;  // NamePrefix of machine_tasks[m][i]
  // Per machine, one flat entry per excluded pattern or group of the tasks on it, so the hot
  // path scans contiguous memory and follows a pointer only when a name prefix matches.
  std::vector<std::vector<ExcluderEntry>> excluders;
  Bitset alive;
  uint64_t epoch = 1;  // bumped when the alive set changes
  std::vector<Bitset> cpu_levels, mem_levels;

  // Metadata: attr id -> name, per-machine value, value -> machines.
  std::vector<uint32_t> attr_names;
  std::unordered_map<uint32_t, uint32_t> attr_by_name;  // string id -> attr
  std::vector<std::vector<uint32_t>> attr_values;       // [attr][machine] -> string id / kNone
  std::vector<std::unordered_map<uint32_t, std::vector<uint32_t>>> attr_index;
  uint32_t AttrOf(std::string_view name) const;
  uint32_t ValueOf(uint32_t attr, uint32_t machine) const {
    return attr == kMachineAttr ? machine : attr_values[attr][machine];
  }

  // Tasks, struct-of-arrays; slots are reused after release.
  std::vector<std::string> task_name;
  std::vector<uint32_t> task_machine, task_group, task_pos_machine, task_pos_group;
  std::vector<int64_t> task_cpu, task_mem, task_disk;
  std::vector<uint8_t> task_flags;  // kGlobalFlag | kExcluderFlag
  std::vector<uint32_t> free_slots;
  size_t live_tasks = 0;
  std::unordered_map<std::string, uint32_t> task_by_name;  // non-global tasks
  std::unordered_map<std::string, std::vector<uint32_t>> global_instances;
  std::unordered_map<uint32_t, std::vector<uint16_t>> task_ports;
  std::unordered_map<uint32_t, Exclusion> task_exclusions;

  std::vector<Group> groups;
  std::unordered_map<std::string, uint32_t> group_by_name;
  CountMap counts;

  // Caches.
  std::unordered_map<std::string, std::unique_ptr<CandidateSet>> static_cache;
  CandidateSet all;
  std::string scratch;
  std::string group_scratch;
  // Compiled LIKE/UNLIKE regexes for the explain path (a failure summary looks at every machine).
  mutable std::unordered_map<std::string, std::unique_ptr<std::regex>> regex_cache;
  const std::regex* RegexFor(const std::string& pattern) const;  // null if invalid
  std::string last_group_name;  // consecutive requests of one group skip the hash lookup
  uint32_t last_group = kNone;
  Bitset affinity_mask;
  Compiled place_scratch;

  // --- scheduler.cc ---
  base::Status AddMachineImpl(const MachineSpec& spec);
  void UpdateLevels(uint32_t m);
  uint32_t GroupId(const std::string& name, bool create);
  void Track(uint32_t group, uint32_t attr);
  // Records the task on machine m. `name_reserved`: Place already holds the task_by_name slot.
  uint32_t Commit(const Compiled& c, const TaskRequest& req, uint32_t m,
                  bool name_reserved = false);
  void Uncommit(uint32_t task);

  // --- filters.cc ---
  base::Status Compile(const TaskRequest& req, Compiled* c);
  base::Status StaticSet(const TaskRequest& req, CandidateSet** out);
  // Fills *out with the request's counting group (empty: none).
  void GroupNameFor(const TaskRequest& req, std::string* out) const;
  const std::vector<uint32_t>& ValuesPresent(CandidateSet* set, uint32_t attr);
  Verdict Check(const Compiled& c, uint32_t m) const;         // every filter
  Verdict CheckDynamic(const Compiled& c, uint32_t m) const;  // all but alive/static/machine
  // Whether the counting or CLUSTER constraint `d` rejects machine m (part of CheckDynamic).
  bool DynRejects(const Compiled& c, const Compiled::Dyn& d, uint32_t m) const;
  bool CheckNames(const Compiled& c, uint32_t m, Verdict* v) const;
  double Score(const Compiled& c, uint32_t m) const;
  uint32_t Choose(const Compiled& c, double* score);
  std::string Describe(const Compiled& c, uint32_t m, Verdict v, std::string* filter) const;
  std::string Label(const Compiled& c, uint32_t m, Verdict v) const;
  // First metadata-only constraint rejecting m, for explanations; empty if none.
  bool StaticReason(const TaskRequest& req, uint32_t m, std::string* filter,
                    std::string* reason) const;
  std::string FailureSummary(const Compiled& c) const;

  // --- update.cc ---
  uint32_t AttrFor(std::string_view key);  // the attribute named `key`, created when new
  // The machine's metadata as (attribute, interned value) pairs, with the default
  // hostname=<id>. Checks the keys (none empty or given twice, at most kMaxAttributes in the
  // cluster) before it creates any attribute. Used by AddMachine and UpdateMachine.
  base::Result<std::vector<std::pair<uint32_t, uint32_t>>> InternMetadata(const MachineSpec& spec);
  // Releases task t (one instance of a global unit) for UpdateMachine.
  void Evict(uint32_t t);
};

inline bool Scheduler::Impl::DynRejects(const Compiled& c, const Compiled::Dyn& d,
                                        uint32_t m) const {
  if (d.attr == kNone) return true;
  uint32_t v = ValueOf(d.attr, m);
  if (v == kNone) return true;
  uint32_t n = counts.Get(CountKey(c.group, d.attr, v));
  switch (d.op) {
    case Operator::kUnique:
      return n > 0;
    case Operator::kMaxPer:
      return n >= d.count;
    case Operator::kGroupBy:
      return n > d.min;
    case Operator::kCluster:
      return d.value != kNone && v != d.value;
    default:
      return false;
  }
}

// ValidateRequest without compiling regexes (the hot path compiles them once per constraint set).
base::Status ValidateShape(const TaskRequest& request);
std::string FormatBytes(int64_t bytes);
std::string FormatCpu(int64_t millis);
// "web@3.service" -> "web@.service"; empty if not an instance name.
std::string TemplateOf(std::string_view name);

}  // namespace fjord::scheduler
