// The HTTP APIs of an in-process server: fleet's /fleet/v1 and fjord's /v1, with bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "api/types.h"
#include "server/server_test_util.h"

namespace fjord::server::testing {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

using FleetApiTest = ServerFixture;
using NativeApiTest = ServerFixture;

TEST_F(FleetApiTest, CreateGetModifyDestroy) {
  auto r = Do("PUT", "/fleet/v1/units/hello.service", UnitBody("loaded"));
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, "");

  r = Do("GET", "/fleet/v1/units/hello.service");
  ASSERT_EQ(r.status, 200) << r.body;
  auto unit = api::UnitFromJson(r.body);
  ASSERT_TRUE(unit.ok());
  EXPECT_EQ(unit->name, "hello.service");
  EXPECT_EQ(unit->desired_state, api::UnitStateName::kLoaded);
  EXPECT_EQ(unit->current_state, api::UnitStateName::kInactive);
  ASSERT_EQ(unit->options.size(), 1u);
  EXPECT_EQ(unit->options[0].value, "/bin/sleep 1000");

  // Existing unit: desiredState alone changes it (204); the same options are accepted too.
  r = Do("PUT", "/fleet/v1/units/hello.service", R"({"desiredState":"launched"})");
  EXPECT_EQ(r.status, 204) << r.body;
  r = Do("PUT", "/fleet/v1/units/hello.service", UnitBody("inactive"));
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(api::UnitFromJson(Do("GET", "/fleet/v1/units/hello.service").body)->desired_state,
            api::UnitStateName::kInactive);

  EXPECT_EQ(Do("DELETE", "/fleet/v1/units/hello.service").status, 204);
  EXPECT_EQ(Do("GET", "/fleet/v1/units/hello.service").status, 404);
  r = Do("DELETE", "/fleet/v1/units/hello.service");
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("does not exist"));
}

TEST_F(FleetApiTest, ConflictsAndBadRequests) {
  // fleet: creating without options is a 409.
  auto r = Do("PUT", "/fleet/v1/units/a.service", R"({"desiredState":"launched"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_THAT(r.body, HasSubstr("options field empty"));

  Submit("a.service");
  r = Do("PUT", "/fleet/v1/units/a.service",
         UnitBody("launched", Opt("Unit", "Description", "other")));
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_THAT(r.body, HasSubstr("different options"));

  r = Do("PUT", "/fleet/v1/units/a.service", "{not json");
  EXPECT_EQ(r.status, 400);
  auto err = api::ErrorFromJson(r.body);
  ASSERT_TRUE(err.ok()) << r.body;
  EXPECT_EQ(err->code, 400);

  r = Do("PUT", "/fleet/v1/units/a.service", R"({"name":"b.service","desiredState":"launched"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("differs"));

  r = Do("PUT", "/fleet/v1/units/a.service", R"({"desiredState":"runnin"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("desiredState"));

  r = Do("PUT", "/fleet/v1/units/no-type", UnitBody("launched"));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("invalid unit name"));
}

TEST_F(FleetApiTest, InvalidUnitCarriesDiagnostics) {
  std::string body = R"({"desiredState":"launched","options":[)"
                     R"({"section":"Service","name":"ExecStart","value":"/bin/true"},)"
                     R"({"section":"Service","name":"Restart","value":"sometimes"},)"
                     R"({"section":"X-Fleet","name":"MachineMetadta","value":"zone=a"}]})";
  auto r = Do("PUT", "/fleet/v1/units/bad.service", body);
  ASSERT_EQ(r.status, 400) << r.body;
  auto eb = api::ErrorBodyFromJson(r.body);
  ASSERT_TRUE(eb.ok()) << r.body;
  EXPECT_EQ(eb->error.code, 400);
  EXPECT_THAT(eb->error.message, HasSubstr("bad.service"));
  ASSERT_FALSE(eb->diagnostics.empty());
  bool restart = false, suggestion = false;
  for (const auto& d : eb->diagnostics) {
    if (d.key == "Restart" && d.severity == "error") {
      restart = true;
      EXPECT_GT(d.line, 0);
    }
    if (d.key == "MachineMetadta" && d.suggestion == "MachineMetadata") suggestion = true;
  }
  EXPECT_TRUE(restart) << r.body;
  EXPECT_TRUE(suggestion) << r.body;
  EXPECT_EQ(Do("GET", "/fleet/v1/units/bad.service").status, 404);
}

TEST_F(FleetApiTest, OversizedBodyIs413) {
  std::string big(2 << 20, 'x');
  auto r = client_->Do("PUT", "/fleet/v1/units/big.service", big);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 413);
}

TEST_F(FleetApiTest, ListPagesWithTokens) {
  for (int i = 0; i < 230; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "u%03d.service", i);
    Submit(name, "", "inactive");
  }
  std::vector<std::string> names;
  std::string token;
  int pages = 0;
  do {
    auto r = Do("GET", "/fleet/v1/units" + (token.empty() ? "" : "?nextPageToken=" + token));
    ASSERT_EQ(r.status, 200);
    auto page = api::UnitPageFromJson(r.body);
    ASSERT_TRUE(page.ok());
    EXPECT_LE(page->units.size(), 100u);
    for (const auto& u : page->units) names.push_back(u.name);
    token = page->next_page_token;
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(names.size(), 230u);
  EXPECT_EQ(names.front(), "u000.service");
  EXPECT_EQ(names.back(), "u229.service");
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));

  auto r = Do("GET", "/fleet/v1/units?nextPageToken=zz%21");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("nextPageToken"));
  EXPECT_EQ(Do("GET", "/fleet/v1/state?nextPageToken=q").status, 400);
}

TEST_F(FleetApiTest, MachinesStateAndDiscovery) {
  FakeAgent a(server_->url(), "m-a", {{"zone", "z1"}});
  FakeAgent b(server_->url(), "m-b");
  ASSERT_EQ(a.Register(), 200);
  ASSERT_EQ(b.Register(), 200);
  auto r = Do("GET", "/fleet/v1/machines");
  ASSERT_EQ(r.status, 200);
  auto machines = api::MachinePageFromJson(r.body);
  ASSERT_TRUE(machines.ok());
  ASSERT_EQ(machines->machines.size(), 2u);
  EXPECT_EQ(machines->machines[0].id, "m-a");
  EXPECT_EQ(machines->machines[0].metadata.at("zone"), "z1");

  Submit("x.service");
  Submit("y.service");
  api::StateReport ra, rb;
  for (const char* u : {"x.service", "y.service"}) {
    api::UnitStatusReport s;
    s.state.name = u;
    s.state.systemd_active_state = "active";
    ra.states.push_back(s);
  }
  rb.states.push_back(ra.states[0]);
  ASSERT_EQ(a.Report(ra), 204);
  ASSERT_EQ(b.Report(rb), 204);

  auto states = [&](std::string q) {
    auto r = Do("GET", "/fleet/v1/state" + q);
    EXPECT_EQ(r.status, 200);
    return api::UnitStatePageFromJson(r.body)->states;
  };
  EXPECT_EQ(states("").size(), 3u);
  auto only_b = states("?machineID=m-b");
  ASSERT_EQ(only_b.size(), 1u);
  EXPECT_EQ(only_b[0].machine_id, "m-b");
  EXPECT_EQ(only_b[0].name, "x.service");
  EXPECT_EQ(states("?unitName=x.service").size(), 2u);
  EXPECT_EQ(states("?machineID=m-a&unitName=y.service").size(), 1u);
  EXPECT_EQ(states("?machineID=nope").size(), 0u);

  r = Do("GET", "/fleet/v1/discovery");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["name"], "fleet");
}

TEST_F(NativeApiTest, UnitFileLifecycle) {
  std::string file = "[Unit]\nDescription=web\n\n[Service]\nExecStart=/bin/sleep 100\n";
  json body = {{"unitFile", file}, {"desiredState", "loaded"}};
  auto r = Do("PUT", "/v1/units/web.service", body.dump());
  ASSERT_EQ(r.status, 201) << r.body;
  auto view = api::UnitViewFromJson(r.body);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->name, "web.service");
  EXPECT_EQ(view->desired_state, api::UnitStateName::kLoaded);
  EXPECT_EQ(view->hash.size(), 40u);

  r = Do("PUT", "/v1/units/web.service", R"({"desiredState":"launched"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(api::UnitViewFromJson(r.body)->desired_state, api::UnitStateName::kLaunched);

  json other = {{"unitFile", file + "Environment=A=1\n"}};
  EXPECT_EQ(Do("PUT", "/v1/units/web.service", other.dump()).status, 409);

  auto got = GetView("web.service");
  EXPECT_EQ(got.options.size(), 2u);
  // No machine: pending with a reason.
  EXPECT_TRUE(WaitReason("web.service", "no machines")) << GetView("web.service").reason;

  r = Do("GET", "/v1/units/web.service/explain");
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("web.service"));
  EXPECT_EQ(Do("GET", "/v1/units/nope.service/explain").status, 404);

  EXPECT_EQ(Do("DELETE", "/v1/units/web.service").status, 204);
  EXPECT_EQ(Do("DELETE", "/v1/units/web.service").status, 404);
  EXPECT_EQ(Do("GET", "/v1/units/web.service").status, 404);
}

TEST_F(NativeApiTest, BadInput) {
  json bad = {{"unitFile", "[Service]\nExecStart=/bin/true\nRestart=sometimes\n"}};
  auto r = Do("PUT", "/v1/units/b.service", bad.dump());
  ASSERT_EQ(r.status, 400);
  auto eb = api::ErrorBodyFromJson(r.body);
  ASSERT_TRUE(eb.ok());
  ASSERT_FALSE(eb->diagnostics.empty());
  EXPECT_EQ(eb->diagnostics[0].line, 3);
  EXPECT_EQ(eb->diagnostics[0].key, "Restart");

  EXPECT_EQ(Do("PUT", "/v1/units/b.service", "[1,2").status, 400);
  json both = {{"unitFile", "[Service]\nExecStart=/bin/true\n"},
               {"options", {{{"section", "Service"}, {"name", "ExecStart"}, {"value", "/x"}}}}};
  EXPECT_EQ(Do("PUT", "/v1/units/b.service", both.dump()).status, 400);
  EXPECT_EQ(Do("GET", "/v1/units?limit=0").status, 400);
  EXPECT_EQ(Do("GET", "/v1/units?nextPageToken=xyz").status, 400);
  EXPECT_EQ(Do("GET", "/v1/events?waitIndex=abc").status, 400);
  EXPECT_EQ(Do("PUT", "/v1/machines/m1", "{").status, 400);
  EXPECT_EQ(Do("PUT", "/v1/machines/m1", R"({"id":"m2"})").status, 400);
  EXPECT_EQ(Do("POST", "/v1/machines/ghost/heartbeat").status, 404);
  EXPECT_EQ(Do("GET", "/v1/machines/ghost/schedule").status, 404);
  EXPECT_EQ(Do("PUT", "/v1/machines/ghost/states", R"({"states":[]})").status, 404);
}

TEST_F(NativeApiTest, ListWithPlacementAndPages) {
  FakeAgent a(server_->url(), "m1");
  ASSERT_EQ(a.Register(), 200);
  for (int i = 0; i < 5; ++i) Submit("s" + std::to_string(i) + ".service");
  ASSERT_TRUE(WaitFor([&] { return a.Units().size() == 5; }));
  api::StateReport rep;
  api::UnitStatusReport s;
  s.state.name = "s0.service";
  s.state.systemd_active_state = "active";
  rep.states.push_back(s);
  ASSERT_EQ(a.Report(rep), 204);

  auto r = Do("GET", "/v1/units?limit=2");
  ASSERT_EQ(r.status, 200);
  auto page = api::UnitViewPageFromJson(r.body);
  ASSERT_TRUE(page.ok()) << r.body;
  ASSERT_EQ(page->units.size(), 2u);
  EXPECT_FALSE(page->next_page_token.empty());
  EXPECT_EQ(page->units[0].machine_id, "m1");
  EXPECT_EQ(page->units[0].current_state, api::UnitStateName::kLaunched);
  ASSERT_EQ(page->units[0].states.size(), 1u);
  EXPECT_EQ(page->units[0].states[0].state.machine_id, "m1");
  r = Do("GET", "/v1/units?limit=10&nextPageToken=" + page->next_page_token);
  auto rest = api::UnitViewPageFromJson(r.body);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->units.size(), 3u);
  EXPECT_TRUE(rest->next_page_token.empty());

  r = Do("GET", "/v1/machines");
  auto machines = api::MachineViewPageFromJson(r.body);
  ASSERT_TRUE(machines.ok()) << r.body;
  ASSERT_EQ(machines->machines.size(), 1u);
  EXPECT_TRUE(machines->machines[0].alive);
  EXPECT_GT(machines->machines[0].last_seen_unix_ms, 0);
  EXPECT_TRUE(WaitFor([&] {
    auto m = api::MachineViewPageFromJson(Do("GET", "/v1/machines").body);
    return m.ok() && m->machines[0].units == 5;
  }));

  auto st = api::StateReportFromJson(Do("GET", "/v1/state?unitName=s0.service").body);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->states.size(), 1u);
}

TEST_F(NativeApiTest, StatusAndJournalRedirectToTheAgent) {
  EXPECT_EQ(Do("GET", "/v1/units/none.service/status").status, 404);
  Submit("r.service", "", "inactive");
  EXPECT_EQ(Do("GET", "/v1/units/r.service/status").status, 409);
  FakeAgent a(server_->url(), "m1");
  ASSERT_EQ(a.Register(), 200);
  ASSERT_EQ(Do("PUT", "/fleet/v1/units/r.service", R"({"desiredState":"launched"})").status, 204);
  ASSERT_TRUE(WaitFor([&] { return a.Units().count("r.service") == 1; }));
  auto r = Do("GET", "/v1/units/r.service/journal?lines=5&follow=true");
  EXPECT_EQ(r.status, 307);
  EXPECT_EQ(r.Header("Location"),
            "http://127.0.0.1:1/m1/agent/v1/units/r.service/journal?lines=5&follow=true");
  r = Do("GET", "/v1/units/r.service/status");
  EXPECT_EQ(r.status, 307);
  EXPECT_EQ(r.Header("Location"), "http://127.0.0.1:1/m1/agent/v1/units/r.service/status");
}

TEST_F(NativeApiTest, ScaleTemplate) {
  FakeAgent a(server_->url(), "m1");
  ASSERT_EQ(a.Register(), 200);
  Submit("web@.service", "", "launched");
  auto r = Do("PUT", "/v1/units/web@.service/scale", R"({"instances":3})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto reply = api::ScaleReplyFromJson(r.body);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->added,
            (std::vector<std::string>{"web@1.service", "web@2.service", "web@3.service"}));
  EXPECT_TRUE(reply->pending.empty());
  // The template itself is never scheduled.
  ASSERT_TRUE(WaitFor([&] { return a.Units().size() == 3; }));
  EXPECT_EQ(a.Units().count("web@.service"), 0u);
  EXPECT_THAT(GetView("web@.service").reason, HasSubstr("template"));

  r = Do("PUT", "/v1/units/web@.service/scale", R"({"instances":1})");
  reply = api::ScaleReplyFromJson(r.body);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->removed, (std::vector<std::string>{"web@3.service", "web@2.service"}));
  ASSERT_TRUE(WaitFor([&] { return a.Units() == std::set<std::string>{"web@1.service"}; }));
  EXPECT_EQ(Do("PUT", "/v1/units/nope@.service/scale", R"({"instances":1})").status, 404);
  EXPECT_EQ(Do("PUT", "/v1/units/web@1.service/scale", R"({"instances":1})").status, 400);
}

TEST_F(NativeApiTest, EventsLongPoll) {
  auto first = json::parse(Do("GET", "/v1/events?timeoutMs=0").body);
  int64_t rev = first["revision"];
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto c = *http::HttpClient::Create(server_->url());
    (void)c->Put("/fleet/v1/units/ev.service", UnitBody("inactive"));
  });
  auto r = Do("GET", "/v1/events?waitIndex=" + std::to_string(rev) + "&timeoutMs=5000");
  writer.join();
  ASSERT_EQ(r.status, 200);
  auto j = json::parse(r.body);
  // A unit with content of its own is one key, its options inline.
  ASSERT_EQ(j["events"].size(), 1u) << r.body;
  EXPECT_EQ(j["events"][0]["key"], "/units/ev.service");
  EXPECT_EQ(j["events"][0]["type"], "put");
  EXPECT_GT(j["revision"].get<int64_t>(), rev);
  // Nothing after: the poll times out with the same revision.
  int64_t now = j["revision"];
  auto t =
      json::parse(Do("GET", "/v1/events?waitIndex=" + std::to_string(now) + "&timeoutMs=50").body);
  EXPECT_TRUE(t["events"].empty());
  EXPECT_EQ(t["revision"], now);
}

}  // namespace
}  // namespace fjord::server::testing

namespace fjord::server::testing {
namespace {

TEST_F(NativeApiTest, StartErrorsNameTheCause) {
  // The data dir is locked by the running server.
  ServerOptions same_dir;
  same_dir.port = 0;
  same_dir.data_dir = dir_;
  auto s = Server::Start(same_dir);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("state.db"));

  // The port is taken.
  char tmpl[] = "/tmp/fjord-server-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  ServerOptions same_port;
  same_port.port = server_->port();
  same_port.data_dir = tmpl;
  s = Server::Start(same_port);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr(std::to_string(server_->port())));
  std::filesystem::remove_all(tmpl);

  ServerOptions no_dir;
  no_dir.port = 0;
  s = Server::Start(no_dir);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("data directory"));
}

}  // namespace
}  // namespace fjord::server::testing

namespace fjord::server::testing {
namespace {

// Garbage to every endpoint that takes a body or parameters: a 4xx naming the problem, never a
// 5xx, and the server keeps serving.
TEST_F(NativeApiTest, GarbageNeverBreaksTheServer) {
  FakeAgent a(server_->url(), "m1");
  ASSERT_EQ(a.Register(), 200);
  Submit("t@.service");
  const std::vector<std::string> bodies = {
      "",
      "{",
      "null",
      "[]",
      "123",
      "\"x\"",
      R"({"desiredState":5})",
      R"({"options":"x"})",
      R"({"options":[{"section":1}]})",
      R"({"states":[{"name":7}]})",
      R"({"capacity":{"cpuMillis":-5}})",
      R"({"instances":-1})",
      R"({"instances":1e300})",
      std::string("{\"unitFile\":\"\\u0000\"}"),
      std::string(1000, '['),
      R"([{"op":"add","path":"/m1/metadata/k","value":{"x":1}}])",
      R"([{"op":"remove","path":"/m1/metadata/\u0000"}])",
      R"([null,{"op":"add"}])",
  };
  const std::vector<std::pair<std::string, std::string>> targets = {
      {"PUT", "/fleet/v1/units/g.service"},
      {"PUT", "/v1/units/g.service"},
      {"PUT", "/v1/machines/m1"},
      {"PUT", "/v1/machines/m1/states"},
      {"PUT", "/v1/units/t@.service/scale"},
      {"PATCH", "/fleet/v1/machines"},
      {"PUT", "/fleet/v1/units/%2Fetc%2Fpasswd"},
      {"GET", "/v1/machines/m1/schedule?waitIndex=-4"},
      {"GET", "/v1/machines/m1/schedule?waitIndex=1&timeoutMs=x"},
      {"GET", "/v1/events?waitIndex=99999999999&timeoutMs=0"},
  };
  for (const auto& [method, target] : targets) {
    for (const auto& body : bodies) {
      auto r = Do(method, target, body);
      EXPECT_LT(r.status, 500) << method << " " << target << " " << body.substr(0, 40) << ": "
                               << r.body;
      if (r.status >= 400) {
        EXPECT_TRUE(api::ErrorFromJson(r.body).ok()) << r.body;
      }
    }
  }
  EXPECT_EQ(Do("GET", "/fleet/v1/units").status, 200);
  EXPECT_EQ(a.Heartbeat(), 204);
}

}  // namespace
}  // namespace fjord::server::testing
