// Explainability: which filter rejected a machine and why, in words a user can act on.
#include <algorithm>
#include <sstream>

#include "scheduler/impl.h"

namespace fjord::scheduler {

using base::Status;

namespace {

std::string JoinValues(const std::vector<std::string>& values) {
  std::string out;
  for (const std::string& v : values) {
    if (!out.empty()) out += '|';
    out += v;
  }
  return out;
}

}  // namespace

const std::regex* Scheduler::Impl::RegexFor(const std::string& pattern) const {
  auto it = regex_cache.find(pattern);
  if (it != regex_cache.end()) return it->second.get();
  std::unique_ptr<std::regex> re;
  try {
    re = std::make_unique<std::regex>(pattern);
  } catch (const std::regex_error&) {
  }
  if (regex_cache.size() >= 1024) regex_cache.clear();
  return regex_cache.emplace(pattern, std::move(re)).first->second.get();
}

bool Scheduler::Impl::StaticReason(const TaskRequest& req, uint32_t m, std::string* filter,
                                   std::string* reason) const {
  auto has = [&](const std::string& key, uint32_t* value) {
    uint32_t attr = AttrOf(key);
    *value = attr == kNone ? kNone : attr_values[attr][m];
    return *value != kNone;
  };
  for (const MetadataRequirement& r : req.machine_metadata) {
    uint32_t v;
    bool ok =
        has(r.key, &v) && std::find(r.values.begin(), r.values.end(), strings[v]) != r.values.end();
    if (ok) continue;
    *filter = "MachineMetadata " + r.key;
    *reason = "MachineMetadata " + r.key + "=" + JoinValues(r.values) + ": machine has " +
              (v == kNone ? "no `" + r.key + "`" : r.key + "=" + strings[v]);
    return true;
  }
  for (const AttributeConstraint& k : req.constraints) {
    bool like = k.op == Operator::kLike, unlike = k.op == Operator::kUnlike;
    bool cluster = k.op == Operator::kCluster && !k.value.empty();
    if (!like && !unlike && !cluster) continue;
    uint32_t v;
    bool present = has(k.attribute, &v);
    bool ok;
    if (cluster) {
      ok = present && strings[v] == k.value;
    } else {
      const std::regex* re = RegexFor(k.value);
      bool match = present && re != nullptr && std::regex_match(strings[v], *re);
      ok = like ? match : !match;
    }
    if (ok) continue;
    *filter = std::string(OperatorName(k.op)) + " " + k.attribute;
    *reason = *filter + ":" + k.value + ": machine has " +
              (present ? k.attribute + "=" + strings[v] : "no `" + k.attribute + "`");
    return true;
  }
  return false;
}

std::string Scheduler::Impl::Label(const Compiled& c, uint32_t m, Verdict v) const {
  std::string filter;
  switch (v.filter) {
    case Filter::kOk:
      return "ok";
    case Filter::kLost:
      return "lost";
    case Filter::kMachine:
      return c.req->machine_of.empty() ? "MachineID" : "MachineOf";
    case Filter::kStatic: {
      std::string reason;
      StaticReason(*c.req, m, &filter, &reason);
      return filter;
    }
    case Filter::kCpu:
      return "cpu";
    case Filter::kMemory:
      return "memory";
    case Filter::kDisk:
      return "disk";
    case Filter::kPort:
      return "port " + std::to_string(c.req->ports[v.index]);
    case Filter::kConstraint: {
      const AttributeConstraint& k = c.req->constraints[v.index];
      return std::string(OperatorName(k.op)) + " " + k.attribute;
    }
    case Filter::kAffinityGroup:
      return "affinity group " + c.req->affinity_groups[v.index];
    case Filter::kAntiAffinityGroup:
      return "anti-affinity group " + c.req->anti_affinity_groups[v.index];
    case Filter::kConflicts:
      return "Conflicts " + c.req->conflicts[v.index];
    case Filter::kReplaces:
      return "Replaces " + c.req->replaces[v.index];
    case Filter::kAffinityUnit:
      return "affinity unit " + c.req->affinity_units[v.index];
    case Filter::kAntiAffinityUnit:
      return "anti-affinity unit " + c.req->anti_affinity_units[v.index];
    case Filter::kExcludedBy:
      return "excluded by a unit on the machine";
  }
  return "unknown";
}

std::string Scheduler::Impl::Describe(const Compiled& c, uint32_t m, Verdict v,
                                      std::string* filter) const {
  const TaskRequest& req = *c.req;
  *filter = Label(c, m, v);
  auto first_match = [&](const std::string& pattern, bool exact) -> std::string {
    for (uint32_t t : machine_tasks[m]) {
      if (exact ? task_name[t] == pattern : GlobMatch(pattern, task_name[t])) return task_name[t];
    }
    return "?";
  };
  switch (v.filter) {
    case Filter::kOk:
      return "feasible";
    case Filter::kLost:
      return "machine is lost";
    case Filter::kMachine:
      if (!req.machine_of.empty()) {
        return "MachineOf=" + req.machine_of + ": `" + req.machine_of + "` runs on " +
               machine_ids[c.only_machine];
      }
      return "MachineID=" + req.machine_id + ": machine is " + machine_ids[m];
    case Filter::kStatic: {
      std::string reason;
      StaticReason(req, m, filter, &reason);
      return reason;
    }
    case Filter::kCpu:
      return "cpu: needs " + FormatCpu(req.resources.cpu_millis) + ", " + FormatCpu(free_cpu[m]) +
             " free";
    case Filter::kMemory:
      return "memory: needs " + FormatBytes(req.resources.memory_bytes) + ", " +
             FormatBytes(free_mem[m]) + " free";
    case Filter::kDisk:
      return "disk: needs " + FormatBytes(req.resources.disk_bytes) + ", " +
             FormatBytes(free_disk[m]) + " free";
    case Filter::kPort:
      return "port " + std::to_string(req.ports[v.index]) + ": already in use on the machine";
    case Filter::kConstraint: {
      const AttributeConstraint& k = req.constraints[v.index];
      std::string head = std::string(OperatorName(k.op)) + " " + k.attribute;
      uint32_t attr = AttrOf(k.attribute);
      uint32_t value = attr == kNone ? kNone : ValueOf(attr, m);
      if (value == kNone) return head + ": machine has no `" + k.attribute + "`";
      std::string here = k.attribute + "=" + strings[value];
      uint32_t n = counts.Get(CountKey(c.group, attr, value));
      std::string group = "`" + groups[c.group].name + "`";
      for (const Compiled::Dyn& d : c.dyn) {
        if (d.index != v.index) continue;
        if (k.op == Operator::kUnique) {
          return head + ": group " + group + " already has a task on " + here;
        }
        if (k.op == Operator::kMaxPer) {
          return head + ":" + std::to_string(k.count) + ": group " + group + " has " +
                 std::to_string(n) + " on " + here;
        }
        if (k.op == Operator::kGroupBy) {
          return head + ": " + here + " has " + std::to_string(n) + " of group " + group +
                 ", the least-used value has " + std::to_string(d.min);
        }
        if (k.op == Operator::kCluster) {
          return head + ": group " + group + " is on " + k.attribute + "=" + strings[d.value] +
                 ", machine has " + here;
        }
      }
      return head + ": rejected on " + here;
    }
    case Filter::kAffinityGroup:
      return "affinity to group `" + req.affinity_groups[v.index] +
             "`: no task of it on the machine";
    case Filter::kAntiAffinityGroup:
      return "anti-affinity to group `" + req.anti_affinity_groups[v.index] +
             "`: the machine runs a task of it";
    case Filter::kConflicts:
      return "Conflicts=" + req.conflicts[v.index] + ": machine runs " +
             first_match(req.conflicts[v.index], false);
    case Filter::kReplaces:
      return "Replaces=" + req.replaces[v.index] + ": machine runs " + req.replaces[v.index];
    case Filter::kAffinityUnit:
      return "affinity to `" + req.affinity_units[v.index] + "`: no matching unit on the machine";
    case Filter::kAntiAffinityUnit:
      return "anti-affinity to `" + req.anti_affinity_units[v.index] + "`: machine runs " +
             first_match(req.anti_affinity_units[v.index], false);
    case Filter::kExcludedBy:
      return "`" + task_name[v.index] +
             "` on the machine excludes this unit (its Conflicts, Replaces or anti-affinity)";
  }
  return "unknown filter";
}

std::string Scheduler::Impl::FailureSummary(const Compiled& c) const {
  std::map<std::string, std::pair<size_t, uint32_t>> by;  // label -> (count, example machine)
  size_t total = 0;
  for (uint32_t m = 0; m < machine_ids.size(); ++m) {
    if (!alive.Test(m)) continue;
    ++total;
    Verdict v = Check(c, m);
    auto& e = by[Label(c, m, v)];
    if (e.first++ == 0) e.second = m;
  }
  if (total == 0) return "no machines are alive";
  std::vector<std::pair<size_t, std::string>> order;
  for (const auto& [label, e] : by) order.emplace_back(e.first, label);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::string out = "no machine fits (" + std::to_string(total) + " alive)";
  for (size_t i = 0; i < order.size() && i < 3; ++i) {
    uint32_t m = by[order[i].second].second;
    std::string filter;
    out += "; " + std::to_string(order[i].first) + " rejected by " + order[i].second + ", e.g. " +
           machine_ids[m] + ": " + Describe(c, m, Check(c, m), &filter);
  }
  return out;
}

Explanation Scheduler::Explain(const TaskRequest& request, size_t sample) const {
  // Compiling may create an empty group or start counting an attribute; neither changes any
  // placement, so Explain is const to its callers.
  Impl& s = const_cast<Impl&>(*impl_);
  Explanation e;
  e.task = request.name;
  if (Status st = ValidateRequest(request); !st.ok()) {
    e.error = std::string(st.message());
    return e;
  }
  Compiled c;
  if (Status st = s.Compile(request, &c); !st.ok()) {
    e.error = std::string(st.message());
    return e;
  }
  e.strategy = c.strategy;
  if (c.impossible) e.error = c.impossible_reason;
  size_t n = s.machine_ids.size();
  size_t step = sample == 0 ? 0 : std::max<size_t>(1, n / sample);
  for (uint32_t m = 0; m < n; ++m) {
    if (!s.alive.Test(m)) continue;
    ++e.machines_total;
    Verdict v = c.impossible ? Verdict{Filter::kMachine, 0} : s.Check(c, m);
    MachineVerdict mv;
    mv.machine_id = s.machine_ids[m];
    if (v.filter == Filter::kOk) {
      ++e.machines_feasible;
      mv.feasible = true;
      mv.score = s.Score(c, m);
      mv.filter = "ok";
      mv.reason = "feasible";
      if (!e.chosen || mv.score > e.chosen->score) e.chosen = mv;
    } else if (c.impossible) {
      mv.filter = "unsatisfiable";
      mv.reason = c.impossible_reason;
    } else {
      ++e.rejected_by[s.Label(c, m, v)];
    }
    if (step != 0 && m % step == 0 && e.sample.size() < sample) {
      if (!mv.feasible && !c.impossible) mv.reason = s.Describe(c, m, v, &mv.filter);
      e.sample.push_back(std::move(mv));
    }
  }
  if (c.impossible) e.rejected_by["unsatisfiable"] = e.machines_total;
  return e;
}

std::string FormatExplanation(const Explanation& e) {
  std::ostringstream out;
  out << "unit " << e.task << " (strategy "
      << (e.strategy == Strategy::kBinPack ? "bin-pack" : "spread") << ")\n";
  if (!e.error.empty()) out << "  cannot be placed: " << e.error << "\n";
  out << "  machines: " << e.machines_total << " alive, " << e.machines_feasible << " feasible\n";
  if (!e.rejected_by.empty()) {
    std::vector<std::pair<size_t, std::string>> order;
    for (const auto& [f, n] : e.rejected_by) order.emplace_back(n, f);
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    out << "  rejected by:\n";
    for (const auto& [n, f] : order) out << "    " << n << "\t" << f << "\n";
  }
  if (!e.sample.empty()) {
    out << "  sample:\n";
    for (const MachineVerdict& v : e.sample) {
      out << "    " << v.machine_id << ": ";
      if (v.feasible) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3f", v.score);
        out << "feasible, score " << buf << "\n";
      } else {
        out << v.reason << "\n";
      }
    }
  }
  if (e.chosen) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", e.chosen->score);
    out << "  best: " << e.chosen->machine_id << " (score " << buf << ")\n";
  } else {
    out << "  best: none: the unit stays pending\n";
  }
  return out.str();
}

}  // namespace fjord::scheduler
