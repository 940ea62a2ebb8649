// Machines whose metadata or capacity change while alive: agent re-registration and fleet's
// PATCH /fleet/v1/machines.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/types.h"
#include "server/server_test_util.h"

namespace fjord::server::testing {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kGiB = int64_t{1} << 30;

using MachineUpdateTest = ServerFixture;

// GET /fleet/v1/machines as id -> metadata.
std::map<std::string, std::map<std::string, std::string>> FleetMachines(http::HttpClient& c) {
  auto r = c.Get("/fleet/v1/machines");
  EXPECT_TRUE(r.ok() && r->status == 200);
  auto page = api::MachinePageFromJson(r.ok() ? r->body : "");
  EXPECT_TRUE(page.ok());
  std::map<std::string, std::map<std::string, std::string>> out;
  if (page.ok()) {
    for (const auto& m : page->machines) out[m.id] = m.metadata;
  }
  return out;
}

std::string MdOpt(const std::string& requirement) {
  return R"({"section":"X-Fleet","name":"MachineMetadata","value":")" + requirement + "\"}";
}

TEST_F(MachineUpdateTest, ReRegistrationMovesOnlyUnitsThatNoLongerMatch) {
  FakeAgent a(server_->url(), "a", {{"zone", "z1"}, {"disk", "ssd"}});
  FakeAgent b(server_->url(), "b", {{"zone", "z2"}, {"disk", "hdd"}});
  ASSERT_EQ(a.Register(), 200);
  ASSERT_EQ(b.Register(), 200);
  Submit("z1.service", MdOpt("zone=z1"));
  Submit("ssd.service", MdOpt("disk=ssd"));
  Submit("pinned.service", Opt("X-Fleet", "MachineID", "a"));
  ASSERT_TRUE(WaitFor([&] { return a.Units().size() == 3; }));

  // b restarts with zone=z1: nothing of b's moves (it has nothing), but it can take z1 work.
  ASSERT_EQ(FakeAgent(server_->url(), "b", {{"zone", "z1"}, {"disk", "hdd"}}).Register(), 200);
  // a restarts with zone=z2: z1.service must leave, the others stay.
  ASSERT_EQ(FakeAgent(server_->url(), "a", {{"zone", "z2"}, {"disk", "ssd"}}).Register(), 200);
  ASSERT_TRUE(WaitFor([&] { return b.Units() == std::set<std::string>{"z1.service"}; }))
      << GetView("z1.service").reason;
  EXPECT_EQ(a.Units(), (std::set<std::string>{"ssd.service", "pinned.service"}));
  EXPECT_EQ(GetView("z1.service").machine_id, "b");
  EXPECT_EQ(GetView("ssd.service").machine_id, "a");
  // The fleet view shows the new registration.
  EXPECT_EQ(FleetMachines(*client_)["a"].at("zone"), "z2");

  // No machine matches any more: the unit leaves and waits with the reason.
  ASSERT_EQ(FakeAgent(server_->url(), "b", {{"zone", "z3"}}).Register(), 200);
  ASSERT_TRUE(WaitFor([&] { return b.Units().empty(); }));
  EXPECT_TRUE(WaitReason("z1.service", "MachineMetadata zone=z1")) << GetView("z1.service").reason;
  EXPECT_EQ(a.Units(), (std::set<std::string>{"ssd.service", "pinned.service"}));
}

TEST_F(MachineUpdateTest, CapacityShrinkMovesOnlyTheOverflow) {
  FakeAgent a(server_->url(), "a", {}, 4000, 4 * kGiB);
  ASSERT_EQ(a.Register(), 200);
  for (int i = 0; i < 3; ++i) {
    Submit("m" + std::to_string(i) + ".service", Opt("Service", "MemoryMax", "1G"));
  }
  Submit("small.service");
  ASSERT_TRUE(WaitFor([&] { return a.Units().size() == 4; }));
  FakeAgent b(server_->url(), "b", {}, 4000, 4 * kGiB);
  ASSERT_EQ(b.Register(), 200);
  EXPECT_TRUE(b.Units().empty());

  // a comes back with 2.5 GiB: 3 GiB is placed there, so one 1 GiB unit moves (the last name).
  ASSERT_EQ(FakeAgent(server_->url(), "a", {}, 4000, 5 * kGiB / 2).Register(), 200);
  ASSERT_TRUE(WaitFor([&] { return b.Units() == std::set<std::string>{"m2.service"}; }));
  EXPECT_EQ(a.Units(), (std::set<std::string>{"m0.service", "m1.service", "small.service"}));
  // Published figures: a has 0.5 GiB free (small.service asks for no memory).
  ASSERT_TRUE(WaitFor([&] {
    auto page = api::MachineViewPageFromJson(Do("GET", "/v1/machines").body);
    return page.ok() && page->machines[0].free.memory_bytes == kGiB / 2;
  }));
}

TEST_F(MachineUpdateTest, GlobalUnitFollowsMachineMetadata) {
  FakeAgent a(server_->url(), "a", {{"role", "web"}});
  FakeAgent b(server_->url(), "b", {{"role", "db"}});
  ASSERT_EQ(a.Register(), 200);
  ASSERT_EQ(b.Register(), 200);
  Submit("gw.service", Opt("X-Fleet", "Global", "true") + "," + MdOpt("role=web"));
  Submit("all.service", Opt("X-Fleet", "Global", "true"));
  ASSERT_TRUE(WaitFor([&] { return a.Units().size() == 2 && b.Units().size() == 1; }));

  // The registration answers once the machine's schedule is written: no wait needed.
  ASSERT_EQ(FakeAgent(server_->url(), "b", {{"role", "web"}}).Register(), 200);
  EXPECT_EQ(b.Units(), (std::set<std::string>{"gw.service", "all.service"}));
  ASSERT_EQ(FakeAgent(server_->url(), "a", {{"role", "db"}}).Register(), 200);
  EXPECT_EQ(a.Units(), std::set<std::string>{"all.service"});
  EXPECT_EQ(b.Units(), (std::set<std::string>{"gw.service", "all.service"}));
}

TEST_F(MachineUpdateTest, MovesAreRateLimited) {
  RestartServer(std::chrono::seconds(10), /*per_second=*/5, /*burst=*/1);
  FakeAgent a(server_->url(), "a", {{"zone", "z1"}});
  ASSERT_EQ(a.Register(), 200);
  for (int i = 0; i < 6; ++i) Submit("r" + std::to_string(i) + ".service", MdOpt("zone=z1"));
  ASSERT_TRUE(WaitFor([&] { return a.Units().size() == 6; }));
  FakeAgent b(server_->url(), "b", {{"zone", "z1"}});
  ASSERT_EQ(b.Register(), 200);
  ASSERT_EQ(FakeAgent(server_->url(), "a", {{"zone", "z2"}}).Register(), 200);
  // Units wait on a (their keys stay) until the limiter lets them go: 5/s after a burst of 1.
  ASSERT_TRUE(WaitFor([&] { return !b.Units().empty(); }));
  auto first = std::chrono::steady_clock::now();
  EXPECT_FALSE(a.Units().empty());
  ASSERT_TRUE(WaitFor([&] { return b.Units().size() == 6; }));
  EXPECT_GE(std::chrono::steady_clock::now() - first, std::chrono::milliseconds(800));
  EXPECT_TRUE(a.Units().empty());
}

class MachinePatchTest : public ServerFixture {
 protected:
  http::ClientResponse Patch(const std::string& body) {
    return Do("PATCH", "/fleet/v1/machines", body);
  }
  std::map<std::string, std::map<std::string, std::string>> Machines() {
    return FleetMachines(*client_);
  }
};

TEST_F(MachinePatchTest, ChangesMetadataDurablyAndReschedules) {
  FakeAgent a(server_->url(), "a", {{"zone", "z1"}, {"rack", "r1"}});
  FakeAgent b(server_->url(), "b", {{"zone", "z2"}});
  ASSERT_EQ(a.Register(), 200);
  ASSERT_EQ(b.Register(), 200);
  Submit("z1.service", MdOpt("zone=z1"));
  Submit("rack.service", MdOpt("rack=r1"));
  ASSERT_TRUE(WaitFor([&] { return a.Units().size() == 2; }));

  auto r = Patch(R"([{"op":"replace","path":"/a/metadata/zone","value":"z2"},
                     {"op":"add","path":"/b/metadata/zone","value":"z1"},
                     {"op":"add","path":"/b/metadata/ssd","value":"true"}])");
  ASSERT_EQ(r.status, 204) << r.body;
  EXPECT_TRUE(r.body.empty());
  auto md = Machines();
  EXPECT_EQ(md["a"], (std::map<std::string, std::string>{{"zone", "z2"}, {"rack", "r1"}}));
  EXPECT_EQ(md["b"], (std::map<std::string, std::string>{{"zone", "z1"}, {"ssd", "true"}}));
  ASSERT_TRUE(WaitFor([&] { return b.Units() == std::set<std::string>{"z1.service"}; }));
  EXPECT_EQ(a.Units(), std::set<std::string>{"rack.service"});
  // /v1/machines shows the same metadata.
  auto page = api::MachineViewPageFromJson(Do("GET", "/v1/machines").body);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->machines[0].machine.metadata.at("zone"), "z2");

  // Durable: a restarted server has the patched metadata, and schedules by it.
  RestartServer(std::chrono::seconds(10));
  md = Machines();
  EXPECT_EQ(md["a"].at("zone"), "z2");
  EXPECT_EQ(md["b"].at("zone"), "z1");
  Submit("z2.service", MdOpt("zone=z2"));
  FakeAgent a2(server_->url(), "a");
  ASSERT_TRUE(WaitFor([&] { return a2.Units().count("z2.service") == 1; }));

  // The agent registering again with its own values does not undo the patch (fleet merges
  // the patched metadata over the machine's own, which wins); its other keys do change.
  ASSERT_EQ(FakeAgent(server_->url(), "a", {{"zone", "z1"}, {"rack", "r2"}}).Register(), 200);
  md = Machines();
  EXPECT_EQ(md["a"], (std::map<std::string, std::string>{{"zone", "z2"}, {"rack", "r2"}}));
  ASSERT_TRUE(WaitFor([&] { return a2.Units() == std::set<std::string>{"z2.service"}; }));
  EXPECT_TRUE(WaitReason("rack.service", "MachineMetadata rack=r1"));

  // remove hides the key, even one the agent sets.
  r = Patch(R"([{"op":"remove","path":"/a/metadata/rack"}])");
  ASSERT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(Machines()["a"], (std::map<std::string, std::string>{{"zone", "z2"}}));
  ASSERT_EQ(FakeAgent(server_->url(), "a", {{"zone", "z1"}, {"rack", "r1"}}).Register(), 200);
  EXPECT_EQ(Machines()["a"], (std::map<std::string, std::string>{{"zone", "z2"}}));
  // An empty patch changes nothing.
  EXPECT_EQ(Patch("[]").status, 204);
}

// Concurrent patches of one machine lose no update (each compares the revision it read).
TEST_F(MachinePatchTest, ConcurrentPatchesOfOneMachineAllLand) {
  FakeAgent a(server_->url(), "a", {{"zone", "z1"}});
  ASSERT_EQ(a.Register(), 200);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      auto c = *http::HttpClient::Create(server_->url());
      for (int i = 0; i < 10; ++i) {
        std::string key = "w" + std::to_string(w) + "-" + std::to_string(i);
        auto r = c->Do("PATCH", "/fleet/v1/machines",
                       R"([{"op":"add","path":"/a/metadata/)" + key + R"(","value":"v"}])");
        if (r.ok() && r->status == 204) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 40);
  EXPECT_EQ(Machines()["a"].size(), 41u);  // zone + 40
}

// Every bad element is refused with 400 naming it; nothing of the patch is applied.
TEST_F(MachinePatchTest, BadInputIsRefusedWholeNamingTheElement) {
  FakeAgent a(server_->url(), "a", {{"zone", "z1"}});
  ASSERT_EQ(a.Register(), 200);
  const std::string good = R"({"op":"add","path":"/a/metadata/k","value":"v"},)";
  struct Case {
    std::string body;
    std::string field;    // "" when the error is about the whole body
    std::string message;  // part of the message
  };
  std::vector<Case> cases = {
      {"nope", "", "not JSON"},
      {R"({"op":"add"})", "", "must be a JSON array"},
      {"[" + good + R"("x"])", "[1]", "must be an object"},
      {"[" + good + R"({"op":"move","path":"/a/metadata/k","value":"v"}])", "[1].op",
       "`move` is not add, remove or replace"},
      {"[" + good + R"({"path":"/a/metadata/k","value":"v"}])", "[1].op", "missing"},
      {"[" + good + R"({"op":7,"path":"/a/metadata/k","value":"v"}])", "[1].op", "not a string"},
      {"[" + good + R"({"op":"add","value":"v"}])", "[1].path", "missing"},
      {"[" + good + R"({"op":"add","path":"/a/meta/k","value":"v"}])", "[1].path",
       "is not /<machine-id>/metadata/<name>"},
      {"[" + good + R"({"op":"add","path":"/a/metadata/","value":"v"}])", "[1].path", "is not"},
      {"[" + good + R"({"op":"add","path":"/a/metadata/k/x","value":"v"}])", "[1].path", "is not"},
      {"[" + good + R"({"op":"add","path":"a/metadata/k","value":"v"}])", "[1].path", "is not"},
      {"[" + good + R"({"op":"add","path":"//metadata/k","value":"v"}])", "[1].path", "is not"},
      {"[" + good + R"({"op":"add","path":"/a/metadata/k!","value":"v"}])", "[1].path", "is not"},
      {"[" + good + R"({"op":"add","path":"/a/metadata/k"}])", "[1].value",
       "add needs a non-empty string value"},
      {"[" + good + R"({"op":"replace","path":"/a/metadata/k","value":""}])", "[1].value",
       "replace needs a non-empty string value"},
      {"[" + good + R"({"op":"add","path":"/a/metadata/k","value":5}])", "[1].value",
       "non-empty string"},
      {"[" + good + R"({"op":"add","path":"/zz/metadata/k","value":"v"}])", "[1].path",
       "no machine `zz`"},
  };
  // The scheduler indexes at most 254 distinct names (hostname and zone exist already).
  std::string many = "[";
  for (int i = 0; i < 253; ++i) {
    many += R"({"op":"add","path":"/a/metadata/n)" + std::to_string(i) + R"(","value":"v"},)";
  }
  many.pop_back();
  cases.push_back({many + "]", "[252].path", "at most 254 are supported"});
  for (const Case& c : cases) {
    auto r = Do("PATCH", "/fleet/v1/machines", c.body);
    EXPECT_EQ(r.status, 400) << c.body;
    auto doc = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(doc.is_object()) << r.body;
    const auto& err = doc["error"];
    EXPECT_EQ(err.value("code", 0), 400) << r.body;
    EXPECT_THAT(err.value("message", ""), HasSubstr(c.message)) << c.body;
    if (!c.field.empty()) {
      EXPECT_EQ(err.value("field", ""), c.field) << c.body;
      EXPECT_THAT(err.value("message", ""), HasSubstr(c.field)) << c.body;
    }
  }
  // All or nothing: the good first operation of each was not applied.
  EXPECT_EQ(FleetMachines(*client_)["a"], (std::map<std::string, std::string>{{"zone", "z1"}}));
  // Other methods on the collection are still refused.
  EXPECT_NE(Do("POST", "/fleet/v1/machines", "[]").status, 204);
}

}  // namespace
}  // namespace fjord::server::testing
