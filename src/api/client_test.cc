// FleetClient against a small in-memory fleet API served by the real HttpServer.
#include "api/client.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "http/client.h"
#include "http/server.h"

namespace fjord::api {
namespace {

// fleet's unit semantics, just enough to exercise the client; two items per page.
class FakeFleet {
 public:
  FakeFleet() {
    auto add = [&](const char* method, const char* path, http::SyncHandler h) {
      ASSERT_TRUE(router_.AddSync(method, path, std::move(h)).ok());
    };
    add("GET", "/fleet/v1/units", [this](const http::Request& r) { return List(r); });
    add("GET", "/fleet/v1/units/{name}", [this](const http::Request& r) {
      std::lock_guard lock(mu_);
      auto it = units_.find(std::string(r.Param("name")));
      if (it == units_.end()) return http::JsonError(404, "unit does not exist");
      return http::Response::Json(200, ToJson(it->second));
    });
    add("PUT", "/fleet/v1/units/{name}", [this](const http::Request& r) { return Put(r); });
    add("DELETE", "/fleet/v1/units/{name}", [this](const http::Request& r) {
      std::lock_guard lock(mu_);
      if (units_.erase(std::string(r.Param("name"))) == 0) {
        return http::JsonError(404, "unit does not exist");
      }
      return http::Response::Empty(204);
    });
    add("GET", "/fleet/v1/state", [this](const http::Request& r) {
      std::lock_guard lock(mu_);
      UnitStatePage page;
      for (const auto& [name, u] : units_) {
        if (auto want = r.query.Get("unitName"); want && *want != name) continue;
        page.states.push_back(
            {name, "h", r.query.Get("machineID").value_or("m1"), "loaded", "active", "running"});
      }
      return http::Response::Json(200, ToJson(page));
    });
    add("GET", "/fleet/v1/machines", [](const http::Request&) {
      return http::Response::Json(200, ToJson(MachinePage{{{"m1", "10.0.0.1", {{"a", "b"}}}}, ""}));
    });
  }

  http::Router TakeRouter() { return std::move(router_); }

 private:
  http::Response List(const http::Request& r) {
    std::lock_guard lock(mu_);
    auto it = units_.begin();
    if (auto token = r.query.Get("nextPageToken")) it = units_.upper_bound(*token);
    UnitPage page;
    for (; it != units_.end() && page.units.size() < 2; ++it) page.units.push_back(it->second);
    if (it != units_.end()) page.next_page_token = page.units.back().name;
    return http::Response::Json(200, ToJson(page));
  }

  http::Response Put(const http::Request& r) {
    auto u = UnitFromJson(r.body);
    if (!u.ok()) return http::JsonError(400, u.status().message(), FieldOfDecodeError(u.status()));
    std::string name(r.Param("name"));
    if (!u->name.empty() && u->name != name) return http::JsonError(400, "name mismatch");
    u->name = name;
    std::lock_guard lock(mu_);
    auto it = units_.find(name);
    if (it == units_.end()) {
      if (u->options.empty())
        return http::JsonError(409, "unit does not exist and options field empty");
      units_[name] = *u;
      return http::Response::Empty(201);
    }
    if (!u->options.empty() && u->options != it->second.options) {
      return http::JsonError(409, "unit exists with different options");
    }
    it->second.desired_state = u->desired_state;
    return http::Response::Empty(204);
  }

  http::Router router_;
  std::mutex mu_;
  std::map<std::string, Unit> units_;
};

class FleetClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<http::HttpServer>(http::HttpServer::Options{}, fake_.TakeRouter());
    ASSERT_TRUE(server_->Start().ok());
    auto c = FleetClient::Create(server_->url());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
  }
  FakeFleet fake_;  // outlives the server, whose handlers point into it
  std::unique_ptr<http::HttpServer> server_;
  std::unique_ptr<FleetClient> client_;
};

Unit MakeUnit(std::string name) {
  return Unit{
      std::move(name), {{"Service", "ExecStart", "/bin/true"}}, UnitStateName::kLaunched, {}, ""};
}

TEST_F(FleetClientTest, CreateGetListDestroy) {
  for (const char* n : {"a.service", "b.service", "c.service", "hello@1.service", "z.service"}) {
    ASSERT_TRUE(client_->PutUnit(MakeUnit(n)).ok()) << n;
  }
  auto u = client_->GetUnit("hello@1.service");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(*u, MakeUnit("hello@1.service"));

  auto all = client_->ListUnits();  // 5 units in pages of 2: three requests
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ((*all)[3].name, "hello@1.service");

  ASSERT_TRUE(client_->SetDesiredState("a.service", UnitStateName::kInactive).ok());
  EXPECT_EQ(client_->GetUnit("a.service")->desired_state, UnitStateName::kInactive);

  ASSERT_TRUE(client_->DestroyUnit("a.service").ok());
  auto gone = client_->GetUnit("a.service");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), base::Code::kNotFound);
  EXPECT_EQ(gone.status().message(), "get unit `a.service`: unit does not exist");

  auto states = client_->ListUnitStates("m7", "b.service");
  ASSERT_TRUE(states.ok()) << states.status().ToString();
  ASSERT_EQ(states->size(), 1u);
  EXPECT_EQ((*states)[0].machine_id, "m7");
  auto machines = client_->ListMachines();
  ASSERT_TRUE(machines.ok());
  EXPECT_EQ(machines->at(0).metadata.at("a"), "b");
}

TEST_F(FleetClientTest, ServerErrorsBecomeStatuses) {
  auto st = client_->SetDesiredState("nope.service", UnitStateName::kLaunched);
  EXPECT_EQ(st.code(), base::Code::kAlreadyExists);  // fleet answers 409 here
  EXPECT_EQ(st.message(), "put unit `nope.service`: unit does not exist and options field empty");

  ASSERT_TRUE(client_->PutUnit(MakeUnit("a.service")).ok());
  Unit changed = MakeUnit("a.service");
  changed.options[0].value = "/bin/false";
  EXPECT_EQ(client_->PutUnit(changed).code(), base::Code::kAlreadyExists);
  EXPECT_EQ(client_->DestroyUnit("x.service").code(), base::Code::kNotFound);

  EXPECT_EQ(StatusFromHttp("get x", 502, "<html>bad gateway</html>").message(),
            "get x: HTTP 502: <html>bad gateway</html>");
}

TEST(FleetClientNoServerTest, UnreachableServerNamesTheFix) {
  http::HttpServer s(http::HttpServer::Options{}, http::Router{});
  ASSERT_TRUE(s.Start().ok());
  std::string url = s.url();
  s.Stop();
  auto c = FleetClient::Create(url);
  ASSERT_TRUE(c.ok());
  auto units = (*c)->ListUnits();
  ASSERT_FALSE(units.ok());
  EXPECT_EQ(units.status().message(),
            "list units: GET " + url +
                "/fleet/v1/units: connection refused — is `fjord server` running? set "
                "--endpoint or FJORD_ENDPOINT");
  EXPECT_FALSE(FleetClient::Create("localhost:7777").ok());
}

}  // namespace
}  // namespace fjord::api
