// Scheduler state: machines, tasks, groups and their incremental accounting.
#include <algorithm>
#include <unordered_set>

#include "scheduler/impl.h"

namespace fjord::scheduler {

using base::Result;
using base::Status;

// ---- CountMap ----

uint32_t CountMap::Get(uint64_t key) const {
  if (slots_.empty()) return 0;
  size_t mask = slots_.size() - 1;
  for (size_t i = Hash(key) & mask;; i = (i + 1) & mask) {
    if (slots_[i].key == key + 1) return slots_[i].value;
    if (slots_[i].key == 0) return 0;
  }
}

void CountMap::Add(uint64_t key, int32_t delta) {
  if ((used_ + 1) * 4 >= slots_.size() * 3) Grow();
  size_t mask = slots_.size() - 1;
  for (size_t i = Hash(key) & mask;; i = (i + 1) & mask) {
    if (slots_[i].key == key + 1) {
      slots_[i].value = static_cast<uint32_t>(static_cast<int64_t>(slots_[i].value) + delta);
      return;
    }
    if (slots_[i].key == 0) {
      slots_[i] = Slot{key + 1, static_cast<uint32_t>(delta)};
      ++used_;
      return;
    }
  }
}

void CountMap::Grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot{0, 0});
  size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.key == 0) continue;
    size_t i = Hash(s.key - 1) & mask;
    while (slots_[i].key != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

// ---- Interning and lookups ----

uint32_t Scheduler::Impl::Intern(std::string_view s) {
  auto it = string_ids.find(std::string(s));
  if (it != string_ids.end()) return it->second;
  uint32_t id = static_cast<uint32_t>(strings.size());
  strings.emplace_back(s);
  string_ids.emplace(std::string(s), id);
  return id;
}

uint32_t Scheduler::Impl::FindString(std::string_view s) const {
  auto it = string_ids.find(std::string(s));
  return it == string_ids.end() ? kNone : it->second;
}

uint32_t Scheduler::Impl::AttrOf(std::string_view name) const {
  uint32_t sid = FindString(name);
  if (sid == kNone) return kNone;
  auto it = attr_by_name.find(sid);
  return it == attr_by_name.end() ? kNone : it->second;
}

// ---- Machines ----

Status Scheduler::Impl::AddMachineImpl(const MachineSpec& spec) {
  if (spec.id.empty()) return base::InvalidArgument("machine with an empty id");
  if (machine_by_id.count(spec.id)) {
    return base::AlreadyExists("machine `" + spec.id + "` is already in the snapshot");
  }
  const Resources& c = spec.capacity;
  if (c.cpu_millis < 0 || c.memory_bytes < 0 || c.disk_bytes < 0) {
    return base::InvalidArgument("machine `" + spec.id + "`: negative capacity");
  }
  FJORD_ASSIGN_OR_RETURN(auto kv, InternMetadata(spec));  // (attribute, value)

  uint32_t m = static_cast<uint32_t>(machine_ids.size());
  machine_ids.push_back(spec.id);
  machine_by_id.emplace(spec.id, m);
  cap_cpu.push_back(c.cpu_millis);
  cap_mem.push_back(c.memory_bytes);
  cap_disk.push_back(c.disk_bytes);
  free_cpu.push_back(c.cpu_millis);
  free_mem.push_back(c.memory_bytes);
  free_disk.push_back(c.disk_bytes);
  used_ports.emplace_back();
  machine_tasks.emplace_back();
  machine_prefixes.emplace_back();
  excluders.emplace_back();
  for (auto& values : attr_values) values.push_back(kNone);
  for (const auto& [attr, value] : kv) {
    attr_values[attr][m] = value;
    attr_index[attr][value].push_back(m);
  }
  size_t n = machine_ids.size();
  alive.Resize(n);
  alive.Set(m);
  all.bits.Resize(n);
  all.bits.Set(m);
  for (auto& b : cpu_levels) b.Resize(n);
  for (auto& b : mem_levels) b.Resize(n);
  UpdateLevels(m);
  ++epoch;
  static_cache.clear();  // cached sets do not know the new machine
  return Status::Ok();
}

void Scheduler::Impl::UpdateLevels(uint32_t m) {
  for (size_t i = 0; i < cpu_levels.size(); ++i) {
    cpu_levels[i].Assign(m, free_cpu[m] >= kCpuLevels[i]);
  }
  for (size_t i = 0; i < mem_levels.size(); ++i) {
    mem_levels[i].Assign(m, free_mem[m] >= kMemLevels[i]);
  }
}

// ---- Groups ----

uint32_t Scheduler::Impl::GroupId(const std::string& name, bool create) {
  if (last_group != kNone && name == last_group_name) return last_group;
  auto it = group_by_name.find(name);
  if (it != group_by_name.end()) {
    last_group_name = name;
    last_group = it->second;
    return it->second;
  }
  if (!create) return kNone;
  uint32_t g = static_cast<uint32_t>(groups.size());
  groups.push_back(Group{name, {}, {}});
  group_by_name.emplace(name, g);
  last_group_name = name;
  last_group = g;
  return g;
}

void Scheduler::Impl::Track(uint32_t group, uint32_t attr) {
  Group& g = groups[group];
  if (std::find(g.tracked.begin(), g.tracked.end(), attr) != g.tracked.end()) return;
  g.tracked.push_back(attr);
  for (uint32_t t : g.tasks) counts.Add(CountKey(group, attr, ValueOf(attr, task_machine[t])), 1);
}

// ---- Commit and release ----

uint32_t Scheduler::Impl::Commit(const Compiled& c, const TaskRequest& req, uint32_t m,
                                 bool name_reserved) {
  uint32_t t;
  if (!free_slots.empty()) {
    t = free_slots.back();
    free_slots.pop_back();
  } else {
    t = static_cast<uint32_t>(task_name.size());
    task_name.emplace_back();
    task_machine.push_back(0);
    task_group.push_back(0);
    task_pos_machine.push_back(0);
    task_pos_group.push_back(0);
    task_cpu.push_back(0);
    task_mem.push_back(0);
    task_disk.push_back(0);
    task_flags.push_back(0);
  }
  const Resources& r = req.resources;
  task_name[t] = req.name;
  task_machine[t] = m;
  task_group[t] = c.group;
  task_cpu[t] = r.cpu_millis;
  task_mem[t] = r.memory_bytes;
  task_disk[t] = r.disk_bytes;
  task_flags[t] = req.global ? kGlobalFlag : 0;
  task_pos_machine[t] = static_cast<uint32_t>(machine_tasks[m].size());
  machine_tasks[m].push_back(t);
  machine_prefixes[m].push_back(NamePrefix(req.name));
  if (c.group != kNone) {
    Group& g = groups[c.group];
    task_pos_group[t] = static_cast<uint32_t>(g.tasks.size());
    g.tasks.push_back(t);
    for (uint32_t attr : g.tracked) counts.Add(CountKey(c.group, attr, ValueOf(attr, m)), 1);
  }
  free_cpu[m] -= r.cpu_millis;
  free_mem[m] -= r.memory_bytes;
  free_disk[m] -= r.disk_bytes;
  UpdateLevels(m);
  if (!req.ports.empty()) {
    auto& used = used_ports[m];
    for (uint16_t p : req.ports) used.insert(std::upper_bound(used.begin(), used.end(), p), p);
    task_ports[t] = req.ports;
  }
  if (!req.conflicts.empty() || !req.replaces.empty() || !req.anti_affinity_units.empty() ||
      !req.anti_affinity_groups.empty()) {
    Exclusion ex;
    ex.patterns = req.conflicts;
    ex.patterns.insert(ex.patterns.end(), req.anti_affinity_units.begin(),
                       req.anti_affinity_units.end());
    // Replaced names are exact; escape glob characters so they match only themselves.
    for (const std::string& r2 : req.replaces) {
      std::string lit;
      for (char ch : r2) {
        if (ch == '*' || ch == '?' || ch == '[' || ch == '\\') lit.push_back('\\');
        lit.push_back(ch);
      }
      ex.patterns.push_back(std::move(lit));
    }
    for (const std::string& gname : req.anti_affinity_groups) {
      ex.groups.push_back(GroupId(gname, true));
    }
    Exclusion& stored = task_exclusions[t] = std::move(ex);
    for (const std::string& p : stored.patterns) {
      excluders[m].push_back(ExcluderEntry{t, kNone, PrefixFilterOf(p), &p});
    }
    for (uint32_t g : stored.groups) excluders[m].push_back(ExcluderEntry{t, g, {}, nullptr});
    task_flags[t] |= kExcluderFlag;
  }
  if (req.global) {
    global_instances[req.name].push_back(t);
  } else if (!name_reserved) {
    task_by_name.insert_or_assign(req.name, t);
  }
  ++live_tasks;
  return t;
}

void Scheduler::Impl::Uncommit(uint32_t t) {
  uint32_t m = task_machine[t];
  auto& mt = machine_tasks[m];
  auto& mp = machine_prefixes[m];
  uint32_t moved = mt.back();
  mt[task_pos_machine[t]] = moved;
  mp[task_pos_machine[t]] = mp.back();
  task_pos_machine[moved] = task_pos_machine[t];
  mt.pop_back();
  mp.pop_back();
  uint32_t g = task_group[t];
  if (g != kNone) {
    Group& grp = groups[g];
    uint32_t other = grp.tasks.back();
    grp.tasks[task_pos_group[t]] = other;
    task_pos_group[other] = task_pos_group[t];
    grp.tasks.pop_back();
    for (uint32_t attr : grp.tracked) counts.Add(CountKey(g, attr, ValueOf(attr, m)), -1);
  }
  free_cpu[m] += task_cpu[t];
  free_mem[m] += task_mem[t];
  free_disk[m] += task_disk[t];
  UpdateLevels(m);
  if (auto it = task_ports.find(t); it != task_ports.end()) {
    auto& used = used_ports[m];
    for (uint16_t p : it->second) {
      auto pos = std::lower_bound(used.begin(), used.end(), p);
      if (pos != used.end() && *pos == p) used.erase(pos);
    }
    task_ports.erase(it);
  }
  if (task_flags[t] & kExcluderFlag) {
    task_exclusions.erase(t);
    auto& ex = excluders[m];
    std::erase_if(ex, [t](const ExcluderEntry& e) { return e.task == t; });
  }
  if (!(task_flags[t] & kGlobalFlag)) task_by_name.erase(task_name[t]);
  task_flags[t] = 0;
  task_name[t].clear();
  task_name[t].shrink_to_fit();
  free_slots.push_back(t);
  --live_tasks;
}

// ---- Scheduler ----

Scheduler::Scheduler(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Scheduler::~Scheduler() = default;

Result<std::unique_ptr<Scheduler>> Scheduler::Create(std::vector<MachineSpec> machines,
                                                     SchedulerOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->opts = options;
  impl->rng = Rng(options.seed);
  if (options.spread_choices < 1 || options.binpack_choices < 1) {
    return base::InvalidArgument("scheduler options: choices must be at least 1");
  }
  if (impl->opts.strategy == Strategy::kDefault) impl->opts.strategy = Strategy::kSpread;
  impl->cpu_levels.resize(std::size(kCpuLevels));
  impl->mem_levels.resize(std::size(kMemLevels));
  impl->machine_ids.reserve(machines.size());
  for (const MachineSpec& spec : machines) {
    FJORD_RETURN_IF_ERROR(impl->AddMachineImpl(spec).Wrap("snapshot"));
  }
  return std::unique_ptr<Scheduler>(new Scheduler(std::move(impl)));
}

Result<Placement> Scheduler::Place(const TaskRequest& request) {
  Impl& s = *impl_;
  if (request.global) {
    return base::InvalidArgument("unit `" + request.name +
                                 "` is global (Global=true): place it with PlaceGlobal");
  }
  FJORD_RETURN_IF_ERROR(ValidateShape(request));
  if (!s.global_instances.empty() && s.global_instances.count(request.name)) {
    return base::AlreadyExists("unit `" + request.name + "` is already placed (global)");
  }
  // Reserve the name now (one hash lookup); Commit fills in the task, failures remove it.
  auto [slot, inserted] = s.task_by_name.try_emplace(request.name, kNone);
  if (!inserted) return base::AlreadyExists("unit `" + request.name + "` is already placed");
  Compiled& c = s.place_scratch;
  Status st = s.Compile(request, &c);
  if (!st.ok()) {
    s.task_by_name.erase(slot);
    return st;
  }
  if (c.impossible) {
    s.task_by_name.erase(slot);
    return Status(base::Code::kResourceExhausted,
                  "cannot place `" + request.name + "`: " + c.impossible_reason);
  }
  double score = 0;
  uint32_t m = s.Choose(c, &score);
  if (m == kNone) {
    s.task_by_name.erase(slot);
    return Status(base::Code::kResourceExhausted,
                  "cannot place `" + request.name + "`: " + s.FailureSummary(c));
  }
  slot->second = s.Commit(c, request, m, /*name_reserved=*/true);
  return Placement{request.name, s.machine_ids[m], m, score};
}

Result<std::vector<Placement>> Scheduler::PlaceGlobal(const TaskRequest& request,
                                                      std::vector<PendingTask>* not_placed) {
  Impl& s = *impl_;
  if (!request.global) {
    return base::InvalidArgument("unit `" + request.name + "` is not global: use Place");
  }
  FJORD_RETURN_IF_ERROR(ValidateRequest(request));
  if (s.task_by_name.count(request.name) || s.global_instances.count(request.name)) {
    return base::AlreadyExists("unit `" + request.name + "` is already placed");
  }
  Compiled c;
  FJORD_RETURN_IF_ERROR(s.Compile(request, &c));
  std::vector<Placement> placed;
  if (c.impossible) {
    if (not_placed) not_placed->push_back({request.name, c.impossible_reason});
    return placed;
  }
  for (uint32_t m = 0; m < s.machine_ids.size(); ++m) {
    if (!s.alive.Test(m) || !c.statics->bits.Test(m)) continue;
    if (c.only_machine != kNone && m != c.only_machine) continue;
    Verdict v = s.CheckDynamic(c, m);
    if (v.filter != Filter::kOk) {
      if (not_placed) {
        std::string filter;
        not_placed->push_back(
            {request.name + " on " + s.machine_ids[m], s.Describe(c, m, v, &filter)});
      }
      continue;
    }
    double score = s.Score(c, m);
    s.Commit(c, request, m);
    placed.push_back(Placement{request.name, s.machine_ids[m], m, score});
  }
  return placed;
}

Status Scheduler::Assign(const TaskRequest& request, std::string_view machine_id) {
  Impl& s = *impl_;
  FJORD_RETURN_IF_ERROR(ValidateRequest(request));
  auto it = s.machine_by_id.find(std::string(machine_id));
  if (it == s.machine_by_id.end()) {
    return base::NotFound("assign `" + request.name + "`: no machine `" + std::string(machine_id) +
                          "`");
  }
  uint32_t m = it->second;
  if (!request.global && s.task_by_name.count(request.name)) {
    return base::AlreadyExists("unit `" + request.name + "` is already placed");
  }
  if (request.global) {
    for (uint32_t t : s.machine_tasks[m]) {
      if (s.task_name[t] == request.name) {
        return base::AlreadyExists("global unit `" + request.name + "` is already on `" +
                                   s.machine_ids[m] + "`");
      }
    }
  }
  if (!s.alive.Test(m)) {
    return base::FailedPrecondition("assign `" + request.name + "`: machine `" + s.machine_ids[m] +
                                    "` is lost");
  }
  Compiled c;
  c.req = &request;
  std::string gname;
  s.GroupNameFor(request, &gname);
  c.group = gname.empty() ? kNone : s.GroupId(gname, true);
  c.statics = &s.all;
  Verdict v{Filter::kOk, 0};
  const Resources& r = request.resources;
  if (s.free_cpu[m] < r.cpu_millis)
    v.filter = Filter::kCpu;
  else if (s.free_mem[m] < r.memory_bytes)
    v.filter = Filter::kMemory;
  else if (s.free_disk[m] < r.disk_bytes)
    v.filter = Filter::kDisk;
  for (size_t i = 0; v.filter == Filter::kOk && i < request.ports.size(); ++i) {
    if (std::binary_search(s.used_ports[m].begin(), s.used_ports[m].end(), request.ports[i])) {
      v = Verdict{Filter::kPort, static_cast<uint32_t>(i)};
    }
  }
  if (v.filter != Filter::kOk) {
    std::string filter;
    return base::FailedPrecondition("assign `" + request.name + "` to `" + s.machine_ids[m] +
                                    "`: " + s.Describe(c, m, v, &filter));
  }
  s.Commit(c, request, m);
  return Status::Ok();
}

Status Scheduler::Release(std::string_view task_name) {
  Impl& s = *impl_;
  std::string name(task_name);
  if (auto it = s.task_by_name.find(name); it != s.task_by_name.end()) {
    s.Uncommit(it->second);
    return Status::Ok();
  }
  if (auto it = s.global_instances.find(name); it != s.global_instances.end()) {
    std::vector<uint32_t> instances = std::move(it->second);
    s.global_instances.erase(it);
    for (uint32_t t : instances) s.Uncommit(t);
    return Status::Ok();
  }
  return base::NotFound("release: unit `" + name + "` is not placed");
}

Result<std::vector<std::string>> Scheduler::LoseMachine(std::string_view machine_id) {
  Impl& s = *impl_;
  auto it = s.machine_by_id.find(std::string(machine_id));
  if (it == s.machine_by_id.end()) {
    return base::NotFound("lose machine: no machine `" + std::string(machine_id) + "`");
  }
  uint32_t m = it->second;
  if (!s.alive.Test(m)) {
    return base::FailedPrecondition("machine `" + s.machine_ids[m] + "` is already lost");
  }
  std::vector<std::string> displaced;
  std::vector<uint32_t> tasks = s.machine_tasks[m];
  for (uint32_t t : tasks) {
    if (s.task_flags[t] & kGlobalFlag) {
      auto git = s.global_instances.find(s.task_name[t]);
      if (git != s.global_instances.end()) {
        auto& v = git->second;
        v.erase(std::remove(v.begin(), v.end(), t), v.end());
        if (v.empty()) s.global_instances.erase(git);
      }
    } else {
      displaced.push_back(s.task_name[t]);
    }
    s.Uncommit(t);
  }
  s.alive.Reset(m);
  ++s.epoch;
  std::sort(displaced.begin(), displaced.end());
  return displaced;
}

Status Scheduler::AddMachine(const MachineSpec& machine) {
  return impl_->AddMachineImpl(machine).Wrap("add machine");
}

Status Scheduler::ReviveMachine(std::string_view machine_id) {
  Impl& s = *impl_;
  auto it = s.machine_by_id.find(std::string(machine_id));
  if (it == s.machine_by_id.end()) {
    return base::NotFound("revive machine: no machine `" + std::string(machine_id) + "`");
  }
  uint32_t m = it->second;
  if (s.alive.Test(m)) {
    return base::FailedPrecondition("revive machine `" + s.machine_ids[m] + "`: it is alive");
  }
  // LoseMachine released every task, so the machine comes back empty with its full capacity.
  s.UpdateLevels(m);
  s.alive.Set(m);
  ++s.epoch;
  return Status::Ok();
}

bool Scheduler::IsAlive(std::string_view machine_id) const {
  auto it = impl_->machine_by_id.find(std::string(machine_id));
  return it != impl_->machine_by_id.end() && impl_->alive.Test(it->second);
}

bool Scheduler::HasMachine(std::string_view machine_id) const {
  return impl_->machine_by_id.count(std::string(machine_id)) != 0;
}

Result<ScaleResult> Scheduler::Scale(const ScaleRequest& request) {
  Impl& s = *impl_;
  const TaskRequest& tmpl = request.template_request;
  if (tmpl.global) return base::InvalidArgument("scale `" + tmpl.name + "`: unit is global");
  FJORD_ASSIGN_OR_RETURN(std::string probe, InstanceName(tmpl.name, 1));
  (void)probe;
  std::string gname = tmpl.group.empty() ? tmpl.name : tmpl.group;
  std::vector<std::string> existing;
  if (uint32_t g = s.GroupId(gname, false); g != kNone) {
    for (uint32_t t : s.groups[g].tasks) {
      if (TemplateOf(s.task_name[t]) == tmpl.name) existing.push_back(s.task_name[t]);
    }
  }
  FJORD_ASSIGN_OR_RETURN(ScalePlan plan, PlanScale(tmpl.name, request.instances, existing));
  ScaleResult result;
  for (const std::string& name : plan.to_remove) {
    FJORD_RETURN_IF_ERROR(Release(name).Wrap("scale down `" + tmpl.name + "`"));
    result.removed.push_back(name);
  }
  TaskRequest req = tmpl;
  req.group = gname;
  for (const std::string& name : plan.to_add) {
    req.name = name;
    Result<Placement> p = Place(req);
    if (p.ok()) {
      result.placed.push_back(std::move(*p));
    } else if (p.status().code() == base::Code::kResourceExhausted) {
      result.pending.push_back({name, std::string(p.status().message())});
    } else {
      return p.status().Wrap("scale up `" + tmpl.name + "`");
    }
  }
  return result;
}

size_t Scheduler::machine_count() const { return impl_->machine_ids.size(); }
size_t Scheduler::alive_machine_count() const { return impl_->alive.Count(); }
size_t Scheduler::task_count() const { return impl_->live_tasks; }

std::optional<TaskLocation> Scheduler::Locate(std::string_view task_name) const {
  const Impl& s = *impl_;
  auto it = s.task_by_name.find(std::string(task_name));
  if (it == s.task_by_name.end()) return std::nullopt;
  uint32_t m = s.task_machine[it->second];
  return TaskLocation{std::string(task_name), s.machine_ids[m], m};
}

Result<Resources> Scheduler::Free(std::string_view machine_id) const {
  const Impl& s = *impl_;
  auto it = s.machine_by_id.find(std::string(machine_id));
  if (it == s.machine_by_id.end()) {
    return base::NotFound("no machine `" + std::string(machine_id) + "`");
  }
  uint32_t m = it->second;
  return Resources{s.free_cpu[m], s.free_mem[m], s.free_disk[m]};
}

std::vector<TaskLocation> Scheduler::Tasks() const {
  const Impl& s = *impl_;
  std::vector<TaskLocation> out;
  out.reserve(s.live_tasks);
  for (uint32_t m = 0; m < s.machine_ids.size(); ++m) {
    for (uint32_t t : s.machine_tasks[m]) out.push_back({s.task_name[t], s.machine_ids[m], m});
  }
  return out;
}

namespace {

template <typename T>
size_t VecBytes(const std::vector<T>& v) {
  return v.capacity() * sizeof(T);
}
size_t StrBytes(const std::string& s) {
  return s.capacity() > 15 ? s.capacity() + 1 : 0;  // SSO strings live inside the object
}
// libstdc++ hash tables: a bucket array plus one heap node per element (next pointer, the value,
// the cached hash).
template <typename M>
size_t MapBytes(const M& m) {
  return m.bucket_count() * sizeof(void*) +
         m.size() * (sizeof(void*) + sizeof(typename M::value_type) + sizeof(size_t));
}

}  // namespace

size_t Scheduler::MemoryBytes() const {
  const Impl& s = *impl_;
  size_t b = sizeof(Impl);
  b += MapBytes(s.string_ids) + VecBytes(s.strings);
  for (const auto& str : s.strings) b += 2 * StrBytes(str);
  b += VecBytes(s.machine_ids) + MapBytes(s.machine_by_id);
  for (const auto& id : s.machine_ids) b += 2 * StrBytes(id);
  b += VecBytes(s.cap_cpu) * 6 + VecBytes(s.used_ports) + VecBytes(s.machine_tasks) +
       VecBytes(s.excluders) + s.alive.bytes();
  for (const auto& v : s.excluders) b += VecBytes(v);
  for (const auto& v : s.used_ports) b += VecBytes(v);
  for (const auto& v : s.machine_tasks) b += VecBytes(v);
  b += VecBytes(s.machine_prefixes);
  for (const auto& v : s.machine_prefixes) b += VecBytes(v);
  for (const auto& l : s.cpu_levels) b += l.bytes();
  for (const auto& l : s.mem_levels) b += l.bytes();
  for (const auto& v : s.attr_values) b += VecBytes(v);
  for (const auto& idx : s.attr_index) {
    b += MapBytes(idx);
    for (const auto& [k, v] : idx) b += VecBytes(v);
  }
  b += VecBytes(s.task_name);
  for (const auto& n : s.task_name) b += StrBytes(n);
  b += VecBytes(s.task_machine) * 4 + VecBytes(s.task_cpu) * 3 + VecBytes(s.task_flags) +
       VecBytes(s.free_slots);
  b += MapBytes(s.task_by_name);
  for (const auto& [n, t] : s.task_by_name) b += StrBytes(n);
  b += MapBytes(s.global_instances);
  for (const auto& [n, v] : s.global_instances) b += StrBytes(n) + VecBytes(v);
  b += MapBytes(s.task_ports) + MapBytes(s.task_exclusions);
  for (const auto& [t, ex] : s.task_exclusions) {
    b += VecBytes(ex.patterns) + VecBytes(ex.groups);
    for (const auto& p : ex.patterns) b += StrBytes(p);
  }
  b += VecBytes(s.groups) + MapBytes(s.group_by_name);
  for (const auto& g : s.groups) {
    b += 2 * StrBytes(g.name) + VecBytes(g.tasks) + VecBytes(g.tracked);
  }
  b += s.counts.bytes();
  b += MapBytes(s.static_cache);
  for (const auto& [k, set] : s.static_cache) {
    b += StrBytes(k) + sizeof(CandidateSet) + set->bits.bytes();
  }
  b += s.all.bits.bytes();
  return b;
}

}  // namespace fjord::scheduler
