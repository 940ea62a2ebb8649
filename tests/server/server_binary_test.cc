// The real `fjord server` binary: serves the APIs, stops cleanly on SIGTERM, and loses no
// acknowledged unit when it is killed with SIGKILL at a random moment under concurrent PUTs.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/client.h"
#include "base/fd.h"
#include "http/client.h"

namespace {

using namespace fjord;

uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

class ServerBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fjord-server-bin-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    pid_.reset();  // SIGKILLs a server still running
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Starts the binary and waits until it prints its URL (it listens by then).
  std::string Start() {
    uint16_t port = FreePort();
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(out[1], 1);
      close(out[0]);
      close(out[1]);
      std::string listen = "127.0.0.1:" + std::to_string(port);
      std::string data = dir_.string();
      execl(FJORD_BINARY, FJORD_BINARY, "server", "--listen", listen.c_str(), "--data-dir",
            data.c_str(), "--log-level", "warn", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    base::UniqueFd read_end(out[0]);
    pid_ = base::UniquePid(pid);
    std::string line;
    char c;
    while (read(read_end.get(), &c, 1) == 1 && c != '\n') line += c;
    return line;
  }

  std::filesystem::path dir_;
  base::UniquePid pid_;
};

std::string UnitBody(int i) {
  return R"({"desiredState":"launched","options":[{"section":"Unit","name":"Description","value":"n)" +
         std::to_string(i) + R"("},{"section":"Service","name":"ExecStart","value":"/bin/true"}]})";
}

TEST_F(ServerBinaryTest, ServesAndStopsOnSigterm) {
  std::string url = Start();
  ASSERT_EQ(url.rfind("http://127.0.0.1:", 0), 0u) << url;
  auto c = *http::HttpClient::Create(url);
  auto r = c->Put("/fleet/v1/units/a.service", UnitBody(1));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(c->Get("/fleet/v1/units/a.service")->status, 200);
  EXPECT_EQ(c->Get("/v1/units/nope.service")->status, 404);
  c.reset();
  ASSERT_EQ(kill(pid_.get(), SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid_.get(), &status, 0), pid_.get());
  pid_.release();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);

  // The unit survived the restart.
  url = Start();
  auto fleet = api::FleetClient::Create(url);
  ASSERT_TRUE(fleet.ok());
  auto units = (*fleet)->ListUnits();
  ASSERT_TRUE(units.ok()) << units.status().ToString();
  ASSERT_EQ(units->size(), 1u);
  EXPECT_EQ((*units)[0].name, "a.service");
}

TEST_F(ServerBinaryTest, KillNineLosesNoAcknowledgedUnit) {
  std::mt19937 rng(static_cast<unsigned>(getpid()));
  std::set<std::string> acked;
  std::mutex mu;
  std::atomic<int> next{0};
  for (int round = 0; round < 3; ++round) {
    std::string url = Start();
    ASSERT_FALSE(url.empty());
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int t = 0; t < 8; ++t) {
      clients.emplace_back([&, url] {
        auto c = http::HttpClient::Create(url);
        if (!c.ok()) return;
        while (!stop) {
          int i = next.fetch_add(1);
          std::string name = "k" + std::to_string(i) + ".service";
          auto r = (*c)->Put("/fleet/v1/units/" + name, UnitBody(i));
          if (!r.ok()) return;  // the server is gone
          if (r->status == 201) {
            std::lock_guard<std::mutex> l(mu);
            acked.insert(name);
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 400));
    ASSERT_EQ(kill(pid_.get(), SIGKILL), 0);
    int status = 0;
    waitpid(pid_.get(), &status, 0);
    pid_.release();
    stop = true;
    for (auto& th : clients) th.join();
  }
  ASSERT_GT(acked.size(), 50u);
  std::string url = Start();
  auto fleet = api::FleetClient::Create(url);
  ASSERT_TRUE(fleet.ok());
  auto units = (*fleet)->ListUnits();
  ASSERT_TRUE(units.ok()) << units.status().ToString();
  std::set<std::string> present;
  for (const auto& u : *units) present.insert(u.name);
  size_t missing = 0;
  for (const auto& name : acked) missing += present.count(name) == 0;
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged units";
}

}  // namespace
