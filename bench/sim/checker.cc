#include "sim/checker.h"

#include <fnmatch.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <regex>
#include <unordered_map>

namespace fjord::sim {

using scheduler::AttributeConstraint;
using scheduler::Operator;
using scheduler::TaskRequest;

namespace {

constexpr size_t kUnknown = SIZE_MAX;

struct Machine {
  const scheduler::MachineSpec* spec;
  bool alive;
  std::map<std::string, std::string> meta;
  int64_t cpu = 0, mem = 0, disk = 0;
  std::vector<size_t> tasks;  // indices into input.placed
};

class Checker {
 public:
  explicit Checker(const CheckInput& in) : in_(in) {}

  CheckReport Run() {
    IndexMachines();
    PlaceTasks();
    Capacity();
    for (size_t i = 0; i < in_.placed.size(); ++i) PerTask(i);
    Groups();
    Globals();
    return report_;
  }

 private:
  void Violation(std::string what) {
    ++report_.violations;
    if (report_.examples.size() < 20) report_.examples.push_back(std::move(what));
  }

  const std::regex& Regex(const std::string& pattern) {
    auto it = regexes_.find(pattern);
    if (it == regexes_.end()) {
      it = regexes_.emplace(pattern, std::make_unique<std::regex>(pattern)).first;
    }
    return *it->second;
  }

  static bool Glob(const std::string& pattern, const std::string& name) {
    return fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
  }

  std::string GroupOf(const CheckedTask& t) const {
    if (!t.request->group.empty()) return t.request->group;
    size_t at = t.name.find('@'), dot = t.name.rfind('.');
    if (at != std::string::npos && dot != std::string::npos && dot > at + 1) {
      return t.name.substr(0, at + 1) + t.name.substr(dot);
    }
    return t.name;
  }

  const std::string* Meta(const Machine& m, const std::string& key) const {
    auto it = m.meta.find(key);
    return it == m.meta.end() ? nullptr : &it->second;
  }

  // The metadata-only filters of a request (what decides GROUP_BY's values and globals' reach).
  bool StaticOk(const TaskRequest& r, const Machine& m) {
    if (!r.machine_id.empty() && m.spec->id != r.machine_id) return false;
    for (const auto& req : r.machine_metadata) {
      const std::string* v = Meta(m, req.key);
      if (!v || std::find(req.values.begin(), req.values.end(), *v) == req.values.end()) {
        return false;
      }
    }
    for (const AttributeConstraint& k : r.constraints) {
      const std::string* v = Meta(m, k.attribute);
      if (k.op == Operator::kLike && !(v && std::regex_match(*v, Regex(k.value)))) return false;
      if (k.op == Operator::kUnlike && v && std::regex_match(*v, Regex(k.value))) return false;
      if (k.op == Operator::kCluster && !k.value.empty() && !(v && *v == k.value)) return false;
    }
    return true;
  }

  void IndexMachines() {
    for (const auto& spec : in_.machines) {
      Machine m{&spec, in_.lost.count(spec.id) == 0, {}, 0, 0, 0, {}};
      for (const auto& [k, v] : spec.metadata) m.meta[k] = v;
      if (!m.meta.count("hostname")) m.meta["hostname"] = spec.id;
      by_id_[spec.id] = machines_.size();
      machines_.push_back(std::move(m));
    }
  }

  void PlaceTasks() {
    for (size_t i = 0; i < in_.placed.size(); ++i) {
      const CheckedTask& t = in_.placed[i];
      auto it = by_id_.find(t.machine);
      if (it == by_id_.end()) {
        Violation(t.name + ": on unknown machine " + t.machine);
        task_machine_.push_back(kUnknown);
        group_of_.push_back(GroupOf(t));
        continue;
      }
      Machine& m = machines_[it->second];
      if (!m.alive) Violation(t.name + ": on lost machine " + t.machine);
      m.tasks.push_back(i);
      m.cpu += t.request->resources.cpu_millis;
      m.mem += t.request->resources.memory_bytes;
      m.disk += t.request->resources.disk_bytes;
      task_machine_.push_back(it->second);
      if (!t.request->global && !name_to_machine_.emplace(t.name, it->second).second) {
        Violation(t.name + ": placed twice");
      }
      group_of_.push_back(GroupOf(t));
      groups_[group_of_.back()].push_back(i);
    }
  }

  void Capacity() {
    int64_t cap_cpu = 0, cap_mem = 0, cap_disk = 0, cpu = 0, mem = 0, disk = 0;
    for (const Machine& m : machines_) {
      const auto& c = m.spec->capacity;
      if (m.cpu > c.cpu_millis || m.mem > c.memory_bytes || m.disk > c.disk_bytes) {
        ++report_.over_capacity_machines;
        Violation("machine " + m.spec->id + " over capacity");
      }
      std::set<uint16_t> ports;
      for (size_t i : m.tasks) {
        for (uint16_t p : in_.placed[i].request->ports) {
          if (!ports.insert(p).second) {
            Violation("machine " + m.spec->id + ": port " + std::to_string(p) + " given twice");
          }
        }
      }
      if (!m.alive) continue;
      cap_cpu += c.cpu_millis, cap_mem += c.memory_bytes, cap_disk += c.disk_bytes;
      cpu += m.cpu, mem += m.mem, disk += m.disk;
    }
    auto frac = [](int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / b : 0.0; };
    report_.cpu_used = frac(cpu, cap_cpu);
    report_.mem_used = frac(mem, cap_mem);
    report_.disk_used = frac(disk, cap_disk);
  }

  void PerTask(size_t i) {
    const CheckedTask& t = in_.placed[i];
    if (task_machine_[i] == kUnknown) return;
    const TaskRequest& r = *t.request;
    const Machine& m = machines_[task_machine_[i]];
    auto fail = [&](const std::string& what) {
      Violation(t.name + " on " + m.spec->id + ": " + what);
    };
    if (!r.global && !StaticOk(r, m))
      fail("metadata constraint (MachineID/MachineMetadata/LIKE/UNLIKE/CLUSTER value)");
    if (!t.machine_of.empty()) {
      auto it = name_to_machine_.find(t.machine_of);
      if (it == name_to_machine_.end() || it->second != task_machine_[i]) {
        fail("MachineOf=" + t.machine_of + " not on this machine");
      }
    }
    std::vector<bool> affinity_found(r.affinity_units.size(), false);
    std::vector<bool> group_found(r.affinity_groups.size(), false);
    for (size_t j : m.tasks) {
      if (j == i) continue;
      const CheckedTask& o = in_.placed[j];
      for (const auto& p : r.conflicts) {
        if (Glob(p, o.name)) fail("Conflicts=" + p + " with " + o.name);
      }
      for (const auto& p : r.replaces) {
        if (p == o.name) fail("Replaces=" + p + " beside it");
      }
      for (const auto& p : r.anti_affinity_units) {
        if (Glob(p, o.name)) fail("anti-affinity " + p + " with " + o.name);
      }
      for (size_t a = 0; a < r.affinity_units.size(); ++a) {
        if (Glob(r.affinity_units[a], o.name)) affinity_found[a] = true;
      }
      if (r.anti_affinity_groups.empty() && r.affinity_groups.empty()) continue;
      const std::string& og = group_of_[j];
      for (const auto& g : r.anti_affinity_groups) {
        if (g == og) fail("anti-affinity group " + g + " with " + o.name);
      }
      for (size_t a = 0; a < r.affinity_groups.size(); ++a) {
        if (r.affinity_groups[a] == og) group_found[a] = true;
      }
    }
    for (size_t a = 0; a < affinity_found.size(); ++a) {
      if (!affinity_found[a]) fail("affinity " + r.affinity_units[a] + " unmet");
    }
    for (size_t a = 0; a < group_found.size(); ++a) {
      if (!group_found[a]) fail("affinity group " + r.affinity_groups[a] + " unmet");
    }
  }

  void Groups() {
    for (const auto& [group, members] : groups_) {
      const TaskRequest& r = *in_.placed[members.front()].request;
      for (const AttributeConstraint& k : r.constraints) {
        if (k.op == Operator::kLike || k.op == Operator::kUnlike) continue;
        if (k.op == Operator::kCluster && !k.value.empty()) continue;
        std::map<std::string, int64_t> per_value;
        for (size_t i : members) {
          if (task_machine_[i] == kUnknown) continue;
          const std::string* v = Meta(machines_[task_machine_[i]], k.attribute);
          if (!v) {
            Violation(in_.placed[i].name + ": " + std::string(OperatorName(k.op)) + " " +
                      k.attribute + " on a machine without it");
            continue;
          }
          ++per_value[*v];
        }
        std::string head =
            "group " + group + ": " + std::string(OperatorName(k.op)) + " " + k.attribute;
        for (const auto& [v, n] : per_value) {
          if (k.op == Operator::kUnique && n > 1)
            Violation(head + ": " + std::to_string(n) + " on " + v);
          if (k.op == Operator::kMaxPer && n > k.count)
            Violation(head + ": " + std::to_string(n) + " on " + v);
        }
        if (k.op == Operator::kCluster && per_value.size() > 1) Violation(head + ": spans values");
        if (k.op == Operator::kGroupBy && in_.check_balance) {
          // Values reachable by the group; each must be within one of the others.
          std::map<std::string, int64_t> counts;
          for (const Machine& m : machines_) {
            const std::string* v = Meta(m, k.attribute);
            if (m.alive && v && StaticOk(r, m)) counts.emplace(*v, 0);
          }
          for (const auto& [v, n] : per_value) counts[v] = n;
          int64_t lo = INT64_MAX, hi = 0;
          for (const auto& [v, n] : counts) lo = std::min(lo, n), hi = std::max(hi, n);
          if (!counts.empty() && hi - lo > 1) {
            Violation(head + ": uneven (" + std::to_string(lo) + ".." + std::to_string(hi) + ")");
          }
        }
      }
    }
  }

  void Globals() {
    for (const TaskRequest* g : in_.globals) {
      std::set<size_t> on;
      for (size_t i = 0; i < in_.placed.size(); ++i) {
        if (in_.placed[i].request->global && in_.placed[i].name == g->name &&
            task_machine_[i] != kUnknown) {
          if (!on.insert(task_machine_[i]).second) Violation(g->name + ": twice on one machine");
        }
      }
      for (size_t m = 0; m < machines_.size(); ++m) {
        if (machines_[m].alive && StaticOk(*g, machines_[m]) && !on.count(m)) {
          Violation("global " + g->name + " missing on " + machines_[m].spec->id);
        }
        if (on.count(m) && !StaticOk(*g, machines_[m])) {
          Violation("global " + g->name + " on ineligible " + machines_[m].spec->id);
        }
      }
    }
  }

  const CheckInput& in_;
  CheckReport report_;
  std::vector<Machine> machines_;
  std::unordered_map<std::string, size_t> by_id_;
  std::vector<size_t> task_machine_;
  std::vector<std::string> group_of_;
  std::unordered_map<std::string, size_t> name_to_machine_;
  std::map<std::string, std::vector<size_t>> groups_;
  std::map<std::string, std::unique_ptr<std::regex>> regexes_;
};

}  // namespace

CheckReport CheckSchedule(const CheckInput& input) { return Checker(input).Run(); }

}  // namespace fjord::sim
