// The reconciler: the one thread that owns the scheduler and writes /schedule keys.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "server/impl.h"

namespace fjord::server {

namespace {

int64_t SteadyMs(base::Clock::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

scheduler::MachineSpec SpecOf(const std::string& id, const MachineEntry& machine) {
  const api::MachineRegistration& reg = machine.reg;
  scheduler::MachineSpec spec;
  spec.id = id;
  for (auto& [k, v] : EffectiveMetadata(machine)) spec.metadata.emplace_back(k, std::move(v));
  spec.capacity.cpu_millis = reg.capacity.cpu_millis;
  spec.capacity.memory_bytes = reg.capacity.memory_bytes;
  spec.capacity.disk_bytes = reg.capacity.disk_bytes;
  return spec;
}

uint64_t Digest(std::string_view value) { return std::hash<std::string_view>{}(value); }

// Which units can share a scheduling request (with equal content): the instances of one
// template ("web@3.service" -> "web@.service"). Any other unit is alone with its own name,
// marked so that a template's own key differs from its instances'.
std::string TemplateKey(std::string_view name) {
  size_t at = name.find('@'), dot = name.rfind('.');
  if (at == std::string_view::npos || dot == std::string_view::npos || dot <= at + 1) {
    return "=" + std::string(name);
  }
  return std::string(name.substr(0, at + 1)).append(name.substr(dot));
}

}  // namespace

bool Reconciler::RUnit::placed() const {
  return std::any_of(slots.begin(), slots.end(), [](const Slot& s) { return s.placed; });
}

Reconciler::Slot* Reconciler::RUnit::Find(uint32_t machine) {
  auto it = std::lower_bound(slots.begin(), slots.end(), machine,
                             [](const Slot& s, uint32_t m) { return s.machine < m; });
  return it != slots.end() && it->machine == machine ? &*it : nullptr;
}

Reconciler::Slot& Reconciler::RUnit::Get(uint32_t machine) {
  auto it = std::lower_bound(slots.begin(), slots.end(), machine,
                             [](const Slot& s, uint32_t m) { return s.machine < m; });
  if (it != slots.end() && it->machine == machine) return *it;
  Slot slot;
  slot.machine = machine;
  return *slots.insert(it, slot);
}

void Reconciler::RUnit::ClearPlaced() {
  for (auto& s : slots) s.placed = false;
  DropUnused();
}

void Reconciler::RUnit::DropUnused() {
  std::erase_if(slots, [](const Slot& s) { return !s.placed && !s.written; });
}

uint32_t Reconciler::MachineIndex(const std::string& id) {
  auto [it, added] = machine_index_.emplace(id, static_cast<uint32_t>(machine_ids_.size()));
  if (added) {
    machine_ids_.push_back(id);
    machine_units_.push_back(0);
  }
  return it->second;
}

void Reconciler::SetPlaced(RUnit& u, const std::vector<uint32_t>& machines) {
  for (auto& s : u.slots) s.placed = false;
  for (uint32_t m : machines) u.Get(m).placed = true;
  u.DropUnused();
}

std::vector<std::string> Reconciler::PlacedOn(const RUnit& u) const {
  std::vector<std::string> out;
  for (const auto& s : u.slots) {
    if (s.placed) out.push_back(machine_ids_[s.machine]);
  }
  return out;
}

Reconciler::Reconciler(Options options, store::Store* store, View* view, base::Clock* clock)
    : options_(options),
      store_(store),
      view_(view),
      clock_(clock),
      planner_(options.rate, SteadyMs(clock->Now())) {}

Reconciler::~Reconciler() { Stop(); }

std::shared_ptr<const UnitSchedulingInfo> Reconciler::InfoFor(const std::string& name,
                                                              const UnitBody& body) {
  if (RequestDependsOnName(body.options)) {
    return std::make_shared<const UnitSchedulingInfo>(SchedulingInfoOf(name, body.options));
  }
  std::string key = body.hash;
  key += '\0';
  key += TemplateKey(name);
  auto& slot = shared_info_[key];
  if (!slot)
    slot = std::make_shared<const UnitSchedulingInfo>(SchedulingInfoOf(name, body.options));
  auto info = slot;
  // Requests no unit holds any more are dropped when the table has doubled.
  if (shared_info_.size() >= shared_info_sweep_at_) {
    std::erase_if(shared_info_, [](const auto& kv) { return kv.second.use_count() == 1; });
    shared_info_sweep_at_ = std::max<size_t>(1024, 2 * shared_info_.size());
  }
  return info;
}

const scheduler::TaskRequest& Reconciler::RequestFor(const std::string& name, const RUnit& u) {
  if (u.info->request.name == name) return u.info->request;
  named_request_ = u.info->request;  // assignment reuses the scratch's storage
  named_request_.name = name;
  return named_request_;
}

base::Status Reconciler::Recover() {
  scheduler::SchedulerOptions so;
  so.seed = options_.seed;
  std::vector<scheduler::MachineSpec> specs;
  {
    std::lock_guard<std::mutex> l(view_->mu);
    for (const auto& [id, m] : view_->machines) specs.push_back(SpecOf(id, m));
    for (const auto& [name, e] : view_->units) {
      RUnit u;
      u.desired = e.desired_state;
      u.body = e.body;
      units_.emplace_hint(units_.end(), name, std::move(u));
    }
  }
  auto sched = scheduler::Scheduler::Create(std::move(specs), so);
  if (!sched.ok()) return sched.status().Wrap("rebuild the scheduler from the store");
  sched_ = std::move(*sched);
  for (auto& [name, u] : units_) {
    u.info = InfoFor(name, *u.body);
    if (u.info->request.global) globals_.insert(name);
  }

  // Existing placements: Assign what is still valid, delete the rest.
  auto range = store_->Range({std::string(kSchedulePrefix), store::PrefixEnd(kSchedulePrefix)});
  if (!range.ok()) return range.status().Wrap("read placements");
  size_t restored = 0;
  for (const auto& kv : range->kvs) {
    std::string machine, unit;
    if (!SplitMachineUnitKey(kv.key, kSchedulePrefix, &machine, &unit)) {
      ops_[kv.key] = std::nullopt;
      continue;
    }
    auto it = units_.find(unit);
    if (it == units_.end()) {
      ops_[kv.key] = std::nullopt;
      continue;
    }
    RUnit& u = it->second;
    uint32_t m = MachineIndex(machine);
    Slot& slot = u.Get(m);
    if (!slot.written) {
      slot.written = true;
      slot.digest = Digest(kv.value);
      ++machine_units_[m];
    }
    if (!u.info->schedulable || !u.active() || !sched_->HasMachine(machine)) continue;
    if (!u.info->request.global && u.placed()) continue;  // duplicate: Sync deletes it
    if (sched_->Assign(RequestFor(unit, u), machine).ok()) {
      u.Get(m).placed = true;
      ++restored;
    }
  }
  for (auto& [name, u] : units_) {
    if (u.info->schedulable && u.active() && !u.placed()) pending_.insert(name);
    Sync(name, u);  // drops keys of inactive units and duplicates, rewrites changed content
    Touch(name);
  }
  retry_pending_ = true;
  replace_globals_ = true;
  UpdateRescheduleRate();
  spdlog::info("recovered {} units, {} placements, {} machines from the store", units_.size(),
               restored, sched_->machine_count());
  return base::Status::Ok();
}

void Reconciler::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Reconciler::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // The store calls back into this object: wait for the flushes it has not acknowledged yet
  // (it is still open: the server closes it after stopping the reconciler).
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [this] { return flushes_in_flight_ == 0; });
}

void Reconciler::UnitChanged(std::string name) {
  {
    std::lock_guard<std::mutex> l(mu_);
    dirty_units_.insert(std::move(name));
  }
  cv_.notify_one();
}

void Reconciler::UnitsChanged(const std::vector<std::string>& names) {
  {
    std::lock_guard<std::mutex> l(mu_);
    dirty_units_.insert(names.begin(), names.end());
  }
  cv_.notify_one();
}

void Reconciler::MachineChanged(std::string id, std::function<void()> done) {
  {
    std::lock_guard<std::mutex> l(mu_);
    dirty_machines_.emplace_back(std::move(id), std::move(done));
  }
  cv_.notify_one();
}

void Reconciler::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> l(mu_);
    tasks_.push_back(std::move(fn));
  }
  cv_.notify_one();
}

void Reconciler::AfterFlush(std::function<void()> done) {
  flush_waiters_.push_back(std::move(done));
}

void Reconciler::Run() {
  // Liveness is checked at least this often.
  auto tick = std::max(std::chrono::milliseconds(10), options_.grace / 10);
  tick = std::min(tick, std::chrono::milliseconds(200));
  while (true) {
    std::set<std::string> units;
    std::vector<std::pair<std::string, std::function<void()>>> machines;
    std::vector<std::function<void()>> tasks;
    {
      std::unique_lock<std::mutex> l(mu_);
      if (more_work_) {
        // Go on at once, but not faster than the store commits.
        cv_.wait(l, [this] { return stop_ || flushes_in_flight_ < kMaxFlushesInFlight; });
      } else {
        int64_t wait_ms = tick.count();
        if (planner_.queued() > 0) {
          // Displaced units leave in batches at least 10 ms apart: a pass per token would spend
          // the time on the pass (liveness, publishing, a transaction), not on placing.
          int64_t token_ms = planner_.MillisUntilNextToken(SteadyMs(clock_->Now()));
          wait_ms = std::min<int64_t>(wait_ms, std::max<int64_t>(token_ms, kRescheduleBatchMs));
        }
        cv_.wait_for(l, std::chrono::milliseconds(std::max<int64_t>(wait_ms, 1)), [this] {
          return stop_ || !dirty_units_.empty() || !dirty_machines_.empty() || !tasks_.empty();
        });
      }
      if (stop_) break;
      while (!dirty_units_.empty() && units.size() < kPlacementsPerPass) {
        units.insert(dirty_units_.extract(dirty_units_.begin()));
      }
      more_work_ = !dirty_units_.empty();
      machines.swap(dirty_machines_);
      tasks.swap(tasks_);
    }
    placed_this_pass_ = 0;
    for (auto& [id, done] : machines) {
      HandleMachine(id);
      if (done) AfterFlush(std::move(done));
    }
    for (const auto& name : units) HandleUnit(name);
    CheckLiveness();
    Reschedule();
    RetryPending();
    for (auto& task : tasks) task();
    // Publish first: whoever is answered after the flush sees the placements in the view.
    Publish();
    Flush();
    LogPass();
  }
  // Answer whoever waits for a flush: the store completes what was sent before it closes.
  for (auto& done : flush_waiters_) done();
  flush_waiters_.clear();
}

void Reconciler::HandleUnit(const std::string& name) {
  api::UnitStateName desired{};
  BodyPtr body;
  {
    std::lock_guard<std::mutex> l(view_->mu);
    auto it = view_->units.find(name);
    if (it != view_->units.end()) {
      desired = it->second.desired_state;
      body = it->second.body;
    }
  }
  auto it = units_.find(name);
  if (!body) {
    if (it != units_.end()) RemoveUnit(name);
    return;
  }
  if (it != units_.end() && it->second.body->hash != body->hash) {
    RemoveUnit(name);  // destroyed and submitted again with other content
    it = units_.end();
  }
  if (it == units_.end()) {
    RUnit u;
    u.info = InfoFor(name, *body);
    if (u.info->request.global) globals_.insert(name);
    it = units_.emplace(name, std::move(u)).first;
  }
  RUnit& u = it->second;
  u.desired = desired;
  u.body = std::move(body);
  Touch(name);
  if (!u.info->schedulable) {
    u.reason = u.info->reason;
  } else if (!u.active()) {
    Release(name, u);
    u.reason.clear();
    pending_.erase(name);
  } else if (!u.placed()) {
    TryPlace(name, u);
  }
  Sync(name, u);
}

void Reconciler::RemoveUnit(const std::string& name) {
  auto it = units_.find(name);
  if (it == units_.end()) return;
  RUnit& u = it->second;
  Release(name, u);
  pending_.erase(name);
  {
    // Its reported states go with it: they can only be on the machines it was scheduled to.
    std::lock_guard<std::mutex> l(view_->mu);
    for (const auto& slot : u.slots) {
      const std::string& machine = machine_ids_[slot.machine];
      auto states = view_->states.find(machine);
      if (states != view_->states.end() && states->second.erase(name) > 0) {
        ops_[StateKey(machine, name)] = std::nullopt;
      }
    }
  }
  for (const auto& slot : u.slots) {
    if (!slot.written) continue;
    ops_[ScheduleKey(machine_ids_[slot.machine], name)] = std::nullopt;
    --machine_units_[slot.machine];
  }
  units_.erase(it);
  globals_.erase(name);
  touched_units_.erase(name);
}

void Reconciler::Release(const std::string& name, RUnit& u) {
  if (!u.placed()) return;
  (void)sched_->Release(name);
  u.ClearPlaced();
  retry_pending_ = true;  // room was freed
}

void Reconciler::TryPlace(const std::string& name, RUnit& u) {
  ++placed_this_pass_;
  if (u.info->request.global) {
    ReplaceGlobal(name, u);
    return;
  }
  auto placed = sched_->Place(RequestFor(name, u));
  if (placed.ok()) {
    SetPlaced(u, {MachineIndex(placed->machine_id)});
    u.reason.clear();
    pending_.erase(name);
    placed_since_retry_ = true;
    log_placed_.emplace_back(name, placed->machine_id);
    auto w = waiting_on_.find(name);
    if (w != waiting_on_.end()) {
      for (const auto& waiter : w->second) {
        auto wu = units_.find(waiter);
        if (wu != units_.end() && pending_.count(waiter)) TryPlace(waiter, wu->second);
        if (wu != units_.end()) Sync(waiter, wu->second);
      }
      waiting_on_.erase(w);
    }
  } else {
    std::string reason(placed.status().message());
    if (u.reason != reason) log_pending_.emplace_back(name, reason);
    u.reason = reason;
    pending_.insert(name);
    if (!u.info->request.machine_of.empty()) {
      waiting_on_[u.info->request.machine_of].insert(name);
    }
  }
  Touch(name);
}

void Reconciler::ReplaceGlobal(const std::string& name, RUnit& u) {
  (void)sched_->Release(name);
  std::vector<scheduler::PendingTask> not_placed;
  auto placed = sched_->PlaceGlobal(RequestFor(name, u), &not_placed);
  std::vector<uint32_t> machines;
  if (placed.ok()) {
    for (const auto& p : *placed) machines.push_back(MachineIndex(p.machine_id));
    std::sort(machines.begin(), machines.end());
    machines.erase(std::unique(machines.begin(), machines.end()), machines.end());
  }
  std::string reason;
  if (!placed.ok()) {
    reason = std::string(placed.status().message());
  } else if (machines.empty()) {
    reason = not_placed.empty() ? "no alive machine matches its [X-Fleet] requirements"
                                : not_placed.front().reason;
  } else if (!not_placed.empty()) {
    reason =
        "not on " + std::to_string(not_placed.size()) + " machines: " + not_placed.front().reason;
  }
  std::vector<uint32_t> before;
  for (const auto& slot : u.slots) {
    if (slot.placed) before.push_back(slot.machine);
  }
  if (machines != before) spdlog::info("global unit {} on {} machines", name, machines.size());
  SetPlaced(u, machines);
  u.reason = reason;
  if (machines.empty()) {
    pending_.insert(name);
  } else {
    pending_.erase(name);
  }
  Touch(name);
}

void Reconciler::DropWritten(const std::string& name, RUnit& u, uint32_t machine) {
  Slot* slot = u.Find(machine);
  if (slot == nullptr || !slot->written) return;
  ops_[ScheduleKey(machine_ids_[machine], name)] = std::nullopt;
  --machine_units_[machine];
  slot->written = false;
  u.DropUnused();
}

void Reconciler::Sync(const std::string& name, RUnit& u) {
  bool scheduled = u.active() && u.placed();
  std::string value;
  uint64_t digest = 0;
  if (scheduled) {
    value = UnitRecordJson(name, u.body->hash, u.desired);
    digest = Digest(value);
  }
  for (auto& slot : u.slots) {
    bool want = scheduled && slot.placed;
    if (slot.written && !want) {
      ops_[ScheduleKey(machine_ids_[slot.machine], name)] = std::nullopt;
      --machine_units_[slot.machine];
      slot.written = false;
    } else if (want && (!slot.written || slot.digest != digest)) {
      if (!slot.written) ++machine_units_[slot.machine];
      ops_[ScheduleKey(machine_ids_[slot.machine], name)] = value;
      slot.written = true;
      slot.digest = digest;
    }
  }
  u.DropUnused();
}

void Reconciler::HandleMachine(const std::string& id) {
  scheduler::MachineSpec spec;
  std::string primary_ip;
  bool alive = false;
  {
    std::lock_guard<std::mutex> l(view_->mu);
    auto it = view_->machines.find(id);
    if (it == view_->machines.end()) return;
    spec = SpecOf(id, it->second);
    primary_ip = it->second.reg.primary_ip;
    alive = it->second.alive;
  }
  // The request each placed unit was placed with, for UpdateMachine's re-checks.
  auto request_of = [this](std::string_view task) -> const scheduler::TaskRequest* {
    auto it = units_.find(task);
    if (it == units_.end() || !it->second.info->schedulable) return nullptr;
    return &RequestFor(it->first, it->second);
  };
  if (!sched_->HasMachine(id)) {
    if (base::Status st = sched_->AddMachine(spec); !st.ok()) {
      spdlog::error("machine {}: {}", id, st.ToString());
      return;
    }
    spdlog::debug("machine {} registered ({})", id, primary_ip);
  } else if (!sched_->IsAlive(id)) {
    // A lost machine holds nothing: it only takes its new values (a re-registration, or a
    // metadata patch while it is away, which must not bring it back).
    if (auto st = sched_->UpdateMachine(spec, request_of); !st.ok()) {
      spdlog::error("machine {}: {}", id, st.status().ToString());
    }
    if (!alive) {
      machines_stale_ = true;
      return;
    }
    (void)sched_->ReviveMachine(id);
    spdlog::info("machine {} is back", id);
    // It gets only what is scheduled to it now: drop keys of units that moved or wait.
    uint32_t m = MachineIndex(id);
    for (auto it = units_.begin(); machine_units_[m] > 0 && it != units_.end(); ++it) {
      Slot* slot = it->second.Find(m);
      if (slot != nullptr && !slot->placed) DropWritten(it->first, it->second, m);
    }
  } else {
    // Alive: its metadata or capacity may have changed (agent restarted with other values, a
    // metadata patch). What no longer fits there is rescheduled.
    auto update = sched_->UpdateMachine(spec, request_of);
    if (!update.ok()) {
      spdlog::error("machine {}: keeping its previous metadata and capacity: {}", id,
                    update.status().ToString());
      return;
    }
    if (!update->changed) return;
    MachineUpdated(id, *update);
  }
  retry_pending_ = true;
  replace_globals_ = true;
  machines_stale_ = true;
  UpdateRescheduleRate();
}

void Reconciler::MachineUpdated(const std::string& id, const scheduler::MachineUpdate& update) {
  uint32_t m = MachineIndex(id);
  std::vector<scheduler::DisplacedTask> tasks;
  for (const auto& d : update.displaced) {
    auto it = units_.find(d.name);
    if (it == units_.end()) continue;
    RUnit& u = it->second;
    // Its key stays (the agent keeps it running) until it is placed again: make before break,
    // as for a lost machine.
    if (Slot* slot = u.Find(m)) slot->placed = false;
    u.reason = d.reason + "; waiting to be rescheduled";
    log_pending_.emplace_back(d.name, u.reason);
    Touch(d.name);
    scheduler::DisplacedTask t;
    t.name = d.name;
    t.priority = u.info->request.priority;
    t.follows = u.info->request.machine_of;
    tasks.push_back(std::move(t));
  }
  planner_.Add(tasks);
  // A global unit's instance there goes now; ReplaceGlobal adds instances the machine gained.
  for (const auto& g : update.globals_removed) {
    auto it = units_.find(g.name);
    if (it == units_.end()) continue;
    Slot* slot = it->second.Find(m);
    if (slot != nullptr && slot->placed) {
      slot->placed = false;
      Sync(g.name, it->second);
      Touch(g.name);
    }
  }
  spdlog::info("machine {} changed: {} units to reschedule, {} global units removed there", id,
               tasks.size(), update.globals_removed.size());
}

void Reconciler::UpdateRescheduleRate() {
  scheduler::RateLimit rate = options_.rate;
  double scaled = options_.rate_per_machine * static_cast<double>(sched_->alive_machine_count());
  if (scaled > rate.per_second) {
    rate.per_second = scaled;
    rate.burst = std::max(rate.burst, scaled / 10);
  }
  const scheduler::RateLimit& now = planner_.limit();
  if (rate.per_second == now.per_second && rate.burst == now.burst) return;
  planner_.SetLimit(rate, SteadyMs(clock_->Now()));
}

void Reconciler::CheckLiveness() {
  auto now = clock_->Now();
  std::vector<std::string> lost;
  {
    std::lock_guard<std::mutex> l(view_->mu);
    for (auto& [id, m] : view_->machines) {
      if (m.alive && now - m.last_seen > options_.grace) {
        m.alive = false;
        lost.push_back(id);
      }
    }
  }
  for (const auto& id : lost) LoseMachine(id);
}

void Reconciler::LoseMachine(const std::string& id) {
  if (!sched_->HasMachine(id) || !sched_->IsAlive(id)) return;
  auto displaced = sched_->LoseMachine(id);
  if (!displaced.ok()) return;
  uint32_t m = MachineIndex(id);
  std::vector<scheduler::DisplacedTask> tasks;
  for (const auto& name : *displaced) {
    auto it = units_.find(name);
    if (it == units_.end()) continue;
    // Its old key stays until the new one is written.
    if (Slot* slot = it->second.Find(m)) slot->placed = false;
    it->second.reason = "its machine " + id + " was lost; waiting to be rescheduled";
    Touch(name);
    scheduler::DisplacedTask t;
    t.name = name;
    t.follows = it->second.info->request.machine_of;
    tasks.push_back(std::move(t));
  }
  UpdateRescheduleRate();
  planner_.Add(tasks);
  // Global units lose their instance there.
  for (const auto& name : globals_) {
    RUnit& u = units_.at(name);
    Slot* slot = u.Find(m);
    if (slot != nullptr && slot->placed) {
      slot->placed = false;
      Sync(name, u);
      Touch(name);
    }
  }
  // Its states age out.
  {
    std::lock_guard<std::mutex> l(view_->mu);
    auto it = view_->states.find(id);
    if (it != view_->states.end()) {
      for (const auto& [unit, state] : it->second) ops_[StateKey(id, unit)] = std::nullopt;
      view_->states.erase(it);
    }
  }
  spdlog::warn("machine {} lost (no heartbeat for {} ms): {} units to reschedule", id,
               options_.grace.count(), tasks.size());
  retry_pending_ = true;
}

void Reconciler::Reschedule() {
  if (planner_.queued() == 0) return;
  for (const auto& name : planner_.NextBatch(SteadyMs(clock_->Now()))) {
    auto it = units_.find(name);
    if (it == units_.end()) continue;
    RUnit& u = it->second;
    if (!u.active() || !u.info->schedulable || u.placed()) continue;
    TryPlace(name, u);
    Sync(name, u);  // deletes the old key in the same transaction as the new one is written
  }
}

void Reconciler::RetryPending() {
  if (replace_globals_) {
    replace_globals_ = false;
    for (const auto& name : globals_) {
      RUnit& u = units_.at(name);
      if (u.info->schedulable && u.active()) {
        ReplaceGlobal(name, u);
        Sync(name, u);
      }
    }
  }
  if (pending_.empty()) {
    retry_in_progress_ = false;
    return;
  }
  // Pending units are retried when room was freed or machines changed, and at most once a
  // second after other units were placed (one may satisfy another's affinity). A sweep over
  // many pending units spans several passes, kPlacementsPerPass at a time.
  if (!retry_in_progress_) {
    auto now = clock_->Now();
    if (!retry_pending_ && (!placed_since_retry_ || now - last_retry_ < std::chrono::seconds(1))) {
      return;
    }
    retry_pending_ = false;
    placed_since_retry_ = false;
    last_retry_ = now;
    retry_in_progress_ = true;
    retry_cursor_.clear();
  }
  std::vector<std::string> names;
  auto it = pending_.lower_bound(retry_cursor_);
  size_t budget =
      kPlacementsPerPass > placed_this_pass_ ? kPlacementsPerPass - placed_this_pass_ : 0;
  for (; it != pending_.end() && names.size() < budget; ++it) names.push_back(*it);
  if (it == pending_.end()) {
    retry_in_progress_ = false;
  } else {
    retry_cursor_ = *it;
    more_work_ = true;
  }
  for (const auto& name : names) {
    auto u = units_.find(name);
    if (u == units_.end() || u->second.placed()) {
      pending_.erase(name);
      continue;
    }
    if (!pending_.count(name)) continue;           // placed meanwhile (it waited on another unit)
    if (u->second.info->request.global) continue;  // placed by ReplaceGlobal
    TryPlace(name, u->second);
    Sync(name, u->second);
  }
}

void Reconciler::Flush() {
  if (ops_.empty()) {
    for (auto& done : flush_waiters_) done();
    flush_waiters_.clear();
    return;
  }
  store::TxnRequest txn;
  txn.success.reserve(ops_.size());
  for (auto& [key, value] : ops_) {
    txn.success.push_back(value ? store::Op::Put(key, std::move(*value)) : store::Op::Delete(key));
  }
  ops_.clear();
  auto waiters = std::make_shared<std::vector<std::function<void()>>>(std::move(flush_waiters_));
  flush_waiters_.clear();
  size_t n = txn.success.size();
  {
    std::lock_guard<std::mutex> l(mu_);
    ++flushes_in_flight_;
  }
  store_->TxnAsync(std::move(txn), [this, waiters, n](base::Result<store::TxnResponse> r) {
    if (!r.ok()) spdlog::error("write {} schedule changes: {}", n, r.status().ToString());
    for (auto& done : *waiters) done();
    // Notified under the lock: once Stop sees zero, this object may be gone.
    std::lock_guard<std::mutex> l(mu_);
    --flushes_in_flight_;
    cv_.notify_all();
  });
}

void Reconciler::Publish() {
  std::lock_guard<std::mutex> l(view_->mu);
  if (!touched_units_.empty()) machines_stale_ = true;
  for (const auto& name : touched_units_) {
    auto it = units_.find(name);
    auto e = view_->units.find(name);
    if (it == units_.end() || e == view_->units.end()) continue;
    const RUnit& u = it->second;
    PlacementView& p = e->second.placement;
    p.first.clear();
    p.others.clear();
    for (const auto& slot : u.slots) {
      if (!slot.placed) continue;
      if (p.first.empty()) {
        p.first = machine_ids_[slot.machine];
      } else {
        p.others.push_back(machine_ids_[slot.machine]);
      }
    }
    p.reason = u.reason;
    p.global = u.info->request.global;
    p.published = true;
  }
  touched_units_.clear();
  // Machine figures: at most ten times a second.
  auto now = clock_->Now();
  if (!machines_stale_ || now - last_machine_publish_ < std::chrono::milliseconds(100)) return;
  machines_stale_ = false;
  last_machine_publish_ = now;
  for (auto& [id, m] : view_->machines) {
    if (!sched_->HasMachine(id)) continue;
    auto free = sched_->Free(id);
    if (free.ok()) m.free = {free->cpu_millis, free->memory_bytes, free->disk_bytes};
    auto n = machine_index_.find(id);
    m.units = n == machine_index_.end() ? 0 : machine_units_[n->second];
  }
}

// One line per placement or new reason when there are few; a summary when there are many (a
// burst of submissions or a lost machine must not flood the log).
void Reconciler::LogPass() {
  constexpr size_t kDetailed = 5;
  if (log_placed_.size() <= kDetailed) {
    for (const auto& [name, machine] : log_placed_)
      spdlog::info("unit {} placed on {}", name, machine);
  } else {
    spdlog::info("placed {} units (e.g. {} on {})", log_placed_.size(), log_placed_[0].first,
                 log_placed_[0].second);
  }
  if (log_pending_.size() <= kDetailed) {
    for (const auto& [name, reason] : log_pending_) {
      spdlog::warn("unit {} not scheduled: {}", name, reason);
    }
  } else {
    spdlog::warn("{} units not scheduled (e.g. {}: {})", log_pending_.size(), log_pending_[0].first,
                 log_pending_[0].second);
  }
  log_placed_.clear();
  log_pending_.clear();
}

std::string Reconciler::Explain(const std::string& name) {
  auto it = units_.find(name);
  if (it == units_.end()) return "unit " + name + " is not known to the scheduler yet\n";
  const RUnit& u = it->second;
  std::string out;
  if (!u.info->schedulable) return name + ": not scheduled: " + u.info->reason + "\n";
  if (u.placed()) {
    out += name + ": placed on";
    for (const auto& m : PlacedOn(u)) out += " " + m;
    out += "\n";
  } else if (!u.active()) {
    out += name + ": inactive (not scheduled)\n";
  } else {
    out += name + ": pending: " + u.reason + "\n";
  }
  out += scheduler::FormatExplanation(sched_->Explain(RequestFor(name, u), 20));
  if (!out.empty() && out.back() != '\n') out += '\n';
  return out;
}

std::vector<std::string> Reconciler::PendingAmong(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const auto& name : names) {
    auto it = units_.find(name);
    if (it != units_.end() && pending_.count(name)) out.push_back(name + ": " + it->second.reason);
  }
  return out;
}

}  // namespace fjord::server
