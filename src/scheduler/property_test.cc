// Property tests: random clusters and workloads (fjord-sim's generator), several seeds; the
// independent checker must find no machine over capacity, no violated constraint and every
// global unit on every eligible machine, also after random releases and lost machines.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "scheduler/scheduler.h"
#include "sim/checker.h"
#include "sim/workload.h"

namespace fjord::scheduler {
namespace {

struct World {
  sim::Workload wl;
  std::unique_ptr<Scheduler> s;
  std::set<std::string> lost;
};

sim::CheckReport Check(const World& w, bool balance) {
  sim::CheckInput in;
  in.machines = w.wl.machines;
  in.lost = w.lost;
  in.check_balance = balance;
  for (const TaskRequest& g : w.wl.globals) in.globals.push_back(&g);
  for (const TaskLocation& loc : w.s->Tasks()) {
    sim::CheckedTask t;
    t.name = loc.name;
    t.machine = loc.machine_id;
    size_t gi;
    uint32_t idx;
    if (sim::ParseInstance(loc.name, &gi, &idx)) {
      t.request = &w.wl.groups[gi].tmpl;
      t.machine_of = sim::MachineOfFor(w.wl.groups[gi], idx);
    } else {
      for (const TaskRequest& g : w.wl.globals) {
        if (g.name == loc.name) t.request = &g;
      }
    }
    EXPECT_NE(t.request, nullptr) << loc.name;
    if (t.request) in.placed.push_back(std::move(t));
  }
  return sim::CheckSchedule(in);
}

base::Result<Placement> PlaceInstance(World& w, const std::string& name) {
  size_t gi;
  uint32_t idx;
  EXPECT_TRUE(sim::ParseInstance(name, &gi, &idx));
  TaskRequest r = w.wl.groups[gi].tmpl;
  r.name = name;
  r.machine_of = sim::MachineOfFor(w.wl.groups[gi], idx);
  return w.s->Place(r);
}

std::string Describe(const sim::CheckReport& r) {
  std::string out;
  for (const std::string& e : r.examples) out += "\n  " + e;
  return out;
}

std::string TemplateOfName(const std::string& name) {
  size_t at = name.find('@'), dot = name.rfind('.');
  return name.substr(0, at + 1) + name.substr(dot);
}

class PropertyTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(PropertyTest, NeverOverCapacityNeverViolated) {
  uint64_t seed = GetParam();
  size_t machines = 40 + (seed * 37) % 200;
  size_t tasks = machines * (10 + seed % 40);
  World w;
  w.wl = sim::MakeWorkload(machines, tasks, seed);
  SchedulerOptions opts;
  opts.seed = seed;
  opts.strategy = seed % 2 ? Strategy::kSpread : Strategy::kBinPack;
  opts.constraint_cache_limit = 8;  // exercise cache resets too
  w.s = *Scheduler::Create(w.wl.machines, opts);
  for (const TaskRequest& g : w.wl.globals) {
    std::vector<PendingTask> missed;
    ASSERT_TRUE(w.s->PlaceGlobal(g, &missed).ok());
    EXPECT_TRUE(missed.empty()) << missed.front().name << ": " << missed.front().reason;
  }
  std::vector<std::string> placed;
  for (const sim::SimGroup& g : w.wl.groups) {
    for (uint32_t i = 1; i <= g.instances; ++i) {
      auto p = PlaceInstance(w, sim::InstanceNameOf(g, i));
      if (p.ok()) {
        placed.push_back(p->task);
      } else {
        EXPECT_EQ(p.status().code(), base::Code::kResourceExhausted) << p.status().ToString();
      }
    }
  }
  EXPECT_GT(placed.size(), tasks * 9 / 10);
  sim::CheckReport r = Check(w, /*balance=*/true);
  EXPECT_EQ(r.violations, 0u) << Describe(r);

  // Churn: release a fifth, lose two machines, then place everything again in a random order.
  // Units that others follow (MachineOf, affinity) are not released alone: the server moves
  // their dependants with them, which is outside the scheduler.
  std::set<std::string> followed;
  for (const sim::SimGroup& g : w.wl.groups) {
    for (const std::string& a : g.tmpl.affinity_groups) followed.insert(a);
    if (!g.tmpl.machine_of.empty()) followed.insert(TemplateOfName(g.tmpl.machine_of));
  }
  std::erase_if(placed,
                [&](const std::string& n) { return followed.count(TemplateOfName(n)) > 0; });
  std::mt19937_64 rng(seed);
  std::shuffle(placed.begin(), placed.end(), rng);
  std::vector<std::string> again(placed.begin(), placed.begin() + placed.size() / 5);
  for (const std::string& n : again) ASSERT_TRUE(w.s->Release(n).ok());
  for (int i = 0; i < 2; ++i) {
    const std::string& id = w.wl.machines[rng() % machines].id;
    if (w.lost.count(id)) continue;
    auto displaced = w.s->LoseMachine(id);
    ASSERT_TRUE(displaced.ok());
    w.lost.insert(id);
    again.insert(again.end(), displaced->begin(), displaced->end());
  }
  std::shuffle(again.begin(), again.end(), rng);
  for (const std::string& n : again) {
    auto p = PlaceInstance(w, n);
    if (!p.ok()) {
      EXPECT_EQ(p.status().code(), base::Code::kResourceExhausted);
    }
  }
  r = Check(w, /*balance=*/false);
  EXPECT_EQ(r.violations, 0u) << Describe(r);
  EXPECT_EQ(r.over_capacity_machines, 0u);
}

INSTANTIATE_TEST_SUITE_P(Seeds, PropertyTest, ::testing::Values(1, 2, 3, 4, 5, 6, 7, 8));

}  // namespace
}  // namespace fjord::scheduler
