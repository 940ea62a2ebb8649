// Test helpers: an in-process Server on a temp dir and simulated agents speaking HTTP to it.
#pragma once

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "api/protocol.h"
#include "http/client.h"
#include "http/url.h"
#include "server/server.h"

namespace fjord::server::testing {

inline std::string Enc(std::string_view s) { return http::PercentEncode(s); }

// Waits up to 10 s for `cond`, checking every 5 ms.
inline bool WaitFor(const std::function<bool()>& cond,
                    std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

class ServerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::warn);
    char tmpl[] = "/tmp/fjord-server-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    StartServer();
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void StartServer(std::chrono::milliseconds grace = std::chrono::seconds(10),
                   double reschedule_per_second = 1000, double reschedule_burst = 100,
                   double reschedule_per_machine = 0) {
    ServerOptions o;
    o.reschedule_per_second = reschedule_per_second;
    o.reschedule_burst = reschedule_burst;
    o.reschedule_per_machine = reschedule_per_machine;
    o.port = 0;
    o.data_dir = dir_;
    o.heartbeat_grace = grace;
    o.heartbeat_interval = std::chrono::milliseconds(50);
    grace_ = grace;
    auto s = Server::Start(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    auto c = http::HttpClient::Create(server_->url());
    ASSERT_TRUE(c.ok());
    client_ = std::move(*c);
  }
  void RestartServer(std::chrono::milliseconds grace, double per_second = 1000, double burst = 100,
                     double per_machine = 0) {
    client_.reset();
    server_.reset();
    StartServer(grace, per_second, burst, per_machine);
  }

  http::ClientResponse Do(std::string_view method, std::string_view target,
                          std::string_view body = {}) {
    auto r = client_->Do(method, target, body);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : http::ClientResponse{};
  }

  static std::string UnitBody(std::string_view desired, std::string_view extra_options = "") {
    std::string body = std::string("{\"desiredState\":\"") + std::string(desired) +
                       "\",\"options\":[{\"section\":\"Service\",\"name\":\"ExecStart\","
                       "\"value\":\"/bin/sleep 1000\"}";
    if (!extra_options.empty()) body += "," + std::string(extra_options);
    return body + "]}";
  }
  static std::string Opt(std::string_view section, std::string_view name, std::string_view value) {
    return "{\"section\":\"" + std::string(section) + "\",\"name\":\"" + std::string(name) +
           "\",\"value\":\"" + std::string(value) + "\"}";
  }

  // PUT /fleet/v1/units/<name>, expecting 201.
  void Submit(const std::string& name, std::string_view extra_options = "",
              std::string_view desired = "launched") {
    auto r = Do("PUT", "/fleet/v1/units/" + Enc(name), UnitBody(desired, extra_options));
    ASSERT_EQ(r.status, 201) << name << ": " << r.body;
  }

  api::UnitView GetView(const std::string& name) {
    auto r = Do("GET", "/v1/units/" + Enc(name));
    EXPECT_EQ(r.status, 200) << r.body;
    auto v = api::UnitViewFromJson(r.body);
    EXPECT_TRUE(v.ok()) << r.body;
    return v.ok() ? *v : api::UnitView{};
  }

  // Waits until the unit's unscheduled reason mentions `part`.
  bool WaitReason(const std::string& name, const std::string& part) {
    return WaitFor([&] { return GetView(name).reason.find(part) != std::string::npos; });
  }

  std::filesystem::path dir_;
  std::chrono::milliseconds grace_{10000};
  std::unique_ptr<Server> server_;
  std::unique_ptr<http::HttpClient> client_;
};

// A machine's agent, driven by the test over HTTP.
class FakeAgent {
 public:
  FakeAgent(const std::string& url, std::string id,
            std::map<std::string, std::string> metadata = {}, int64_t cpu = 4000,
            int64_t mem = int64_t{8} << 30)
      : id_(std::move(id)) {
    http::HttpClient::Options o;
    o.request_timeout = std::chrono::seconds(70);
    client_ = std::move(*http::HttpClient::Create(url, o));
    reg_.id = id_;
    reg_.primary_ip = "10.0.0.1";
    reg_.metadata = std::move(metadata);
    reg_.capacity = {cpu, mem, int64_t{100} << 30};
    reg_.agent_url = "http://127.0.0.1:1/" + id_;
  }

  int Register() {
    auto r = client_->Put("/v1/machines/" + Enc(id_), api::ToJson(reg_));
    return r.ok() ? r->status : -1;
  }
  int Heartbeat() {
    auto r = client_->Post("/v1/machines/" + Enc(id_) + "/heartbeat", "");
    return r.ok() ? r->status : -1;
  }
  api::Schedule Schedule() {
    auto r = client_->Get("/v1/machines/" + Enc(id_) + "/schedule");
    EXPECT_TRUE(r.ok() && r->status == 200);
    auto s = api::ScheduleFromJson(r.ok() ? r->body : "");
    EXPECT_TRUE(s.ok());
    return s.ok() ? *s : api::Schedule{};
  }
  // Long-poll; returns the schedule and how long the answer took.
  api::Schedule Poll(int64_t wait_index, int64_t timeout_ms, std::chrono::milliseconds* took) {
    auto start = std::chrono::steady_clock::now();
    auto r = client_->Get("/v1/machines/" + Enc(id_) + "/schedule?waitIndex=" +
                          std::to_string(wait_index) + "&timeoutMs=" + std::to_string(timeout_ms));
    *took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start);
    EXPECT_TRUE(r.ok() && r->status == 200);
    auto s = api::ScheduleFromJson(r.ok() ? r->body : "");
    return s.ok() ? *s : api::Schedule{};
  }
  std::set<std::string> Units() {
    std::set<std::string> out;
    for (const auto& u : Schedule().units) out.insert(u.name);
    return out;
  }
  int Report(const api::StateReport& report) {
    auto r = client_->Put("/v1/machines/" + Enc(id_) + "/states", api::ToJson(report));
    return r.ok() ? r->status : -1;
  }
  const std::string& id() const { return id_; }

 private:
  std::string id_;
  api::MachineRegistration reg_;
  std::unique_ptr<http::HttpClient> client_;
};

}  // namespace fjord::server::testing
