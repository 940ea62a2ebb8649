// Scheduler::UpdateMachine: a known machine's metadata and capacity change in place.
#include <algorithm>

#include "scheduler/impl.h"

namespace fjord::scheduler {

using base::Result;
using base::Status;

uint32_t Scheduler::Impl::AttrFor(std::string_view key) {
  uint32_t ks = Intern(key);
  auto it = attr_by_name.find(ks);
  if (it != attr_by_name.end()) return it->second;
  uint32_t attr = static_cast<uint32_t>(attr_names.size());
  attr_names.push_back(ks);
  attr_by_name.emplace(ks, attr);
  attr_values.emplace_back(machine_ids.size(), kNone);
  attr_index.emplace_back();
  return attr;
}

void Scheduler::Impl::Evict(uint32_t t) {
  if (task_flags[t] & kGlobalFlag) {
    auto git = global_instances.find(task_name[t]);
    if (git != global_instances.end()) {
      std::erase(git->second, t);
      if (git->second.empty()) global_instances.erase(git);
    }
  }
  Uncommit(t);
}

Result<std::vector<std::pair<uint32_t, uint32_t>>> Scheduler::Impl::InternMetadata(
    const MachineSpec& spec) {
  std::vector<std::string_view> keys;
  size_t new_keys = 0;
  bool has_hostname = false;
  for (const auto& [key, value] : spec.metadata) {
    if (key.empty()) return base::InvalidArgument("machine `" + spec.id + "`: empty metadata key");
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) {
      return base::InvalidArgument("machine `" + spec.id + "`: metadata key `" + key +
                                   "` given twice");
    }
    keys.push_back(key);
    has_hostname |= key == "hostname";
    new_keys += AttrOf(key) == kNone ? 1 : 0;
  }
  if (!has_hostname) new_keys += AttrOf("hostname") == kNone ? 1 : 0;
  if (attr_names.size() + new_keys > kMaxAttributes) {
    return base::InvalidArgument("machine `" + spec.id + "`: more than 254 metadata keys");
  }
  std::vector<std::pair<uint32_t, uint32_t>> kv;
  for (const auto& [key, value] : spec.metadata) kv.emplace_back(AttrFor(key), Intern(value));
  if (!has_hostname) kv.emplace_back(AttrFor("hostname"), Intern(spec.id));
  return kv;
}

namespace {

// A task on the machine being updated, in eviction order.
struct Resident {
  uint32_t task;
  bool global;
  int priority;
  std::string name;
  bool gone = false;
};

bool EvictFirst(const Resident& a, const Resident& b) {
  if (a.global != b.global) return !a.global;
  if (a.priority != b.priority) return a.priority < b.priority;
  return a.name > b.name;
}

// Whether the request has constraints that depend on machine metadata.
bool UsesMetadata(const TaskRequest& r) {
  return !r.machine_metadata.empty() || !r.constraints.empty();
}

}  // namespace

Result<MachineUpdate> Scheduler::UpdateMachine(const MachineSpec& spec,
                                               const RequestLookup& request_of) {
  Impl& s = *impl_;
  auto found = s.machine_by_id.find(spec.id);
  if (found == s.machine_by_id.end()) {
    return base::NotFound("update machine: no machine `" + spec.id + "`");
  }
  const uint32_t m = found->second;
  const Resources& cap = spec.capacity;
  if (cap.cpu_millis < 0 || cap.memory_bytes < 0 || cap.disk_bytes < 0) {
    return base::InvalidArgument("update machine `" + spec.id + "`: negative capacity");
  }
  auto md = s.InternMetadata(spec);
  if (!md.ok()) return md.status().Wrap("update machine");

  // The value each attribute should have; attributes the machine no longer has get kNone.
  std::vector<uint32_t> want(s.attr_names.size(), kNone);
  for (const auto& [attr, value] : *md) want[attr] = value;
  std::vector<uint32_t> changed;
  for (uint32_t a = 0; a < s.attr_names.size(); ++a) {
    if (s.attr_values[a][m] != want[a]) changed.push_back(a);
  }
  bool cap_changed = s.cap_cpu[m] != cap.cpu_millis || s.cap_mem[m] != cap.memory_bytes ||
                     s.cap_disk[m] != cap.disk_bytes;
  MachineUpdate out;
  if (changed.empty() && !cap_changed) return out;
  out.changed = true;

  // Counts of the tasks here move from the old values to the new ones.
  auto is_changed = [&](uint32_t a) {
    return std::binary_search(changed.begin(), changed.end(), a);
  };
  for (uint32_t t : s.machine_tasks[m]) {
    uint32_t g = s.task_group[t];
    if (g == kNone) continue;
    for (uint32_t a : s.groups[g].tracked) {
      if (a == kMachineAttr || !is_changed(a)) continue;
      s.counts.Add(CountKey(g, a, s.attr_values[a][m]), -1);
      s.counts.Add(CountKey(g, a, want[a]), 1);
    }
  }
  for (uint32_t a : changed) {
    uint32_t old = s.attr_values[a][m];
    if (old != kNone) {
      auto it = s.attr_index[a].find(old);
      if (it != s.attr_index[a].end()) {
        std::erase(it->second, m);
        if (it->second.empty()) s.attr_index[a].erase(it);
      }
    }
    if (want[a] != kNone) s.attr_index[a][want[a]].push_back(m);
    s.attr_values[a][m] = want[a];
  }
  if (!changed.empty()) {
    s.static_cache.clear();  // candidate bitsets were computed from the old values
    ++s.epoch;               // so were the value lists of GROUP_BY
  }
  s.free_cpu[m] += cap.cpu_millis - s.cap_cpu[m];
  s.free_mem[m] += cap.memory_bytes - s.cap_mem[m];
  s.free_disk[m] += cap.disk_bytes - s.cap_disk[m];
  s.cap_cpu[m] = cap.cpu_millis;
  s.cap_mem[m] = cap.memory_bytes;
  s.cap_disk[m] = cap.disk_bytes;
  s.UpdateLevels(m);
  if (!s.alive.Test(m)) return out;  // a lost machine holds no tasks

  std::vector<Resident> here;
  for (uint32_t t : s.machine_tasks[m]) {
    Resident r{t, (s.task_flags[t] & kGlobalFlag) != 0, 0, s.task_name[t]};
    if (const TaskRequest* req = request_of(r.name)) r.priority = req->priority;
    here.push_back(std::move(r));
  }
  std::sort(here.begin(), here.end(), EvictFirst);
  const std::string head = "machine " + spec.id + " changed: ";
  auto evict = [&](Resident& r, std::string why) {
    s.Evict(r.task);
    r.gone = true;
    (r.global ? out.globals_removed : out.displaced).push_back({r.name, head + why});
  };

  // 1. Capacity: while a resource is over-committed, tasks using it leave.
  for (Resident& r : here) {
    const int64_t fc = s.free_cpu[m], fm = s.free_mem[m], fd = s.free_disk[m];
    if (fc >= 0 && fm >= 0 && fd >= 0) break;
    uint32_t t = r.task;
    if (fc < 0 && s.task_cpu[t] > 0) {
      evict(r, "cpu: " + FormatCpu(cap.cpu_millis - fc) + " placed, capacity " +
                   FormatCpu(cap.cpu_millis));
    } else if (fm < 0 && s.task_mem[t] > 0) {
      evict(r, "memory: " + FormatBytes(cap.memory_bytes - fm) + " placed, capacity " +
                   FormatBytes(cap.memory_bytes));
    } else if (fd < 0 && s.task_disk[t] > 0) {
      evict(r, "disk: " + FormatBytes(cap.disk_bytes - fd) + " placed, capacity " +
                   FormatBytes(cap.disk_bytes));
    }
  }

  // 2. Metadata: each task is taken off and checked as if placed now, on what changed only.
  if (!changed.empty()) {
    for (Resident& r : here) {
      if (r.gone) continue;
      const TaskRequest* req = request_of(r.name);
      if (req == nullptr || req->name != r.name || req->global != r.global || !UsesMetadata(*req)) {
        continue;
      }
      if (r.global) {
        auto git = s.global_instances.find(r.name);
        if (git != s.global_instances.end()) std::erase(git->second, r.task);
      }
      s.Uncommit(r.task);
      Compiled c;
      Verdict v{Filter::kOk, 0};
      if (s.Compile(*req, &c).ok()) {
        if (!c.statics->bits.Test(m)) {
          v.filter = Filter::kStatic;
        } else {
          for (const Compiled::Dyn& d : c.dyn) {
            if (is_changed(d.attr) && s.DynRejects(c, d, m)) {
              v = {Filter::kConstraint, static_cast<uint32_t>(d.index)};
              break;
            }
          }
        }
      } else {  // cannot happen for a request that was placed; keep it
        c = Compiled{};
        c.req = req;
        std::string gname;
        s.GroupNameFor(*req, &gname);
        c.group = gname.empty() ? kNone : s.GroupId(gname, true);
        c.statics = &s.all;
      }
      if (v.filter == Filter::kOk) {
        r.task = s.Commit(c, *req, m);
        continue;
      }
      std::string filter;
      std::string why = s.Describe(c, m, v, &filter);
      r.gone = true;
      (r.global ? out.globals_removed : out.displaced).push_back({r.name, head + why});
      if (r.global) {
        auto git = s.global_instances.find(r.name);
        if (git != s.global_instances.end() && git->second.empty()) s.global_instances.erase(git);
      }
    }
  }

  // 3. MachineOf followers go with their target.
  for (bool again = !out.displaced.empty(); again;) {
    again = false;
    for (Resident& r : here) {
      if (r.gone || r.global) continue;
      const TaskRequest* req = request_of(r.name);
      if (req == nullptr || req->machine_of.empty()) continue;
      auto target = s.task_by_name.find(req->machine_of);
      if (target != s.task_by_name.end() && target->second != kNone &&
          s.task_machine[target->second] == m) {
        continue;
      }
      std::string target_name = req->machine_of;
      evict(r, "MachineOf=" + target_name + ": `" + target_name + "` left the machine");
      again = true;
    }
  }
  return out;
}

}  // namespace fjord::scheduler
