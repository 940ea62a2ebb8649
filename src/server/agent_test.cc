// Scheduling through the agent protocol: simulated agents register, heartbeat and long-poll.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "server/server_test_util.h"
#include "store/store.h"
#include "unit/unit.h"

namespace fjord::server::testing {
namespace {

using SchedulingTest = ServerFixture;

std::map<std::string, std::set<std::string>> Where(std::vector<FakeAgent*> agents) {
  std::map<std::string, std::set<std::string>> out;
  for (auto* a : agents) {
    for (const auto& u : a->Units()) out[u].insert(a->id());
  }
  return out;
}

TEST_F(SchedulingTest, GlobalUnitOnEveryEligibleMachineIncludingLaterOnes) {
  FakeAgent a(server_->url(), "a", {{"role", "web"}});
  FakeAgent b(server_->url(), "b", {{"role", "db"}});
  ASSERT_EQ(a.Register(), 200);
  ASSERT_EQ(b.Register(), 200);
  Submit("g.service", Opt("X-Fleet", "Global", "true"));
  Submit("gw.service",
         Opt("X-Fleet", "Global", "true") + "," + Opt("X-Fleet", "MachineMetadata", "role=web"));
  ASSERT_TRUE(WaitFor([&] { return a.Units().size() == 2 && b.Units().size() == 1; }));
  EXPECT_EQ(b.Units(), std::set<std::string>{"g.service"});

  FakeAgent c(server_->url(), "c", {{"role", "web"}});
  ASSERT_EQ(c.Register(), 200);
  // Registration answers once the new machine's schedule is written.
  EXPECT_EQ(c.Units(), (std::set<std::string>{"g.service", "gw.service"}));
  auto v = GetView("g.service");
  EXPECT_TRUE(v.global);
  EXPECT_TRUE(v.reason.empty()) << v.reason;
}

TEST_F(SchedulingTest, MachineMetadataAndMachineID) {
  FakeAgent a(server_->url(), "a", {{"zone", "z1"}});
  FakeAgent b(server_->url(), "b", {{"zone", "z2"}});
  ASSERT_EQ(a.Register(), 200);
  ASSERT_EQ(b.Register(), 200);
  for (int i = 0; i < 4; ++i) {
    Submit("z2-" + std::to_string(i) + ".service", Opt("X-Fleet", "MachineMetadata", "zone=z2"));
  }
  Submit("pinned.service", Opt("X-Fleet", "MachineID", "a"));
  Submit("nowhere.service", Opt("X-Fleet", "MachineMetadata", "zone=z9"));
  ASSERT_TRUE(WaitFor([&] { return b.Units().size() == 4 && a.Units().size() == 1; }));
  EXPECT_EQ(a.Units(), std::set<std::string>{"pinned.service"});
  EXPECT_TRUE(WaitReason("nowhere.service", "MachineMetadata"))
      << GetView("nowhere.service").reason;
  EXPECT_EQ(GetView("nowhere.service").machine_id, "");
}

TEST_F(SchedulingTest, ConflictsKeepUnitsApart) {
  FakeAgent a(server_->url(), "a");
  FakeAgent b(server_->url(), "b");
  ASSERT_EQ(a.Register(), 200);
  ASSERT_EQ(b.Register(), 200);
  for (int i = 0; i < 3; ++i) {
    Submit("lb" + std::to_string(i) + ".service", Opt("X-Fleet", "Conflicts", "lb*.service"));
  }
  ASSERT_TRUE(WaitFor([&] { return a.Units().size() + b.Units().size() == 2; }));
  EXPECT_EQ(a.Units().size(), 1u);
  EXPECT_EQ(b.Units().size(), 1u);
  EXPECT_TRUE(WaitFor([&] {
    for (int i = 0; i < 3; ++i) {
      auto v = GetView("lb" + std::to_string(i) + ".service");
      if (v.machine_id.empty() && v.reason.find("Conflicts") != std::string::npos) return true;
    }
    return false;
  }));
  // A third machine takes the waiting one.
  FakeAgent c(server_->url(), "c");
  ASSERT_EQ(c.Register(), 200);
  ASSERT_TRUE(WaitFor([&] { return c.Units().size() == 1; }));
}

TEST_F(SchedulingTest, MachineOfFollowsItsTarget) {
  FakeAgent a(server_->url(), "a");
  FakeAgent b(server_->url(), "b");
  FakeAgent c(server_->url(), "c");
  ASSERT_EQ(a.Register(), 200);
  ASSERT_EQ(b.Register(), 200);
  ASSERT_EQ(c.Register(), 200);
  // The follower first: it waits until its target is placed.
  Submit("sidecar.service", Opt("X-Fleet", "MachineOf", "app.service"));
  ASSERT_TRUE(WaitReason("sidecar.service", "app.service")) << GetView("sidecar.service").reason;
  Submit("app.service");
  ASSERT_TRUE(WaitFor([&] {
    auto w = Where({&a, &b, &c});
    return w["app.service"].size() == 1 && w["sidecar.service"] == w["app.service"];
  }));
}

TEST_F(SchedulingTest, ReplacesNeverShareAMachine) {
  FakeAgent a(server_->url(), "a");
  FakeAgent b(server_->url(), "b");
  ASSERT_EQ(a.Register(), 200);
  ASSERT_EQ(b.Register(), 200);
  Submit("old.service");
  Submit("new.service", Opt("X-Fleet", "Replaces", "old.service"));
  ASSERT_TRUE(WaitFor([&] {
    auto w = Where({&a, &b});
    return w["old.service"].size() == 1 && w["new.service"].size() == 1;
  }));
  auto w = Where({&a, &b});
  EXPECT_NE(w["old.service"], w["new.service"]);
}

TEST_F(SchedulingTest, TemplatesAreNotScheduledInstancesAre) {
  FakeAgent a(server_->url(), "a");
  ASSERT_EQ(a.Register(), 200);
  Submit("t@.service");
  Submit("t@1.service");
  Submit("t@2.service");
  ASSERT_TRUE(WaitFor([&] { return a.Units().size() == 2; }));
  EXPECT_EQ(a.Units(), (std::set<std::string>{"t@1.service", "t@2.service"}));
}

// Instances of one template share their content and, without specifiers, one scheduler
// request; with a specifier each instance's request is its own: web@N follows db@N.
TEST_F(SchedulingTest, InstanceSpecifiersGiveEachInstanceItsOwnRequest) {
  FakeAgent a(server_->url(), "a");
  FakeAgent b(server_->url(), "b");
  FakeAgent c(server_->url(), "c");
  ASSERT_EQ(a.Register(), 200);
  ASSERT_EQ(b.Register(), 200);
  ASSERT_EQ(c.Register(), 200);
  const std::string spread = Opt("X-Fleet", "Conflicts", "db@*.service");
  for (int i = 1; i <= 3; ++i) Submit("db@" + std::to_string(i) + ".service", spread);
  const std::string follow = Opt("X-Fleet", "MachineOf", "db@%i.service");
  for (int i = 1; i <= 3; ++i) Submit("web@" + std::to_string(i) + ".service", follow);
  ASSERT_TRUE(WaitFor([&] {
    auto w = Where({&a, &b, &c});
    for (int i = 1; i <= 3; ++i) {
      auto db = w["db@" + std::to_string(i) + ".service"];
      if (db.size() != 1 || w["web@" + std::to_string(i) + ".service"] != db) return false;
    }
    return true;
  }));
  auto w = Where({&a, &b, &c});
  EXPECT_NE(w["db@1.service"], w["db@2.service"]);
  EXPECT_NE(w["db@2.service"], w["db@3.service"]);
  EXPECT_NE(w["db@1.service"], w["db@3.service"]);
}

// The store keeps a placement as {name, hash, desiredState}; the agent's schedule answer
// carries the unit's options all the same, also for a placement written with its options by an
// earlier version.
TEST_F(SchedulingTest, ScheduleAnswersCarryTheOptions) {
  Submit("o.service", Opt("X-Fleet", "MachineID", "a") + "," + Opt("Service", "Nice", "5"));
  FakeAgent a(server_->url(), "a");
  ASSERT_EQ(a.Register(), 200);
  ASSERT_TRUE(WaitFor([&] { return a.Units().size() == 1; }));
  api::UnitView v = GetView("o.service");
  api::ScheduledUnit got = a.Schedule().units.at(0);
  EXPECT_EQ(got.hash, v.hash);
  EXPECT_EQ(got.options, v.options);
  EXPECT_EQ(got.options.size(), 3u);
  client_.reset();
  server_.reset();
  {
    auto st = store::OpenSqliteStore(dir_ / "state.db");
    ASSERT_TRUE(st.ok());
    auto kv = (*st)->Get("/schedule/a/o.service");
    ASSERT_TRUE(kv.ok() && kv->has_value());
    auto stored = api::ScheduledUnitFromJson((*kv)->value);
    ASSERT_TRUE(stored.ok());
    EXPECT_TRUE(stored->options.empty()) << (*kv)->value;
    EXPECT_EQ(stored->hash, v.hash);
    // As an earlier version wrote it: the options inline.
    ASSERT_TRUE((*st)->Put("/schedule/a/o.service", api::ToJson(got)).ok());
    ASSERT_TRUE((*st)->Close().ok());
  }
  StartServer();
  FakeAgent again(server_->url(), "a");
  ASSERT_EQ(again.Register(), 200);
  ASSERT_TRUE(WaitFor([&] { return again.Units().size() == 1; }));
  EXPECT_EQ(again.Schedule().units.at(0), got);
}

TEST_F(SchedulingTest, UnschedulableUnitWaitsWithReasonUntilAMachineFits) {
  FakeAgent small(server_->url(), "small", {}, 1000);
  ASSERT_EQ(small.Register(), 200);
  Submit("big.service", Opt("Service", "CPUQuota", "300%"));
  EXPECT_TRUE(WaitReason("big.service", "cpu")) << GetView("big.service").reason;
  EXPECT_TRUE(small.Units().empty());
  FakeAgent large(server_->url(), "large", {}, 8000);
  ASSERT_EQ(large.Register(), 200);
  ASSERT_TRUE(WaitFor([&] { return large.Units().size() == 1; }));
  EXPECT_TRUE(GetView("big.service").reason.empty());
}

TEST_F(SchedulingTest, DesiredStateChangesRewriteAndInactiveUnschedules) {
  FakeAgent a(server_->url(), "a");
  ASSERT_EQ(a.Register(), 200);
  Submit("d.service", "", "loaded");
  ASSERT_TRUE(WaitFor([&] { return a.Schedule().units.size() == 1; }));
  EXPECT_EQ(a.Schedule().units[0].desired_state, api::UnitStateName::kLoaded);
  ASSERT_EQ(Do("PUT", "/fleet/v1/units/d.service", R"({"desiredState":"launched"})").status, 204);
  ASSERT_TRUE(WaitFor([&] {
    auto s = a.Schedule();
    return s.units.size() == 1 && s.units[0].desired_state == api::UnitStateName::kLaunched;
  }));
  ASSERT_EQ(Do("PUT", "/fleet/v1/units/d.service", R"({"desiredState":"inactive"})").status, 204);
  ASSERT_TRUE(WaitFor([&] { return a.Units().empty(); }));
  ASSERT_EQ(Do("PUT", "/fleet/v1/units/d.service", R"({"desiredState":"launched"})").status, 204);
  ASSERT_TRUE(WaitFor([&] { return a.Units().size() == 1; }));
  // Destroy removes the placement and the unit's reported states.
  api::StateReport rep;
  api::UnitStatusReport s;
  s.state.name = "d.service";
  rep.states.push_back(s);
  ASSERT_EQ(a.Report(rep), 204);
  ASSERT_EQ(Do("DELETE", "/fleet/v1/units/d.service").status, 204);
  ASSERT_TRUE(WaitFor([&] { return a.Units().empty(); }));
  EXPECT_TRUE(WaitFor(
      [&] { return api::StateReportFromJson(Do("GET", "/v1/state").body)->states.empty(); }));
}

TEST_F(SchedulingTest, LostMachineUnitsMoveAndItComesBackWithoutDuplicates) {
  RestartServer(std::chrono::milliseconds(300));
  FakeAgent a(server_->url(), "a");
  FakeAgent b(server_->url(), "b");
  ASSERT_EQ(a.Register(), 200);
  ASSERT_EQ(b.Register(), 200);
  Submit("g.service", Opt("X-Fleet", "Global", "true"));
  for (int i = 0; i < 6; ++i) Submit("w" + std::to_string(i) + ".service");
  ASSERT_TRUE(WaitFor([&] { return a.Units().size() + b.Units().size() == 8; }));
  ASSERT_GE(a.Units().size(), 2u);  // spread: a holds some of the six

  // b keeps heartbeating, a goes silent.
  std::atomic<bool> stop{false};
  std::thread beat([&] {
    auto hb = FakeAgent(server_->url(), "b");
    while (!stop) {
      hb.Heartbeat();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  ASSERT_TRUE(WaitFor([&] { return b.Units().size() == 7; }));  // 6 + the global unit
  EXPECT_EQ(b.Units().count("g.service"), 1u);
  auto machines = api::MachineViewPageFromJson(Do("GET", "/v1/machines").body);
  ASSERT_TRUE(machines.ok());
  EXPECT_FALSE(machines->machines[0].alive);
  EXPECT_EQ(Do("POST", "/v1/machines/a/heartbeat").status, 404);

  // a comes back: only what is scheduled to it now (the global unit), no duplicates.
  ASSERT_EQ(a.Register(), 200);
  EXPECT_EQ(a.Units(), std::set<std::string>{"g.service"});
  auto w = Where({&a, &b});
  for (int i = 0; i < 6; ++i) EXPECT_EQ(w["w" + std::to_string(i) + ".service"].size(), 1u);
  stop = true;
  beat.join();
}

TEST_F(SchedulingTest, RestartKeepsUnitsAndPlacements) {
  FakeAgent a(server_->url(), "a");
  FakeAgent b(server_->url(), "b");
  ASSERT_EQ(a.Register(), 200);
  ASSERT_EQ(b.Register(), 200);
  for (int i = 0; i < 6; ++i) Submit("k" + std::to_string(i) + ".service");
  Submit("off.service", "", "inactive");
  ASSERT_TRUE(WaitFor([&] { return a.Units().size() + b.Units().size() == 6; }));
  auto before = Where({&a, &b});

  RestartServer(std::chrono::seconds(10));
  FakeAgent a2(server_->url(), "a");
  FakeAgent b2(server_->url(), "b");
  // Registered machines get a fresh grace period: nothing moves.
  EXPECT_EQ(Where({&a2, &b2}), before);
  auto list = api::UnitPageFromJson(Do("GET", "/fleet/v1/units").body);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->units.size(), 7u);
  EXPECT_EQ(a2.Heartbeat(), 204);
  // New work still lands, placements were rebuilt (not duplicated).
  Submit("after.service");
  ASSERT_TRUE(WaitFor([&] { return a2.Units().size() + b2.Units().size() == 7; }));
  EXPECT_EQ(Where({&a2, &b2})["k0.service"], before["k0.service"]);
}

TEST_F(SchedulingTest, SchedulePollWakesOnlyForItsOwnMachine) {
  FakeAgent a(server_->url(), "a");
  FakeAgent b(server_->url(), "b");
  ASSERT_EQ(a.Register(), 200);
  ASSERT_EQ(b.Register(), 200);
  auto start = a.Schedule();

  std::chrono::milliseconds took{};
  api::Schedule got;
  std::thread poll([&] { got = a.Poll(start.revision, 800, &took); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Submit("on-b.service", Opt("X-Fleet", "MachineID", "b"));  // writes under /schedule/b/
  ASSERT_TRUE(WaitFor([&] { return b.Units().size() == 1; }));
  poll.join();
  EXPECT_GE(took.count(), 700);  // not woken by b's schedule
  EXPECT_TRUE(got.units.empty());

  std::thread poll2([&] { got = a.Poll(got.revision, 10000, &took); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Submit("on-a.service", Opt("X-Fleet", "MachineID", "a"));
  poll2.join();
  EXPECT_LT(took.count(), 5000);
  ASSERT_EQ(got.units.size(), 1u);
  EXPECT_EQ(got.units[0].name, "on-a.service");
  EXPECT_EQ(got.units[0].desired_state, api::UnitStateName::kLaunched);
  EXPECT_EQ(got.units[0].hash.size(), 40u);
}

TEST_F(SchedulingTest, StateReportsWriteOnlyChanges) {
  FakeAgent a(server_->url(), "a");
  ASSERT_EQ(a.Register(), 200);
  api::StateReport rep;
  for (const char* u : {"p.service", "q.service"}) {
    api::UnitStatusReport s;
    s.state.name = u;
    s.state.systemd_active_state = "active";
    s.main_pid = 42;
    rep.states.push_back(s);
  }
  ASSERT_EQ(a.Report(rep), 204);
  int64_t rev = a.Schedule().revision;
  ASSERT_EQ(a.Report(rep), 204);  // unchanged: no write
  EXPECT_EQ(a.Schedule().revision, rev);
  rep.states.pop_back();
  ASSERT_EQ(a.Report(rep), 204);
  auto st = api::StateReportFromJson(Do("GET", "/v1/state?machineID=a").body);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->states.size(), 1u);
  EXPECT_EQ(st->states[0].state.name, "p.service");
  EXPECT_EQ(st->states[0].main_pid, 42);
  EXPECT_EQ(a.Schedule().revision, rev + 1);
}

}  // namespace
}  // namespace fjord::server::testing

namespace fjord::server::testing {
namespace {

TEST_F(SchedulingTest, RecoveryDropsStaleScheduleKeys) {
  Submit("real.service", Opt("X-Fleet", "MachineID", "a"));
  Submit("off.service", Opt("X-Fleet", "MachineID", "a"), "inactive");
  client_.reset();
  server_.reset();
  {
    // As if the server died between writes: a placement of a unit that no longer exists and
    // one of an inactive unit.
    auto st = store::OpenSqliteStore(dir_ / "state.db");
    ASSERT_TRUE(st.ok());
    ASSERT_TRUE((*st)->Put("/schedule/a/ghost.service", "{}").ok());
    ASSERT_TRUE((*st)->Put("/schedule/a/off.service", "{}").ok());
    ASSERT_TRUE((*st)->Close().ok());
  }
  StartServer();
  FakeAgent a(server_->url(), "a");
  ASSERT_EQ(a.Register(), 200);
  EXPECT_EQ(a.Units(), std::set<std::string>{"real.service"});
}

// A unit with content of its own keeps its options inline; units with equal content (a second
// unit, a template's instances) share one /unitfiles/<hash> key. Files no unit names any more
// are collected at start.
TEST_F(SchedulingTest, UnitFilesAreSharedAndCollectedAtStart) {
  auto files = [&] {
    std::set<std::string> out;
    auto st = store::OpenSqliteStore(dir_ / "state.db");
    EXPECT_TRUE(st.ok());
    if (!st.ok()) return out;
    auto r = (*st)->Range({"/unitfiles/", store::PrefixEnd("/unitfiles/")});
    EXPECT_TRUE(r.ok());
    for (const auto& kv : r->kvs) out.insert(kv.key);
    EXPECT_TRUE((*st)->Close().ok());
    return out;
  };
  Submit("s1.service");
  Submit("s2.service");
  Submit("own.service", Opt("Service", "Nice", "3"));
  Submit("gone@.service", Opt("Service", "Nice", "4"), "inactive");
  ASSERT_EQ(Do("PUT", "/v1/units/gone@.service/scale", R"({"instances":2})").status, 200);
  const std::string shared = GetView("s1.service").hash;
  const std::string gone = GetView("gone@.service").hash;
  EXPECT_EQ(GetView("s2.service").hash, shared);
  EXPECT_EQ(GetView("gone@1.service").hash, gone);
  for (const char* n : {"gone@1.service", "gone@2.service", "gone@.service"}) {
    ASSERT_EQ(Do("DELETE", std::string("/fleet/v1/units/") + n).status, 204) << n;
  }
  client_.reset();
  server_.reset();
  EXPECT_EQ(files(), (std::set<std::string>{"/unitfiles/" + shared, "/unitfiles/" + gone}));
  StartServer();
  // Every unit reads back with its options; the file of the destroyed template is gone.
  EXPECT_EQ(GetView("s2.service").options.size(), 1u);
  EXPECT_EQ(GetView("own.service").options.size(), 2u);
  EXPECT_EQ(GetView("s1.service").hash, shared);
  client_.reset();
  server_.reset();
  EXPECT_EQ(files(), std::set<std::string>{"/unitfiles/" + shared});
  StartServer();
}

// A backlog larger than one reconciler pass (here: a restart with 45,000 instances stored but
// not placed) is placed over several passes and transactions: every unit once, none twice, none
// forgotten, and the machines' unit counts agree.
TEST_F(SchedulingTest, ABacklogLargerThanOnePassIsPlacedCompletely) {
  constexpr int kMachines = 20;
  constexpr int kUnits = 45000;
  client_.reset();
  server_.reset();
  {
    auto st = store::OpenSqliteStore(dir_ / "state.db");
    ASSERT_TRUE(st.ok());
    store::TxnRequest machines;
    for (int m = 0; m < kMachines; ++m) {
      api::MachineRegistration r;
      r.id = "m" + std::to_string(m);
      r.primary_ip = "10.0.0.1";
      r.capacity = {int64_t{1} << 30, int64_t{1} << 50, int64_t{1} << 50};
      machines.success.push_back(store::Op::Put("/machines/" + r.id, api::ToJson(r)));
    }
    ASSERT_TRUE((*st)->Txn(std::move(machines)).ok());
    std::vector<api::UnitOption> options = {{"Service", "ExecStart", "/bin/sleep 1000"},
                                            {"Service", "CPUQuota", "10%"}};
    std::string hash = unit::ContentHash(
        {{"Service", "ExecStart", "/bin/sleep 1000"}, {"Service", "CPUQuota", "10%"}});
    ASSERT_TRUE((*st)->Put("/unitfiles/" + hash, api::ToJson(api::UnitFile{hash, options})).ok());
    for (int base = 0; base < kUnits; base += 5000) {
      store::TxnRequest txn;
      for (int i = base; i < base + 5000; ++i) {
        api::ScheduledUnit u{
            "b@" + std::to_string(i) + ".service", hash, api::UnitStateName::kLaunched, {}};
        txn.success.push_back(store::Op::Put("/units/" + u.name, api::ToJson(u)));
      }
      ASSERT_TRUE((*st)->Txn(std::move(txn)).ok());
    }
    ASSERT_TRUE((*st)->Close().ok());
  }
  StartServer();
  auto placed = [&] {
    auto r = Do("GET", "/v1/machines");
    auto page = api::MachineViewPageFromJson(r.body);
    int64_t n = 0;
    if (page.ok()) {
      for (const auto& m : page->machines) n += m.units;
    }
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return placed() == kUnits; }, std::chrono::seconds(60))) << placed();
  // The view is published before a pass is durable: the schedules follow once it commits.
  std::set<std::string> names;
  size_t scheduled = 0;
  auto read_schedules = [&] {
    names.clear();
    scheduled = 0;
    for (int m = 0; m < kMachines; ++m) {
      FakeAgent a(server_->url(), "m" + std::to_string(m));
      for (const auto& u : a.Schedule().units) {
        names.insert(u.name);
        ++scheduled;
        EXPECT_EQ(u.options.size(), 2u) << u.name;
      }
    }
    return scheduled >= static_cast<size_t>(kUnits);
  };
  EXPECT_TRUE(WaitFor(read_schedules, std::chrono::seconds(30)));
  EXPECT_EQ(scheduled, static_cast<size_t>(kUnits));
  EXPECT_EQ(names.size(), static_cast<size_t>(kUnits));
}

class ReschedulingTest : public ServerFixture {
 protected:
  // Six units on machine a; b registers and heartbeats, a falls silent and is lost. Returns how
  // long the six took to arrive on b, from the first to the last.
  std::chrono::steady_clock::duration MoveSixUnitsOffALostMachine() {
    const std::string url = server_->url();
    FakeAgent a(url, "a");
    EXPECT_EQ(a.Register(), 200);
    for (int i = 0; i < 6; ++i) Submit("r" + std::to_string(i) + ".service");
    EXPECT_TRUE(WaitFor([&] { return a.Units().size() == 6; }));
    FakeAgent b(url, "b");
    EXPECT_EQ(b.Register(), 200);
    std::atomic<bool> stop{false};
    std::thread beat([&] {
      FakeAgent hb(url, "b");
      while (!stop) {
        hb.Heartbeat();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
    EXPECT_TRUE(WaitFor([&] { return !b.Units().empty(); }));
    auto first = std::chrono::steady_clock::now();
    EXPECT_TRUE(WaitFor([&] { return b.Units().size() == 6; }));
    auto spread = std::chrono::steady_clock::now() - first;
    stop = true;
    beat.join();
    return spread;
  }
};

TEST_F(ReschedulingTest, IsRateLimited) {
  RestartServer(std::chrono::milliseconds(300), /*per_second=*/5, /*burst=*/1);
  // Once a is declared lost, its 6 units move at 5/s after a burst of 1.
  EXPECT_GE(MoveSixUnitsOffALostMachine(), std::chrono::milliseconds(800));
}

// The rate scales with the alive machines: 1/s fixed, but 1,000/s for the one survivor here.
TEST_F(ReschedulingTest, RateScalesWithTheAliveMachines) {
  RestartServer(std::chrono::milliseconds(300), /*per_second=*/1, /*burst=*/1,
                /*per_machine=*/1000);
  // At the fixed 1/s the six would take five seconds after the first.
  EXPECT_LT(MoveSixUnitsOffALostMachine(), std::chrono::seconds(3));
}

TEST_F(SchedulingTest, FjordConstraintsPortsAndResources) {
  FakeAgent a(server_->url(), "a", {{"rack", "r1"}}, 4000, int64_t{1} << 30);
  FakeAgent b(server_->url(), "b", {{"rack", "r1"}}, 4000, int64_t{1} << 30);
  FakeAgent c(server_->url(), "c", {{"rack", "r2"}}, 4000, int64_t{1} << 30);
  ASSERT_EQ(a.Register(), 200);
  ASSERT_EQ(b.Register(), 200);
  ASSERT_EQ(c.Register(), 200);
  // One instance per rack: the third waits.
  for (int i = 1; i <= 3; ++i) {
    Submit("web@" + std::to_string(i) + ".service", Opt("X-Fjord", "Constraint", "rack UNIQUE"));
  }
  ASSERT_TRUE(WaitFor([&] {
    auto w = Where({&a, &b, &c});
    int placed = 0;
    for (int i = 1; i <= 3; ++i) placed += w["web@" + std::to_string(i) + ".service"].size();
    return placed == 2;
  }));
  EXPECT_EQ(c.Units().size(), 1u);
  EXPECT_EQ(a.Units().size() + b.Units().size(), 1u);
  // Units of `prefix`0..3 of which exactly one waits with a reason mentioning `filter`.
  auto one_waits = [&](const std::string& prefix, const std::string& filter) {
    return WaitFor([&] {
      int pending = 0, placed = 0;
      for (int i = 0; i < 4; ++i) {
        auto v = GetView(prefix + std::to_string(i) + ".service");
        pending += v.reason.find(filter) != std::string::npos;
        placed += !v.machine_id.empty();
      }
      return pending == 1 && placed == 3;
    });
  };
  // MemoryMax is a request: 700M fits once per 1 GiB machine.
  for (int i = 0; i < 4; ++i) {
    Submit("mem" + std::to_string(i) + ".service", Opt("Service", "MemoryMax", "700M"));
  }
  EXPECT_TRUE(one_waits("mem", "memory"));
  // Host ports: one unit per port per machine.
  for (int i = 0; i < 4; ++i) {
    Submit("port" + std::to_string(i) + ".service", Opt("X-Fjord", "Ports", "8080"));
  }
  EXPECT_TRUE(one_waits("port", "port"));
}

TEST(InjectedStoreTest, ServesFromAMemoryStore) {
  spdlog::set_level(spdlog::level::warn);
  ServerOptions o;
  o.port = 0;
  o.store = std::shared_ptr<store::Store>(store::NewMemoryStore());
  auto s = Server::Start(o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  FakeAgent a((*s)->url(), "m");
  ASSERT_EQ(a.Register(), 200);
  auto c = *http::HttpClient::Create((*s)->url());
  auto r = c->Put(
      "/fleet/v1/units/mem.service",
      R"({"desiredState":"launched","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 201);
  EXPECT_TRUE(WaitFor([&] { return a.Units().size() == 1; }));
  (*s)->Stop();
}

}  // namespace
}  // namespace fjord::server::testing
