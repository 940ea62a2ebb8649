#include <gtest/gtest.h>

#include "unit/unit.h"

namespace fjord::unit {
namespace {

using Argv = std::vector<std::string>;

TEST(ParseExecLine, WordsAndQuoting) {
  struct Case {
    const char* in;
    const char* path;
    Argv argv;
  } cases[] = {
      {"/usr/bin/docker run --name x",
       "/usr/bin/docker",
       {"/usr/bin/docker", "run", "--name", "x"}},
      {"/bin/sh -c \"echo hello world\"", "/bin/sh", {"/bin/sh", "-c", "echo hello world"}},
      {"/bin/echo 'single quoted' \"a\\\"b\"", "/bin/echo", {"/bin/echo", "single quoted", "a\"b"}},
      {"/bin/printf \"a\\tb\\n\"", "/bin/printf", {"/bin/printf", "a\tb\n"}},
      {"/bin/echo \\x41 \\101 \\u00e9 \\U0001F600",
       "/bin/echo",
       {"/bin/echo", "A", "A", "\xc3\xa9", "\xf0\x9f\x98\x80"}},
      {"/bin/x --opt=\"a b\"c", "/bin/x", {"/bin/x", "--opt=a bc"}},
      {"/bin/x \\d \\x0 \\s", "/bin/x", {"/bin/x", "\\d", "\\x0", " "}},
      {"/bin/echo \\;", "/bin/echo", {"/bin/echo", ";"}},
      {"  /bin/true  ", "/bin/true", {"/bin/true"}},
      {"true", "true", {"true"}},
      {"/bin/x ''", "/bin/x", {"/bin/x", ""}},
  };
  for (const auto& c : cases) {
    auto r = ParseExecLine(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.status().ToString();
    ASSERT_EQ(r->size(), 1u) << c.in;
    EXPECT_EQ((*r)[0].path, c.path) << c.in;
    EXPECT_EQ((*r)[0].argv, c.argv) << c.in;
  }
}

TEST(ParseExecLine, Prefixes) {
  struct Case {
    const char* in;
    bool dash, at, colon, plus, bang, bangbang;
    Argv argv;
  } cases[] = {
      {"-/usr/bin/docker kill nginx-lb",
       true,
       false,
       false,
       false,
       false,
       false,
       {"/usr/bin/docker", "kill", "nginx-lb"}},
      {"@/bin/sleep sleeper 10", false, true, false, false, false, false, {"sleeper", "10"}},
      {":/bin/echo $X", false, false, true, false, false, false, {"/bin/echo", "$X"}},
      {"+/bin/true", false, false, false, true, false, false, {"/bin/true"}},
      {"!/bin/true", false, false, false, false, true, false, {"/bin/true"}},
      {"!!/bin/true", false, false, false, false, false, true, {"/bin/true"}},
      {"-@:+/bin/x y", true, true, true, true, false, false, {"y"}},
      {"@-!!/bin/x y", true, true, false, false, false, true, {"y"}},
  };
  for (const auto& c : cases) {
    auto r = ParseExecLine(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.status().ToString();
    const ExecCommand& e = (*r)[0];
    EXPECT_EQ(e.ignore_failure, c.dash) << c.in;
    EXPECT_EQ(e.separate_argv0, c.at) << c.in;
    EXPECT_EQ(e.no_env_expand, c.colon) << c.in;
    EXPECT_EQ(e.full_privileges, c.plus) << c.in;
    EXPECT_EQ(e.no_setuid, c.bang) << c.in;
    EXPECT_EQ(e.ambient_magic, c.bangbang) << c.in;
    EXPECT_EQ(e.argv, c.argv) << c.in;
  }
}

TEST(ParseExecLine, SeveralCommands) {
  auto r = ParseExecLine("/bin/a 1 ; -/bin/b 2 ;  /bin/c");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].argv, (Argv{"/bin/a", "1"}));
  EXPECT_TRUE((*r)[1].ignore_failure);
  EXPECT_EQ((*r)[1].argv, (Argv{"/bin/b", "2"}));
  EXPECT_EQ((*r)[2].path, "/bin/c");
}

TEST(ParseExecLine, RejectsWithReason) {
  struct Case {
    const char* in;
    const char* why;
  } cases[] = {
      {"/bin/sh -c \"unterminated", "unterminated double quote"},
      {"/bin/sh -c 'oops", "unterminated single quote"},
      {"-", "no command"},
      {"relative/path arg", "neither an absolute path"},
      {"@/bin/x", "argv[0]"},
      {"/bin/a ; ; /bin/b", "empty command"},
      {"+!/bin/x", "neither an absolute path"},  // '!' after '+' is part of the path
      {"--/bin/x", "neither an absolute path"},  // a second '-' too
  };
  for (const auto& c : cases) {
    auto r = ParseExecLine(c.in);
    ASSERT_FALSE(r.ok()) << c.in;
    EXPECT_NE(r.status().message().find(c.why), std::string_view::npos)
        << c.in << ": " << r.status().message();
  }
}

TEST(ParseEnvironment, QuotedAssignments) {
  auto r = ParseEnvironment("A=1 \"B=two words\" C= 'D=x\\ty'");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<EnvVar> want = {{"A", "1"}, {"B", "two words"}, {"C", ""}, {"D", "x\ty"}};
  EXPECT_EQ(*r, want);
  for (const char* bad : {"1A=x", "novalue", "\"A=unterminated", "A-B=1", "=x"}) {
    EXPECT_FALSE(ParseEnvironment(bad).ok()) << bad;
  }
}

TEST(ExpandExecArgv, SystemdVariableRules) {
  std::vector<EnvVar> env = {{"A", "x y"}, {"B", "z"}, {"Q", "\"a b\" c"}, {"B", "zz"}};
  Argv in = {"/bin/e", "$A", "${B}c", "$$", "pre$B", "${NOPE}-", "$NOPE", "$Q", "${A}", "$"};
  Argv want = {"/bin/e", "x", "y", "zzc", "$", "pre$B", "-", "a b", "c", "x y", "$"};
  EXPECT_EQ(ExpandExecArgv(in, env), want);
}

}  // namespace
}  // namespace fjord::unit
