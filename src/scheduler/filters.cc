// Filters, scoring and the candidate walk: the hot path of placement.
#include <algorithm>

#include "scheduler/impl.h"

namespace fjord::scheduler {

using base::Status;

void Scheduler::Impl::GroupNameFor(const TaskRequest& req, std::string* out) const {
  out->clear();
  if (!req.group.empty()) {
    *out = req.group;
    return;
  }
  std::string_view name = req.name;
  size_t at = name.find('@');
  size_t dot = name.rfind('.');
  if (at != std::string_view::npos && dot != std::string_view::npos && dot > at + 1) {
    out->append(name.substr(0, at + 1)).append(name.substr(dot));
    return;
  }
  for (const AttributeConstraint& k : req.constraints) {
    if (k.op != Operator::kLike && k.op != Operator::kUnlike) {
      *out = req.name;
      return;
    }
  }
}

namespace {

bool IsStatic(const AttributeConstraint& k) {
  return k.op == Operator::kLike || k.op == Operator::kUnlike ||
         (k.op == Operator::kCluster && !k.value.empty());
}

// Bits set for the machines listed.
void SetAll(Bitset* b, const std::vector<uint32_t>& machines) {
  for (uint32_t m : machines) b->Set(m);
}

void AndInto(Bitset* dst, const Bitset& src) {
  uint64_t* d = dst->data();
  const uint64_t* s = src.data();
  for (size_t i = 0; i < dst->word_count(); ++i) d[i] &= s[i];
}

}  // namespace

Status Scheduler::Impl::StaticSet(const TaskRequest& req, CandidateSet** out) {
  bool any = !req.machine_metadata.empty();
  for (const AttributeConstraint& k : req.constraints) any |= IsStatic(k);
  if (!any) {
    *out = &all;
    return Status::Ok();
  }
  // The signature names the constraint set; tasks of one group share it and hit the cache.
  scratch.clear();
  for (const MetadataRequirement& r : req.machine_metadata) {
    scratch += "M\x1f";
    scratch += r.key;
    for (const std::string& v : r.values) {
      scratch += '\x1e';
      scratch += v;
    }
    scratch += '\x1d';
  }
  for (const AttributeConstraint& k : req.constraints) {
    if (!IsStatic(k)) continue;
    scratch += static_cast<char>('0' + static_cast<int>(k.op));
    scratch += k.attribute;
    scratch += '\x1e';
    scratch += k.value;
    scratch += '\x1d';
  }
  if (auto it = static_cache.find(scratch); it != static_cache.end()) {
    *out = it->second.get();
    return Status::Ok();
  }
  auto set = std::make_unique<CandidateSet>();
  set->bits = all.bits;
  Bitset tmp;
  tmp.Resize(machine_ids.size());
  auto clear = [&] { std::fill(tmp.data(), tmp.data() + tmp.word_count(), 0); };
  for (const MetadataRequirement& r : req.machine_metadata) {
    clear();
    uint32_t attr = AttrOf(r.key);
    if (attr != kNone) {
      for (const std::string& v : r.values) {
        uint32_t sid = FindString(v);
        if (sid == kNone) continue;
        auto it = attr_index[attr].find(sid);
        if (it != attr_index[attr].end()) SetAll(&tmp, it->second);
      }
    }
    AndInto(&set->bits, tmp);
  }
  for (const AttributeConstraint& k : req.constraints) {
    if (!IsStatic(k)) continue;
    uint32_t attr = AttrOf(k.attribute);
    if (k.op == Operator::kCluster) {
      clear();
      uint32_t sid = FindString(k.value);
      if (attr != kNone && sid != kNone) {
        auto it = attr_index[attr].find(sid);
        if (it != attr_index[attr].end()) SetAll(&tmp, it->second);
      }
      AndInto(&set->bits, tmp);
      continue;
    }
    // LIKE/UNLIKE: match each distinct value once, not each machine.
    std::regex re;
    try {
      re = std::regex(k.value, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
      return base::InvalidArgument("unit `" + req.name + "`: " + std::string(OperatorName(k.op)) +
                                   " " + k.attribute + ": bad regex `" + k.value +
                                   "`: " + e.what());
    }
    if (k.op == Operator::kLike) {
      clear();
    } else {
      tmp = all.bits;
    }
    if (attr != kNone) {
      for (const auto& [value, machines] : attr_index[attr]) {
        if (!std::regex_match(strings[value], re)) continue;
        for (uint32_t m : machines) tmp.Assign(m, k.op == Operator::kLike);
      }
    }
    AndInto(&set->bits, tmp);
  }
  if (static_cache.size() >= opts.constraint_cache_limit) static_cache.clear();
  *out = set.get();
  static_cache.emplace(scratch, std::move(set));
  return Status::Ok();
}

const std::vector<uint32_t>& Scheduler::Impl::ValuesPresent(CandidateSet* set, uint32_t attr) {
  if (set->epoch != epoch) {
    set->values.clear();
    set->epoch = epoch;
  }
  auto it = set->values.find(attr);
  if (it != set->values.end()) return it->second;
  std::vector<uint32_t> present;
  for (const auto& [value, machines] : attr_index[attr]) {
    for (uint32_t m : machines) {
      if (set->bits.Test(m) && alive.Test(m)) {
        present.push_back(value);
        break;
      }
    }
  }
  std::sort(present.begin(), present.end());
  return set->values.emplace(attr, std::move(present)).first->second;
}

Status Scheduler::Impl::Compile(const TaskRequest& req, Compiled* c) {
  c->req = &req;
  c->dyn.clear();
  c->affinity_groups.clear();
  c->anti_groups.clear();
  c->only_machine = kNone;
  c->impossible = false;
  c->impossible_reason.clear();
  c->strategy = req.strategy == Strategy::kDefault ? opts.strategy : req.strategy;
  c->cpu_level = LevelFor(kCpuLevels, req.resources.cpu_millis);
  c->mem_level = LevelFor(kMemLevels, req.resources.memory_bytes);
  GroupNameFor(req, &group_scratch);
  c->group = group_scratch.empty() ? kNone : GroupId(group_scratch, true);
  if (!req.machine_id.empty()) {
    auto it = machine_by_id.find(req.machine_id);
    if (it == machine_by_id.end()) {
      c->impossible = true;
      c->impossible_reason = "MachineID=" + req.machine_id + ": no machine has this ID";
    } else {
      c->only_machine = it->second;
    }
  }
  if (!req.machine_of.empty()) {
    auto it = task_by_name.find(req.machine_of);
    if (it == task_by_name.end() || it->second == kNone) {
      c->impossible = true;
      c->impossible_reason =
          "MachineOf=" + req.machine_of + ": `" + req.machine_of + "` is not placed yet";
    } else if (c->only_machine != kNone && c->only_machine != task_machine[it->second]) {
      c->impossible = true;
      c->impossible_reason = "MachineID=" + req.machine_id + " and MachineOf=" + req.machine_of +
                             " name different machines";
    } else {
      c->only_machine = task_machine[it->second];
    }
  }
  FJORD_RETURN_IF_ERROR(StaticSet(req, &c->statics));
  for (size_t i = 0; i < req.constraints.size(); ++i) {
    const AttributeConstraint& k = req.constraints[i];
    if (IsStatic(k)) continue;
    Compiled::Dyn d{k.op, AttrOf(k.attribute), kNone, k.count, 0, i};
    if (d.attr != kNone) {
      Track(c->group, d.attr);
      if (k.op == Operator::kCluster && !groups[c->group].tasks.empty()) {
        d.value = ValueOf(d.attr, task_machine[groups[c->group].tasks.front()]);
      }
      if (k.op == Operator::kGroupBy) {
        const std::vector<uint32_t>& values = ValuesPresent(c->statics, d.attr);
        if (k.count > 0 && static_cast<int64_t>(values.size()) < k.count) {
          c->impossible = true;
          c->impossible_reason = "GROUP_BY " + k.attribute + ":" + std::to_string(k.count) +
                                 ": eligible machines have only " + std::to_string(values.size()) +
                                 " values of `" + k.attribute + "`";
        }
        uint32_t lowest = kNone;
        for (uint32_t v : values)
          lowest = std::min(lowest, counts.Get(CountKey(c->group, d.attr, v)));
        d.min = lowest == kNone ? 0 : lowest;
      }
    }
    c->dyn.push_back(d);
  }
  for (const std::string& g : req.affinity_groups) {
    uint32_t id = GroupId(g, false);
    if (id != kNone) Track(id, kMachineAttr);
    c->affinity_groups.push_back(id);
  }
  for (const std::string& g : req.anti_affinity_groups) {
    uint32_t id = GroupId(g, false);
    if (id != kNone) Track(id, kMachineAttr);
    c->anti_groups.push_back(id);
  }
  c->scan_names = !req.conflicts.empty() || !req.replaces.empty() || !req.affinity_units.empty() ||
                  !req.anti_affinity_units.empty();
  auto prefixes = [](const std::vector<std::string>& patterns, std::vector<PrefixFilter>* out) {
    out->clear();
    for (const std::string& p : patterns) out->push_back(PrefixFilterOf(p));
  };
  prefixes(req.conflicts, &c->conflict_pf);
  prefixes(req.anti_affinity_units, &c->anti_pf);
  prefixes(req.affinity_units, &c->affinity_pf);
  c->replace_pf.clear();
  for (const std::string& r : req.replaces) {
    c->replace_pf.push_back(PrefixFilter{~uint64_t{0}, NamePrefix(r)});
  }
  return Status::Ok();
}

Verdict Scheduler::Impl::Check(const Compiled& c, uint32_t m) const {
  if (!alive.Test(m)) return {Filter::kLost, 0};
  if (c.only_machine != kNone && m != c.only_machine) return {Filter::kMachine, 0};
  if (!c.statics->bits.Test(m)) return {Filter::kStatic, 0};
  return CheckDynamic(c, m);
}

Verdict Scheduler::Impl::CheckDynamic(const Compiled& c, uint32_t m) const {
  const TaskRequest& req = *c.req;
  if (free_cpu[m] < req.resources.cpu_millis) return {Filter::kCpu, 0};
  if (free_mem[m] < req.resources.memory_bytes) return {Filter::kMemory, 0};
  if (free_disk[m] < req.resources.disk_bytes) return {Filter::kDisk, 0};
  for (size_t i = 0; i < req.ports.size(); ++i) {
    if (std::binary_search(used_ports[m].begin(), used_ports[m].end(), req.ports[i])) {
      return {Filter::kPort, static_cast<uint32_t>(i)};
    }
  }
  for (const Compiled::Dyn& d : c.dyn) {
    if (DynRejects(c, d, m)) return {Filter::kConstraint, static_cast<uint32_t>(d.index)};
  }
  for (size_t i = 0; i < c.affinity_groups.size(); ++i) {
    uint32_t g = c.affinity_groups[i];
    if (g == kNone || counts.Get(CountKey(g, kMachineAttr, m)) == 0) {
      return {Filter::kAffinityGroup, static_cast<uint32_t>(i)};
    }
  }
  for (size_t i = 0; i < c.anti_groups.size(); ++i) {
    uint32_t g = c.anti_groups[i];
    if (g != kNone && counts.Get(CountKey(g, kMachineAttr, m)) > 0) {
      return {Filter::kAntiAffinityGroup, static_cast<uint32_t>(i)};
    }
  }
  Verdict v{Filter::kOk, 0};
  if ((c.scan_names || !excluders[m].empty()) && !CheckNames(c, m, &v)) return v;
  return v;
}

bool Scheduler::Impl::CheckNames(const Compiled& c, uint32_t m, Verdict* v) const {
  const TaskRequest& req = *c.req;
  const std::vector<uint32_t>& here = machine_tasks[m];
  const std::vector<uint64_t>& prefix = machine_prefixes[m];
  auto fail = [&](Filter f, size_t i) {
    *v = {f, static_cast<uint32_t>(i)};
    return false;
  };
  if (c.scan_names) {
    for (size_t j = 0; j < here.size(); ++j) {
      uint64_t p = prefix[j];
      for (size_t i = 0; i < req.conflicts.size(); ++i) {
        if (c.conflict_pf[i].MayMatch(p) && GlobMatch(req.conflicts[i], task_name[here[j]])) {
          return fail(Filter::kConflicts, i);
        }
      }
      for (size_t i = 0; i < req.replaces.size(); ++i) {
        if (c.replace_pf[i].MayMatch(p) && req.replaces[i] == task_name[here[j]]) {
          return fail(Filter::kReplaces, i);
        }
      }
      for (size_t i = 0; i < req.anti_affinity_units.size(); ++i) {
        if (c.anti_pf[i].MayMatch(p) && GlobMatch(req.anti_affinity_units[i], task_name[here[j]])) {
          return fail(Filter::kAntiAffinityUnit, i);
        }
      }
    }
    for (size_t i = 0; i < req.affinity_units.size(); ++i) {
      bool found = false;
      for (size_t j = 0; j < here.size() && !found; ++j) {
        found = c.affinity_pf[i].MayMatch(prefix[j]) &&
                GlobMatch(req.affinity_units[i], task_name[here[j]]);
      }
      if (!found) return fail(Filter::kAffinityUnit, i);
    }
  }
  if (excluders[m].empty()) return true;
  uint64_t mine = NamePrefix(req.name);
  for (const ExcluderEntry& e : excluders[m]) {
    bool hit = e.pattern == nullptr ? c.group != kNone && e.group == c.group
                                    : e.prefix.MayMatch(mine) && GlobMatch(*e.pattern, req.name);
    if (hit) {
      *v = {Filter::kExcludedBy, e.task};
      return false;
    }
  }
  return true;
}

double Scheduler::Impl::Score(const Compiled& c, uint32_t m) const {
  const Resources& r = c.req->resources;
  double fc = cap_cpu[m] > 0 ? static_cast<double>(free_cpu[m] - r.cpu_millis) / cap_cpu[m] : 0;
  double fm = cap_mem[m] > 0 ? static_cast<double>(free_mem[m] - r.memory_bytes) / cap_mem[m] : 0;
  double spread = (fc + fm) / 2;
  return c.strategy == Strategy::kBinPack ? 1.0 - spread : spread;
}

uint32_t Scheduler::Impl::Choose(const Compiled& c, double* score) {
  if (c.only_machine != kNone) {
    if (Check(c, c.only_machine).filter != Filter::kOk) return kNone;
    *score = Score(c, c.only_machine);
    return c.only_machine;
  }
  size_t n = machine_ids.size();
  size_t words = alive.word_count();
  if (n == 0) return kNone;
  const uint64_t* st = c.statics->bits.data();
  const uint64_t* al = alive.data();
  const uint64_t* cl = cpu_levels[c.cpu_level].data();
  const uint64_t* ml = mem_levels[c.mem_level].data();
  const uint64_t* am = al;  // affinity to a group: only machines running one of its tasks
  if (!c.affinity_groups.empty()) {
    uint32_t g = c.affinity_groups.front();
    if (g == kNone) return kNone;
    affinity_mask.Resize(n);
    std::fill(affinity_mask.data(), affinity_mask.data() + affinity_mask.word_count(), 0);
    for (uint32_t t : groups[g].tasks) affinity_mask.Set(task_machine[t]);
    am = affinity_mask.data();
  }
  // The word AND skips machines failing metadata constraints, lacking free cpu/memory or (for
  // group affinity) not running the group, 64 at a time.
  auto walk = [&](size_t start, int want, uint32_t* best, double* best_score) {
    size_t w0 = start >> 6;
    uint64_t first_mask = ~uint64_t{0} << (start & 63);
    int found = 0;
    for (size_t i = 0; i <= words; ++i) {
      size_t w = (w0 + i) % words;
      uint64_t bits = st[w] & al[w] & cl[w] & ml[w] & am[w];
      if (i == 0) bits &= first_mask;
      if (i == words) bits &= ~first_mask;
      while (bits != 0) {
        uint32_t m = static_cast<uint32_t>(w * 64 + std::countr_zero(bits));
        bits &= bits - 1;
        if (CheckDynamic(c, m).filter != Filter::kOk) continue;
        double sc = Score(c, m);
        if (sc > *best_score) {
          *best_score = sc;
          *best = m;
        }
        if (++found >= want) return found;
      }
    }
    return found;
  };
  uint32_t best = kNone;
  double best_score = -1;
  if (c.strategy == Strategy::kBinPack) {
    // Best fit among the first k feasible machines after a random start.
    walk(rng.Next() % n, opts.binpack_choices, &best, &best_score);
  } else {
    // Power-of-k choices: k independent random starts, the first feasible machine after each.
    for (int j = 0; j < opts.spread_choices; ++j) {
      if (walk(rng.Next() % n, 1, &best, &best_score) == 0) break;  // nothing feasible at all
    }
  }
  *score = best_score;
  return best;
}

}  // namespace fjord::scheduler
