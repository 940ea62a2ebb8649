// sd_notify support against real processes: fjord-notify-helper (notify_test_helper.c) is the
// service; it sends READY=1, STATUS= & co. to $NOTIFY_SOCKET when the test lets it (wait=FILE),
// so no assertion depends on a sleep. Each test has its own state dir and cgroup parent.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/internal.h"
#include "agent/supervisor.h"
#include "agent/supervisor_fixture.h"
#include "unit/unit.h"

namespace fjord::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class NotifyTest : public SupervisorFixture {
 protected:
  NotifyTest() : SupervisorFixture("fjord-notify-test") {}

  // A Type=notify unit running the helper with `steps`, plus extra options.
  UnitAssignment Notify(const std::string& name, const std::string& steps, Opts extra = {}) {
    Opts o = {{"Service", "Type", "notify"},
              {"Service", "ExecStart", std::string(FJORD_NOTIFY_HELPER) + " " + steps},
              {"Service", "TimeoutStartSec", "5s"},
              {"Service", "TimeoutStopSec", "2s"}};
    for (auto& e : extra) {
      bool replaced = false;
      for (auto& x : o) {
        if (x.name == e.name) {
          x.value = e.value;
          replaced = true;
        }
      }
      if (!replaced) o.push_back(e);
    }
    return Assign(name, o);
  }

  UnitStatus WaitState(const std::string& name, const std::string& active, const std::string& sub,
                       std::chrono::milliseconds timeout = 5s) {
    return WaitFor(
        name, [&](const UnitStatus& s) { return s.active_state == active && s.sub_state == sub; },
        timeout);
  }
  UnitStatus WaitStatusText(const std::string& name, const std::string& text) {
    return WaitFor(name, [&](const UnitStatus& s) { return s.status_text == text; });
  }
  // A file the helper's wait= step waits for.
  std::string Gate(const std::string& n) { return (dir_ / ("gate-" + n)).string(); }
  void Release(const std::string& gate) { std::ofstream(gate).put('x'); }
};

TEST(ParseNotifyTest, SplitsLinesAndSkipsJunk) {
  struct Case {
    std::string in;
    std::vector<std::pair<std::string, std::string>> want;
  } cases[] = {
      {"READY=1", {{"READY", "1"}}},
      {"READY=1\nSTATUS=up and running\n", {{"READY", "1"}, {"STATUS", "up and running"}}},
      {"STATUS=a=b", {{"STATUS", "a=b"}}},
      {"junk\n=nokey\nMAINPID=42", {{"MAINPID", "42"}}},
      {"", {}},
  };
  for (const auto& c : cases) {
    NotifyMessage m = ParseNotify(c.in, 7);
    EXPECT_EQ(m.pid, 7);
    EXPECT_EQ(m.fields, c.want) << c.in;
  }
}

TEST_F(NotifyTest, ActiveOnlyAfterReady) {
  std::string gate = Gate("ready");
  sup_->Apply({Notify("n.service", "send=STATUS=starting wait=" + gate +
                                       " send=READY=1\\nSTATUS=serving forever")});
  UnitStatus st = WaitStatusText("n.service", "starting");
  // The service is up and has talked, but it has not said READY=1: still activating.
  EXPECT_EQ(st.active_state, "activating");
  EXPECT_EQ(st.sub_state, "start");
  EXPECT_GT(st.main_pid, 0);
  Release(gate);
  st = WaitState("n.service", "active", "running");
  EXPECT_EQ(st.status_text, "serving");
  std::string text = sup_->StatusText("n.service");
  EXPECT_NE(text.find("Status: \"serving\""), std::string::npos) << text;
  // The socket is the unit's, under its directory.
  EXPECT_TRUE(fs::exists(dir_ / "state/units/n.service/notify"));
  sup_->StopAll();
  EXPECT_FALSE(Alive(st.main_pid));
  EXPECT_FALSE(fs::exists(dir_ / "state/units/n.service/notify"));
}

TEST_F(NotifyTest, NeverReadyTimesOut) {
  sup_->Apply({Notify("slow.service", "send=STATUS=thinking forever",
                      {{"Service", "TimeoutStartSec", "400ms"}})});
  pid_t pid = WaitStatusText("slow.service", "thinking").main_pid;
  UnitStatus st = WaitState("slow.service", "failed", "failed");
  EXPECT_EQ(st.result, "timeout");
  EXPECT_NE(st.reason.find("start operation timed out"), std::string::npos) << st.reason;
  EXPECT_FALSE(Alive(pid));
}

TEST_F(NotifyTest, ExitBeforeReadyFails) {
  sup_->Apply({Notify("clean.service", "exit=0"), Notify("dirty.service", "exit=3")});
  UnitStatus clean = WaitState("clean.service", "failed", "failed");
  EXPECT_EQ(clean.result, "protocol");
  EXPECT_NE(clean.reason.find("before sending READY=1"), std::string::npos) << clean.reason;
  UnitStatus dirty = WaitState("dirty.service", "failed", "failed");
  EXPECT_EQ(dirty.result, "exit-code");
  EXPECT_EQ(dirty.exit_status, 3);
}

TEST_F(NotifyTest, ReadyThenExitIsAStartThenAStop) {
  sup_->Apply({Notify("brief.service", "send=READY=1 exit=0")});
  UnitStatus st = WaitState("brief.service", "inactive", "dead");
  EXPECT_EQ(st.result, "success");
}

TEST_F(NotifyTest, NotifyAccessMainIgnoresAChild) {
  std::string gate = Gate("main");
  // The child's READY=1 is queued before the main process's STATUS=, so once the status is
  // seen the child's message was handled (and ignored).
  sup_->Apply({Notify("main.service", "child=READY=1 send=STATUS=after-child wait=" + gate +
                                          " send=READY=1 forever"),
               Notify("all.service", "child=READY=1\\nSTATUS=from-child forever",
                      {{"Service", "NotifyAccess", "all"}})});
  UnitStatus st = WaitStatusText("main.service", "after-child");
  EXPECT_EQ(st.active_state, "activating");
  Release(gate);
  WaitState("main.service", "active", "running");
  // NotifyAccess=all: the child's word counts.
  st = WaitState("all.service", "active", "running");
  EXPECT_EQ(st.status_text, "from-child");
}

TEST_F(NotifyTest, NotifyAccessNoneNeverStarts) {
  // No NOTIFY_SOCKET at all: the helper cannot send and exits 3.
  sup_->Apply(
      {Notify("none.service", "send=READY=1 forever", {{"Service", "NotifyAccess", "none"}})});
  UnitStatus st = WaitState("none.service", "failed", "failed");
  EXPECT_EQ(st.result, "exit-code");
  EXPECT_EQ(st.exit_status, 3);
  EXPECT_NE(JournalText("none.service").find("NOTIFY_SOCKET is not set"), std::string::npos);
}

TEST_F(NotifyTest, ReloadingAndStopping) {
  std::string g1 = Gate("reload"), g2 = Gate("reloaded"), g3 = Gate("stop");
  sup_->Apply(
      {Notify("r.service", "send=READY=1 wait=" + g1 + " send=RELOADING=1 wait=" + g2 +
                               " send=READY=1 wait=" + g3 + " send=STOPPING=1 sleep=500 exit=0")});
  pid_t pid = WaitState("r.service", "active", "running").main_pid;
  Release(g1);
  WaitState("r.service", "reloading", "reload");
  Release(g2);
  EXPECT_EQ(WaitState("r.service", "active", "running").main_pid, pid);
  Release(g3);
  // STOPPING=1: deactivating while the service winds down by itself, no signal sent.
  WaitState("r.service", "deactivating", "stop-sigterm");
  UnitStatus st = WaitState("r.service", "inactive", "dead");
  EXPECT_EQ(st.result, "success");
  EXPECT_EQ(st.exit_status, 0);
}

TEST_F(NotifyTest, WatchdogTimeoutKillsAndFails) {
  auto start = std::chrono::steady_clock::now();
  sup_->Apply({Notify("wd.service",
                      "send=READY=1 sleep=100 send=WATCHDOG=1 sleep=100 send=WATCHDOG=1 forever",
                      {{"Service", "WatchdogSec", "300ms"}})});
  pid_t pid = WaitState("wd.service", "active", "running").main_pid;
  UnitStatus st = WaitState("wd.service", "failed", "failed");
  // Not before the last ping (200 ms after start) plus WatchdogSec=.
  EXPECT_GE(std::chrono::steady_clock::now() - start, 500ms);
  EXPECT_EQ(st.result, "watchdog");
  EXPECT_EQ(st.exit_status, 128 + SIGABRT);  // WatchdogSignal= defaults to SIGABRT
  EXPECT_FALSE(Alive(pid));
}

TEST_F(NotifyTest, WatchdogRestartOnWatchdog) {
  sup_->Apply({Notify("wdr.service", "send=READY=1 send=WATCHDOG=trigger forever",
                      {{"Service", "WatchdogSec", "10s"},
                       {"Service", "Restart", "on-watchdog"},
                       {"Service", "RestartSec", "50ms"},
                       {"Service", "WatchdogSignal", "SIGTERM"}})});
  UnitStatus st = WaitFor(
      "wdr.service", [](const UnitStatus& s) { return s.restarts >= 1 && s.result == "watchdog"; });
  EXPECT_EQ(st.result, "watchdog");
}

TEST_F(NotifyTest, ReadySentWhileTheAgentIsDownIsNotLost) {
  std::string g1 = Gate("ready"), g2 = Gate("after");
  sup_->Apply({Notify("adopt.service", "send=STATUS=waiting wait=" + g1 +
                                           " send=READY=1\\nSTATUS=ready wait=" + g2 +
                                           " send=STATUS=after forever")});
  pid_t pid = WaitStatusText("adopt.service", "waiting").main_pid;
  sup_->Detach();
  sup_.reset();
  // READY=1 goes out while no supervisor listens; the main shim keeps the socket and its queue.
  Release(g1);
  fs::path journal = dir_ / "state/units/adopt.service/journal.log";
  for (int i = 0; i < 1000 && ReadProcFile(journal).find("done send=READY") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_NE(ReadProcFile(journal).find("done send=READY"), std::string::npos);
  Open();
  UnitStatus st = WaitState("adopt.service", "active", "running");
  EXPECT_EQ(st.main_pid, pid);
  EXPECT_EQ(st.status_text, "ready");
  EXPECT_EQ(st.restarts, 0u);
  // And the re-adopted socket keeps working.
  Release(g2);
  WaitStatusText("adopt.service", "after");
}

// The agent process is SIGKILLed while the unit waits for READY=1; READY=1 is sent while no
// agent runs; the next agent (another process) takes the socket from the shim and reads it.
TEST_F(NotifyTest, ReadySurvivesAKilledAgent) {
  sup_.reset();
  std::string gate = Gate("ready");
  UnitAssignment unit = Notify(
      "k.service", "send=STATUS=waiting wait=" + gate + " send=READY=1\\nSTATUS=ready forever");
  RunInAgentThenKillIt(unit, [](const UnitStatus& s) { return s.status_text == "waiting"; });
  Release(gate);
  fs::path journal = dir_ / "state/units/k.service/journal.log";
  for (int i = 0; i < 1000 && ReadProcFile(journal).find("done send=READY") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_NE(ReadProcFile(journal).find("done send=READY"), std::string::npos);
  Open();
  UnitStatus st = WaitState("k.service", "active", "running");
  EXPECT_EQ(st.status_text, "ready");
  EXPECT_EQ(st.restarts, 0u);
  EXPECT_EQ(JournalText("k.service").find("lost"), std::string::npos);
}

TEST_F(NotifyTest, StartTimeoutSurvivesAnAgentRestart) {
  sup_->Apply({Notify("late.service", "send=STATUS=waiting forever",
                      {{"Service", "TimeoutStartSec", "600ms"}})});
  pid_t pid = WaitStatusText("late.service", "waiting").main_pid;
  sup_->Detach();
  sup_.reset();
  Open();
  EXPECT_EQ(sup_->Get("late.service")->active_state, "activating");
  UnitStatus st = WaitState("late.service", "failed", "failed", 3s);
  EXPECT_EQ(st.result, "timeout");
  EXPECT_FALSE(Alive(pid));
}

TEST_F(NotifyTest, MainPidMovesTheMainProcess) {
  sup_->Apply({Notify("mp.service", "mainchild send=READY=1\\nSTATUS=moved forever")});
  UnitStatus st = WaitStatusText("mp.service", "moved");
  EXPECT_EQ(st.active_state, "active");
  // The main PID is now the helper's child, a process of the unit.
  std::string procs =
      ReadProcFile(fs::path("/sys/fs/cgroup/pids") / parent_ / "mp.service" / "cgroup.procs");
  EXPECT_NE(procs.find(std::to_string(st.main_pid)), std::string::npos) << procs;
  std::string stat = ReadProcFile("/proc/" + std::to_string(st.main_pid) + "/stat");
  pid_t parent = 0;
  std::sscanf(stat.c_str() + stat.rfind(')') + 2, "%*c %d", &parent);
  EXPECT_NE(parent, 0);
  // Its parent is the helper that sent MAINPID= (not the shim, the parent of the first one).
  EXPECT_EQ(ReadProcFile("/proc/" + std::to_string(parent) + "/cmdline")
                .rfind(std::string(FJORD_NOTIFY_HELPER) + '\0', 0),
            0u);
  // MAINPID= naming a process outside the unit is ignored.
  sup_->Apply({Notify("mp.service", "mainchild send=READY=1\\nSTATUS=moved forever"),
               Notify("bad.service", "send=MAINPID=1\\nREADY=1\\nSTATUS=tried forever")});
  st = WaitStatusText("bad.service", "tried");
  EXPECT_NE(st.main_pid, 1);
  EXPECT_GT(st.main_pid, 0);
}

TEST_F(NotifyTest, IdleAndDbusRunAsSimple) {
  std::string exe = std::string(FJORD_NOTIFY_HELPER) + " forever";
  sup_->Apply({Assign("idle.service", {{"Service", "Type", "idle"}, {"Service", "ExecStart", exe}}),
               Assign("bus.service", {{"Service", "Type", "dbus"},
                                      {"Service", "BusName", "org.example.Bus"},
                                      {"Service", "ExecStart", exe}})});
  WaitState("idle.service", "active", "running");
  WaitState("bus.service", "active", "running");
  EXPECT_NE(JournalText("bus.service").find("Type=dbus runs as Type=simple"), std::string::npos);
  EXPECT_EQ(JournalText("idle.service").find("fjord:"), std::string::npos);
}

}  // namespace
}  // namespace fjord::agent
