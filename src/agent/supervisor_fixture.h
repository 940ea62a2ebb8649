// Test fixture shared by the Supervisor's tests against real processes (supervisor_test.cc,
// notify_test.cc): a Supervisor over its own temp state dir and cgroup parent (named after the
// pid and a sequence number, so tests may run in parallel), and a TearDown that stops every unit
// and removes whatever a failed test left (processes, cgroups, files).
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/internal.h"
#include "agent/supervisor.h"
#include "unit/unit.h"

namespace fjord::agent {

using Opts = std::vector<api::UnitOption>;

inline UnitAssignment Assign(std::string name, Opts options,
                             api::UnitStateName desired = api::UnitStateName::kLaunched) {
  std::vector<unit::UnitOption> views;
  for (const auto& o : options) views.push_back({o.section, o.name, o.value});
  return {std::move(name), unit::ContentHash(views), desired, std::move(options)};
}

// Running and not a zombie (an orphan's zombie may wait a while for init to reap it).
inline bool Alive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::string stat = ReadProcFile("/proc/" + std::to_string(pid) + "/stat");
  auto rp = stat.rfind(')');
  return rp != std::string::npos && rp + 2 < stat.size() && stat[rp + 2] != 'Z';
}

class SupervisorFixture : public ::testing::Test {
 protected:
  // `prefix` names the temp dir and the cgroup parent.
  explicit SupervisorFixture(std::string prefix) : prefix_(std::move(prefix)) {}

  void SetUp() override {
    std::string tmpl = "/tmp/" + prefix_ + ".XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    static std::atomic<int> seq{0};
    parent_ = prefix_ + "-" + std::to_string(::getpid()) + "-" + std::to_string(seq++);
    Open();
  }

  void Open(uint64_t journal_max_bytes = 4ull << 20) {
    Supervisor::Options o;
    o.journal_max_bytes = journal_max_bytes;
    o.state_dir = dir_ / "state";
    o.cgroup_parent = parent_;
    o.machine_id = "m1";
    o.hostname = "host1";
    o.image_root = dir_ / "images";
    auto s = Supervisor::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    sup_ = std::move(*s);
  }

  void TearDown() override {
    using namespace std::chrono_literals;
    if (sup_) sup_->StopAll();
    sup_.reset();
    for (const auto& h : std::filesystem::directory_iterator("/sys/fs/cgroup")) {
      std::filesystem::path p = h.path() / parent_;
      if (!std::filesystem::is_directory(p)) continue;
      for (const auto& u : std::filesystem::directory_iterator(p)) {
        for (int i = 0; i < 100; ++i) {
          std::ifstream procs(u.path() / "cgroup.procs");
          bool any = false;
          for (pid_t pid; procs >> pid; any = true) ::kill(pid, SIGKILL);
          if (!any) break;
          std::this_thread::sleep_for(10ms);
        }
        ::rmdir(u.path().c_str());
      }
      ::rmdir(p.c_str());
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Waits until pred(status of name) holds; returns the last status.
  UnitStatus WaitFor(const std::string& name, const std::function<bool(const UnitStatus&)>& pred,
                     std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    UnitStatus last;
    while (std::chrono::steady_clock::now() < deadline) {
      auto st = sup_->Get(name);
      if (st.ok()) {
        last = *st;
        if (pred(last)) return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ADD_FAILURE() << "timed out waiting for " << name << ": " << last.active_state << "/"
                  << last.sub_state << " result=" << last.result << " reason=" << last.reason
                  << " status=" << last.status_text << "\n"
                  << JournalText(name);
    return last;
  }

  // Runs `unit` under a Supervisor in a forked child: another agent process, over the same state
  // dir, that the test can SIGKILL. Returns once `ready` held for one of its status changes, and
  // kills that agent (the unit's processes live on, as they would).
  void RunInAgentThenKillIt(const UnitAssignment& unit,
                            const std::function<bool(const UnitStatus&)>& ready) {
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    pid_t agent = ::fork();
    ASSERT_GE(agent, 0);
    if (agent == 0) {
      Supervisor::Options o;
      o.state_dir = dir_ / "state";
      o.cgroup_parent = parent_;
      o.on_change = [&](const UnitStatus& s) {
        if (ready(s)) (void)!::write(pipe_fds[1], "r", 1);
      };
      auto s = Supervisor::Open(o);
      if (!s.ok()) _exit(1);
      (*s)->Apply({unit});
      for (;;) ::pause();
    }
    ::close(pipe_fds[1]);
    char c;
    EXPECT_EQ(::read(pipe_fds[0], &c, 1), 1);
    ::close(pipe_fds[0]);
    ::kill(agent, SIGKILL);
    ::waitpid(agent, nullptr, 0);
  }

  std::string JournalText(const std::string& name) {
    std::string out;
    if (!sup_) return out;
    EXPECT_TRUE(sup_->Journal(name, 100, false,
                              [&](std::string_view l) {
                                out += std::string(l) + "\n";
                                return true;
                              })
                    .ok());
    return out;
  }

  std::filesystem::path dir_;
  std::string parent_;
  std::unique_ptr<Supervisor> sup_;

 private:
  std::string prefix_;
};

}  // namespace fjord::agent
