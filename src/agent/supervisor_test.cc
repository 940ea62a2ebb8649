// Supervisor against real processes: /bin/sh, sleep, real cgroups. Each test has its own state
// dir and cgroup parent (with the pid) and stops and removes everything in TearDown.
#include "agent/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "agent/internal.h"
#include "agent/supervisor_fixture.h"
#include "image/image_store.h"
#include "unit/unit.h"

namespace fjord::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string ReadFile(const fs::path& p) { return ReadProcFile(p); }

class SupervisorTest : public SupervisorFixture {
 protected:
  SupervisorTest() : SupervisorFixture("fjord-sup-test") {}

  UnitStatus WaitState(const std::string& name, std::string active, std::string sub,
                       std::chrono::milliseconds timeout = 5s) {
    return WaitFor(
        name,
        [&](const UnitStatus& s) {
          return s.active_state == active && s.sub_state == sub &&
                 (sub != "running" || s.main_pid > 0);
        },
        timeout);
  }
  fs::path CgroupFile(const std::string& controller, const std::string& unit,
                      const std::string& file) {
    return fs::path("/sys/fs/cgroup") / controller / parent_ / unit / file;
  }
};

TEST_F(SupervisorTest, SimpleServiceRuns) {
  sup_->Apply({Assign("web@1.service", {{"Service", "ExecStart", "/bin/sleep 1000"}})});
  UnitStatus st = WaitState("web@1.service", "active", "running");
  EXPECT_EQ(st.load_state, "loaded");
  EXPECT_NE(ReadFile("/proc/" + std::to_string(st.main_pid) + "/cmdline").find("sleep"),
            std::string::npos);
  EXPECT_NE(ReadFile(CgroupFile("pids", "web@1.service", "cgroup.procs"))
                .find(std::to_string(st.main_pid)),
            std::string::npos);
  EXPECT_EQ(sup_->StatusText("nope.service"), "Unit nope.service could not be found.\n");
  std::string text = sup_->StatusText("web@1.service");
  EXPECT_NE(text.find("Active: active (running)"), std::string::npos) << text;
  EXPECT_NE(text.find("Main PID: " + std::to_string(st.main_pid)), std::string::npos) << text;
  EXPECT_NE(text.find("└─" + std::to_string(st.main_pid) + " /bin/sleep 1000"), std::string::npos)
      << text;
  sup_->StopAll();
  EXPECT_FALSE(Alive(st.main_pid));
  EXPECT_FALSE(fs::exists(fs::path("/sys/fs/cgroup/pids") / parent_));
}

TEST_F(SupervisorTest, OneshotEndsDeadOrExited) {
  sup_->Apply({Assign("a.service", {{"Service", "Type", "oneshot"},
                                    {"Service", "ExecStart", "/bin/echo one"},
                                    {"Service", "ExecStart", "/bin/echo two"}}),
               Assign("b.service", {{"Service", "Type", "oneshot"},
                                    {"Service", "RemainAfterExit", "yes"},
                                    {"Service", "ExecStart", "/bin/true"}})});
  UnitStatus a = WaitState("a.service", "inactive", "dead");
  EXPECT_EQ(a.result, "success");
  WaitState("b.service", "active", "exited");
  std::string j = JournalText("a.service");
  EXPECT_LT(j.find(" one\n"), j.find(" two\n")) << j;
  // Level-triggered Apply does not rerun a finished oneshot.
  sup_->Apply({Assign("a.service", {{"Service", "Type", "oneshot"},
                                    {"Service", "ExecStart", "/bin/echo one"},
                                    {"Service", "ExecStart", "/bin/echo two"}})});
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(JournalText("a.service"), j);
}

TEST_F(SupervisorTest, ExecStartPreFailureAndIgnoredFailure) {
  sup_->Apply({Assign("fail.service", {{"Service", "ExecStartPre", "/bin/false"},
                                       {"Service", "ExecStart", "/bin/sleep 1000"}}),
               Assign("ok.service", {{"Service", "ExecStartPre", "-/bin/false"},
                                     {"Service", "ExecStart", "/bin/sleep 1000"}})});
  UnitStatus f = WaitState("fail.service", "failed", "failed");
  EXPECT_EQ(f.result, "exit-code");
  EXPECT_NE(f.reason.find("ExecStartPre=/bin/false"), std::string::npos) << f.reason;
  WaitState("ok.service", "active", "running");
}

TEST_F(SupervisorTest, ExecConditionSkipsOrFails) {
  sup_->Apply({Assign("skip.service", {{"Service", "ExecCondition", "/bin/sh -c 'exit 1'"},
                                       {"Service", "ExecStart", "/bin/sleep 1000"}}),
               Assign("go.service", {{"Service", "ExecCondition", "/bin/true"},
                                     {"Service", "ExecStart", "/bin/sleep 1000"}}),
               Assign("bad.service", {{"Service", "ExecCondition", "/bin/sh -c 'exit 255'"},
                                      {"Service", "ExecStart", "/bin/sleep 1000"}})});
  UnitStatus skip = WaitState("skip.service", "inactive", "dead");
  EXPECT_EQ(skip.result, "success");
  EXPECT_NE(skip.reason.find("condition"), std::string::npos) << skip.reason;
  WaitState("go.service", "active", "running");
  EXPECT_EQ(WaitState("bad.service", "failed", "failed").result, "exit-code");
}

TEST_F(SupervisorTest, MissingBinaryFailsWithReason) {
  std::string nope = "/usr/bin/fjord-no-such-binary-" + std::to_string(::getpid());
  sup_->Apply({Assign("nope.service", {{"Service", "ExecStart", nope + " --flag"}})});
  UnitStatus st = WaitState("nope.service", "failed", "failed");
  EXPECT_EQ(st.result, "exit-code");
  EXPECT_EQ(st.exit_status, 203);
  EXPECT_NE(st.reason.find(nope), std::string::npos) << st.reason;
  EXPECT_NE(st.reason.find("No such file or directory"), std::string::npos) << st.reason;
  std::string text = sup_->StatusText("nope.service");
  EXPECT_NE(text.find("Active: failed (Result: exit-code)"), std::string::npos) << text;
  EXPECT_NE(text.find("(code=exited, status=203)"), std::string::npos) << text;
}

TEST_F(SupervisorTest, RestartOnFailureHonoursRestartSec) {
  auto start = std::chrono::steady_clock::now();
  sup_->Apply({Assign("crash.service", {{"Unit", "StartLimitBurst", "20"},
                                        {"Service", "ExecStart", "/bin/sh -c 'exit 3'"},
                                        {"Service", "Restart", "on-failure"},
                                        {"Service", "RestartSec", "200ms"}})});
  UnitStatus st = WaitFor("crash.service", [](const UnitStatus& s) { return s.restarts >= 3; });
  EXPECT_GE(std::chrono::steady_clock::now() - start, 600ms);
  EXPECT_EQ(st.exit_status, 3);
  EXPECT_EQ(st.result == "exit-code" || st.result == "success", true);
}

TEST_F(SupervisorTest, RestartAlwaysHitsTheStartLimit) {
  sup_->Apply({Assign("loop.service", {{"Service", "ExecStart", "/bin/true"},
                                       {"Service", "Restart", "always"},
                                       {"Service", "RestartSec", "10ms"}})});
  UnitStatus st = WaitState("loop.service", "failed", "failed");
  EXPECT_EQ(st.result, "start-limit-hit");
  EXPECT_EQ(st.restarts, 5u);  // StartLimitBurst=5: the sixth start is refused
}

TEST_F(SupervisorTest, RestartNoStaysFailed) {
  sup_->Apply({Assign("once.service", {{"Service", "ExecStart", "/bin/sh -c 'exit 4'"},
                                       {"Service", "Restart", "no"}})});
  UnitStatus st = WaitState("once.service", "failed", "failed");
  EXPECT_EQ(st.exit_status, 4);
  std::this_thread::sleep_for(300ms);  // RestartSec defaults to 100ms: a restart would show
  st = *sup_->Get("once.service");
  EXPECT_EQ(st.active_state, "failed");
  EXPECT_EQ(st.restarts, 0u);
}

TEST_F(SupervisorTest, TimeoutStopSecEscalatesToSigkill) {
  fs::path ready = dir_ / "ready";
  Opts o = {
      {"Service", "ExecStart",
       "/bin/sh -c 'trap \"\" TERM; touch " + ready.string() + "; while :; do sleep 0.05; done'"},
      {"Service", "TimeoutStopSec", "400ms"}};
  sup_->Apply({Assign("stubborn.service", o)});
  pid_t pid = WaitState("stubborn.service", "active", "running").main_pid;
  for (int i = 0; i < 500 && !fs::exists(ready); ++i) std::this_thread::sleep_for(5ms);
  auto t0 = std::chrono::steady_clock::now();
  sup_->Apply({Assign("stubborn.service", o, api::UnitStateName::kLoaded)});
  UnitStatus st = WaitState("stubborn.service", "failed", "failed");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 350ms);
  EXPECT_EQ(st.result, "timeout");
  EXPECT_FALSE(Alive(pid));
}

TEST_F(SupervisorTest, KillModeProcessLeavesTheRest) {
  fs::path pidfile = dir_ / "child.pid";
  Opts o = {{"Service", "ExecStart",
             "/bin/sh -c 'sleep 1000 & echo $! > " + pidfile.string() + "; exec sleep 1001'"},
            {"Service", "KillMode", "process"}};
  sup_->Apply({Assign("kp.service", o)});
  WaitState("kp.service", "active", "running");
  for (int i = 0; i < 500 && ReadFile(pidfile).empty(); ++i) std::this_thread::sleep_for(5ms);
  pid_t child = std::atoi(ReadFile(pidfile).c_str());
  ASSERT_GT(child, 0);
  sup_->Apply({Assign("kp.service", o, api::UnitStateName::kLoaded)});
  WaitState("kp.service", "inactive", "dead");
  EXPECT_TRUE(Alive(child));  // KillMode=process: only the main process is signalled
  ::kill(child, SIGKILL);
}

TEST_F(SupervisorTest, KillModeControlGroupKillsEverything) {
  fs::path pidfile = dir_ / "child.pid";
  Opts o = {{"Service", "ExecStart",
             "/bin/sh -c 'sleep 1000 & echo $! > " + pidfile.string() + "; exec sleep 1001'"}};
  sup_->Apply({Assign("kcg.service", o)});
  WaitState("kcg.service", "active", "running");
  for (int i = 0; i < 500 && ReadFile(pidfile).empty(); ++i) std::this_thread::sleep_for(5ms);
  pid_t child = std::atoi(ReadFile(pidfile).c_str());
  ASSERT_GT(child, 0);
  sup_->Apply({});
  for (int i = 0; i < 400 && Alive(child); ++i) std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(Alive(child));
}

TEST_F(SupervisorTest, KillModeMixedKillsTheRestAfterTheMainProcess) {
  fs::path pidfile = dir_ / "child.pid";
  Opts o = {{"Service", "ExecStart",
             "/bin/sh -c '(trap \"\" TERM; exec sleep 1000) & echo $! > " + pidfile.string() +
                 "; trap \"exit 0\" TERM; while :; do sleep 0.05; done'"},
            {"Service", "KillMode", "mixed"},
            {"Service", "TimeoutStopSec", "30s"}};
  sup_->Apply({Assign("mixed.service", o)});
  WaitState("mixed.service", "active", "running");
  for (int i = 0; i < 500 && ReadFile(pidfile).empty(); ++i) std::this_thread::sleep_for(5ms);
  pid_t child = std::atoi(ReadFile(pidfile).c_str());
  ASSERT_GT(child, 0);
  auto t0 = std::chrono::steady_clock::now();
  sup_->Apply({Assign("mixed.service", o, api::UnitStateName::kLoaded)});
  UnitStatus st = WaitState("mixed.service", "inactive", "dead");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);  // not TimeoutStopSec=
  EXPECT_EQ(st.result, "success");
  EXPECT_FALSE(Alive(child));
}

TEST_F(SupervisorTest, EnvironmentAndWorkingDirectory) {
  fs::path envfile = dir_ / "env";
  std::ofstream(envfile) << "# comment\nBAZ=qux\nFOO=from-file\n";
  fs::path wd = dir_ / "wd";
  fs::create_directories(wd);
  sup_->Apply({Assign("env.service", {{"Service", "Type", "oneshot"},
                                      {"Service", "Environment", "FOO=bar ONLY=env"},
                                      {"Service", "EnvironmentFile", envfile.string()},
                                      {"Service", "EnvironmentFile", "-/nonexistent/fjord-env"},
                                      {"Service", "WorkingDirectory", wd.string()},
                                      {"Service", "ExecStart",
                                       "/bin/sh -c 'echo \"v=$FOO,$BAZ,$ONLY,$(pwd)\"'"}})});
  WaitState("env.service", "inactive", "dead");
  EXPECT_NE(JournalText("env.service").find("v=from-file,qux,env," + wd.string()),
            std::string::npos)
      << JournalText("env.service");
}

TEST_F(SupervisorTest, ExecPrefixesAndUser) {
  sup_->Apply(
      {Assign("pfx.service", {{"Service", "Type", "oneshot"},
                              {"Service", "User", "nobody"},
                              {"Service", "Environment", "FOO=foo"},
                              {"Service", "ExecStart", "@/bin/sh renamed -c 'echo argv0=$0'"},
                              {"Service", "ExecStart", ":/bin/echo literal=$FOO"},
                              {"Service", "ExecStart", "/bin/echo expanded=${FOO} $FOO"},
                              {"Service", "ExecStart", "/bin/sh -c 'echo uid=$(id -u) home=$HOME'"},
                              {"Service", "ExecStart", "+/bin/sh -c 'echo plus-uid=$(id -u)'"}})});
  WaitState("pfx.service", "inactive", "dead");
  std::string j = JournalText("pfx.service");
  EXPECT_NE(j.find("argv0=renamed"), std::string::npos) << j;
  EXPECT_NE(j.find("literal=$FOO"), std::string::npos) << j;
  EXPECT_NE(j.find("expanded=foo foo"), std::string::npos) << j;
  EXPECT_NE(j.find("uid=65534 home=/nonexistent"), std::string::npos) << j;
  EXPECT_NE(j.find("plus-uid=0"), std::string::npos) << j;
}

TEST_F(SupervisorTest, OomScoreAdjust) {
  sup_->Apply({Assign("oom.service", {{"Service", "OOMScoreAdjust", "500"},
                                      {"Service", "ExecStart", "/bin/sleep 1000"}}),
               Assign("neg.service", {{"Service", "OOMScoreAdjust", "-900"},
                                      {"Service", "ExecStart", "/bin/sleep 1000"}})});
  UnitStatus st = WaitState("oom.service", "active", "running");
  EXPECT_EQ(ReadFile("/proc/" + std::to_string(st.main_pid) + "/oom_score_adj"), "500\n");
  // Without CAP_SYS_RESOURCE a negative value is refused: the unit runs anyway.
  WaitState("neg.service", "active", "running");
}

TEST_F(SupervisorTest, UnknownUserFails) {
  sup_->Apply({Assign("nouser.service", {{"Service", "User", "fjord-no-such-user"},
                                         {"Service", "ExecStart", "/bin/sleep 1000"}})});
  UnitStatus st = WaitState("nouser.service", "failed", "failed");
  EXPECT_NE(st.reason.find("fjord-no-such-user"), std::string::npos) << st.reason;
}

TEST_F(SupervisorTest, KillSignalAndExecStopPost) {
  fs::path mark = dir_ / "stopped";
  fs::path ready = dir_ / "ready";
  Opts o = {{"Service", "ExecStart",
             "/bin/sh -c 'trap \"echo got-int; exit 0\" INT; touch " + ready.string() +
                 "; while :; do sleep 0.05; done'"},
            {"Service", "KillSignal", "SIGINT"},
            {"Service", "ExecStopPost",
             "/bin/sh -c 'echo $SERVICE_RESULT > " + mark.string() + "; echo post-ran'"}};
  sup_->Apply({Assign("sig.service", o)});
  WaitState("sig.service", "active", "running");
  for (int i = 0; i < 500 && !fs::exists(ready); ++i) std::this_thread::sleep_for(5ms);
  sup_->Apply({Assign("sig.service", o, api::UnitStateName::kLoaded)});
  UnitStatus st = WaitState("sig.service", "inactive", "dead");
  EXPECT_EQ(st.result, "success");
  std::string j = JournalText("sig.service");
  EXPECT_NE(j.find("got-int"), std::string::npos) << j;
  EXPECT_NE(j.find("post-ran"), std::string::npos) << j;
  EXPECT_EQ(ReadFile(mark), "success\n");
}

TEST_F(SupervisorTest, TimeoutStartSecFailsTheStart) {
  fs::path mark = dir_ / "post";
  sup_->Apply(
      {Assign("slow.service", {{"Service", "ExecStartPre", "/bin/sleep 1000"},
                               {"Service", "ExecStart", "/bin/sleep 1000"},
                               {"Service", "TimeoutStartSec", "300ms"},
                               {"Service", "ExecStopPost", "/bin/touch " + mark.string()}})});
  UnitStatus st = WaitState("slow.service", "failed", "failed");
  EXPECT_EQ(st.result, "timeout");
  EXPECT_TRUE(fs::exists(mark));  // ExecStopPost= runs after a failed start, as in systemd
}

TEST_F(SupervisorTest, MissingEnvironmentFileFailsWithResources) {
  sup_->Apply({Assign("noenv.service", {{"Service", "EnvironmentFile", "/nonexistent/fjord"},
                                        {"Service", "ExecStart", "/bin/sleep 1000"}})});
  UnitStatus st = WaitState("noenv.service", "failed", "failed");
  EXPECT_EQ(st.result, "resources");
  EXPECT_NE(st.reason.find("/nonexistent/fjord"), std::string::npos);
}

TEST_F(SupervisorTest, AfterRequiresOrdersStart) {
  fs::path order = dir_ / "order";
  sup_->Apply({
      Assign("b.service", {{"Unit", "After", "a.service"},
                           {"Unit", "Requires", "a.service"},
                           {"Service", "ExecStart",
                            "/bin/sh -c 'echo b >> " + order.string() + "; exec sleep 1000'"}}),
      Assign("a.service", {{"Service", "Type", "oneshot"},
                           {"Service", "RemainAfterExit", "yes"},
                           {"Service", "ExecStart",
                            "/bin/sh -c 'sleep 0.3; echo a >> " + order.string() + "'"}}),
  });
  WaitState("b.service", "active", "running");
  // "running" means forked; the shell may not have written its line yet.
  for (int i = 0; i < 400 && ReadFile(order).size() < 4; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(ReadFile(order), "a\nb\n");
}

TEST_F(SupervisorTest, StopRunsInReverseOrder) {
  fs::path order = dir_ / "order";
  // front's ExecStopPost is the slow one: only the ordering makes it finish first.
  auto post = [&](const std::string& what, const std::string& delay) {
    return api::UnitOption{
        "Service", "ExecStopPost",
        "/bin/sh -c 'sleep " + delay + "; echo " + what + " >> " + order.string() + "'"};
  };
  sup_->Apply(
      {Assign("front.service", {{"Unit", "After", "back.service"},
                                {"Service", "ExecStart", "/bin/sleep 1000"},
                                post("front", "0.2")}),
       Assign("back.service", {{"Service", "ExecStart", "/bin/sleep 1000"}, post("back", "0")})});
  WaitState("front.service", "active", "running");
  WaitState("back.service", "active", "running");
  sup_->Apply({});
  for (int i = 0; i < 400 && !sup_->List().empty(); ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(ReadFile(order), "front\nback\n");  // front started after back, so stops first
}

TEST_F(SupervisorTest, RequiresFailedDependencyFails) {
  sup_->Apply({Assign("d.service", {{"Unit", "After", "c.service"},
                                    {"Unit", "Requires", "c.service"},
                                    {"Service", "ExecStart", "/bin/sleep 1000"}}),
               Assign("c.service",
                      {{"Service", "Type", "oneshot"}, {"Service", "ExecStart", "/bin/false"}}),
               Assign("e.service", {{"Unit", "Requires", "missing.service"},
                                    {"Service", "ExecStart", "/bin/sleep 1000"}})});
  WaitState("c.service", "failed", "failed");
  UnitStatus d = WaitState("d.service", "failed", "failed");
  EXPECT_EQ(d.result, "dependency");
  EXPECT_NE(d.reason.find("c.service"), std::string::npos);
  UnitStatus e = WaitState("e.service", "failed", "failed");
  EXPECT_NE(e.reason.find("missing.service"), std::string::npos);
}

TEST_F(SupervisorTest, BindsToStopsWithTheBoundUnit) {
  Opts db = {{"Service", "ExecStart", "/bin/sleep 1000"}};
  Opts app = {{"Unit", "BindsTo", "db.service"},
              {"Unit", "After", "db.service"},
              {"Service", "ExecStart", "/bin/sleep 1001"}};
  sup_->Apply({Assign("db.service", db), Assign("app.service", app)});
  WaitState("app.service", "active", "running");
  WaitState("db.service", "active", "running");
  sup_->Apply({Assign("db.service", db, api::UnitStateName::kLoaded), Assign("app.service", app)});
  WaitState("db.service", "inactive", "dead");
  WaitState("app.service", "inactive", "dead");
}

TEST_F(SupervisorTest, ResourceLimitsInTheUnitsCgroup) {
  sup_->Apply({Assign("lim.service", {{"Service", "ExecStart", "/bin/sleep 1000"},
                                      {"Service", "MemoryMax", "64M"},
                                      {"Service", "TasksMax", "20"},
                                      {"Service", "CPUQuota", "50%"}}),
               Assign("old.service", {{"Service", "ExecStart", "/bin/sleep 1000"},
                                      {"Service", "MemoryLimit", "32M"}})});
  WaitState("lim.service", "active", "running");
  WaitState("old.service", "active", "running");
  EXPECT_EQ(std::stoull(ReadFile(CgroupFile("memory", "lim.service", "memory.limit_in_bytes"))),
            64ull << 20);
  EXPECT_EQ(std::stoull(ReadFile(CgroupFile("memory", "old.service", "memory.limit_in_bytes"))),
            32ull << 20);
  EXPECT_EQ(ReadFile(CgroupFile("pids", "lim.service", "pids.max")), "20\n");
  EXPECT_EQ(ReadFile(CgroupFile("cpu", "lim.service", "cpu.cfs_quota_us")), "50000\n");
}

TEST_F(SupervisorTest, MemoryHogIsOomKilled) {
  sup_->Apply({Assign("hog.service", {{"Service", "ExecStart",
                                       "/usr/bin/awk 'BEGIN { s = \"x\"; while (1) s = s s }'"},
                                      {"Service", "MemoryMax", "32M"}})});
  UnitStatus st = WaitState("hog.service", "failed", "failed", 15s);
  EXPECT_EQ(st.result, "oom-kill") << st.reason;
  EXPECT_EQ(st.exit_status, 128 + SIGKILL);
}

TEST_F(SupervisorTest, ChangedHashRestartsAndRemovalStops) {
  sup_->Apply({Assign("v.service", {{"Service", "ExecStart", "/bin/sleep 1000"}})});
  UnitStatus v1 = WaitState("v.service", "active", "running");
  auto v2a = Assign("v.service", {{"Service", "ExecStart", "/bin/sleep 2000"}});
  sup_->Apply({v2a});
  UnitStatus v2 = WaitFor("v.service", [&](const UnitStatus& s) {
    return s.hash == v2a.hash && s.sub_state == "running" && s.main_pid > 0;
  });
  EXPECT_NE(v2.main_pid, v1.main_pid);
  EXPECT_FALSE(Alive(v1.main_pid));
  EXPECT_NE(ReadFile("/proc/" + std::to_string(v2.main_pid) + "/cmdline").find("2000"),
            std::string::npos);
  sup_->Apply({});
  for (int i = 0; i < 400 && !sup_->List().empty(); ++i) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(sup_->List().empty());
  EXPECT_FALSE(Alive(v2.main_pid));
  EXPECT_FALSE(fs::exists(CgroupFile("pids", "v.service", "")));
}

TEST_F(SupervisorTest, InvalidUnitIsBadSettingNotACrash) {
  sup_->Apply({Assign("bad.service", {{"Service", "Restart", "sometimes"},
                                      {"Service", "ExecStart", "/bin/sleep 1000"}}),
               Assign("no/slash.service", {{"Service", "ExecStart", "/bin/true"}})});
  UnitStatus st = WaitFor("bad.service", [](const UnitStatus& s) { return !s.reason.empty(); });
  EXPECT_EQ(st.load_state, "bad-setting");
  EXPECT_NE(st.reason.find("Restart"), std::string::npos) << st.reason;
  EXPECT_NE(st.active_state, "active");
  UnitStatus bad_name =
      WaitFor("no/slash.service", [](const UnitStatus& s) { return !s.reason.empty(); });
  EXPECT_EQ(bad_name.load_state, "error");
}

TEST_F(SupervisorTest, ForkingAndExecTypes) {
  fs::path pidfile = dir_ / "daemon.pid";
  sup_->Apply({Assign("fork.service", {{"Service", "Type", "forking"},
                                       {"Service", "PIDFile", pidfile.string()},
                                       {"Service", "ExecStart",
                                        "/bin/sh -c 'sleep 1000 >/dev/null 2>&1 & echo $! > " +
                                            pidfile.string() + "'"}}),
               Assign("exec.service",
                      {{"Service", "Type", "exec"}, {"Service", "ExecStart", "/bin/sleep 1000"}})});
  UnitStatus f = WaitState("fork.service", "active", "running");
  EXPECT_EQ(f.main_pid, std::atoi(ReadFile(pidfile).c_str()));
  WaitState("exec.service", "active", "running");
}

// A stop that begins before the shim reported its child's pid (it does after the exec) must
// still reach that child: without a second signal it would live until TimeoutStopSec=.
TEST_F(SupervisorTest, StopRightAfterStartReachesTheProcess) {
  // The window is short: without the fix it showed within a few hundred stops.
  for (int i = 0; i < 100; ++i) {
    std::string name = "quick@" + std::to_string(i) + ".service";
    sup_->Apply({Assign(name, {{"Service", "ExecStart", "/bin/sleep 1000"}})});
    WaitFor(name, [](const UnitStatus& s) { return s.active_state == "active"; });
    sup_->Apply({});
    auto deadline = std::chrono::steady_clock::now() + 3s;
    while (sup_->Get(name).ok() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(2ms);
    }
    ASSERT_FALSE(sup_->Get(name).ok()) << name << " still there: " << sup_->StatusText(name);
  }
}

TEST_F(SupervisorTest, DetachAndReopenReadoptsUnits) {
  sup_->Apply({Assign("keep.service", {{"Service", "ExecStart", "/bin/sleep 1000"}}),
               Assign("dies.service", {{"Service", "ExecStart", "/bin/sleep 1001"}}),
               Assign("back.service", {{"Service", "ExecStart", "/bin/sleep 1002"},
                                       {"Service", "Restart", "on-failure"}})});
  pid_t keep = WaitState("keep.service", "active", "running").main_pid;
  pid_t dies = WaitState("dies.service", "active", "running").main_pid;
  pid_t back = WaitState("back.service", "active", "running").main_pid;
  sup_->Detach();
  sup_.reset();
  EXPECT_TRUE(Alive(keep));
  ::kill(dies, SIGKILL);  // die while no supervisor watches
  ::kill(back, SIGKILL);
  for (int i = 0; i < 400 && (Alive(dies) || Alive(back)); ++i) std::this_thread::sleep_for(5ms);
  Open();
  UnitStatus k = WaitState("keep.service", "active", "running");
  EXPECT_EQ(k.main_pid, keep);
  EXPECT_EQ(k.restarts, 0u);
  UnitStatus d = WaitState("dies.service", "failed", "failed");
  EXPECT_EQ(d.result, "signal");
  EXPECT_EQ(d.exit_status, 128 + SIGKILL);
  // Restart= applies to what died meanwhile.
  UnitStatus b = WaitFor("back.service", [&](const UnitStatus& s) {
    return s.restarts == 1 && s.sub_state == "running" && s.main_pid > 0 && s.main_pid != back;
  });
  EXPECT_TRUE(Alive(b.main_pid));
  // The new supervisor still controls the adopted unit.
  sup_->Apply({Assign("keep.service", {{"Service", "ExecStart", "/bin/sleep 1000"}})});
  sup_->Apply({});
  for (int i = 0; i < 400 && Alive(keep); ++i) std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(Alive(keep));
}

// The agent process is SIGKILLed: its units keep running and the next agent re-adopts them.
TEST_F(SupervisorTest, UnitsOutliveAKilledAgent) {
  sup_.reset();
  RunInAgentThenKillIt(
      Assign("survivor.service", {{"Service", "ExecStart", "/bin/sleep 1000"}}),
      [](const UnitStatus& s) { return s.sub_state == "running" && s.main_pid > 0; });
  Open();
  UnitStatus st = WaitState("survivor.service", "active", "running");
  EXPECT_TRUE(Alive(st.main_pid));
  EXPECT_EQ(st.restarts, 0u);
  EXPECT_NE(ReadFile("/proc/" + std::to_string(st.main_pid) + "/cmdline").find("sleep"),
            std::string::npos);
}

TEST_F(SupervisorTest, OnChangeAndJournalFollow) {
  sup_.reset();
  std::mutex mu;
  std::vector<std::string> seen;
  Supervisor::Options o;
  o.state_dir = dir_ / "state";
  o.cgroup_parent = parent_;
  o.on_change = [&](const UnitStatus& s) {
    std::lock_guard lock(mu);
    seen.push_back(s.name + " " + s.active_state + "/" + s.sub_state);
  };
  auto s = Supervisor::Open(o);
  ASSERT_TRUE(s.ok());
  sup_ = std::move(*s);
  sup_->Apply(
      {Assign("tick.service",
              {{"Service", "ExecStart",
                "/bin/sh -c 'i=0; while :; do echo tick-$i; i=$((i+1)); sleep 0.02; done'"}})});
  WaitState("tick.service", "active", "running");
  std::vector<std::string> lines;
  ASSERT_TRUE(sup_->Journal("tick.service", 2, true,
                            [&](std::string_view l) {
                              if (l.empty()) return true;  // a keep-alive while idle
                              lines.emplace_back(l);
                              return lines.size() < 8;
                            })
                  .ok());
  ASSERT_EQ(lines.size(), 8u);
  EXPECT_NE(lines.back().find("tick-"), std::string::npos);
  EXPECT_EQ(lines.back()[4], '-');  // "2026-...Z tick-N": timestamped
  EXPECT_FALSE(sup_->Journal("nope.service", 1, false, [](std::string_view) { return true; }).ok());
  sup_->StopAll();
  sup_.reset();  // on_change refers to this test's locals
  EXPECT_NE(std::find(seen.begin(), seen.end(), "tick.service active/running"), seen.end());
  EXPECT_EQ(seen.back(), "tick.service inactive/dead");
}

TEST_F(SupervisorTest, JournalIsRotated) {
  sup_.reset();
  Open(4096);
  sup_->Apply(
      {Assign("chatty.service",
              {{"Service", "Type", "oneshot"},
               {"Service", "ExecStart",
                "/bin/sh -c 'i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done'"}})});
  WaitState("chatty.service", "inactive", "dead");
  fs::path log = dir_ / "state/units/chatty.service/journal.log";
  ASSERT_TRUE(fs::exists(log.string() + ".1"));
  EXPECT_LE(fs::file_size(log), 4096u);
  EXPECT_LE(fs::file_size(log.string() + ".1"), 4096u);
  std::string j = JournalText("chatty.service");
  EXPECT_NE(j.find(" line-399\n"), std::string::npos) << j;
  EXPECT_EQ(j.find(" line-0\n"), std::string::npos);  // rotated away
}

TEST_F(SupervisorTest, ContainerUnitRunsAndLogs) {
  const char* src = std::getenv("FJORD_SOURCE_DIR");
  if (src == nullptr || ::access("/bin/busybox", X_OK) != 0) {
    GTEST_SKIP() << "needs FJORD_SOURCE_DIR and busybox-static";
  }
  fs::path tar = dir_ / "image.tar";
  std::string cmd = std::string(src) + "/scripts/make-test-image.sh " + tar.string() +
                    " --name fjord-test/busybox:latest >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto store = image::ImageStore::Open(dir_ / "images");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->Import(tar, std::nullopt).ok());
  sup_->Apply({Assign("box.service",
                      {{"Container", "Image", "fjord-test/busybox:latest"},
                       {"Container", "Exec", "/bin/sh -c 'echo hello-from-$GREETING; sleep 1000'"},
                       {"Container", "Environment", "GREETING=box"}})});
  UnitStatus st = WaitFor(
      "box.service",
      [](const UnitStatus& s) { return s.sub_state == "running" || s.active_state == "failed"; },
      10s);
  ASSERT_EQ(st.sub_state, "running") << st.reason;
  EXPECT_FALSE(st.container_id.empty());
  std::string j;
  for (int i = 0; i < 400 && j.find("hello-from-box") == std::string::npos; ++i) {
    j = JournalText("box.service");
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_NE(j.find("hello-from-box"), std::string::npos) << j;
  // The runtime's monitor outlives the supervisor: a new one re-adopts the container.
  sup_->Detach();
  sup_.reset();
  Open();
  UnitStatus again = WaitState("box.service", "active", "running");
  EXPECT_EQ(again.container_id, st.container_id);
  EXPECT_EQ(again.main_pid, st.main_pid);
  sup_->Apply({});
  for (int i = 0; i < 1000 && !sup_->List().empty(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(sup_->List().empty());
}

}  // namespace
}  // namespace fjord::agent
