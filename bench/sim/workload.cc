#include "sim/workload.h"

#include <algorithm>
#include <random>

namespace fjord::sim {

using scheduler::AttributeConstraint;
using scheduler::Operator;
using scheduler::Strategy;
using scheduler::TaskRequest;

namespace {

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kGiB = int64_t{1} << 30;
constexpr size_t kRackSize = 40;

template <typename T>
T Pick(std::mt19937_64& rng, const std::vector<std::pair<T, int>>& weighted) {
  int total = 0;
  for (const auto& [v, w] : weighted) total += w;
  int r = static_cast<int>(rng() % static_cast<uint64_t>(total));
  for (const auto& [v, w] : weighted) {
    if (r < w) return v;
    r -= w;
  }
  return weighted.back().first;
}

std::string Num(size_t n, int width) {
  std::string s = std::to_string(n);
  if (static_cast<int>(s.size()) < width) s.insert(0, width - s.size(), '0');
  return s;
}

}  // namespace

std::string InstanceNameOf(const SimGroup& g, uint32_t index) {
  std::string base = g.tmpl.name;  // svcN@.service
  size_t at = base.find('@');
  return base.substr(0, at + 1) + std::to_string(index) + base.substr(at + 1);
}

std::string MachineOfFor(const SimGroup& g, uint32_t index) {
  std::string mo = g.tmpl.machine_of;
  size_t p = mo.find("%i");
  if (p != std::string::npos) mo.replace(p, 2, std::to_string(index));
  return mo;
}

bool ParseInstance(const std::string& name, size_t* group, uint32_t* index) {
  if (name.compare(0, 3, "svc") != 0) return false;
  size_t at = name.find('@');
  size_t dot = name.rfind('.');
  if (at == std::string::npos || dot == std::string::npos || dot <= at + 1 || at <= 3) {
    return false;
  }
  *group = std::stoul(name.substr(3, at - 3));
  *index = static_cast<uint32_t>(std::stoul(name.substr(at + 1, dot - at - 1)));
  return true;
}

Workload MakeWorkload(size_t machines, size_t tasks, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Workload w;
  w.zones = 3 + seed % 3;
  w.racks = (machines + kRackSize - 1) / kRackSize;
  struct Size {
    const char* name;
    int64_t cores, mem_gib, disk_gib;
  };
  const std::vector<std::pair<Size, int>> sizes = {
      {{"small", 8, 32, 500}, 15},     {{"medium", 16, 64, 1000}, 25},
      {{"large", 32, 128, 2000}, 25},  {{"large-mem", 32, 256, 2000}, 15},
      {{"xlarge", 64, 256, 4000}, 12}, {{"xlarge-mem", 64, 512, 4000}, 8}};
  for (size_t i = 0; i < machines; ++i) {
    size_t rack = i / kRackSize;
    Size s = Pick(rng, sizes);
    scheduler::MachineSpec m;
    m.id = "m" + Num(i, 5);
    m.metadata = {{"zone", "z" + std::to_string(rack % w.zones)},
                  {"rack", "r" + Num(rack, 3)},
                  {"size", s.name},
                  {"disk", rng() % 3 == 0 ? "hdd" : "ssd"},
                  {"region", "eu-north"}};
    m.capacity = {s.cores * 1000, s.mem_gib * kGiB, s.disk_gib * kGiB};
    w.machines.push_back(std::move(m));
  }

  TaskRequest g1;
  g1.name = "node-exporter.service";
  g1.global = true;
  g1.resources = {100, 128 * kMiB, 1 * kGiB};
  TaskRequest g2;
  g2.name = "log-shipper.service";
  g2.global = true;
  g2.resources = {200, 256 * kMiB, 10 * kGiB};
  g2.machine_metadata = {{"disk", {"ssd"}}};
  w.globals = {g1, g2};

  // About 0.19 cores per task: ~60% of the cpu of the simulated fleet at 100 tasks per machine.
  const std::vector<std::pair<int64_t, int>> cpus = {
      {50, 35}, {100, 30}, {250, 20}, {500, 11}, {1000, 4}};
  const std::vector<std::pair<int64_t, int>> mems = {{64, 25},  {128, 30}, {256, 20},
                                                     {512, 15}, {1024, 7}, {4096, 3}};
  const std::vector<std::pair<std::string, int>> profiles = {
      {"plain", 50},         {"binpack", 15},           {"metadata", 8},    {"group_by_zone", 6},
      {"unique_host", 4},    {"like_size", 3},          {"unlike_rack", 1}, {"max_per_rack", 5},
      {"cluster_zone", 1},   {"conflicts", 2},          {"port", 1},        {"sidecar", 2},
      {"affinity_group", 1}, {"anti_affinity_group", 1}};
  size_t remaining = tasks;
  while (remaining > 0) {
    uint64_t r = rng() % 100;
    uint32_t n = r < 70 ? 1 + rng() % 20 : r < 95 ? 20 + rng() % 180 : 200 + rng() % 800;
    n = static_cast<uint32_t>(std::min<size_t>(n, remaining));
    std::string profile = Pick(rng, profiles);
    size_t gi = w.groups.size();
    SimGroup g;
    g.profile = profile;
    TaskRequest& t = g.tmpl;
    t.name = "svc" + std::to_string(gi) + "@.service";
    t.group = t.name;
    t.priority = static_cast<int>(rng() % 4);
    t.resources = {Pick(rng, cpus), Pick(rng, mems) * kMiB,
                   static_cast<int64_t>(1 + rng() % 20) * kGiB};
    size_t small_cap = std::max<size_t>(1, machines / 4);
    if (profile == "binpack") {
      t.strategy = Strategy::kBinPack;
    } else if (profile == "metadata") {
      if (rng() % 2) {
        t.machine_metadata = {{"zone", {"z0", "z1"}}};
      } else {
        t.machine_metadata = {{"disk", {"ssd"}}, {"region", {"eu-north"}}};
      }
    } else if (profile == "group_by_zone") {
      t.constraints = {{"zone", Operator::kGroupBy, "", 0}};
    } else if (profile == "unique_host") {
      n = static_cast<uint32_t>(std::min<size_t>(n, small_cap));
      t.constraints = {{"hostname", Operator::kUnique, "", 0}};
    } else if (profile == "like_size") {
      t.constraints = {{"size", Operator::kLike, "(large|xlarge).*", 0}};
    } else if (profile == "unlike_rack") {
      t.constraints = {{"rack", Operator::kUnlike, "r..0", 0}};
    } else if (profile == "max_per_rack") {
      int64_t per = 2 + static_cast<int64_t>(rng() % 4);
      n = static_cast<uint32_t>(std::min<size_t>(n, w.racks * per / 2));
      t.constraints = {{"rack", Operator::kMaxPer, "", per}};
    } else if (profile == "cluster_zone") {
      t.constraints = {{"zone", Operator::kCluster, "", 0}};
      t.resources.cpu_millis = 50;
    } else if (profile == "conflicts") {
      n = static_cast<uint32_t>(std::min<size_t>(n, small_cap));
      t.conflicts = {"svc" + std::to_string(gi) + "@*.service"};
    } else if (profile == "port") {
      n = static_cast<uint32_t>(std::min<size_t>(n, small_cap));
      t.ports = {static_cast<uint16_t>(8000 + gi % 1000)};
    } else if (profile == "sidecar" && n * 2 <= remaining && gi > 0) {
      // A service and its sidecar: instance i of the sidecar runs beside instance i.
      g.profile = "plain";
      g.instances = n;
      w.groups.push_back(g);
      remaining -= n;
      SimGroup side;
      side.profile = "sidecar";
      side.tmpl = t;
      side.tmpl.name = "svc" + std::to_string(gi + 1) + "@.service";
      side.tmpl.group = side.tmpl.name;
      side.tmpl.machine_of = "svc" + std::to_string(gi) + "@%i.service";
      side.tmpl.resources = {50, 64 * kMiB, 1 * kGiB};
      side.tmpl.priority = t.priority - 1;  // after its service when both are displaced
      side.instances = n;
      w.groups.push_back(side);
      remaining -= n;
      continue;
    } else if ((profile == "affinity_group" || profile == "anti_affinity_group") && gi > 0) {
      // Relative to an earlier plain group.
      for (size_t back = 1; back <= gi && back < 50; ++back) {
        if (w.groups[gi - back].profile != "plain") continue;
        if (profile == "affinity_group") {
          t.affinity_groups = {w.groups[gi - back].tmpl.group};
          n = std::min<uint32_t>(n, w.groups[gi - back].instances);
        } else {
          t.anti_affinity_groups = {w.groups[gi - back].tmpl.group};
        }
        break;
      }
      t.resources.cpu_millis = 50;
    } else {
      g.profile = "plain";
    }
    g.instances = n;
    w.groups.push_back(std::move(g));
    remaining -= n;
  }
  return w;
}

}  // namespace fjord::sim
