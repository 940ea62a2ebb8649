// fjord's scheduler: placement as a pure function of a cluster snapshot and a request.
//
// A Scheduler object holds one snapshot (machines with capacity and metadata, and the tasks
// already placed on them) and updates it incrementally as tasks are placed, released or lost with
// their machine. It does no I/O, reads no clock and starts no threads; any randomness comes from
// SchedulerOptions::seed, so a given snapshot, seed and call sequence always gives the same
// placements.
//
// Scale: machines are kept struct-of-arrays with 32-bit indices and interned metadata; constraints
// that depend only on metadata become cached bitsets (one per distinct constraint set, ANDed with
// "alive" and free-resource level bitsets), so a placement walks 64 machines per word and scores
// only the first k feasible machines after a random start (power-of-k choices) instead of every
// machine. See src/scheduler/README.md for the design and the figures.
//
// Thread-safety: a Scheduler is NOT thread-safe. The server owns it and serialises every call
// (single-owner model); concurrent placements and releases are a sequence of calls, and resource
// accounting stays exact across any interleaving of them. ReschedulePlanner is likewise
// single-owner. The free functions are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/status.h"

namespace fjord::scheduler {

struct Resources {
  int64_t cpu_millis = 0;    // 1000 = one core (CPUQuota=50% -> 500)
  int64_t memory_bytes = 0;  // MemoryMax= / MemoryLimit=
  int64_t disk_bytes = 0;    // [X-Fjord] Disk=
};

struct MachineSpec {
  std::string id;  // fleet machine ID
  // Key=value metadata (fleet's `metadata`), e.g. zone=z1, rack=r12. A machine without a
  // `hostname` key gets hostname=<id>, so UNIQUE hostname works everywhere.
  std::vector<std::pair<std::string, std::string>> metadata;
  Resources capacity;
};

enum class Strategy : uint8_t {
  kDefault,  // the cluster's SchedulerOptions::strategy
  kSpread,   // prefer the machine with the most free capacity left
  kBinPack,  // prefer the machine with the least free capacity left (best fit)
};

// Marathon-style operators over machine metadata. Counting operators count the tasks of the
// request's group (TaskRequest::group).
enum class Operator : uint8_t {
  kUnique,   // at most one task of the group per distinct value of `attribute`
  kCluster,  // all tasks of the group on one value (`value` if given, else the first one used)
  kGroupBy,  // spread evenly: a task only goes to a value with the fewest tasks of the group
             // (strict: it waits rather than unbalance); `count` = values required to exist
  kLike,     // attribute value fully matches regex `value`; machines without it are rejected
  kUnlike,   // attribute value does not match regex `value`; machines without it are accepted
  kMaxPer,   // at most `count` tasks of the group per value
};

struct AttributeConstraint {
  std::string attribute;  // metadata key, e.g. "rack"
  Operator op = Operator::kUnique;
  std::string value;  // regex (LIKE/UNLIKE) or the value (CLUSTER); empty otherwise
  int64_t count = 0;  // MAX_PER limit; GROUP_BY optional number of values
};

// "zone:GROUP_BY:3", "hostname:UNIQUE", "rack:LIKE:r1[0-9]", "rack:MAX_PER:2", "zone:CLUSTER:z1".
base::Result<AttributeConstraint> ParseConstraint(std::string_view text);
std::string_view OperatorName(Operator op);

// One MachineMetadata= line: key=v1 OR key=v2. Several requirements AND together.
struct MetadataRequirement {
  std::string key;
  std::vector<std::string> values;
};

// What a unit asks for, already parsed from its unit file (src/unit does the parsing).
struct TaskRequest {
  std::string name;   // "web@3.service"; for a global unit, the unit name
  std::string group;  // counting group; empty: "web@.service" for instances, else the name
  Resources resources;
  std::vector<uint16_t> ports;  // host ports, each must be free on the machine
  int priority = 0;             // higher is rescheduled first
  bool global = false;          // [X-Fleet] Global=true: one instance on every eligible machine
  Strategy strategy = Strategy::kDefault;

  // [X-Fleet]
  std::string machine_id;                             // MachineID=
  std::string machine_of;                             // MachineOf= (unit name)
  std::vector<MetadataRequirement> machine_metadata;  // MachineMetadata=
  std::vector<std::string> conflicts;                 // Conflicts= globs over unit names
  // Replaces=: this unit is never placed on a machine running a named unit, and a named unit is
  // never placed beside this one (checked both ways); this unit takes precedence in the sense
  // that it is placed without waiting for the replaced unit to move. See README.md.
  std::vector<std::string> replaces;

  // Marathon-style operators and affinities.
  std::vector<AttributeConstraint> constraints;
  std::vector<std::string> affinity_units;        // globs: each must match a unit on the machine
  std::vector<std::string> anti_affinity_units;   // globs: none may match (checked both ways)
  std::vector<std::string> affinity_groups;       // a task of each group must be on the machine
  std::vector<std::string> anti_affinity_groups;  // no task of these groups (checked both ways)
};

// Checks a request for values no machine could ever honour: empty name, negative resources,
// bad regex, port 0, duplicate ports, MAX_PER without a positive count...
base::Status ValidateRequest(const TaskRequest& request);

struct SchedulerOptions {
  uint64_t seed = 1;
  Strategy strategy = Strategy::kSpread;  // cluster default
  int spread_choices = 2;                 // k of power-of-k choices for spread
  int binpack_choices = 8;                // k for bin-pack (more choices pack tighter)
  size_t constraint_cache_limit = 4096;   // cached candidate bitsets before the cache is reset
};

struct Placement {
  std::string task;
  std::string machine_id;
  uint32_t machine = 0;  // index in the snapshot
  double score = 0;      // strategy score in [0,1]; higher was preferred
};

// Why one machine was rejected, or how it scored.
struct MachineVerdict {
  std::string machine_id;
  bool feasible = false;
  std::string filter;  // short filter name, e.g. "memory", "MachineMetadata region"
  std::string reason;  // "memory: needs 512 MiB, 128 MiB free"
  double score = 0;    // when feasible
};

struct Explanation {
  std::string task;
  Strategy strategy = Strategy::kSpread;
  size_t machines_total = 0;                  // alive machines considered
  size_t machines_feasible = 0;               // passing every filter
  std::map<std::string, size_t> rejected_by;  // filter name -> machines it rejected first
  std::vector<MachineVerdict> sample;         // a sample of machines, rejected and feasible
  std::optional<MachineVerdict> chosen;       // best-scoring feasible machine (exhaustive)
  std::string error;                          // request invalid
};

// Renders an Explanation for `fjord explain UNIT`.
std::string FormatExplanation(const Explanation& explanation);

// Keeps instances name@1..N of a template placed. `template_request.name` is "web@.service".
struct ScaleRequest {
  TaskRequest template_request;
  uint32_t instances = 0;
};

struct ScalePlan {
  std::vector<std::string> to_add;     // ascending index
  std::vector<std::string> to_remove;  // newest (highest index) first
};

// Pure plan: which instances to add and which to remove given the ones that exist.
base::Result<ScalePlan> PlanScale(std::string_view template_name, uint32_t instances,
                                  const std::vector<std::string>& existing);
// "web@.service", 3 -> "web@3.service". The template must contain "@.".
base::Result<std::string> InstanceName(std::string_view template_name, uint32_t index);

struct PendingTask {
  std::string name;
  std::string reason;
};

struct ScaleResult {
  std::vector<Placement> placed;
  std::vector<std::string> removed;
  std::vector<PendingTask> pending;
};

struct TaskLocation {
  std::string name;
  std::string machine_id;
  uint32_t machine = 0;
};

// What Scheduler::UpdateMachine changed. Tasks that no longer fit the machine were released;
// each comes with why ("machine a changed: MachineMetadata region=se-sto: machine has ...").
struct MachineUpdate {
  bool changed = false;                      // metadata or capacity differ from before
  std::vector<PendingTask> displaced;        // non-global tasks released: reschedule them
  std::vector<PendingTask> globals_removed;  // global units whose instance there was released
};

// The request a placed task was placed with (by task name), or null when the caller does not
// know it (the task then stays where it is unless the machine's capacity forces it out). The
// pointer must stay valid until the next call.
using RequestLookup = std::function<const TaskRequest*(std::string_view task)>;

class Scheduler {
 public:
  // Machine ids must be unique and non-empty, capacities non-negative.
  static base::Result<std::unique_ptr<Scheduler>> Create(std::vector<MachineSpec> machines,
                                                         SchedulerOptions options = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Chooses a machine for `request` and commits it. Errors: kInvalidArgument for a bad request,
  // kAlreadyExists if the name is placed, kResourceExhausted when no machine fits (the message
  // says which filters rejected how many machines: the task stays pending with that reason).
  base::Result<Placement> Place(const TaskRequest& request);

  // Places a global unit on every eligible machine; machines that pass its metadata filters
  // but fail another (resources, conflicts) are returned as pending "name on machine: reason".
  base::Result<std::vector<Placement>> PlaceGlobal(const TaskRequest& request,
                                                   std::vector<PendingTask>* not_placed);

  // Restores an existing placement from the store. Fails if the machine lacks room or is lost;
  // constraints are not re-checked (the placement already happened).
  base::Status Assign(const TaskRequest& request, std::string_view machine_id);

  // Removes a placed task (every instance of a global unit) and frees its resources.
  base::Status Release(std::string_view task_name);

  // Marks a machine lost: it takes no work; its tasks are released. Returns the non-global tasks
  // to reschedule (global units are not rescheduled).
  base::Result<std::vector<std::string>> LoseMachine(std::string_view machine_id);

  // Adds a new machine (a new id; a lost machine comes back with ReviveMachine).
  base::Status AddMachine(const MachineSpec& machine);
  // Brings a lost machine back under the same id, empty, with its last capacity and metadata
  // (AddMachine or UpdateMachine). NotFound for an unknown id, FailedPrecondition if it is alive.
  base::Status ReviveMachine(std::string_view machine_id);
  // Changes a known machine's metadata and capacity in place (a re-registration, an operator's
  // metadata patch). Its placements stay, except those that no longer fit, which are released
  // and returned, evicted in this order (non-global before global, lower priority first, then
  // names in reverse order):
  //   1. capacity: while a resource is over-committed, tasks using that resource;
  //   2. metadata, when a value changed: tasks whose metadata-only constraints (MachineMetadata,
  //      LIKE, UNLIKE, CLUSTER:v) or counting operators over a changed attribute would reject
  //      the machine now (the task itself not counted); requests come from `request_of`;
  //   3. MachineOf followers of a task that left.
  // Nothing else is re-checked (ports, Conflicts and affinities do not depend on the machine).
  // A lost machine only takes the new values. NotFound for an unknown id; InvalidArgument for a
  // bad spec (as AddMachine), in which case nothing changes.
  base::Result<MachineUpdate> UpdateMachine(const MachineSpec& machine,
                                            const RequestLookup& request_of);
  bool HasMachine(std::string_view machine_id) const;
  bool IsAlive(std::string_view machine_id) const;

  // Keeps name@1..N placed: places missing instances, removes the newest extra ones first.
  base::Result<ScaleResult> Scale(const ScaleRequest& request);

  // Which filter rejected each sampled machine, and the best score. Does not change state.
  Explanation Explain(const TaskRequest& request, size_t sample) const;

  // Introspection.
  size_t machine_count() const;
  size_t alive_machine_count() const;
  size_t task_count() const;  // placed task instances (each global instance counts)
  std::optional<TaskLocation> Locate(std::string_view task_name) const;
  base::Result<Resources> Free(std::string_view machine_id) const;
  std::vector<TaskLocation> Tasks() const;  // every placed instance
  // Bytes held by the scheduler's data structures (capacity of vectors, strings on the heap,
  // hash-table buckets and nodes), a precise estimate rather than RSS.
  size_t MemoryBytes() const;

  struct Impl;

 private:
  explicit Scheduler(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Rate-limited, ordered rescheduling after machines are lost. Pure: time comes in as an argument.
// A token bucket (rate per second, burst) bounds placements per second; tasks leave the queue
// by priority (higher first), then name, except that a task following a queued MachineOf target
// leaves right after that target. A task whose placement failed stays pending with its reason
// until RetryPending() (call it when the cluster changes). Global units are never queued.
struct RateLimit {
  double per_second = 1000;
  double burst = 100;
};

struct DisplacedTask {
  std::string name;
  int priority = 0;
  bool global = false;
  // MachineOf= target: when it is queued too, this task leaves right after it (whatever its
  // own priority), so the pair lands together before other work fills the target's machine.
  std::string follows;
};

class ReschedulePlanner {
 public:
  ReschedulePlanner(RateLimit limit, int64_t now_ms);

  // Changes the rate from `now_ms` on (tokens earned so far are kept, up to the new burst).
  void SetLimit(RateLimit limit, int64_t now_ms);
  const RateLimit& limit() const { return limit_; }

  void Add(const std::vector<DisplacedTask>& tasks);
  // The next tasks to place now: as many as there are whole tokens, in order.
  std::vector<std::string> NextBatch(int64_t now_ms);
  // A placement of `name` failed: keep it pending with `reason`.
  void MarkPending(std::string name, int priority, std::string reason);
  // Moves every pending task back to the queue (returns how many).
  size_t RetryPending();
  // Milliseconds from `now_ms` until at least one token is available (0 if now).
  int64_t MillisUntilNextToken(int64_t now_ms) const;

  size_t queued() const { return queue_.size(); }
  const std::map<std::string, PendingTask>& pending() const { return pending_; }

 private:
  void Refill(int64_t now_ms);

  RateLimit limit_;
  double tokens_;
  int64_t last_ms_;
  std::set<std::pair<int, std::string>> queue_;        // (-priority, name); INT_MIN: next follower
  std::unordered_set<std::string> queued_names_;       // the names in queue_
  std::multimap<std::string, std::string> followers_;  // target -> tasks waiting for it
  std::map<std::string, PendingTask> pending_;
  std::map<std::string, int> pending_priority_;
};

}  // namespace fjord::scheduler
