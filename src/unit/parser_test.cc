#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>

#include "unit/unit.h"

namespace fjord::unit {
namespace {

const UnitName& Svc() {
  static const UnitName n = *UnitName::Parse("test.service");
  return n;
}

ParseResult Parse(std::string_view text, const UnitName& name = Svc()) {
  return ParseUnit(text, "test.service", name);
}

std::string ReadExample(const std::string& name) {
  const char* root = std::getenv("FJORD_SOURCE_DIR");
  std::ifstream in(std::string(root ? root : ".") + "/examples/" + name, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Dump(const std::vector<Diagnostic>& d) {
  std::string out;
  for (const auto& x : d) out += x.ToString() + "\n";
  return out;
}

TEST(ParseUnit, NginxCacheExampleWarnsAtLine9) {
  std::string text = ReadExample("nginx-cache.service");
  ASSERT_FALSE(text.empty()) << "examples/nginx-cache.service not found";
  auto name = *UnitName::Parse("nginx-cache.service");
  auto r = ParseUnit(text, "nginx-cache.service", name);
  ASSERT_EQ(r.diagnostics.size(), 1u) << Dump(r.diagnostics);
  const Diagnostic& d = r.diagnostics[0];
  EXPECT_EQ(d.severity, Severity::kWarning);
  EXPECT_EQ(d.line, 9);
  EXPECT_EQ(d.column, 1);
  EXPECT_EQ(d.section, "Service");
  EXPECT_EQ(d.key, "ExecStartPRE");
  EXPECT_EQ(d.suggestion, "ExecStartPre");
  EXPECT_EQ(d.ToString(),
            "nginx-cache.service:9:1: warning: unknown key \"ExecStartPRE\" in [Service]; did "
            "you mean \"ExecStartPre\"? systemd ignores unknown keys, so this line would never "
            "run");
  ASSERT_TRUE(r.unit.has_value());
  EXPECT_EQ(r.unit->GetAll("Service", "ExecStartPre").size(), 2u);
  EXPECT_TRUE(r.unit->fleet().global);
  EXPECT_EQ(r.unit->TimeoutStartSec(), kInfiniteTime);
}

TEST(ParseUnit, ExamplesCheckClean) {
  for (const char* f : {"hello@.service", "node-exporter.service", "web-container.service"}) {
    std::string text = ReadExample(f);
    ASSERT_FALSE(text.empty()) << f;
    auto r = ParseUnit(text, f, *UnitName::Parse(f));
    EXPECT_TRUE(r.diagnostics.empty()) << f << "\n" << Dump(r.diagnostics);
    EXPECT_TRUE(r.unit.has_value()) << f;
  }
}

// One table for the syntax and value rules: input, severity, line, words in the message.
TEST(ParseUnit, Diagnostics) {
  const std::string ok = "[Service]\nExecStart=/bin/true\n";
  struct Case {
    std::string text;
    Severity sev;
    int line;
    const char* says;
  } cases[] = {
      {"Key=v\n" + ok, Severity::kError, 1, "before any section"},
      {"[Unit\nDescription=x\n" + ok, Severity::kError, 1, "missing its closing ']'"},
      {"[]\n" + ok, Severity::kError, 1, "empty section name"},
      {"[Unit] # note\nDescription=x\n" + ok, Severity::kError, 1, "text after ']'"},
      {ok + "noequals\n", Severity::kError, 3, "missing '='"},
      {ok + "=value\n", Severity::kError, 3, "without a key name"},
      {ok + "Description=\xff\n", Severity::kError, 3, "invalid UTF-8"},
      {ok + "Description=\xc0\xaf\n", Severity::kError, 3, "invalid UTF-8"},
      {ok + "Description=\xed\xa0\x80\n", Severity::kError, 3, "invalid UTF-8"},
      {ok + std::string("Description=a\0b\n", 16), Severity::kError, 3, "NUL byte"},
      {"[Service]\nExecStart=\"/bin/x\n", Severity::kError, 2, "unterminated double quote"},
      {ok + "TimeoutStartSec=99999999999999999999h\n", Severity::kError, 3, "too large"},
      {ok + "MemoryMax=99999999999E\n", Severity::kError, 3, "too large"},
      {ok + "Restart=sometimes\n", Severity::kError, 3, "not one of"},
      {ok + "CPUQuota=0%\n", Severity::kError, 3, "above 0%"},
      {ok + "CPUQuota=50\n", Severity::kError, 3, "not a percentage"},
      {ok + "RemainAfterExit=perhaps\n", Severity::kError, 3, "not a boolean"},
      {ok + "KillSignal=SIGFOO\n", Severity::kError, 3, "not a signal"},
      {ok + "TasksMax=lots\n", Severity::kError, 3, "not an integer"},
      {ok + "Environment=1BAD=x\n", Severity::kError, 3, "NAME=value"},
      {"[Unit]\nDescription=50%z off\n" + ok, Severity::kError, 2, "unknown specifier \"%z\""},
      {"[Unit]\nDescription=ends in %\n" + ok, Severity::kError, 2, "lone '%'"},
      {"[Unit]\nAfter=not a unit\n" + ok, Severity::kError, 2, "type suffix"},
      {".include /etc/x\n" + ok, Severity::kError, 1, ".include"},
      {"[Foo]\nx=y\n" + ok, Severity::kWarning, 1, "unknown section [Foo]"},
      {"[Unit]\ndescription=x\n" + ok, Severity::kWarning, 2, "did you mean \"Description\""},
      {"[Unit]\nWantedBy=multi-user.target\n" + ok, Severity::kWarning, 2, "belongs in [Install]"},
      {"[Service]\nExecStart=/bin/true \\", Severity::kWarning, 2, "ends with a '\\'"},
      {ok + "MemoryLimit=1G\n", Severity::kWarning, 3, "deprecated; use MemoryMax"},
      {ok + "ExecStart=/bin/false\n", Severity::kError, 3, "only with Type=oneshot"},
      {ok + "ExecStartPost=/bin/a ; /bin/b\nExecStart=/bin/c ; /bin/d\n", Severity::kError, 4,
       "only with Type=oneshot"},
      {"[Unit]\nDescription=x\n", Severity::kError, 0, "no ExecStart="},
      {"[Container]\nPodmanArgs=--privileged\n", Severity::kError, 0, "no Image="},
      {"[Container]\nImage=x\nPodmanArgs=--privileged\n", Severity::kWarning, 3, "ignored"},
  };
  for (const auto& c : cases) {
    auto r = Parse(c.text);
    bool found = false;
    for (const auto& d : r.diagnostics) {
      if (d.severity == c.sev && d.line == c.line && d.message.find(c.says) != std::string::npos) {
        found = true;
      }
    }
    EXPECT_TRUE(found) << "input:\n"
                       << c.text << "\nwanted " << SeverityName(c.sev) << " at line " << c.line
                       << " saying: " << c.says << "\ngot:\n"
                       << Dump(r.diagnostics);
    EXPECT_EQ(r.unit.has_value(), c.sev == Severity::kWarning) << c.text;
  }
}

TEST(ParseUnit, SuggestsTheNearestKey) {
  struct Case {
    const char* line;
    const char* suggestion;
  } cases[] = {
      {"ExecStartPRE=/bin/x", "ExecStartPre"},
      {"execstart=/bin/x", "ExecStart"},
      {"ExecStrat=/bin/x", "ExecStart"},
      {"TimeoutStartSex=5", "TimeoutStartSec"},
      {"RestrtSec=1", "RestartSec"},
      {"Enviroment=A=1", "Environment"},
      {"MemroyMax=1G", "MemoryMax"},
      {"CPUQuote=5%", "CPUQuota"},
      {"WorkingDirectry=/", "WorkingDirectory"},
      {"Xyzzy=1", ""},
      {"Type2=simple", "Type"},
      {"ExecStartPost2=/bin/x", "ExecStartPost"},
  };
  for (const auto& c : cases) {
    auto r = Parse(std::string("[Service]\nExecStart=/bin/true\n") + c.line + "\n");
    ASSERT_EQ(r.diagnostics.size(), 1u) << c.line << Dump(r.diagnostics);
    EXPECT_EQ(r.diagnostics[0].suggestion, c.suggestion) << c.line;
    EXPECT_EQ(r.diagnostics[0].severity, Severity::kWarning);
  }
}

TEST(ParseUnit, ColumnsPointAtTheProblem) {
  auto r = Parse("[Service]\nExecStart=/bin/true\n  TimeoutStopSec = soon\n");
  ASSERT_EQ(r.diagnostics.size(), 1u) << Dump(r.diagnostics);
  EXPECT_EQ(r.diagnostics[0].line, 3);
  EXPECT_EQ(r.diagnostics[0].column, 20);  // where "soon" starts
  EXPECT_EQ(r.diagnostics[0].key, "TimeoutStopSec");
  r = Parse("[Service]\nExecStart=/bin/true\nDescription=ok \xfe\n");
  ASSERT_FALSE(r.diagnostics.empty());
  EXPECT_EQ(r.diagnostics[0].column, 16);
}

TEST(ParseUnit, QuietForValidSystemdSyntax) {
  const char* cases[] = {
      "[Service]\nExecStart=/bin/true\n[X-Mine]\nAnything=goes\n",
      "[Service]\nExecStart=/bin/true\n[Socket]\nListenStream=80\nWhatever=1\n",
      "# comment\n; also a comment\n   # indented comment\n[Service]\nExecStart=/bin/true\n",
      "\xEF\xBB\xBF[Service]\nExecStart=/bin/true\n",
      "[Service]\r\nExecStart=/bin/true\r\n",
      "[Service]\nType=oneshot\nExecStart=/bin/a\nExecStart=/bin/b ; /bin/c\n",
      "[Service]\nExecStart=/bin/a\nExecStart=\nExecStart=/bin/b\n",  // reset, then one
      "[Service]\nExecStart=/bin/true\nCPUQuota=150%\nMemoryMax=50%\nTasksMax=infinity\n",
      "[Unit]\nDescription=100%% sure, %n on %H\n[Service]\nExecStart=/bin/echo %i\n",
      "[Service]\nExecStop=/bin/true\n",
  };
  for (const char* c : cases) {
    auto r = Parse(c);
    EXPECT_TRUE(r.diagnostics.empty()) << c << "\n" << Dump(r.diagnostics);
    EXPECT_TRUE(r.unit.has_value()) << c;
  }
}

TEST(ParseUnit, ContinuationCommentsAndEscapedBackslash) {
  auto r = Parse(
      "[Unit]\nDescription=a \\\n# a comment inside is skipped\n  b\n"
      "Documentation=man:x(1)\\\\\n[Service]\nExecStart=/bin/sh -c \\\n  \"echo hi\"\n");
  ASSERT_TRUE(r.unit) << Dump(r.diagnostics);
  EXPECT_EQ(*r.unit->Get("Unit", "Description"), "a    b");
  EXPECT_EQ(*r.unit->Get("Unit", "Documentation"), "man:x(1)\\\\");
  auto cmds = r.unit->Exec("ExecStart", SpecifierContext{});
  ASSERT_TRUE(cmds.ok());
  EXPECT_EQ((*cmds)[0].argv, (std::vector<std::string>{"/bin/sh", "-c", "echo hi"}));
}

TEST(ParseUnit, RepeatedKeysAccumulateAndEmptyResets) {
  auto r = Parse("[Unit]\nAfter=a.service\nAfter=b.service x.service\nAfter=\nAfter=c.service\n" +
                 std::string("[Service]\nExecStart=/bin/true\nDescription=ignored\n"));
  ASSERT_TRUE(r.unit) << Dump(r.diagnostics);
  auto after = r.unit->GetAll("Unit", "After");
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0], "c.service");
  EXPECT_EQ(r.unit->Deps().after, std::vector<std::string>{"c.service"});
  EXPECT_EQ(r.unit->options().size(), 6u);  // the canonical form keeps every assignment
  EXPECT_EQ(r.unit->Get("Unit", "After"), "c.service");
  EXPECT_FALSE(r.unit->Get("Unit", "Before").has_value());
}

TEST(Canonical, GroupsSectionsAndRoundTrips) {
  auto r =
      Parse("[Unit]\nDescription=Hello\n[Service]\nExecStart=/bin/true\n[Unit]\nAfter=a.service\n");
  ASSERT_TRUE(r.unit) << Dump(r.diagnostics);
  std::vector<UnitOption> want = {{"Unit", "Description", "Hello"},
                                  {"Unit", "After", "a.service"},
                                  {"Service", "ExecStart", "/bin/true"}};
  EXPECT_EQ(r.unit->options(), want);
  std::string text = Serialize(want);
  EXPECT_EQ(text, "[Unit]\nDescription=Hello\nAfter=a.service\n\n[Service]\nExecStart=/bin/true\n");
  auto again = Parse(text);
  ASSERT_TRUE(again.unit);
  EXPECT_EQ(again.unit->options(), want);
  // SHA-1 of the text above (fleet's unit hash), checked with `sha1sum`.
  EXPECT_EQ(ContentHash(want), "bde085eede20f0e8ff5b99c4c3912d54820345fd");
  EXPECT_EQ(ContentHash({{"Unit", "Description", "x"}}),
            "9fcce57bebda098e6fb9d87b2543194856511ef2");
  EXPECT_NE(ContentHash({{"Unit", "Description", "y"}}),
            ContentHash({{"Unit", "Description", "x"}}));
}

TEST(Canonical, ValueEndingInBackslashSurvives) {
  std::vector<UnitOption> opts = {{"Service", "ExecStart", "/bin/true"},
                                  {"Unit", "Description", "odd\\"},
                                  {"Unit", "Documentation", "even\\\\"}};
  auto r = ParseOptions(opts, Svc());
  ASSERT_TRUE(r.unit) << Dump(r.diagnostics);
  auto again = Parse(Serialize(r.unit->options()));
  ASSERT_TRUE(again.unit);
  EXPECT_EQ(again.unit->options(), r.unit->options());
  EXPECT_EQ(*again.unit->Get("Unit", "Description"), "odd\\");
}

TEST(ParseOptions, RejectsOptionsThatCannotBeWritten) {
  struct Case {
    UnitOption o;
    const char* says;
  } cases[] = {
      {{"Service", "ExecStart", "/bin/a\n[Evil]"}, "value must be"},
      {{"Service", "Exec=Start", "/bin/a"}, "name must be"},
      {{"", "ExecStart", "/bin/a"}, "section must be"},
      {{"Service", " ExecStart", "/bin/a"}, "name must be"},
      {{"Service", "ExecStart", " /bin/a"}, "value must be"},
      {{"Service", "#ExecStart", "/bin/a"}, "name must be"},
  };
  for (const auto& c : cases) {
    auto r = ParseOptions({c.o}, Svc());
    EXPECT_FALSE(r.unit.has_value());
    ASSERT_FALSE(r.diagnostics.empty());
    EXPECT_NE(r.diagnostics[0].message.find(c.says), std::string::npos) << Dump(r.diagnostics);
  }
  auto good = ParseOptions({{"Service", "ExecStart", "/bin/a"}}, Svc());
  EXPECT_TRUE(good.unit.has_value()) << Dump(good.diagnostics);
}

// Hostile input: every case must finish quickly with a clear diagnostic and no crash.
TEST(ParseUnit, HostileInputStaysLinearAndExplained) {
  auto timed = [](const std::string& text) {
    auto start = std::chrono::steady_clock::now();
    auto r = Parse(text);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    EXPECT_LT(ms, 3000) << "took " << ms << " ms for " << text.size() << " bytes";
    return r;
  };
  // A 10 MB line.
  auto r = timed("[Service]\nExecStart=/bin/true\nDescription=" + std::string(10 << 20, 'x'));
  ASSERT_FALSE(r.diagnostics.empty());
  EXPECT_NE(r.diagnostics[0].message.find("over 1 MiB"), std::string::npos);
  EXPECT_EQ(r.diagnostics[0].line, 3);
  // Many sections, many unknown keys, many continuations, many specifiers, long words.
  std::string many_sections, unknown_keys, continued = "[Unit]\nDescription=a", specifiers;
  for (int i = 0; i < 50000; ++i) many_sections += "[X-s" + std::to_string(i) + "]\nk=v\n";
  for (int i = 0; i < 50000; ++i) unknown_keys += "ExecStartPRE" + std::to_string(i) + "=x\n";
  for (int i = 0; i < 50000; ++i) continued += " \\\n#c\nb";
  for (int i = 0; i < 100000; ++i) specifiers += "%n%i%%";
  timed(many_sections + "[Service]\nExecStart=/bin/true\n");
  r = timed("[Service]\nExecStart=/bin/true\n" + unknown_keys);
  EXPECT_EQ(r.diagnostics.size(), 50000u);
  timed(continued + "\n[Service]\nExecStart=/bin/true\n");
  timed("[Unit]\nDescription=" + specifiers + "\n[Service]\nExecStart=/bin/true\n");
  timed("[Service]\nExecStart=/bin/true " + std::string(900000, '"') + "\n");
  timed("[X-Fleet]\nMachineMetadata=" + [] {
    std::string s;
    for (int i = 0; i < 30000; ++i) s += "k" + std::to_string(i) + "=v ";
    return s;
  }() + "\n[Service]\nExecStart=/bin/true\n");
  timed(
      "[X-Fleet]\nMachineOf=" +
      [] {
        std::string s;
        for (int i = 0; i < 3000; ++i) s += "a" + std::to_string(i) + ".service ";
        return s;
      }() +
      "\nConflicts=" +
      [] {
        std::string s;
        for (int i = 0; i < 3000; ++i) s += "*b*c*d*e*" + std::to_string(i) + " ";
        return s;
      }() +
      "\n[Service]\nExecStart=/bin/true\n");
}

TEST(ParseUnit, BinaryGarbageNeverCrashes) {
  std::mt19937 rng(42);
  for (int round = 0; round < 300; ++round) {
    std::string text(static_cast<size_t>(rng() % 2000), '\0');
    for (char& c : text) c = static_cast<char>(rng());
    if (round % 2) text = "[Service]\nExecStart=/bin/true\n" + text;
    auto r = Parse(text);
    for (const auto& d : r.diagnostics) {
      EXPECT_FALSE(d.message.empty());
      EXPECT_GE(d.line, 0);
    }
  }
}

}  // namespace
}  // namespace fjord::unit
