// Private to src/server: the in-memory view reads are served from, the reconciler, long-polls.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "api/protocol.h"
#include "api/types.h"
#include "base/clock.h"
#include "base/status.h"
#include "http/server.h"
#include "scheduler/scheduler.h"
#include "server/server.h"
#include "store/store.h"

namespace fjord::server {

// ---- Store keys (docs/PROTOCOL.md). Unit names and machine ids contain no '/'.
inline constexpr std::string_view kUnitsPrefix = "/units/";
inline constexpr std::string_view kMachinesPrefix = "/machines/";
inline constexpr std::string_view kSchedulePrefix = "/schedule/";
inline constexpr std::string_view kStatesPrefix = "/states/";
inline constexpr std::string_view kUnitFilesPrefix = "/unitfiles/";
inline constexpr std::string_view kMachineMetaPrefix = "/machinemeta/";
std::string UnitKey(std::string_view unit);
std::string UnitFileKey(std::string_view hash);
std::string MachineKey(std::string_view machine);
std::string MachineMetaKey(std::string_view machine);
std::string SchedulePrefix(std::string_view machine);
std::string ScheduleKey(std::string_view machine, std::string_view unit);
std::string StateKey(std::string_view machine, std::string_view unit);
// "/schedule/m/u" -> {"m","u"}; false if the key has another shape.
bool SplitMachineUnitKey(std::string_view key, std::string_view prefix, std::string* machine,
                         std::string* unit);

// ---- The view: what API reads are served from. Updated after each durable write.

// A unit's content: its options under their fleet content hash. Units with the same content (a
// template's instances) share one immutable body, interned in View::bodies, so a million
// instances of a few thousand apps keep a few thousand copies of their options.
struct UnitBody {
  std::string hash;
  std::vector<api::UnitOption> options;
  std::string options_json;  // `options` as a JSON array, spliced into schedule answers
  // Whether /unitfiles/<hash> is in the store (guarded by View::mu). A unit whose content no
  // other unit shares keeps its options inline in its /units record: one put, not two; the
  // file is written when a second unit (or a template's instances) shares the content.
  mutable bool file_stored = false;
};
using BodyPtr = std::shared_ptr<const UnitBody>;

struct PlacementView {
  // Where the unit is placed: one machine, or every machine of a global unit (first + others);
  // split so that the common case, one machine, needs no allocation.
  std::string first;
  std::vector<std::string> others;
  std::string reason;  // why it is not placed, when it is not
  bool global = false;
  bool published = false;  // false until the reconciler has seen the unit

  bool placed() const { return !first.empty(); }
  bool On(std::string_view machine) const {
    return machine == first || std::find(others.begin(), others.end(), machine) != others.end();
  }
};

struct UnitEntry {
  api::UnitStateName desired_state = api::UnitStateName::kInactive;
  BodyPtr body;
  store::Revision mod_revision = 0;  // of /units/<name>
  PlacementView placement;           // published by the reconciler
};

// Metadata set through PATCH /fleet/v1/machines, kept apart from the agent's registration (as
// fleet's registry did): a value overrides the agent's, nullopt removes the key (even one the
// agent sets again later). Stored as /machinemeta/<id>.
using MetadataOverrides = std::map<std::string, std::optional<std::string>, std::less<>>;
std::string MetadataOverridesJson(std::string_view machine, const MetadataOverrides& overrides);
base::Result<MetadataOverrides> MetadataOverridesFromJson(std::string_view json);

struct MachineEntry {
  api::MachineRegistration reg;  // as the agent registered it
  MetadataOverrides overrides;
  store::Revision overrides_revision = 0;  // of /machinemeta/<id>; 0: none stored
  base::Clock::TimePoint last_seen{};      // last heartbeat or registration (monotonic)
  int64_t last_seen_unix_ms = 0;
  bool alive = true;
  api::Resources free;  // published by the reconciler
  int64_t units = 0;    // published by the reconciler
};

// The metadata the scheduler and the APIs use: the agent's, with the overrides applied.
std::map<std::string, std::string> EffectiveMetadata(const MachineEntry& machine);

struct StateEntry {
  api::UnitStatusReport report;
  std::string json;  // as stored, to detect changes cheaply
};

// Every member is guarded by mu.
struct View {
  mutable std::mutex mu;
  std::map<std::string, UnitEntry, std::less<>> units;
  std::map<std::string, MachineEntry, std::less<>> machines;
  std::map<std::string, std::map<std::string, StateEntry>, std::less<>> states;  // machine, unit

  // The body with this hash and options: the interned one when a unit still holds it.
  BodyPtr InternLocked(std::string hash, std::vector<api::UnitOption> options);
  // The body with this hash if a unit still holds it, else null.
  BodyPtr FindBodyLocked(std::string_view hash) const;

 private:
  std::unordered_map<std::string, std::weak_ptr<const UnitBody>> bodies_;  // by hash
  size_t sweep_at_ = 1024;  // expired entries are swept when the table reaches this size
};

// Unit options -> scheduler request; `reason` says why a unit is not schedulable.
struct UnitSchedulingInfo {
  bool schedulable = false;  // false for templates and units that do not parse
  scheduler::TaskRequest request;
  std::string reason;
};
UnitSchedulingInfo SchedulingInfoOf(std::string_view name,
                                    const std::vector<api::UnitOption>& options);
// Whether SchedulingInfoOf depends on the unit's name beyond the request's `name` field: when an
// option uses a specifier (%i, %n, ...). Otherwise a template's instances share one request.
bool RequestDependsOnName(const std::vector<api::UnitOption>& options);

// The /units/<name> and /schedule/<machine>/<unit> value: {"name","hash","desiredState"}.
// Shared options are stored once under /unitfiles/<hash>, not with every unit and placement
// (a unit with content of its own carries them inline: `inline_options`); schedule answers
// splice them in from the unit's body.
std::string UnitRecordJson(std::string_view name, std::string_view hash, api::UnitStateName desired,
                           const std::vector<api::UnitOption>* inline_options = nullptr);

// ---- The reconciler: one thread owns the scheduler and writes /schedule keys.
//
// Level-triggered: UnitChanged/MachineChanged only name what changed; the thread compares the
// view with its own model and writes the difference. Thread-safety: the public methods marked
// "any thread" may be called from any thread; the rest only from the reconciler thread (inside
// a Post()ed function).
class Reconciler {
 public:
  struct Options {
    std::chrono::milliseconds grace{10000};
    scheduler::RateLimit rate;    // at least this
    double rate_per_machine = 0;  // per alive machine; the burst is a tenth of a second's worth
    uint64_t seed = 1;
  };
  Reconciler(Options options, store::Store* store, View* view, base::Clock* clock);
  ~Reconciler();

  // Before Start: rebuilds the scheduler from the view (loaded from the store) and the
  // /schedule keys in the store.
  base::Status Recover();
  void Start();
  void Stop();

  // Any thread.
  void UnitChanged(std::string name);
  void UnitsChanged(const std::vector<std::string>& names);  // one wake-up for many
  // `done` runs once the machine's schedule is consistent in the store (stale keys deleted).
  void MachineChanged(std::string id, std::function<void()> done);
  void Post(std::function<void()> fn);

  // Reconciler thread only.
  std::string Explain(const std::string& name);
  // Reasons of units not placed among `names` ("name: reason").
  std::vector<std::string> PendingAmong(const std::vector<std::string>& names);
  // Runs `done` after everything written so far is durable.
  void AfterFlush(std::function<void()> done);

 private:
  // A machine a unit is placed on, has a /schedule key on, or both (while it moves).
  struct Slot {
    uint32_t machine = 0;  // index in machine_ids_
    bool placed = false;   // the scheduler placed it there
    bool written = false;  // its /schedule key there is in the store, with this digest
    uint64_t digest = 0;
  };
  // The reconciler's model of a unit. Kept small: a million of them live at once.
  struct RUnit {
    api::UnitStateName desired = api::UnitStateName::kInactive;
    BodyPtr body;
    std::shared_ptr<const UnitSchedulingInfo> info;  // shared by instances of one template
    std::vector<Slot> slots;                         // sorted by machine
    std::string reason;

    bool active() const { return desired != api::UnitStateName::kInactive; }
    bool placed() const;
    Slot* Find(uint32_t machine);
    Slot& Get(uint32_t machine);  // inserted when missing
    void ClearPlaced();
    void DropUnused();  // slots neither placed nor written
  };

  void Run();
  void HandleUnit(const std::string& name);
  void HandleMachine(const std::string& id);
  // An alive machine's new metadata or capacity displaced units: queue them for rescheduling.
  void MachineUpdated(const std::string& id, const scheduler::MachineUpdate& update);
  void RemoveUnit(const std::string& name);
  void TryPlace(const std::string& name, RUnit& u);
  void ReplaceGlobal(const std::string& name, RUnit& u);
  void Release(const std::string& name, RUnit& u);
  void Sync(const std::string& name, RUnit& u);
  void CheckLiveness();
  void LoseMachine(const std::string& id);
  void Reschedule();
  void RetryPending();
  void Flush();
  void Publish();
  void LogPass();
  void Touch(const std::string& name) { touched_units_.insert(name); }
  std::shared_ptr<const UnitSchedulingInfo> InfoFor(const std::string& name, const UnitBody& body);
  // The request to give the scheduler for unit `name` (a shared request, named).
  const scheduler::TaskRequest& RequestFor(const std::string& name, const RUnit& u);
  void DropWritten(const std::string& name, RUnit& u, uint32_t machine);
  void UpdateRescheduleRate();  // after the number of alive machines changed
  void SetPlaced(RUnit& u, const std::vector<uint32_t>& machines);  // sorted
  std::vector<std::string> PlacedOn(const RUnit& u) const;
  uint32_t MachineIndex(const std::string& id);

  Options options_;
  store::Store* store_;
  View* view_;
  base::Clock* clock_;

  std::mutex mu_;  // guards the inbox below
  std::condition_variable cv_;
  bool stop_ = false;
  std::set<std::string> dirty_units_;
  std::vector<std::pair<std::string, std::function<void()>>> dirty_machines_;
  std::vector<std::function<void()>> tasks_;

  std::thread thread_;

  // Owned by the reconciler thread.
  std::unique_ptr<scheduler::Scheduler> sched_;
  scheduler::ReschedulePlanner planner_;
  std::map<std::string, RUnit, std::less<>> units_;
  // Requests shared by a template's instances: key hash + '\0' + template name.
  std::unordered_map<std::string, std::shared_ptr<const UnitSchedulingInfo>> shared_info_;
  scheduler::TaskRequest named_request_;  // RequestFor's scratch
  size_t shared_info_sweep_at_ = 1024;
  // Placing a million units is split into passes of this many, so the store commits one
  // pass while the next is placed.
  static constexpr size_t kPlacementsPerPass = 20000;
  size_t placed_this_pass_ = 0;
  bool more_work_ = false;  // a pass stopped at kPlacementsPerPass: run the next without waiting
  static constexpr int64_t kRescheduleBatchMs = 10;
  bool retry_in_progress_ = false;  // a sweep over pending_ continues at retry_cursor_
  std::string retry_cursor_;
  // Flushed transactions the store has not acknowledged (guarded by mu_): a pass waits while
  // there are kMaxFlushesInFlight, so a burst cannot queue a million writes in memory.
  static constexpr int kMaxFlushesInFlight = 2;
  int flushes_in_flight_ = 0;
  std::set<std::string> pending_;  // active, schedulable, not placed
  std::set<std::string> globals_;  // units with [X-Fleet] Global=true: visited on machine changes
  std::map<std::string, std::set<std::string>> waiting_on_;  // MachineOf target -> waiters
  bool retry_pending_ = false;
  bool placed_since_retry_ = false;
  bool replace_globals_ = false;
  std::map<std::string, std::optional<std::string>> ops_;  // key -> value (nullopt: delete)
  std::vector<std::function<void()>> flush_waiters_;
  std::set<std::string> touched_units_;
  base::Clock::TimePoint last_retry_{};
  base::Clock::TimePoint last_machine_publish_{};
  bool machines_stale_ = true;
  // Machine ids by index: units refer to machines by a 4-byte index.
  std::vector<std::string> machine_ids_;
  std::unordered_map<std::string, uint32_t> machine_index_;
  std::vector<int64_t> machine_units_;  // /schedule keys written per machine index
  std::vector<std::pair<std::string, std::string>> log_placed_;   // this pass: unit, machine
  std::vector<std::pair<std::string, std::string>> log_pending_;  // this pass: unit, new reason
};

// ---- Long-polls on store watchers (agent schedules, /v1/events).
//
// One thread serves every long-poll: a watcher's notification or a deadline wakes it, and it
// answers with `build` (which reads the store). Thread-safety: Add and Stop from any thread.
class LongPolls {
 public:
  using Build = std::function<http::Response(store::Store&, std::vector<store::Event> events)>;
  explicit LongPolls(store::Store* store, base::Clock* clock);
  ~LongPolls();
  void Start();
  void Stop();
  // Answers with build(events) as soon as the watcher has events, or with build({}) at
  // `deadline`.
  void Add(std::unique_ptr<store::Watcher> watcher, base::Clock::TimePoint deadline,
           http::Responder responder, Build build);

 private:
  struct Poll;
  void Run();

  store::Store* store_;
  base::Clock* clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::shared_ptr<Poll>> polls_;
  std::set<uint64_t> ready_;
  std::thread thread_;
};

// ---- Server internals shared by the API files.

struct Server::Impl {
  ServerOptions options;
  base::Clock* clock = nullptr;
  std::shared_ptr<store::Store> store;
  bool own_store = false;
  View view;
  std::unique_ptr<Reconciler> reconciler;
  std::unique_ptr<LongPolls> polls;
  std::unique_ptr<http::HttpServer> http;
  std::mutex stop_mu;
  bool stopped = false;

  // Every write of the handlers goes through here, so Stop can wait for their callbacks (which
  // use this Impl) even when the store is injected and outlives the server.
  void Write(store::TxnRequest txn, std::function<void(base::Result<store::TxnResponse>)> done);
  std::mutex inflight_mu;
  std::condition_variable inflight_cv;
  int64_t inflight = 0;  // guarded by inflight_mu

  base::Status LoadView();
  base::Status AddRoutes(http::Router& router);
  base::Status AddFleetRoutes(http::Router& router);
  base::Status AddNativeRoutes(http::Router& router);
  base::Status AddAgentRoutes(http::Router& router);

  // The write path for PUT /fleet/v1/units and PUT /v1/units (fleet's semantics).
  struct PutCall {
    std::string name;
    std::optional<api::UnitStateName> desired;
    std::vector<api::UnitOption> options;  // validated; empty when not given
    std::string hash;                      // of options
    bool native = false;
    http::Responder responder;
    int attempts = 0;
  };
  void PutUnit(std::shared_ptr<PutCall> call);
  // PATCH /fleet/v1/machines (machine_patch.cc).
  base::Status AddMachinePatchRoute(http::Router& router);
  struct MetadataPatch;
  void PatchMachines(std::shared_ptr<MetadataPatch> patch);
  void DeleteUnit(std::string name, bool native, http::Responder responder, int attempts = 0);
  void Scale(const http::Request& req, http::Responder resp);

  // Views for the APIs; callers hold view.mu.
  api::Unit FleetUnitLocked(const std::string& name, const UnitEntry& e) const;
  api::UnitView UnitViewLocked(const std::string& name, const UnitEntry& e,
                               bool with_options) const;
};

// ---- Helpers shared by the API files.

http::Response ErrorResponse(int code, std::string_view message, std::string_view field = {});
// Validates options (or unit file text) for `name`: 400 with the parser's diagnostics on error.
std::optional<http::Response> ValidateUnit(const std::string& name,
                                           const std::vector<api::UnitOption>& options,
                                           std::string* hash);
std::optional<http::Response> ValidateName(const std::string& name);
std::optional<http::Response> ParseUnitText(const std::string& name, std::string_view text,
                                            std::vector<api::UnitOption>* options,
                                            std::string* hash);
std::string EncodePageToken(std::string_view last);
std::optional<std::string> DecodePageToken(std::string_view token);
// Reads ?nextPageToken= into `after` (empty when absent); fleet's 400 when it is not a token.
std::optional<http::Response> PageAfter(const http::Request& req, std::string* after);
int64_t UnixMs(std::chrono::system_clock::time_point t);

}  // namespace fjord::server
