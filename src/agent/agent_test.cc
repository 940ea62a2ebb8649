// The agent against a small in-process control plane speaking the agent protocol of
// docs/PROTOCOL.md over the real HttpServer, with a fake unit host; plus identity, resource
// and flag parsing rules.
#include "agent/agent.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "api/native_client.h"
#include "base/fd.h"
#include "http/client.h"
#include "http/server.h"
#include "server/server.h"

namespace fjord::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "fjord-agent-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s;
}

// ---------------------------------------------------------------------------------------------
// Identity and resources

TEST(MachineId, FlagWinsAndIsKept) {
  TempDir dir;
  auto id = ResolveMachineId("node-1", dir.path(), false);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(*id, "node-1");
  EXPECT_EQ(ReadAll(dir.path() / "machine-id"), "node-1\n");
  auto again = ResolveMachineId("", dir.path(), false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, "node-1");
}

TEST(MachineId, RandomIdIsGeneratedOnceAndKept) {
  TempDir a, b;
  auto first = ResolveMachineId("", a.path(), false);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->size(), 32u);
  EXPECT_EQ(first->find_first_not_of("0123456789abcdef"), std::string::npos);
  auto second = ResolveMachineId("", a.path(), false);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);
  // Two agents on one host with their own state dirs get different ids.
  auto other = ResolveMachineId("", b.path(), false);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*first, *other);
}

TEST(MachineId, EtcMachineIdOnlyForTheDefaultStateDir) {
  TempDir dir;
  fs::path etc = dir.path() / "etc-machine-id";
  std::ofstream(etc) << "0123456789abcdef0123456789abcdef\n";
  auto custom = ResolveMachineId("", dir.path() / "custom", false, etc);
  ASSERT_TRUE(custom.ok());
  EXPECT_NE(*custom, "0123456789abcdef0123456789abcdef");
  auto dflt = ResolveMachineId("", dir.path() / "default", true, etc);
  ASSERT_TRUE(dflt.ok());
  EXPECT_EQ(*dflt, "0123456789abcdef0123456789abcdef");
}

TEST(MachineId, BadInputIsAnErrorNamingIt) {
  TempDir dir;
  auto bad = ResolveMachineId("has space", dir.path(), false);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--machine-id"), std::string_view::npos);
  std::ofstream(dir.path() / "machine-id") << "bad/id\n";
  auto file = ResolveMachineId("", dir.path(), false);
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find("machine-id"), std::string_view::npos);
}

TEST(Resources, MemTotalParsing) {
  auto v = ParseMemTotal("MemFree: 1 kB\nMemTotal:       16318412 kB\nBuffers: 3 kB\n");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, int64_t{16318412} * 1024);
  EXPECT_FALSE(ParseMemTotal("MemFree: 1 kB\n").ok());
  EXPECT_FALSE(ParseMemTotal("MemTotal: 12x kB\n").ok());
  EXPECT_FALSE(ParseMemTotal("MemTotal: 99999999999999999999999 kB\n").ok());
}

TEST(Resources, DetectsThisMachine) {
  auto r = DetectResources();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GE(r->cpu_millis, 1000);
  EXPECT_EQ(r->cpu_millis % 1000, 0);
  EXPECT_LE(r->cpu_millis, int64_t{1000} * static_cast<int64_t>(::sysconf(_SC_NPROCESSORS_CONF)));
  EXPECT_GT(r->memory_bytes, int64_t{1} << 20);
}

TEST(Flags, Metadata) {
  auto m = ParseMetadata("region=no-oslo, disk=nvme,empty=");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(*m, (std::map<std::string, std::string>{
                    {"region", "no-oslo"}, {"disk", "nvme"}, {"empty", ""}}));
  EXPECT_TRUE(ParseMetadata("")->empty());
  auto bad = ParseMetadata("region");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("\"region\""), std::string_view::npos)
      << bad.status().message();
  EXPECT_FALSE(ParseMetadata("=x").ok());
  EXPECT_FALSE(ParseMetadata("a b=x").ok());
}

TEST(Address, RouteToLoopbackIsLoopback) {
  auto ip = SourceAddressFor("http://127.0.0.1:7777");
  ASSERT_TRUE(ip.ok()) << ip.status().ToString();
  EXPECT_EQ(*ip, "127.0.0.1");
  EXPECT_FALSE(SourceAddressFor("ftp://x").ok());
}

// ---------------------------------------------------------------------------------------------
// A control plane and a unit host, both fakes that record what the agent does

class FakeControlPlane {
 public:
  FakeControlPlane() {
    http::Router router;
    Add(router, "PUT", "/v1/machines/{id}", [this](const http::Request& r, http::Responder out) {
      auto reg = api::MachineRegistrationFromJson(r.body);
      if (!reg.ok()) {
        out.Respond(http::JsonError(400, reg.status().message()));
        return;
      }
      std::lock_guard lock(mu_);
      machines_[std::string(r.Param("id"))] = *reg;
      registrations_++;
      out.Respond(http::Response::Json(200, api::ToJson(api::RegistrationReply{30, 500})));
    });
    Add(router, "POST", "/v1/machines/{id}/heartbeat",
        [this](const http::Request& r, http::Responder out) {
          std::lock_guard lock(mu_);
          if (!machines_.count(std::string(r.Param("id")))) {
            out.Respond(http::JsonError(404, "unknown machine"));
            return;
          }
          heartbeats_++;
          out.Respond(http::Response::Empty(204));
        });
    Add(router, "GET", "/v1/machines/{id}/schedule",
        [this](const http::Request& r, http::Responder out) {
          std::lock_guard lock(mu_);
          if (!machines_.count(std::string(r.Param("id")))) {
            out.Respond(http::JsonError(404, "unknown machine"));
            return;
          }
          polls_++;
          auto wait = r.query.Get("waitIndex");
          if (wait && std::stoll(*wait) >= schedule_.revision) {
            out.SetTimeout(
                std::chrono::milliseconds(std::stoll(r.query.Get("timeoutMs").value_or("1000"))),
                http::Response::Json(200, api::ToJson(schedule_)));
            waiting_.push_back(out);
            return;
          }
          out.Respond(http::Response::Json(200, api::ToJson(schedule_)));
        });
    Add(router, "PUT", "/v1/machines/{id}/states",
        [this](const http::Request& r, http::Responder out) {
          auto report = api::StateReportFromJson(r.body);
          std::lock_guard lock(mu_);
          if (!machines_.count(std::string(r.Param("id")))) {
            out.Respond(http::JsonError(404, "unknown machine"));
            return;
          }
          if (!report.ok()) {
            out.Respond(http::JsonError(400, report.status().message()));
            return;
          }
          last_report_ = *report;
          reports_++;
          out.Respond(http::Response::Empty(204));
        });
    server_ = std::make_unique<http::HttpServer>(http::HttpServer::Options(), std::move(router));
    EXPECT_TRUE(server_->Start().ok());
  }

  std::string url() const { return server_->url(); }
  void Stop() { server_->Stop(); }

  void SetSchedule(std::vector<api::ScheduledUnit> units) {
    std::lock_guard lock(mu_);
    schedule_.revision++;
    schedule_.units = std::move(units);
    for (auto& w : waiting_) w.Respond(http::Response::Json(200, api::ToJson(schedule_)));
    waiting_.clear();
  }
  // Like a server that lost its registrations.
  void Forget() {
    std::lock_guard lock(mu_);
    machines_.clear();
  }

  int registrations() { return Locked(registrations_); }
  int heartbeats() { return Locked(heartbeats_); }
  int reports() { return Locked(reports_); }
  api::StateReport last_report() {
    std::lock_guard lock(mu_);
    return last_report_;
  }
  std::optional<api::MachineRegistration> machine(const std::string& id) {
    std::lock_guard lock(mu_);
    auto it = machines_.find(id);
    if (it == machines_.end()) return std::nullopt;
    return it->second;
  }

 private:
  static void Add(http::Router& router, const char* method, const char* path, http::Handler h) {
    ASSERT_TRUE(router.Add(method, path, std::move(h)).ok());
  }
  int Locked(const int& v) {
    std::lock_guard lock(mu_);
    return v;
  }

  std::mutex mu_;
  std::map<std::string, api::MachineRegistration> machines_;
  api::Schedule schedule_;
  std::vector<http::Responder> waiting_;
  api::StateReport last_report_;
  int registrations_ = 0, heartbeats_ = 0, polls_ = 0, reports_ = 0;
  std::unique_ptr<http::HttpServer> server_;
};

struct HostRecord {
  std::mutex mu;
  std::vector<std::vector<api::ScheduledUnit>> applies;
  std::map<std::string, api::UnitStatusReport> units;
  std::function<void()> on_change;
  bool detached = false, stopped_all = false;
  size_t apply_count() {
    std::lock_guard lock(mu);
    return applies.size();
  }
};

class FakeHost final : public UnitHost {
 public:
  explicit FakeHost(std::shared_ptr<HostRecord> rec) : rec_(std::move(rec)) {}
  void Apply(const std::vector<api::ScheduledUnit>& units) override {
    {
      std::lock_guard lock(rec_->mu);
      rec_->applies.push_back(units);
      rec_->units.clear();
      for (const auto& u : units) {
        api::UnitStatusReport r;
        r.state.name = u.name;
        r.state.hash = u.hash;
        r.state.systemd_load_state = "loaded";
        bool run = u.desired_state == api::UnitStateName::kLaunched;
        r.state.systemd_active_state = run ? "active" : "inactive";
        r.state.systemd_sub_state = run ? "running" : "dead";
        rec_->units[u.name] = r;
      }
    }
    rec_->on_change();
  }
  std::vector<api::UnitStatusReport> List() const override {
    std::lock_guard lock(rec_->mu);
    std::vector<api::UnitStatusReport> out;
    for (const auto& [name, r] : rec_->units) out.push_back(r);
    return out;
  }
  base::Result<api::UnitStatusReport> Get(std::string_view name) const override {
    std::lock_guard lock(rec_->mu);
    auto it = rec_->units.find(std::string(name));
    if (it == rec_->units.end()) return base::NotFound("no unit");
    return it->second;
  }
  std::string StatusText(std::string_view name) const override {
    return "● " + std::string(name) + "\n   Active: active (running)\n";
  }
  base::Status Journal(std::string_view name, size_t lines, bool follow,
                       const std::function<bool(std::string_view)>& sink) const override {
    for (size_t i = 0; i < lines; i++) {
      if (!sink(std::string(name) + " line " + std::to_string(i))) return base::Status::Ok();
    }
    // Following: keep-alives until the reader leaves.
    while (follow && sink("")) std::this_thread::sleep_for(5ms);
    return base::Status::Ok();
  }
  void Detach() override {
    std::lock_guard lock(rec_->mu);
    rec_->detached = true;
  }
  void StopAll() override {
    std::lock_guard lock(rec_->mu);
    rec_->stopped_all = true;
  }

 private:
  std::shared_ptr<HostRecord> rec_;
};

struct AgentFixture : ::testing::Test {
  AgentOptions Options(std::vector<std::string> servers) {
    AgentOptions o;
    o.servers = std::move(servers);
    o.state_dir = dir.path();
    o.machine_id = "m-" + std::to_string(::getpid());
    o.public_ip = "127.0.0.1";
    o.metadata = {{"region", "test"}};
    o.poll_timeout = 2s;
    o.max_backoff = 100ms;
    o.host_factory =
        [rec = host](const UnitHostContext& ctx) -> base::Result<std::unique_ptr<UnitHost>> {
      rec->on_change = ctx.on_change;
      return std::unique_ptr<UnitHost>(new FakeHost(rec));
    };
    return o;
  }
  static api::ScheduledUnit Unit(const std::string& name, api::UnitStateName desired) {
    return {name, "hash-" + name, desired, {{"Service", "ExecStart", "/bin/sleep 100"}}};
  }
  bool Reported(FakeControlPlane& cp, const std::string& name, const std::string& active) {
    for (const auto& s : cp.last_report().states) {
      if (s.state.name == name && s.state.systemd_active_state == active) return true;
    }
    return false;
  }

  TempDir dir;
  std::shared_ptr<HostRecord> host = std::make_shared<HostRecord>();
};

TEST_F(AgentFixture, RegistersHeartbeatsAppliesAndReports) {
  FakeControlPlane cp;
  auto agent = Agent::Start(Options({cp.url()}));
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  std::string id = (*agent)->machine_id();
  ASSERT_TRUE(WaitFor([&] { return cp.machine(id).has_value(); }));
  api::MachineRegistration reg = *cp.machine(id);
  EXPECT_EQ(reg.primary_ip, "127.0.0.1");
  EXPECT_EQ(reg.metadata.at("region"), "test");
  EXPECT_GE(reg.capacity.cpu_millis, 1000);
  EXPECT_GT(reg.capacity.memory_bytes, 0);
  EXPECT_EQ(reg.agent_url, (*agent)->url());
  EXPECT_TRUE(reg.agent_url.rfind("http://127.0.0.1:", 0) == 0) << reg.agent_url;
  ASSERT_TRUE(WaitFor([&] { return cp.heartbeats() >= 2; }));

  cp.SetSchedule({Unit("a.service", api::UnitStateName::kLaunched),
                  Unit("b.service", api::UnitStateName::kLoaded)});
  ASSERT_TRUE(WaitFor([&] { return Reported(cp, "a.service", "active"); }));
  EXPECT_TRUE(Reported(cp, "b.service", "inactive"));
  for (const auto& s : cp.last_report().states) EXPECT_EQ(s.state.machine_id, id);

  // The whole list each time, level-triggered: b leaves the schedule, so it leaves the host.
  cp.SetSchedule({Unit("a.service", api::UnitStateName::kLaunched)});
  ASSERT_TRUE(WaitFor([&] { return cp.last_report().states.size() == 1; }));
  {
    std::lock_guard lock(host->mu);
    ASSERT_FALSE(host->applies.empty());
    EXPECT_EQ(host->applies.back().size(), 1u);
  }
  (*agent)->Stop();
  std::lock_guard lock(host->mu);
  EXPECT_TRUE(host->detached);
  EXPECT_FALSE(host->stopped_all);
}

TEST_F(AgentFixture, AgentApiServesUnitsStatusAndJournal) {
  FakeControlPlane cp;
  auto agent = Agent::Start(Options({cp.url()}));
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  cp.SetSchedule({Unit("web@1.service", api::UnitStateName::kLaunched)});
  ASSERT_TRUE(WaitFor([&] { return host->apply_count() >= 1; }));
  auto client = http::HttpClient::Create((*agent)->url());
  ASSERT_TRUE(client.ok());
  auto units = (*client)->Get("/agent/v1/units");
  ASSERT_TRUE(units.ok());
  ASSERT_EQ(units->status, 200);
  auto report = api::StateReportFromJson(units->body);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->states.size(), 1u);
  EXPECT_EQ(report->states[0].state.machine_id, (*agent)->machine_id());

  auto text = (*client)->Get("/agent/v1/units/web%401.service/status");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->status, 200);
  EXPECT_NE(text->body.find("web@1.service"), std::string::npos);
  auto json = (*client)->Get("/agent/v1/units/web%401.service/status?format=json");
  ASSERT_TRUE(json.ok());
  auto status = api::UnitStatusReportFromJson(json->body);
  ASSERT_TRUE(status.ok()) << json->body;
  EXPECT_EQ(status->state.systemd_sub_state, "running");
  auto missing = (*client)->Get("/agent/v1/units/nope.service/status");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);

  auto journal = (*client)->Get("/agent/v1/units/web%401.service/journal?lines=3");
  ASSERT_TRUE(journal.ok());
  EXPECT_EQ(journal->status, 200);
  EXPECT_EQ(journal->body, "web@1.service line 0\nweb@1.service line 1\nweb@1.service line 2\n");
  auto bad = (*client)->Get("/agent/v1/units/web%401.service/journal?lines=x");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400);

  // A follow stream delivers lines as they come and ends when the reader leaves.
  std::string got;
  auto follow = (*client)->GetStream("/agent/v1/units/web%401.service/journal?lines=2&follow=true",
                                     [&](std::string_view data) {
                                       got += data;
                                       return got.size() < 40;
                                     });
  ASSERT_TRUE(follow.ok()) << follow.status().ToString();
  EXPECT_EQ(got, "web@1.service line 0\nweb@1.service line 1\n");
}

TEST_F(AgentFixture, RegistersAgainWhenTheServerForgetsAndResendsStates) {
  FakeControlPlane cp;
  auto agent = Agent::Start(Options({cp.url()}));
  ASSERT_TRUE(agent.ok());
  cp.SetSchedule({Unit("a.service", api::UnitStateName::kLaunched)});
  ASSERT_TRUE(WaitFor([&] { return Reported(cp, "a.service", "active"); }));
  int reports = cp.reports();
  ASSERT_EQ(cp.registrations(), 1);
  cp.Forget();
  ASSERT_TRUE(WaitFor([&] { return cp.registrations() >= 2; }));
  ASSERT_TRUE(WaitFor([&] { return cp.reports() > reports; }));
  EXPECT_TRUE(Reported(cp, "a.service", "active"));
}

TEST_F(AgentFixture, FailsOverToTheNextServer) {
  // A port nobody listens on: bind, read it back, close.
  uint16_t dead_port;
  {
    base::UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    dead_port = ntohs(a.sin_port);
  }
  FakeControlPlane cp;
  auto agent = Agent::Start(Options({"http://127.0.0.1:" + std::to_string(dead_port), cp.url()}));
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  EXPECT_TRUE(WaitFor([&] { return cp.registrations() >= 1 && cp.heartbeats() >= 1; }));
  cp.SetSchedule({Unit("a.service", api::UnitStateName::kLaunched)});
  EXPECT_TRUE(WaitFor([&] { return Reported(cp, "a.service", "active"); }));
}

TEST_F(AgentFixture, KeepsUnitsWhenTheServerGoesAway) {
  auto cp = std::make_unique<FakeControlPlane>();
  auto agent = Agent::Start(Options({cp->url()}));
  ASSERT_TRUE(agent.ok());
  cp->SetSchedule({Unit("a.service", api::UnitStateName::kLaunched)});
  ASSERT_TRUE(WaitFor([&] { return Reported(*cp, "a.service", "active"); }));
  size_t applies = host->apply_count();
  cp->Stop();
  cp.reset();
  // Several failed heartbeats and polls later, the host still has the last schedule.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(host->apply_count(), applies);
  {
    std::lock_guard lock(host->mu);
    EXPECT_EQ(host->units.size(), 1u);
  }
  (*agent)->Stop(/*leave_units_running=*/false);
  std::lock_guard lock(host->mu);
  EXPECT_TRUE(host->stopped_all);
}

TEST_F(AgentFixture, StartsWhileNoServerAnswers) {
  auto agent = Agent::Start(Options({"http://127.0.0.1:1"}));
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE((*agent)->registered());
  EXPECT_EQ(host->apply_count(), 0u);
}

TEST_F(AgentFixture, ChangesCloseTogetherGoOutAsOneReport) {
  FakeControlPlane cp;
  AgentOptions o = Options({cp.url()});
  o.report_debounce = 200ms;
  auto agent = Agent::Start(std::move(o));
  ASSERT_TRUE(agent.ok());
  // Let the reports of registering and of the first (empty) schedule go out.
  ASSERT_TRUE(WaitFor([&] { return cp.reports() >= 1 && host->apply_count() >= 1; }));
  std::this_thread::sleep_for(400ms);
  int before = cp.reports();
  for (int i = 0; i < 20; i++) host->on_change();
  ASSERT_TRUE(WaitFor([&] { return cp.reports() > before; }));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(cp.reports(), before + 1);
}

// The same agent against the real control plane (src/server): registration, placement,
// state reports, status and journal through the server's 307, destroy.
TEST_F(AgentFixture, WorksWithTheRealServer) {
  TempDir data;
  server::ServerOptions so;
  so.port = 0;
  so.data_dir = data.path();
  so.heartbeat_interval = 50ms;
  auto srv = server::Server::Start(so);
  ASSERT_TRUE(srv.ok()) << srv.status().ToString();
  auto agent = Agent::Start(Options({(*srv)->url()}));
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  auto client = api::NativeClient::Create((*srv)->url());
  ASSERT_TRUE(client.ok());
  api::NativeClient& c = **client;
  ASSERT_TRUE(WaitFor([&] {
    auto m = c.ListMachines();
    return m.ok() && m->size() == 1 && (*m)[0].alive;
  }));
  auto machines = c.ListMachines();
  EXPECT_EQ((*machines)[0].machine.id, (*agent)->machine_id());
  EXPECT_EQ((*machines)[0].machine.agent_url, (*agent)->url());

  api::PutUnitRequest put;
  put.desired_state = api::UnitStateName::kLaunched;
  put.options = {{"Service", "ExecStart", "/bin/sleep 1000"}};
  auto created = c.PutUnit("hello.service", put);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  ASSERT_TRUE(WaitFor([&] {
    auto u = c.GetUnit("hello.service");
    return u.ok() && !u->states.empty() && u->states[0].state.systemd_active_state == "active";
  })) << c.GetUnit("hello.service").ok();
  auto view = c.GetUnit("hello.service");
  EXPECT_EQ(view->machine_id, (*agent)->machine_id());
  EXPECT_EQ(view->states[0].state.hash, view->hash);

  auto text = c.UnitStatus("hello.service");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_NE(text->find("hello.service"), std::string::npos);
  std::string journal;
  ASSERT_TRUE(c.Journal("hello.service", 2, false, [&](std::string_view d) {
                 journal += d;
                 return true;
               }).ok());
  EXPECT_EQ(journal, "hello.service line 0\nhello.service line 1\n");

  ASSERT_TRUE(c.DestroyUnit("hello.service").ok());
  EXPECT_TRUE(WaitFor([&] {
    std::lock_guard lock(host->mu);
    return host->units.empty();
  }));
  (*agent)->Stop();
  (*srv)->Stop();
}

TEST(AgentOptionsCheck, BadOptionsAreErrors) {
  TempDir dir;
  AgentOptions o;
  o.state_dir = dir.path();
  o.host_factory = [](const UnitHostContext&) -> base::Result<std::unique_ptr<UnitHost>> {
    return base::Internal("unused");
  };
  auto none = Agent::Start(o);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("--server"), std::string_view::npos);
  o.servers = {"http://127.0.0.1:7777"};
  o.public_ip = "not-an-ip";
  auto bad_ip = Agent::Start(o);
  ASSERT_FALSE(bad_ip.ok());
  EXPECT_NE(bad_ip.status().message().find("--public-ip"), std::string_view::npos);
  o.public_ip = "127.0.0.1";
  o.listen = "127.0.0.1:99999";
  auto host_error = Agent::Start(o);
  ASSERT_FALSE(host_error.ok());  // the host factory fails first
  EXPECT_NE(host_error.status().message().find("unused"), std::string_view::npos);
}

}  // namespace
}  // namespace fjord::agent
