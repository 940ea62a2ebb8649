// Scheduler::UpdateMachine: metadata and capacity changes of a known machine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "scheduler/scheduler.h"
#include "scheduler/test_util.h"

namespace fjord::scheduler {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

using test::kGiB;
using test::kMiB;
using test::M;

// The requests of the placed tasks, as the server keeps them.
class Requests {
 public:
  TaskRequest& Add(std::string name, int64_t cpu = 100, int64_t mem = 64 * kMiB) {
    TaskRequest& t = requests_[name];
    t.name = std::move(name);
    t.resources = {cpu, mem, 0};
    return t;
  }
  const TaskRequest& operator[](const std::string& name) const { return requests_.at(name); }
  RequestLookup Lookup() const {
    return [this](std::string_view name) -> const TaskRequest* {
      auto it = requests_.find(std::string(name));
      return it == requests_.end() ? nullptr : &it->second;
    };
  }

 private:
  std::map<std::string, TaskRequest> requests_;
};

std::set<std::string> Names(const std::vector<PendingTask>& tasks) {
  std::set<std::string> out;
  for (const auto& t : tasks) out.insert(t.name);
  return out;
}

std::set<std::string> On(const Scheduler& s, const std::string& machine) {
  std::set<std::string> out;
  for (const auto& t : s.Tasks()) {
    if (t.machine_id == machine) out.insert(t.name);
  }
  return out;
}

TEST(UpdateMachineTest, MetadataChangeMovesOnlyTasksThatNoLongerMatch) {
  auto s = *Scheduler::Create({M("a", {{"region", "se-sto"}, {"disk", "ssd"}}),
                               M("b", {{"region", "no-osl"}}), M("c", {{"region", "se-sto"}})});
  Requests r;
  r.Add("sto.service").machine_metadata = {{"region", {"se-sto"}}};
  r.Add("ssd.service").machine_metadata = {{"disk", {"ssd"}}};
  r.Add("plain.service");
  r.Add("pinned.service").machine_id = "a";
  for (const char* n : {"sto.service", "ssd.service", "plain.service", "pinned.service"}) {
    ASSERT_TRUE(s->Assign(r[n], "a").ok()) << n;
  }
  auto before = *s->Free("a");
  auto u = s->UpdateMachine(M("a", {{"region", "no-osl"}, {"disk", "ssd"}}), r.Lookup());
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_TRUE(u->changed);
  ASSERT_EQ(Names(u->displaced), std::set<std::string>{"sto.service"});
  EXPECT_THAT(u->displaced[0].reason,
              HasSubstr("machine a changed: MachineMetadata region=se-sto: machine has "
                        "region=no-osl"));
  EXPECT_THAT(u->globals_removed, IsEmpty());
  EXPECT_EQ(On(*s, "a"), (std::set<std::string>{"ssd.service", "plain.service", "pinned.service"}));
  EXPECT_EQ(s->Free("a")->cpu_millis, before.cpu_millis + 100);
  // Cached candidate sets see the new values: the displaced task goes to c, a takes no-osl work.
  EXPECT_EQ(s->Place(r["sto.service"])->machine_id, "c");
  TaskRequest osl = r.Add("osl.service");
  osl.machine_metadata = {{"region", {"no-osl"}}};
  osl.machine_id = "a";
  EXPECT_TRUE(s->Place(osl).ok());
  // hostname=<id> stays when the new metadata has no hostname.
  TaskRequest host = r.Add("host.service");
  host.machine_metadata = {{"hostname", {"a"}}};
  EXPECT_EQ(s->Place(host)->machine_id, "a");
}

TEST(UpdateMachineTest, SameSpecChangesNothing) {
  auto s = *Scheduler::Create({M("a", {{"zone", "z1"}})});
  Requests r;
  r.Add("x.service").machine_metadata = {{"zone", {"z1"}}};
  ASSERT_TRUE(s->Assign(r["x.service"], "a").ok());
  auto u = s->UpdateMachine(M("a", {{"zone", "z1"}, {"hostname", "a"}}), r.Lookup());
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->changed);
  EXPECT_THAT(u->displaced, IsEmpty());
  EXPECT_EQ(On(*s, "a"), std::set<std::string>{"x.service"});
}

TEST(UpdateMachineTest, CapacityShrinkEvictsLowPriorityTasksUsingTheResource) {
  auto s = *Scheduler::Create({M("a", {}, 4000, 8 * kGiB), M("b", {}, 4000, 8 * kGiB)});
  Requests r;
  r.Add("u1.service", 1000);
  r.Add("u2.service", 1000);
  r.Add("u3.service", 1000);
  r.Add("hi.service", 1000).priority = 5;
  r.Add("mem-only.service", 0, kGiB).priority = -1;  // first in order, but uses no cpu
  for (const char* n :
       {"u1.service", "u2.service", "u3.service", "hi.service", "mem-only.service"}) {
    ASSERT_TRUE(s->Assign(r[n], "a").ok()) << n;
  }
  auto u = s->UpdateMachine(M("a", {}, 2500, 8 * kGiB), r.Lookup());
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(Names(u->displaced), (std::set<std::string>{"u3.service", "u2.service"}));
  EXPECT_THAT(u->displaced[0].reason, HasSubstr("cpu: 4000m placed, capacity 2500m"));
  EXPECT_EQ(On(*s, "a"), (std::set<std::string>{"u1.service", "hi.service", "mem-only.service"}));
  EXPECT_EQ(s->Free("a")->cpu_millis, 500);
  // A task placed now sees the new capacity.
  EXPECT_EQ(s->Place(r.Add("big.service", 1000))->machine_id, "b");

  // Growing gives room without moving anything.
  u = s->UpdateMachine(M("a", {}, 6000, 8 * kGiB), r.Lookup());
  ASSERT_TRUE(u.ok());
  EXPECT_THAT(u->displaced, IsEmpty());
  EXPECT_EQ(s->Free("a")->cpu_millis, 4000);
  // Memory shrink: only tasks with memory leave (mem-only is the only one above 64 MiB).
  u = s->UpdateMachine(M("a", {}, 6000, 512 * kMiB), r.Lookup());
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(Names(u->displaced), std::set<std::string>{"mem-only.service"});
  EXPECT_GE(s->Free("a")->memory_bytes, 0);
}

TEST(UpdateMachineTest, GlobalInstanceLeavesAMachineThatNoLongerMatches) {
  auto s = *Scheduler::Create({M("a", {{"role", "web"}}), M("b", {{"role", "web"}})});
  Requests r;
  TaskRequest& g = r.Add("g.service");
  g.global = true;
  g.machine_metadata = {{"role", {"web"}}};
  TaskRequest& all = r.Add("all.service");
  all.global = true;
  ASSERT_EQ(s->PlaceGlobal(r["g.service"], nullptr)->size(), 2u);
  ASSERT_EQ(s->PlaceGlobal(r["all.service"], nullptr)->size(), 2u);
  auto u = s->UpdateMachine(M("b", {{"role", "db"}}), r.Lookup());
  ASSERT_TRUE(u.ok());
  EXPECT_THAT(u->displaced, IsEmpty());
  EXPECT_EQ(Names(u->globals_removed), std::set<std::string>{"g.service"});
  EXPECT_EQ(On(*s, "b"), std::set<std::string>{"all.service"});
  EXPECT_EQ(On(*s, "a"), (std::set<std::string>{"g.service", "all.service"}));
  // Back to web: the scheduler does not add instances by itself; PlaceGlobal again does.
  ASSERT_TRUE(s->UpdateMachine(M("b", {{"role", "web"}}), r.Lookup()).ok());
  EXPECT_EQ(On(*s, "b"), std::set<std::string>{"all.service"});
  ASSERT_TRUE(s->Release("g.service").ok());
  EXPECT_EQ(s->PlaceGlobal(r["g.service"], nullptr)->size(), 2u);
  ASSERT_TRUE(s->Release("g.service").ok());
  EXPECT_EQ(s->task_count(), 2u);
}

TEST(UpdateMachineTest, CountingOperatorsFollowTheNewValues) {
  auto s = *Scheduler::Create({M("a", {{"zone", "z1"}}), M("b", {{"zone", "z2"}})});
  Requests r;
  auto add = [&](const std::string& name, const std::string& constraint) {
    TaskRequest& t = r.Add(name);
    t.constraints = {*ParseConstraint(constraint)};
  };
  add("web@1.service", "zone:MAX_PER:1");
  add("web@2.service", "zone:MAX_PER:1");
  add("db@1.service", "zone:UNIQUE");
  add("db@2.service", "zone:UNIQUE");
  ASSERT_TRUE(s->Place(r["web@1.service"]).ok());
  ASSERT_TRUE(s->Place(r["web@2.service"]).ok());
  ASSERT_TRUE(s->Place(r["db@1.service"]).ok());
  ASSERT_TRUE(s->Place(r["db@2.service"]).ok());
  std::string on_a =
      s->Locate("web@1.service")->machine_id == "a" ? "web@1.service" : "web@2.service";
  // a moves to z2: one of each group on a must leave (z2 would hold two).
  auto u = s->UpdateMachine(M("a", {{"zone", "z2"}}), r.Lookup());
  ASSERT_TRUE(u.ok());
  ASSERT_EQ(u->displaced.size(), 2u);
  std::set<std::string> displaced = Names(u->displaced);
  EXPECT_TRUE(displaced.count(on_a)) << u->displaced[0].name;
  EXPECT_THAT(u->displaced[0].reason, HasSubstr("zone"));
  // Counts moved with the value: z2 holds one web and one db; nothing else fits anywhere.
  EXPECT_EQ(s->Place(r[*displaced.begin()]).status().code(), base::Code::kResourceExhausted);
  // Back to z1: the counts follow again, so the displaced ones fit on a.
  ASSERT_TRUE(s->UpdateMachine(M("a", {{"zone", "z1"}}), r.Lookup()).ok());
  for (const auto& name : displaced) EXPECT_EQ(s->Place(r[name])->machine_id, "a") << name;
}

TEST(UpdateMachineTest, MachineOfFollowersLeaveWithTheirTarget) {
  auto s = *Scheduler::Create({M("a", {{"zone", "z1"}}), M("b", {{"zone", "z1"}})});
  Requests r;
  r.Add("app.service").machine_metadata = {{"zone", {"z1"}}};
  r.Add("side.service").machine_of = "app.service";
  r.Add("other.service");
  ASSERT_TRUE(s->Assign(r["app.service"], "a").ok());
  ASSERT_TRUE(s->Assign(r["side.service"], "a").ok());
  ASSERT_TRUE(s->Assign(r["other.service"], "a").ok());
  auto u = s->UpdateMachine(M("a", {{"zone", "z2"}}), r.Lookup());
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(Names(u->displaced), (std::set<std::string>{"app.service", "side.service"}));
  for (const auto& d : u->displaced) {
    if (d.name == "side.service") {
      EXPECT_THAT(d.reason, HasSubstr("MachineOf=app.service"));
    }
  }
  EXPECT_EQ(On(*s, "a"), std::set<std::string>{"other.service"});
}

TEST(UpdateMachineTest, BadSpecsChangeNothing) {
  auto s = *Scheduler::Create({M("a", {{"zone", "z1"}}, 1000)});
  Requests r;
  r.Add("x.service", 800).machine_metadata = {{"zone", {"z1"}}};
  ASSERT_TRUE(s->Assign(r["x.service"], "a").ok());
  EXPECT_EQ(s->UpdateMachine(M("nope", {}), r.Lookup()).status().code(), base::Code::kNotFound);
  auto neg = s->UpdateMachine(M("a", {{"zone", "z2"}}, -1), r.Lookup());
  EXPECT_EQ(neg.status().code(), base::Code::kInvalidArgument);
  EXPECT_THAT(neg.status().message(), HasSubstr("negative capacity"));
  auto twice = s->UpdateMachine(M("a", {{"zone", "z2"}, {"zone", "z3"}}, 10), r.Lookup());
  EXPECT_THAT(twice.status().message(), HasSubstr("metadata key `zone` given twice"));
  EXPECT_THAT(s->UpdateMachine(M("a", {{"", "z2"}}, 10), r.Lookup()).status().message(),
              HasSubstr("empty metadata key"));
  std::vector<std::pair<std::string, std::string>> many;
  for (int i = 0; i < 300; ++i) many.emplace_back("k" + std::to_string(i), "v");
  EXPECT_THAT(s->UpdateMachine(M("a", many, 10), r.Lookup()).status().message(),
              HasSubstr("more than 254 metadata keys"));
  EXPECT_EQ(On(*s, "a"), std::set<std::string>{"x.service"});
  EXPECT_EQ(s->Free("a")->cpu_millis, 200);
}

TEST(UpdateMachineTest, LostMachineComesBackWithItsNewSpec) {
  auto s = *Scheduler::Create({M("a", {{"zone", "z1"}}, 1000), M("b", {{"zone", "z1"}}, 1000)});
  Requests r;
  ASSERT_TRUE(s->Assign(r.Add("x.service", 800), "a").ok());
  ASSERT_TRUE(s->LoseMachine("a").ok());
  auto u = s->UpdateMachine(M("a", {{"zone", "z2"}}, 3000), r.Lookup());
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->changed);
  EXPECT_THAT(u->displaced, IsEmpty());
  EXPECT_FALSE(s->IsAlive("a"));
  TaskRequest& z2 = r.Add("z2.service", 2000);
  z2.machine_metadata = {{"zone", {"z2"}}};
  EXPECT_EQ(s->Place(z2).status().code(), base::Code::kResourceExhausted);  // a is lost
  ASSERT_TRUE(s->ReviveMachine("a").ok());
  EXPECT_EQ(s->Place(z2)->machine_id, "a");
  EXPECT_EQ(s->Free("a")->cpu_millis, 1000);
}

// Many random updates keep the accounting exact: free = capacity - placed, every task where
// Tasks() says, and each placed task's metadata requirement still met.
TEST(UpdateMachineTest, RandomUpdatesKeepAccountingExact) {
  std::vector<MachineSpec> ms;
  for (int i = 0; i < 8; ++i) {
    ms.push_back(M("m" + std::to_string(i), {{"zone", "z" + std::to_string(i % 3)}}, 3000));
  }
  auto s = *Scheduler::Create(ms, {.seed = 5});
  Requests r;
  uint64_t x = 12345;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  int n = 0;
  for (int step = 0; step < 400; ++step) {
    if (next() % 4 != 0) {
      TaskRequest& t = r.Add("t" + std::to_string(n++), 100 + next() % 400);
      if (next() % 2) t.machine_metadata = {{"zone", {"z" + std::to_string(next() % 3)}}};
      (void)s->Place(t);
    } else {
      MachineSpec& m = ms[next() % ms.size()];
      m.metadata = {{"zone", "z" + std::to_string(next() % 3)}};
      m.capacity.cpu_millis = 1000 + static_cast<int64_t>(next() % 3000);
      ASSERT_TRUE(s->UpdateMachine(m, r.Lookup()).ok());
    }
    std::map<std::string, int64_t> used;
    for (const auto& loc : s->Tasks()) {
      const TaskRequest& t = r[loc.name];
      used[loc.machine_id] += t.resources.cpu_millis;
      if (!t.machine_metadata.empty()) {
        const MachineSpec* spec = nullptr;
        for (const auto& m : ms) {
          if (m.id == loc.machine_id) spec = &m;
        }
        ASSERT_NE(spec, nullptr);
        EXPECT_EQ(spec->metadata[0].second, t.machine_metadata[0].values[0]) << loc.name;
      }
    }
    for (const auto& m : ms) {
      EXPECT_EQ(s->Free(m.id)->cpu_millis, m.capacity.cpu_millis - used[m.id]) << m.id;
      EXPECT_GE(s->Free(m.id)->cpu_millis, 0) << m.id;
    }
  }
}

}  // namespace
}  // namespace fjord::scheduler
