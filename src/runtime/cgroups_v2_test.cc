// The cgroup v2 backend against the host's real cgroup2 tree. On a pure v2 host this is the
// backend fjord detects; on a hybrid host (like the development machine) the unified tree has
// no controllers, so these tests cover what works without them (create, join, stats, kill,
// remove) and that a limit then fails cleanly instead of being silently dropped.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "runtime/cgroups.h"

namespace fjord::runtime {
namespace {

namespace fs = std::filesystem;

// Where cgroup2 is mounted, or empty.
fs::path UnifiedMount() {
  std::ifstream mounts("/proc/self/mounts");
  std::string line;
  while (std::getline(mounts, line)) {
    std::istringstream fields(line);
    std::string source, target, type;
    fields >> source >> target >> type;
    if (type == "cgroup2") return target;
  }
  return {};
}

std::string ReadText(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class CgroupV2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    mount_ = UnifiedMount();
    if (mount_.empty()) GTEST_SKIP() << "no cgroup2 mount";
    backend_ = CgroupBackend::OpenV2(mount_);
    parent_ = "fjord-v2test-" + std::to_string(getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  void TearDown() override {
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
    }
    if (!mount_.empty()) {
      std::error_code ec;
      for (const auto& d : {mount_ / parent_ / "c1", mount_ / parent_}) fs::remove(d, ec);
    }
  }
  bool HasController(const std::string& name) const {
    std::istringstream in(ReadText(mount_ / "cgroup.controllers"));
    std::string c;
    while (in >> c) {
      if (c == name) return true;
    }
    return false;
  }

  fs::path mount_;
  std::unique_ptr<CgroupBackend> backend_;
  std::string parent_;
  pid_t child_ = -1;
};

TEST_F(CgroupV2Test, CreateJoinStatsKillRemove) {
  auto dirs = backend_->Create(parent_, "c1", Limits{}, /*all_devices=*/false);
  ASSERT_TRUE(dirs.ok()) << dirs.status().ToString();
  ASSERT_EQ(dirs->size(), 1u);
  const fs::path dir = dirs->at("unified");
  EXPECT_EQ(dir, mount_ / parent_ / "c1");
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_EQ(backend_->OomFile(*dirs), dir / "memory.events");

  child_ = ::fork();
  ASSERT_GE(child_, 0);
  if (child_ == 0) {
    for (;;) ::pause();
  }
  {
    std::ofstream procs(dir / "cgroup.procs");
    procs << child_;
  }
  EXPECT_TRUE(CgroupHasProcesses(*dirs));
  EXPECT_NE(ReadText(dir / "cgroup.procs").find(std::to_string(child_)), std::string::npos);
  auto stats = backend_->Stats(*dirs);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();

  ASSERT_TRUE(backend_->KillAll(*dirs).ok());
  int status = 0;
  ASSERT_EQ(::waitpid(child_, &status, 0), child_);
  child_ = -1;
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_FALSE(CgroupHasProcesses(*dirs));

  ASSERT_TRUE(backend_->Remove(*dirs).ok());
  EXPECT_FALSE(fs::exists(dir));
}

TEST_F(CgroupV2Test, LimitsApplyOrFailWithoutLeavingACgroup) {
  Limits limits;
  limits.memory_bytes = 64ull << 20;
  limits.pids_max = 50;
  auto dirs = backend_->Create(parent_, "c1", limits, false);
  if (HasController("memory") && HasController("pids")) {
    // A pure v2 host: the limits are in the files the kernel enforces.
    ASSERT_TRUE(dirs.ok()) << dirs.status().ToString();
    EXPECT_EQ(ReadText(dirs->at("unified") / "memory.max"), "67108864\n");
    EXPECT_EQ(ReadText(dirs->at("unified") / "pids.max"), "50\n");
    EXPECT_TRUE(backend_->Remove(*dirs).ok());
  } else {
    // No controllers in this tree: the limit cannot be enforced, so creation fails, names the
    // file, and leaves nothing behind.
    ASSERT_FALSE(dirs.ok());
    EXPECT_NE(dirs.status().message().find("memory.max"), std::string::npos)
        << dirs.status().ToString();
  }
  EXPECT_FALSE(fs::exists(mount_ / parent_ / "c1"));
}

}  // namespace
}  // namespace fjord::runtime
