// `fjord unit check --json` parsed as JSON: the real binary, spawned once per case.
// usage: unit_cli_json_test FJORD_BINARY EXAMPLES_DIR [gtest flags]
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace {

std::string g_fjord, g_examples;

struct CliRun {
  int exit_code = -1;
  std::string out;
};

CliRun RunFjord(const std::string& args) {
  CliRun r;
  std::string cmd = "'" + g_fjord + "' " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(UnitCheckJson, NginxCacheWarningIsMachineReadable) {
  CliRun r = RunFjord("unit check --json '" + g_examples + "/nginx-cache.service'");
  EXPECT_EQ(r.exit_code, 0);
  auto j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_array()) << r.out;
  ASSERT_EQ(j.size(), 1u) << r.out;
  const auto& d = j[0];
  for (const char* k : {"file", "line", "column", "severity", "message", "key", "suggestion"}) {
    EXPECT_TRUE(d.contains(k)) << k;
  }
  EXPECT_EQ(d["line"], 9);
  EXPECT_EQ(d["column"], 1);
  EXPECT_EQ(d["severity"], "warning");
  EXPECT_EQ(d["key"], "ExecStartPRE");
  EXPECT_EQ(d["suggestion"], "ExecStartPre");
  EXPECT_NE(d["message"].template get<std::string>().find("would never run"), std::string::npos);
}

TEST(UnitCheckJson, StrictFailsOnWarningsAndStillPrintsJson) {
  CliRun r = RunFjord("unit check --strict --json '" + g_examples + "/nginx-cache.service'");
  EXPECT_EQ(r.exit_code, 1);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_array());
  EXPECT_EQ(j.size(), 1u);
}

TEST(UnitCheckJson, CleanExamplesGiveAnEmptyArray) {
  CliRun r =
      RunFjord("unit check --strict --json '" + g_examples + "/hello@.service' '" + g_examples +
               "/web-container.service' '" + g_examples + "/node-exporter.service'");
  EXPECT_EQ(r.exit_code, 0);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << r.out;
  EXPECT_TRUE(j.empty()) << r.out;
}

TEST(UnitCheckJson, MissingFileIsAnError) {
  CliRun r = RunFjord("unit check --json /nonexistent/fjord-test-missing.service");
  EXPECT_EQ(r.exit_code, 1);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_array() && j.size() == 1) << r.out;
  EXPECT_EQ(j[0]["severity"], "error");
  EXPECT_NE(j[0]["message"].template get<std::string>().find("No such file"), std::string::npos);
}

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s FJORD_BINARY EXAMPLES_DIR\n", argv[0]);
    return 2;
  }
  g_fjord = argv[1];
  g_examples = argv[2];
  return RUN_ALL_TESTS();
}
