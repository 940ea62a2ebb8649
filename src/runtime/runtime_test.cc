#include "runtime/runtime.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "runtime/cgroups.h"
#include "runtime/hardening.h"
#include "runtime/log_reader.h"
#include "runtime/sysutil.h"

namespace fjord::runtime {
namespace {

TEST(ParseByteSize, Table) {
  struct Case {
    const char* in;
    uint64_t want;
  };
  for (const Case& c :
       {Case{"1024", 1024}, Case{"4k", 4096}, Case{"256M", 256ull << 20}, Case{"1G", 1ull << 30},
        Case{"2gib", 2ull << 30}, Case{" 8m ", 8ull << 20}}) {
    auto r = ParseByteSize(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.status().ToString();
    EXPECT_EQ(*r, c.want) << c.in;
  }
  for (const char* bad : {"", "M", "12X", "-5", "1.5G", "99999999999999999999", "16777216T"}) {
    EXPECT_FALSE(ParseByteSize(bad).ok()) << bad;
  }
}

TEST(ParseCpuQuota, Table) {
  EXPECT_DOUBLE_EQ(*ParseCpuQuota("50%"), 0.5);
  EXPECT_DOUBLE_EQ(*ParseCpuQuota("1.5"), 1.5);
  EXPECT_DOUBLE_EQ(*ParseCpuQuota("200%"), 2.0);
  for (const char* bad : {"", "%", "0", "-1", "abc", "5%%", "0%"}) {
    EXPECT_FALSE(ParseCpuQuota(bad).ok()) << bad;
  }
}

TEST(ParseLogRecord, FullPartialAndGarbage) {
  auto r = ParseLogRecord("2026-11-29T07:40:00.123456789Z stdout F hello world");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->timestamp, "2026-11-29T07:40:00.123456789Z");
  EXPECT_FALSE(r->is_stderr);
  EXPECT_FALSE(r->partial);
  EXPECT_EQ(r->text, "hello world");
  r = ParseLogRecord("t stderr P ");
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->is_stderr);
  EXPECT_TRUE(r->partial);
  EXPECT_EQ(r->text, "");
  r = ParseLogRecord("t stderr F");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->text, "");
  for (const char* bad : {"", "garbage", "t stdin F x", "t stdout X x", "t stdout Fx"}) {
    EXPECT_FALSE(ParseLogRecord(bad).has_value()) << bad;
  }
}

// Writes `text` into a pipe and reads it back as an attach stream.
struct AttachRead {
  std::vector<std::string> lines;
  std::optional<AttachedExit> exit;
};
AttachRead ReadAttach(const std::string& text) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  EXPECT_EQ(::write(fds[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fds[1]);
  AttachRead out;
  auto exit = ReadLogStream(fds[0], [&](const LogRecord& r) { out.lines.emplace_back(r.text); });
  ::close(fds[0]);
  EXPECT_TRUE(exit.ok());
  if (exit.ok()) out.exit = *exit;
  return out;
}

TEST(ReadLogStream, TheLastRecordSaysHowTheContainerExited) {
  AttachRead r = ReadAttach(
      "t stdout F one\nt stderr F two\nt exit F exit_code=137 signal=9 oom_killed=1\n");
  EXPECT_EQ(r.lines, (std::vector<std::string>{"one", "two"}));
  ASSERT_TRUE(r.exit.has_value());
  EXPECT_EQ(r.exit->exit_code, 137);
  EXPECT_EQ(r.exit->signal, 9);
  EXPECT_TRUE(r.exit->oom_killed);
  // Without a trailing newline too (the monitor always sends one).
  r = ReadAttach("t exit F exit_code=3 signal=0 oom_killed=0");
  ASSERT_TRUE(r.exit.has_value());
  EXPECT_EQ(r.exit->exit_code, 3);
  EXPECT_FALSE(r.exit->oom_killed);
}

TEST(ReadLogStream, AStreamThatEndsWithoutAnExitRecordSaysNothing) {
  EXPECT_FALSE(ReadAttach("t stdout F one\n").exit.has_value());
  EXPECT_FALSE(ReadAttach("").exit.has_value());
  for (const char* bad : {"t exit F\n", "t exit F nonsense\n", "t exit P exit_code=1\n",
                          "exit F exit_code=1\n", "t exited F exit_code=1\n"}) {
    AttachRead r = ReadAttach(bad);
    EXPECT_FALSE(r.exit.has_value()) << bad;
    EXPECT_TRUE(r.lines.empty()) << bad;
  }
}

TEST(Sysutil, ProcessStartTimeNamesALiveProcess) {
  auto mine = ProcessStartTime(getpid());
  ASSERT_TRUE(mine.has_value());
  EXPECT_TRUE(ProcessAlive(getpid(), *mine));
  EXPECT_FALSE(ProcessAlive(getpid(), *mine + 1));
  EXPECT_FALSE(ProcessStartTime(0).has_value());
  EXPECT_EQ(RandomId().size(), 32u);
  EXPECT_NE(RandomId(), RandomId());
}

TEST(Hardening, SeccompFilterCompilesAndCapsAreDockersDefault) {
  auto prog = BuildDefaultSeccompFilter();
  ASSERT_TRUE(prog.ok()) << prog.status().ToString();
  EXPECT_GT(prog->size(), 20u);
  EXPECT_EQ(__builtin_popcountll(DefaultCapabilities()), 14);
}

TEST(Hardening, TheBakedInSeccompFilterIsTheCompiledOne) {
  auto prog = BuildDefaultSeccompFilter();
  ASSERT_TRUE(prog.ok()) << prog.status().ToString();
  std::span<const sock_filter> baked = DefaultSeccompFilter();
  ASSERT_EQ(baked.size(), prog->size());
  for (size_t i = 0; i < baked.size(); i++) {
    EXPECT_EQ(baked[i].code, (*prog)[i].code) << i;
    EXPECT_EQ(baked[i].jt, (*prog)[i].jt) << i;
    EXPECT_EQ(baked[i].jf, (*prog)[i].jf) << i;
    EXPECT_EQ(baked[i].k, (*prog)[i].k) << i;
  }
}

TEST(Cgroups, DetectFindsAUsableLayout) {
  auto backend = CgroupBackend::Detect();
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  std::string kind((*backend)->Kind());
  EXPECT_TRUE(kind == "v1" || kind == "v2" || kind == "hybrid") << kind;
}

TEST(Cgroups, CreateApplyRemove) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  auto backend = CgroupBackend::Detect();
  ASSERT_TRUE(backend.ok());
  Limits limits;
  limits.cpus = 0.25;
  limits.memory_bytes = 64ull << 20;
  limits.pids_max = 10;
  std::string id = "unit-" + std::to_string(getpid());
  auto dirs = (*backend)->Create("fjord-test", id, limits, false);
  ASSERT_TRUE(dirs.ok()) << dirs.status().ToString();
  for (const auto& [_, d] : *dirs) EXPECT_TRUE(std::filesystem::exists(d)) << d;
  EXPECT_FALSE(CgroupHasProcesses(*dirs));
  auto stats = (*backend)->Stats(*dirs);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->pids, 0u);
  ASSERT_TRUE((*backend)->Remove(*dirs).ok());
  for (const auto& [_, d] : *dirs) {
    EXPECT_FALSE(std::filesystem::exists(d)) << d;
    ::rmdir(d.parent_path().c_str());  // the test's parent; busy (another test) is fine
  }
}

TEST(Runtime, OpenRejectsBadCgroupParent) {
  char tmpl[] = "/tmp/fjord-rt-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  RuntimeOptions o;
  o.root = tmpl;
  o.cgroup_parent = "../escape";
  EXPECT_FALSE(Runtime::Open(o).ok());
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace fjord::runtime

namespace fjord::runtime {
namespace {

class LogDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fjord-logtest-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    log_ = dir_ / "container.log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Append(const std::filesystem::path& p, std::initializer_list<const char*> texts) {
    FILE* f = std::fopen(p.c_str(), "a");
    ASSERT_NE(f, nullptr);
    for (const char* t : texts) std::fprintf(f, "2026-01-01T00:00:00.000000000Z stdout F %s\n", t);
    std::fclose(f);
  }
  // container.log -> .1 -> .2 (the oldest is dropped), as the monitor does with 3 files.
  void Rotate() {
    std::filesystem::rename(log_.string() + ".1", log_.string() + ".2");
    std::filesystem::rename(log_, log_.string() + ".1");
  }
  std::filesystem::path dir_, log_;
};

TEST_F(LogDir, ReadsRotatedFilesOldestFirst) {
  Append(log_.string() + ".2", {"1", "2"});
  Append(log_.string() + ".1", {"3"});
  Append(log_, {"4", "5"});
  std::string got;
  auto st = ReadContainerLog(log_, nullptr, 0, [&](const LogRecord& r) { got += r.text; });
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(got, "12345");
}

TEST_F(LogDir, FollowKeepsEveryLineAcrossTwoRotationsBetweenReads) {
  Append(log_.string() + ".1", {"old"});
  Append(log_, {"a"});
  int calls = 0;
  // Each poll of "running" rotates twice and writes more, like a fast container would.
  std::function<bool()> running = [&] {
    calls++;
    if (calls == 2) {
      Append(log_, {"b"});
      Rotate();
      Append(log_, {"c"});
      Rotate();
      Append(log_, {"d"});
    }
    return calls < 4;
  };
  std::string got;
  auto st = ReadContainerLog(log_, &running, 0, [&](const LogRecord& r) { got += r.text; });
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(got, "oldabcd");
}

}  // namespace
}  // namespace fjord::runtime
