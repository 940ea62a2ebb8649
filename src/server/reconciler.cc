// The reconciler: the one thread that owns the scheduler and writes /schedule keys.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "server/impl.h"

namespace fjord::server {

namespace {

int64_t SteadyMs(base::Clock::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

scheduler::MachineSpec SpecOf(const api::MachineRegistration& reg) {
  scheduler::MachineSpec spec;
  spec.id = reg.id;
  for (const auto& [k, v] : reg.metadata) spec.metadata.emplace_back(k, v);
  spec.capacity.cpu_millis = reg.capacity.cpu_millis;
  spec.capacity.memory_bytes = reg.capacity.memory_bytes;
  spec.capacity.disk_bytes = reg.capacity.disk_bytes;
  return spec;
}

bool Active(const api::ScheduledUnit& r) {
  return r.desired_state != api::UnitStateName::kInactive;
}

}  // namespace

Reconciler::Reconciler(Options options, store::Store* store, View* view, base::Clock* clock)
    : options_(options),
      store_(store),
      view_(view),
      clock_(clock),
      planner_(options.rate, SteadyMs(clock->Now())) {}

Reconciler::~Reconciler() { Stop(); }

base::Status Reconciler::Recover() {
  scheduler::SchedulerOptions so;
  so.seed = options_.seed;
  std::vector<scheduler::MachineSpec> specs;
  {
    std::lock_guard<std::mutex> l(view_->mu);
    for (const auto& [id, m] : view_->machines) specs.push_back(SpecOf(m.reg));
    for (const auto& [name, e] : view_->units) {
      RUnit u;
      u.hash = e.record.hash;
      u.record = e.record;
      units_.emplace(name, std::move(u));
    }
  }
  auto sched = scheduler::Scheduler::Create(std::move(specs), so);
  if (!sched.ok()) return sched.status().Wrap("rebuild the scheduler from the store");
  sched_ = std::move(*sched);
  for (auto& [name, u] : units_) u.info = SchedulingInfoOf(u.record);

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
    if (u.written.emplace(machine, kv.value).second) ++machine_units_[machine];
    if (!u.info.schedulable || !Active(u.record) || !sched_->HasMachine(machine)) continue;
    if (!u.info.request.global && !u.machines.empty()) continue;  // duplicate: Sync deletes it
    if (sched_->Assign(u.info.request, machine).ok()) {
      u.machines.insert(machine);
      ++restored;
    }
  }
  for (auto& [name, u] : units_) {
    if (u.info.schedulable && Active(u.record) && u.machines.empty()) pending_.insert(name);
    Sync(name, u);  // drops keys of inactive units and duplicates, rewrites changed content
    Touch(name);
  }
  retry_pending_ = true;
  replace_globals_ = true;
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
}

void Reconciler::UnitChanged(std::string name) {
  {
    std::lock_guard<std::mutex> l(mu_);
    dirty_units_.insert(std::move(name));
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
      int64_t wait_ms = tick.count();
      if (planner_.queued() > 0) {
        wait_ms =
            std::min<int64_t>(wait_ms, planner_.MillisUntilNextToken(SteadyMs(clock_->Now())));
      }
      cv_.wait_for(l, std::chrono::milliseconds(std::max<int64_t>(wait_ms, 1)), [this] {
        return stop_ || !dirty_units_.empty() || !dirty_machines_.empty() || !tasks_.empty();
      });
      if (stop_) break;
      units.swap(dirty_units_);
      machines.swap(dirty_machines_);
      tasks.swap(tasks_);
    }
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
  std::optional<api::ScheduledUnit> record;
  {
    std::lock_guard<std::mutex> l(view_->mu);
    auto it = view_->units.find(name);
    if (it != view_->units.end()) record = it->second.record;
  }
  auto it = units_.find(name);
  if (!record) {
    if (it != units_.end()) RemoveUnit(name);
    return;
  }
  if (it != units_.end() && it->second.hash != record->hash) {
    RemoveUnit(name);  // destroyed and submitted again with other content
    it = units_.end();
  }
  if (it == units_.end()) {
    RUnit u;
    u.hash = record->hash;
    u.info = SchedulingInfoOf(*record);
    it = units_.emplace(name, std::move(u)).first;
  }
  RUnit& u = it->second;
  u.record = std::move(*record);
  Touch(name);
  if (!u.info.schedulable) {
    u.reason = u.info.reason;
  } else if (!Active(u.record)) {
    Release(name, u);
    u.reason.clear();
    pending_.erase(name);
  } else if (u.machines.empty()) {
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
  for (const auto& [m, value] : u.written) {
    ops_[ScheduleKey(m, name)] = std::nullopt;
    --machine_units_[m];
  }
  {
    std::lock_guard<std::mutex> l(view_->mu);
    for (auto& [machine, states] : view_->states) {
      if (states.erase(name) > 0) ops_[StateKey(machine, name)] = std::nullopt;
    }
    view_->placements.erase(name);
  }
  units_.erase(it);
  touched_units_.erase(name);
}

void Reconciler::Release(const std::string& name, RUnit& u) {
  if (u.machines.empty()) return;
  (void)sched_->Release(name);
  u.machines.clear();
  retry_pending_ = true;  // room was freed
}

void Reconciler::TryPlace(const std::string& name, RUnit& u) {
  if (u.info.request.global) {
    ReplaceGlobal(name, u);
    return;
  }
  auto placed = sched_->Place(u.info.request);
  if (placed.ok()) {
    u.machines = {placed->machine_id};
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
    if (!u.info.request.machine_of.empty()) waiting_on_[u.info.request.machine_of].insert(name);
  }
  Touch(name);
}

void Reconciler::ReplaceGlobal(const std::string& name, RUnit& u) {
  (void)sched_->Release(name);
  std::vector<scheduler::PendingTask> not_placed;
  auto placed = sched_->PlaceGlobal(u.info.request, &not_placed);
  std::set<std::string> machines;
  if (placed.ok()) {
    for (const auto& p : *placed) machines.insert(p.machine_id);
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
  if (machines != u.machines) {
    spdlog::info("global unit {} on {} machines", name, machines.size());
  }
  u.machines = std::move(machines);
  u.reason = reason;
  if (u.machines.empty()) {
    pending_.insert(name);
  } else {
    pending_.erase(name);
  }
  Touch(name);
}

void Reconciler::Sync(const std::string& name, RUnit& u) {
  std::map<std::string, std::string> want;
  if (Active(u.record) && !u.machines.empty()) {
    std::string value = api::ToJson(u.record);
    for (const auto& m : u.machines) want.emplace(m, value);
  }
  for (const auto& [m, value] : u.written) {
    if (!want.count(m)) {
      ops_[ScheduleKey(m, name)] = std::nullopt;
      --machine_units_[m];
    }
  }
  for (const auto& [m, value] : want) {
    auto it = u.written.find(m);
    if (it == u.written.end()) ++machine_units_[m];
    if (it == u.written.end() || it->second != value) ops_[ScheduleKey(m, name)] = value;
  }
  u.written = std::move(want);
}

void Reconciler::HandleMachine(const std::string& id) {
  api::MachineRegistration reg;
  {
    std::lock_guard<std::mutex> l(view_->mu);
    auto it = view_->machines.find(id);
    if (it == view_->machines.end()) return;
    reg = it->second.reg;
  }
  if (!sched_->HasMachine(id)) {
    if (base::Status st = sched_->AddMachine(SpecOf(reg)); !st.ok()) {
      spdlog::error("machine {}: {}", id, st.ToString());
      return;
    }
    spdlog::info("machine {} registered ({})", id, reg.primary_ip);
  } else if (!sched_->IsAlive(id)) {
    (void)sched_->ReviveMachine(id);
    spdlog::info("machine {} is back", id);
    // It gets only what is scheduled to it now: drop keys of units that moved or wait.
    for (auto& [name, u] : units_) {
      if (u.written.count(id) && !u.machines.count(id)) {
        ops_[ScheduleKey(id, name)] = std::nullopt;
        u.written.erase(id);
        --machine_units_[id];
      }
    }
  }
  retry_pending_ = true;
  replace_globals_ = true;
  machines_stale_ = true;
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
  std::vector<scheduler::DisplacedTask> tasks;
  for (const auto& name : *displaced) {
    auto it = units_.find(name);
    if (it == units_.end()) continue;
    it->second.machines.erase(id);  // its old key stays until the new one is written
    it->second.reason = "its machine " + id + " was lost; waiting to be rescheduled";
    Touch(name);
    scheduler::DisplacedTask t;
    t.name = name;
    t.follows = it->second.info.request.machine_of;
    tasks.push_back(std::move(t));
  }
  planner_.Add(tasks);
  // Global units lose their instance there.
  for (auto& [name, u] : units_) {
    if (u.info.request.global && u.machines.erase(id) > 0) {
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
    if (!Active(u.record) || !u.info.schedulable || !u.machines.empty()) continue;
    TryPlace(name, u);
    Sync(name, u);  // deletes the old key in the same transaction as the new one is written
  }
}

void Reconciler::RetryPending() {
  if (replace_globals_) {
    replace_globals_ = false;
    for (auto& [name, u] : units_) {
      if (u.info.schedulable && u.info.request.global && Active(u.record)) {
        ReplaceGlobal(name, u);
        Sync(name, u);
      }
    }
  }
  // Pending units are retried when room was freed or machines changed, and at most once a
  // second after other units were placed (one may satisfy another's affinity).
  auto now = clock_->Now();
  if (pending_.empty()) return;
  if (!retry_pending_ && (!placed_since_retry_ || now - last_retry_ < std::chrono::seconds(1))) {
    return;
  }
  retry_pending_ = false;
  placed_since_retry_ = false;
  last_retry_ = now;
  std::vector<std::string> names(pending_.begin(), pending_.end());
  for (const auto& name : names) {
    auto it = units_.find(name);
    if (it == units_.end() || !it->second.machines.empty()) {
      pending_.erase(name);
      continue;
    }
    if (it->second.info.request.global) continue;  // placed by ReplaceGlobal
    TryPlace(name, it->second);
    Sync(name, it->second);
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
  store_->TxnAsync(std::move(txn), [waiters, n](base::Result<store::TxnResponse> r) {
    if (!r.ok()) spdlog::error("write {} schedule changes: {}", n, r.status().ToString());
    for (auto& done : *waiters) done();
  });
}

void Reconciler::Publish() {
  std::lock_guard<std::mutex> l(view_->mu);
  if (!touched_units_.empty()) machines_stale_ = true;
  for (const auto& name : touched_units_) {
    auto it = units_.find(name);
    if (it == units_.end()) continue;
    const RUnit& u = it->second;
    PlacementView& p = view_->placements[name];
    p.machines.assign(u.machines.begin(), u.machines.end());
    p.reason = u.reason;
    p.global = u.info.request.global;
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
    auto n = machine_units_.find(id);
    m.units = n == machine_units_.end() ? 0 : n->second;
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
  if (!u.info.schedulable) return name + ": not scheduled: " + u.info.reason + "\n";
  if (!u.machines.empty()) {
    out += name + ": placed on";
    for (const auto& m : u.machines) out += " " + m;
    out += "\n";
  } else if (!Active(u.record)) {
    out += name + ": inactive (not scheduled)\n";
  } else {
    out += name + ": pending: " + u.reason + "\n";
  }
  out += scheduler::FormatExplanation(sched_->Explain(u.info.request, 20));
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
