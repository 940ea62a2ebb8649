#include "scheduler/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "scheduler/impl.h"
#include "scheduler/test_util.h"

namespace fjord::scheduler {
namespace {

using ::testing::HasSubstr;

using test::kGiB;
using test::kMiB;
using test::M;
using test::T;

std::vector<MachineSpec> SixMachines() {
  return {M("a", {{"zone", "z1"}, {"rack", "r1"}, {"size", "large"}, {"region", "se-sto"}}),
          M("b", {{"zone", "z1"}, {"rack", "r2"}, {"size", "small"}, {"region", "se-sto"}}),
          M("c", {{"zone", "z2"}, {"rack", "r3"}, {"size", "large"}, {"region", "no-osl"}}),
          M("d", {{"zone", "z2"}, {"rack", "r3"}, {"size", "xlarge"}, {"region", "no-osl"}}),
          M("e", {{"zone", "z3"}, {"rack", "r4"}, {"size", "small"}}),
          M("f", {{"zone", "z3"}, {"rack", "r4"}, {"size", "medium"}})};
}

// Which machines pass every filter, per Explain over the whole cluster.
std::set<std::string> Feasible(const Scheduler& s, const TaskRequest& r, Explanation* out) {
  Explanation e = s.Explain(r, s.machine_count());
  std::set<std::string> ids;
  for (const MachineVerdict& v : e.sample) {
    if (v.feasible) ids.insert(v.machine_id);
  }
  *out = e;
  return ids;
}

std::string ReasonFor(const Explanation& e, const std::string& machine) {
  for (const MachineVerdict& v : e.sample) {
    if (v.machine_id == machine) return v.reason;
  }
  return "(not sampled)";
}

struct Existing {
  TaskRequest request;
  std::string machine;
};

struct ConstraintCase {
  std::string what;
  std::vector<Existing> existing;
  TaskRequest request;
  std::set<std::string> feasible;
  std::string rejected_machine;  // optional: machine whose reason must contain `reason`
  std::string reason;
};

TaskRequest With(TaskRequest t, const std::function<void(TaskRequest&)>& f) {
  f(t);
  return t;
}

AttributeConstraint C(const std::string& text) {
  auto k = ParseConstraint(text);
  EXPECT_TRUE(k.ok()) << k.status().ToString();
  return k.ok() ? *k : AttributeConstraint{};
}

std::vector<ConstraintCase> Cases() {
  auto svc = [](const std::string& name, const std::string& constraint) {
    TaskRequest t = T(name);
    if (!constraint.empty()) t.constraints = {C(constraint)};
    return t;
  };
  return {
      {"plain", {}, T("x.service"), {"a", "b", "c", "d", "e", "f"}, "", ""},
      {"MachineID",
       {},
       With(T("x.service"), [](auto& t) { t.machine_id = "c"; }),
       {"c"},
       "a",
       "MachineID=c: machine is a"},
      {"MachineMetadata one value",
       {},
       With(T("x.service"),
            [](auto& t) {
              t.machine_metadata = {{"region", {"se-sto"}}};
            }),
       {"a", "b"},
       "c",
       "MachineMetadata region=se-sto: machine has region=no-osl"},
      {"MachineMetadata missing key",
       {},
       With(T("x.service"),
            [](auto& t) {
              t.machine_metadata = {{"region", {"se-sto"}}};
            }),
       {"a", "b"},
       "e",
       "machine has no `region`"},
      {"MachineMetadata values OR",
       {},
       With(T("x.service"),
            [](auto& t) {
              t.machine_metadata = {{"region", {"se-sto", "no-osl"}}};
            }),
       {"a", "b", "c", "d"},
       "",
       ""},
      {"MachineMetadata lines AND",
       {},
       With(T("x.service"),
            [](auto& t) {
              t.machine_metadata = {{"region", {"no-osl"}}, {"size", {"large"}}};
            }),
       {"c"},
       "d",
       "MachineMetadata size=large: machine has size=xlarge"},
      {"MachineOf",
       {{T("db.service"), "d"}},
       With(T("x.service"), [](auto& t) { t.machine_of = "db.service"; }),
       {"d"},
       "a",
       "MachineOf=db.service: `db.service` runs on d"},
      {"Conflicts glob",
       {{T("web@1.service"), "a"}, {T("web@2.service"), "c"}},
       With(T("web@3.service"), [](auto& t) { t.conflicts = {"web@*.service"}; }),
       {"b", "d", "e", "f"},
       "a",
       "Conflicts=web@*.service: machine runs web@1.service"},
      {"Conflicts checked both ways",
       {{With(T("old.service"), [](auto& t) { t.conflicts = {"api@*"}; }), "a"}},
       T("api@1.service"),
       {"b", "c", "d", "e", "f"},
       "a",
       "`old.service` on the machine excludes this unit"},
      {"Replaces",
       {{T("old.service"), "b"}},
       With(T("new.service"), [](auto& t) { t.replaces = {"old.service"}; }),
       {"a", "c", "d", "e", "f"},
       "b",
       "Replaces=old.service: machine runs old.service"},
      {"Replaces checked both ways",
       {{With(T("new.service"), [](auto& t) { t.replaces = {"old.service"}; }), "a"}},
       T("old.service"),
       {"b", "c", "d", "e", "f"},
       "a",
       "excludes this unit"},
      {"UNIQUE zone",
       {{T("svc@1.service"), "a"}},
       svc("svc@2.service", "zone:UNIQUE"),
       {"c", "d", "e", "f"},
       "b",
       "UNIQUE zone: group `svc@.service` already has a task on zone=z1"},
      {"UNIQUE hostname (defaults to the machine id)",
       {{T("svc@1.service"), "a"}},
       svc("svc@2.service", "hostname:UNIQUE"),
       {"b", "c", "d", "e", "f"},
       "",
       ""},
      {"MAX_PER rack reached",
       {{T("svc@1.service"), "c"}, {T("svc@2.service"), "d"}},
       svc("svc@3.service", "rack:MAX_PER:2"),
       {"a", "b", "e", "f"},
       "c",
       "MAX_PER rack:2: group `svc@.service` has 2 on rack=r3"},
      {"MAX_PER rack below limit",
       {{T("svc@1.service"), "c"}},
       svc("svc@3.service", "rack:MAX_PER:2"),
       {"a", "b", "c", "d", "e", "f"},
       "",
       ""},
      {"CLUSTER follows the first task",
       {{T("svc@1.service"), "c"}},
       svc("svc@2.service", "zone:CLUSTER"),
       {"c", "d"},
       "a",
       "CLUSTER zone: group `svc@.service` is on zone=z2, machine has zone=z1"},
      {"CLUSTER with a value",
       {},
       svc("svc@1.service", "zone:CLUSTER:z3"),
       {"e", "f"},
       "a",
       "CLUSTER zone:z3: machine has zone=z1"},
      {"GROUP_BY zone",
       {{T("svc@1.service"), "a"}},
       svc("svc@2.service", "zone:GROUP_BY"),
       {"c", "d", "e", "f"},
       "b",
       "GROUP_BY zone: zone=z1 has 1 of group `svc@.service`, the least-used value has 0"},
      {"GROUP_BY zone fills the last value",
       {{T("svc@1.service"), "a"}, {T("svc@2.service"), "c"}},
       svc("svc@3.service", "zone:GROUP_BY"),
       {"e", "f"},
       "",
       ""},
      {"LIKE",
       {},
       svc("svc@1.service", "size:LIKE:(large|xlarge)"),
       {"a", "c", "d"},
       "b",
       "LIKE size:(large|xlarge): machine has size=small"},
      {"LIKE rejects machines without the attribute",
       {},
       svc("svc@1.service", "region:LIKE:se-.*"),
       {"a", "b"},
       "e",
       "machine has no `region`"},
      {"UNLIKE", {}, svc("svc@1.service", "rack:UNLIKE:r[34]"), {"a", "b"}, "", ""},
      {"UNLIKE accepts machines without the attribute",
       {},
       svc("svc@1.service", "region:UNLIKE:se-.*"),
       {"c", "d", "e", "f"},
       "",
       ""},
      {"affinity to a group",
       {{T("db@1.service"), "b"}},
       With(T("x.service"), [](auto& t) { t.affinity_groups = {"db@.service"}; }),
       {"b"},
       "a",
       "affinity to group `db@.service`: no task of it on the machine"},
      {"anti-affinity to a group",
       {{T("db@1.service"), "b"}},
       With(T("x.service"), [](auto& t) { t.anti_affinity_groups = {"db@.service"}; }),
       {"a", "c", "d", "e", "f"},
       "b",
       "anti-affinity to group `db@.service`"},
      {"anti-affinity to a group checked both ways",
       {{With(T("cache.service"), [](auto& t) { t.anti_affinity_groups = {"web@.service"}; }),
         "a"}},
       T("web@1.service"),
       {"b", "c", "d", "e", "f"},
       "a",
       "excludes this unit"},
      {"affinity to units",
       {{T("db@1.service"), "b"}},
       With(T("x.service"), [](auto& t) { t.affinity_units = {"db@*"}; }),
       {"b"},
       "c",
       "affinity to `db@*`: no matching unit"},
      {"anti-affinity to units",
       {{T("db@1.service"), "b"}},
       With(T("x.service"), [](auto& t) { t.anti_affinity_units = {"db@*"}; }),
       {"a", "c", "d", "e", "f"},
       "b",
       "anti-affinity to `db@*`: machine runs db@1.service"},
      {"cpu", {}, T("big.service", 5000), {}, "a", "cpu: needs 5000m, 4000m free"},
      {"memory", {}, T("big.service", 100, 9 * kGiB), {}, "a", "memory: needs 9 GiB, 8 GiB free"},
      {"port in use",
       {{With(T("a.service"), [](auto& t) { t.ports = {80}; }), "a"}},
       With(T("b.service"),
            [](auto& t) {
              t.ports = {443, 80};
            }),
       {"b", "c", "d", "e", "f"},
       "a",
       "port 80: already in use"},
  };
}

class ConstraintTest : public ::testing::TestWithParam<ConstraintCase> {};

TEST_P(ConstraintTest, FeasibleSetAndReason) {
  const ConstraintCase& tc = GetParam();
  auto s = Scheduler::Create(SixMachines());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  for (const Existing& e : tc.existing) {
    ASSERT_TRUE((*s)->Assign(e.request, e.machine).ok()) << e.request.name;
  }
  Explanation e;
  EXPECT_EQ(Feasible(**s, tc.request, &e), tc.feasible) << FormatExplanation(e);
  if (!tc.rejected_machine.empty()) {
    EXPECT_THAT(ReasonFor(e, tc.rejected_machine), HasSubstr(tc.reason)) << FormatExplanation(e);
  }
  // Place agrees with Explain: lands on a feasible machine, or fails when there is none.
  auto p = (*s)->Place(tc.request);
  if (tc.feasible.empty()) {
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.status().code(), base::Code::kResourceExhausted);
  } else {
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_TRUE(tc.feasible.count(p->machine_id)) << p->machine_id;
  }
}

INSTANTIATE_TEST_SUITE_P(AllOperators, ConstraintTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) {
                           std::string n;
                           for (char ch : info.param.what) n += std::isalnum(ch) ? ch : '_';
                           return n;
                         });

TEST(SchedulerTest, ImpossibleRequestsSayWhy) {
  auto s = *Scheduler::Create(SixMachines());
  TaskRequest t = T("x.service");
  t.machine_id = "nope";
  auto p = s->Place(t);
  EXPECT_THAT(p.status().message(), HasSubstr("MachineID=nope: no machine has this ID"));
  t = T("svc@1.service");
  t.constraints = {C("zone:GROUP_BY:4")};
  p = s->Place(t);
  EXPECT_THAT(p.status().message(), HasSubstr("eligible machines have only 3 values of `zone`"));
  t = T("x.service");
  t.machine_of = "missing.service";
  EXPECT_THAT(s->Place(t).status().message(), HasSubstr("`missing.service` is not placed yet"));
  t = T("svc@1.service");
  t.constraints = {{"size", Operator::kLike, "([bad", 0}};
  EXPECT_EQ(s->Place(t).status().code(), base::Code::kInvalidArgument);
  EXPECT_EQ(s->task_count(), 0u);
}

TEST(SchedulerTest, FailureMessageCountsFilters) {
  auto s = *Scheduler::Create({M("a", {{"zone", "z1"}}, 1000), M("b", {{"zone", "z2"}}, 1000)});
  TaskRequest t = T("x.service", 2000);
  auto p = s->Place(t);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(),
              HasSubstr("2 rejected by cpu, e.g. a: cpu: needs 2000m, 1000m free"));
}

TEST(SchedulerTest, DuplicatesAndGlobalsAreRejected) {
  auto s = *Scheduler::Create(SixMachines());
  ASSERT_TRUE(s->Place(T("x.service")).ok());
  EXPECT_EQ(s->Place(T("x.service")).status().code(), base::Code::kAlreadyExists);
  TaskRequest g = T("g.service");
  g.global = true;
  EXPECT_EQ(s->Place(g).status().code(), base::Code::kInvalidArgument);
  EXPECT_EQ(s->task_count(), 1u);
}

TEST(SchedulerTest, BadSnapshotsAreRejected) {
  EXPECT_FALSE(Scheduler::Create({M("a", {}), M("a", {})}).ok());
  EXPECT_FALSE(Scheduler::Create({M("", {})}).ok());
  EXPECT_FALSE(Scheduler::Create({M("a", {}, -1)}).ok());
  EXPECT_FALSE(Scheduler::Create({M("a", {{"k", "1"}, {"k", "2"}})}).ok());
}

TEST(SchedulerTest, GlobalUnitGoesToEveryEligibleMachine) {
  auto s = *Scheduler::Create(SixMachines());
  TaskRequest g = T("agent.service");
  g.global = true;
  g.machine_metadata = {{"zone", {"z1", "z2"}}};
  std::vector<PendingTask> missed;
  auto placed = s->PlaceGlobal(g, &missed);
  ASSERT_TRUE(placed.ok());
  std::set<std::string> on;
  for (const Placement& p : *placed) on.insert(p.machine_id);
  EXPECT_EQ(on, (std::set<std::string>{"a", "b", "c", "d"}));
  EXPECT_TRUE(missed.empty());
  // Global units are not rescheduled when their machine goes.
  auto displaced = s->LoseMachine("a");
  ASSERT_TRUE(displaced.ok());
  EXPECT_TRUE(displaced->empty());
  EXPECT_EQ(s->task_count(), 3u);
  ASSERT_TRUE(s->Release("agent.service").ok());
  EXPECT_EQ(s->task_count(), 0u);
  EXPECT_EQ(s->Free("b")->cpu_millis, 4000);
}

TEST(SchedulerTest, GlobalUnitReportsMachinesWithoutRoom) {
  auto s = *Scheduler::Create({M("a", {}, 1000), M("b", {}, 100)});
  TaskRequest g = T("agent.service", 500);
  g.global = true;
  std::vector<PendingTask> missed;
  auto placed = s->PlaceGlobal(g, &missed);
  ASSERT_TRUE(placed.ok());
  EXPECT_EQ(placed->size(), 1u);
  ASSERT_EQ(missed.size(), 1u);
  EXPECT_EQ(missed[0].name, "agent.service on b");
  EXPECT_THAT(missed[0].reason, HasSubstr("cpu: needs 500m, 100m free"));
}

// ---- Strategies ----

TEST(StrategyTest, SpreadBalancesAndBinPackFills) {
  struct Case {
    Strategy cluster;
    Strategy task;
    bool expect_packed;
  };
  for (const Case& tc : {Case{Strategy::kSpread, Strategy::kDefault, false},
                         Case{Strategy::kBinPack, Strategy::kDefault, true},
                         Case{Strategy::kSpread, Strategy::kBinPack, true},
                         Case{Strategy::kBinPack, Strategy::kSpread, false}}) {
    SchedulerOptions opts;
    opts.strategy = tc.cluster;
    auto s = *Scheduler::Create({M("a", {}, 4000), M("b", {}, 4000)}, opts);
    std::map<std::string, int> per;
    for (int i = 0; i < 8; ++i) {
      TaskRequest t = T("t" + std::to_string(i) + ".service", 400);
      t.strategy = tc.task;
      auto p = s->Place(t);
      ASSERT_TRUE(p.ok());
      ++per[p->machine_id];
    }
    if (tc.expect_packed) {
      EXPECT_EQ(per.size(), 1u);
    } else {
      EXPECT_EQ(per["a"], 4);
      EXPECT_EQ(per["b"], 4);
    }
  }
}

TEST(StrategyTest, BinPackSpillsOverWhenFull) {
  SchedulerOptions opts;
  opts.strategy = Strategy::kBinPack;
  auto s = *Scheduler::Create({M("a", {}, 1000), M("b", {}, 1000)}, opts);
  std::map<std::string, int> per;
  for (int i = 0; i < 4; ++i) ++per[s->Place(T("t" + std::to_string(i), 500))->machine_id];
  EXPECT_EQ(per["a"], 2);
  EXPECT_EQ(per["b"], 2);
  EXPECT_FALSE(s->Place(T("t5", 500)).ok());
}

TEST(StrategyTest, SameSeedSamePlacements) {
  std::vector<MachineSpec> ms;
  for (int i = 0; i < 300; ++i)
    ms.push_back(M("m" + std::to_string(i), {{"zone", "z" + std::to_string(i % 3)}}));
  auto run = [&](uint64_t seed) {
    auto s = *Scheduler::Create(ms, {.seed = seed});
    std::vector<std::string> out;
    for (int i = 0; i < 500; ++i)
      out.push_back(s->Place(T("t" + std::to_string(i), 50))->machine_id);
    return out;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

// ---- Accounting ----

TEST(AccountingTest, InterleavedPlaceAndReleaseStayExact) {
  std::vector<MachineSpec> ms;
  for (int i = 0; i < 20; ++i) ms.push_back(M("m" + std::to_string(i), {}, 2000, 4 * kGiB));
  auto s = *Scheduler::Create(ms, {.seed = 3});
  std::mt19937_64 rng(3);
  std::map<std::string, Resources> live;  // name -> request
  int next = 0;
  for (int step = 0; step < 5000; ++step) {
    if (live.empty() || rng() % 3 != 0) {
      std::string name = "t" + std::to_string(next++);
      TaskRequest t = T(name, 50 + rng() % 400, (16 + rng() % 500) * kMiB);
      t.resources.disk_bytes = (rng() % 5) * kGiB;
      if (rng() % 10 == 0) t.ports = {static_cast<uint16_t>(9000 + rng() % 4)};
      auto p = s->Place(t);
      if (p.ok()) live[name] = t.resources;
    } else {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      ASSERT_TRUE(s->Release(it->first).ok());
      live.erase(it);
    }
    if (step % 250 != 0) continue;
    std::map<std::string, Resources> used;
    for (const TaskLocation& loc : s->Tasks()) {
      Resources& u = used[loc.machine_id];
      u.cpu_millis += live.at(loc.name).cpu_millis;
      u.memory_bytes += live.at(loc.name).memory_bytes;
      u.disk_bytes += live.at(loc.name).disk_bytes;
    }
    for (const MachineSpec& m : ms) {
      Resources f = *s->Free(m.id);
      EXPECT_EQ(f.cpu_millis, m.capacity.cpu_millis - used[m.id].cpu_millis);
      EXPECT_EQ(f.memory_bytes, m.capacity.memory_bytes - used[m.id].memory_bytes);
      EXPECT_EQ(f.disk_bytes, m.capacity.disk_bytes - used[m.id].disk_bytes);
      EXPECT_GE(f.cpu_millis, 0);
      EXPECT_GE(f.memory_bytes, 0);
    }
    EXPECT_EQ(s->task_count(), live.size());
  }
  for (const auto& [name, r] : live) ASSERT_TRUE(s->Release(name).ok());
  for (const MachineSpec& m : ms) EXPECT_EQ(s->Free(m.id)->cpu_millis, m.capacity.cpu_millis);
  EXPECT_EQ(s->Release("t0").code(), base::Code::kNotFound);
}

TEST(AccountingTest, AssignRefusesOverCommit) {
  auto s = *Scheduler::Create({M("a", {}, 1000)});
  ASSERT_TRUE(s->Assign(T("x", 800), "a").ok());
  base::Status st = s->Assign(T("y", 300), "a");
  EXPECT_EQ(st.code(), base::Code::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("cpu: needs 300m, 200m free"));
  EXPECT_EQ(s->Assign(T("z"), "nope").code(), base::Code::kNotFound);
}

TEST(AccountingTest, LostMachineTakesNoWork) {
  auto s = *Scheduler::Create({M("a", {}), M("b", {})});
  ASSERT_TRUE(s->Assign(T("x@1.service"), "a").ok());
  ASSERT_TRUE(s->Assign(T("y.service"), "a").ok());
  auto displaced = s->LoseMachine("a");
  ASSERT_TRUE(displaced.ok());
  EXPECT_EQ(*displaced, (std::vector<std::string>{"x@1.service", "y.service"}));
  EXPECT_EQ(s->alive_machine_count(), 1u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(s->Place(T("t" + std::to_string(i)))->machine_id, "b");
  EXPECT_EQ(s->LoseMachine("a").status().code(), base::Code::kFailedPrecondition);
  EXPECT_FALSE(s->Assign(T("z"), "a").ok());
  ASSERT_TRUE(s->AddMachine(M("c", {})).ok());
  EXPECT_EQ(s->alive_machine_count(), 2u);
}

TEST(AccountingTest, LostMachineComesBackEmptyUnderItsId) {
  auto s = *Scheduler::Create({M("a", {}, 1000), M("b", {}, 1000)});
  ASSERT_TRUE(s->Assign(T("x.service", 800), "a").ok());
  ASSERT_TRUE(s->LoseMachine("a").ok());
  EXPECT_FALSE(s->IsAlive("a"));
  EXPECT_EQ(s->ReviveMachine("b").code(), base::Code::kFailedPrecondition);
  EXPECT_EQ(s->ReviveMachine("zz").code(), base::Code::kNotFound);
  ASSERT_TRUE(s->ReviveMachine("a").ok());
  EXPECT_TRUE(s->IsAlive("a"));
  EXPECT_EQ(s->alive_machine_count(), 2u);
  EXPECT_EQ(s->Free("a")->cpu_millis, 1000);
  EXPECT_FALSE(s->Locate("x.service").has_value());
  // Full capacity again: a task needing 900m fits only there.
  ASSERT_TRUE(s->Assign(T("big", 100), "b").ok());
  EXPECT_EQ(s->Place(T("y.service", 950))->machine_id, "a");
}

// ---- Scale ----

TEST(ScaleTest, PlanAddsMissingAndRemovesNewestFirst) {
  auto plan = PlanScale("web@.service", 3,
                        {"web@1.service", "web@5.service", "web@4.service", "other@2.service"});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->to_add, (std::vector<std::string>{"web@2.service", "web@3.service"}));
  EXPECT_EQ(plan->to_remove, (std::vector<std::string>{"web@5.service", "web@4.service"}));
  EXPECT_FALSE(PlanScale("web.service", 3, {}).ok());
  EXPECT_EQ(*InstanceName("web@.service", 12), "web@12.service");
}

TEST(ScaleTest, ScaleUpDownAndPending) {
  auto s = *Scheduler::Create({M("a", {}, 1000), M("b", {}, 1000)});
  ScaleRequest r;
  r.template_request = T("web@.service", 100);
  r.template_request.constraints = {C("hostname:MAX_PER:2")};
  r.instances = 5;
  auto res = s->Scale(r);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->placed.size(), 4u);
  ASSERT_EQ(res->pending.size(), 1u);
  EXPECT_EQ(res->pending[0].name, "web@5.service");
  EXPECT_THAT(res->pending[0].reason, HasSubstr("MAX_PER hostname"));
  r.instances = 2;
  res = s->Scale(r);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->removed, (std::vector<std::string>{"web@4.service", "web@3.service"}));
  EXPECT_EQ(s->task_count(), 2u);
  EXPECT_TRUE(s->Locate("web@1.service").has_value());
  EXPECT_TRUE(s->Locate("web@2.service").has_value());
  r.instances = 0;
  res = s->Scale(r);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(s->task_count(), 0u);
}

// ---- Explain ----

TEST(ExplainTest, NamesTheFilterAndTheNumbers) {
  auto s = *Scheduler::Create({M("small", {{"region", "no-oslo"}}, 4000, 640 * kMiB),
                               M("sto", {{"region", "se-sto"}}, 4000, 8 * kGiB),
                               M("big", {{"region", "no-oslo"}}, 4000, 8 * kGiB)});
  ASSERT_TRUE(s->Assign(T("filler.service", 100, 512 * kMiB), "small").ok());
  TaskRequest t = T("web.service", 100, 512 * kMiB);
  t.machine_metadata = {{"region", {"no-oslo"}}};
  Explanation e = s->Explain(t, 3);
  std::string text = FormatExplanation(e);
  EXPECT_THAT(text, HasSubstr("small: memory: needs 512 MiB, 128 MiB free"));
  EXPECT_THAT(text, HasSubstr("sto: MachineMetadata region=no-oslo: machine has region=se-sto"));
  EXPECT_THAT(text, HasSubstr("big: feasible, score"));
  EXPECT_THAT(text, HasSubstr("best: big"));
  EXPECT_THAT(text, HasSubstr("3 alive, 1 feasible"));
  EXPECT_EQ(e.rejected_by["memory"], 1u);
  EXPECT_EQ(e.rejected_by["MachineMetadata region"], 1u);
  // Explain does not place anything.
  EXPECT_EQ(s->task_count(), 1u);
  TaskRequest none = T("huge.service", 99999);
  EXPECT_THAT(FormatExplanation(s->Explain(none, 0)), HasSubstr("best: none"));
}

// ---- Parsing and globs ----

TEST(ParseConstraintTest, Table) {
  struct Case {
    const char* text;
    bool ok;
    Operator op;
    const char* value;
    int64_t count;
  };
  for (const Case& c : std::vector<Case>{{"zone:GROUP_BY", true, Operator::kGroupBy, "", 0},
                                         {"zone:group_by:3", true, Operator::kGroupBy, "", 3},
                                         {"hostname:UNIQUE", true, Operator::kUnique, "", 0},
                                         {"rack:MAX_PER:2", true, Operator::kMaxPer, "", 2},
                                         {"rack:LIKE:r1[0-9]", true, Operator::kLike, "r1[0-9]", 0},
                                         {"rack:UNLIKE:a:b", true, Operator::kUnlike, "a:b", 0},
                                         {"zone:CLUSTER:z1", true, Operator::kCluster, "z1", 0},
                                         {"zone:CLUSTER", true, Operator::kCluster, "", 0},
                                         {"zone", false, Operator::kUnique, "", 0},
                                         {":UNIQUE", false, Operator::kUnique, "", 0},
                                         {"zone:NEAR", false, Operator::kUnique, "", 0},
                                         {"rack:MAX_PER", false, Operator::kUnique, "", 0},
                                         {"rack:MAX_PER:0", false, Operator::kUnique, "", 0},
                                         {"rack:LIKE", false, Operator::kUnique, "", 0},
                                         {"host:UNIQUE:x", false, Operator::kUnique, "", 0},
                                         {"zone:GROUP_BY:x", false, Operator::kUnique, "", 0}}) {
    auto k = ParseConstraint(c.text);
    EXPECT_EQ(k.ok(), c.ok) << c.text;
    if (!k.ok() || !c.ok) continue;
    EXPECT_EQ(k->op, c.op) << c.text;
    EXPECT_EQ(k->value, c.value) << c.text;
    EXPECT_EQ(k->count, c.count) << c.text;
  }
  EXPECT_THAT(ParseConstraint("zone:NEAR").status().message(), HasSubstr("unknown operator"));
}

TEST(GlobTest, Table) {
  struct Case {
    const char* pattern;
    const char* name;
    bool match;
  };
  for (const Case& c : std::vector<Case>{{"web@*.service", "web@1.service", true},
                                         {"web@*.service", "web@.service", true},
                                         {"web@*.service", "api@1.service", false},
                                         {"*", "anything", true},
                                         {"a?c", "abc", true},
                                         {"a?c", "ac", false},
                                         {"[ab]x", "bx", true},
                                         {"[!ab]x", "cx", true},
                                         {"[^ab]x", "ax", false},
                                         {"r[0-4]", "r3", true},
                                         {"r[0-4]", "r5", false},
                                         {"a\\*", "a*", true},
                                         {"a\\*", "ab", false},
                                         {"a*b*c", "axxbyyc", true},
                                         {"a*b*c", "axxbyy", false},
                                         {"[abc", "a", false},
                                         {"a*", "a/b", false}}) {
    EXPECT_EQ(GlobMatch(c.pattern, c.name), c.match) << c.pattern << " vs " << c.name;
  }
}

}  // namespace
}  // namespace fjord::scheduler
