#include <gtest/gtest.h>

#include "http/server.h"

namespace fjord::http {
namespace {

Handler Tagged(std::string tag) {
  return [tag](const Request&, Responder r) { r.Respond(Response::Text(200, tag)); };
}

std::vector<std::string> Segs(std::string_view path) { return *SplitPath(path); }

TEST(RouterTest, SplitPathDecodesEachSegment) {
  EXPECT_EQ(Segs("/"), std::vector<std::string>{});
  EXPECT_EQ(Segs("/v1/units/hello%401.service"),
            (std::vector<std::string>{"v1", "units", "hello@1.service"}));
  // An escaped '/' stays inside its segment.
  EXPECT_EQ(Segs("/v1/units/a%2Fb"), (std::vector<std::string>{"v1", "units", "a/b"}));
  EXPECT_EQ(Segs("/v1/units/"), (std::vector<std::string>{"v1", "units", ""}));
  EXPECT_FALSE(SplitPath("v1").ok());
  EXPECT_FALSE(SplitPath("").ok());
  EXPECT_FALSE(SplitPath("/a/%zz").ok());
  auto nul = SplitPath("/a%00b");
  ASSERT_FALSE(nul.ok());
  EXPECT_NE(nul.status().message().find("NUL"), std::string::npos);
}

TEST(RouterTest, MatchesAndCapturesParams) {
  Router r;
  ASSERT_TRUE(r.Add("GET", "/v1/units", Tagged("list")).ok());
  ASSERT_TRUE(r.Add("GET", "/v1/units/{name}", Tagged("get")).ok());
  ASSERT_TRUE(r.Add("PUT", "/v1/units/{name}", Tagged("put")).ok());
  ASSERT_TRUE(r.Add("GET", "/v1/units/{name}/logs", Tagged("logs")).ok());
  ASSERT_TRUE(r.Add("GET", "/v1/units/special", Tagged("special")).ok());
  ASSERT_TRUE(r.Add("GET", "/static/*", Tagged("static")).ok());
  ASSERT_TRUE(r.Add("GET", "/", Tagged("root")).ok());

  auto m = r.Resolve("GET", Segs("/v1/units/hello%401.service"));
  ASSERT_EQ(m.kind, Router::Match::kFound);
  EXPECT_EQ(m.params.at("name"), "hello@1.service");

  m = r.Resolve("GET", Segs("/v1/units/a.service/logs"));
  ASSERT_EQ(m.kind, Router::Match::kFound);
  EXPECT_EQ(m.params.at("name"), "a.service");

  // The literal beats the parameter regardless of registration order.
  m = r.Resolve("GET", Segs("/v1/units/special"));
  ASSERT_EQ(m.kind, Router::Match::kFound);
  EXPECT_TRUE(m.params.empty());

  m = r.Resolve("GET", Segs("/static/css/a.css"));
  ASSERT_EQ(m.kind, Router::Match::kFound);
  EXPECT_EQ(m.params.at("*"), "css/a.css");
  m = r.Resolve("GET", Segs("/static"));
  ASSERT_EQ(m.kind, Router::Match::kFound);
  EXPECT_EQ(m.params.at("*"), "");

  EXPECT_EQ(r.Resolve("GET", Segs("/")).kind, Router::Match::kFound);
  EXPECT_EQ(r.Resolve("GET", Segs("/v1/units/")).kind, Router::Match::kNotFound);
  EXPECT_EQ(r.Resolve("GET", Segs("/v1/nope")).kind, Router::Match::kNotFound);
  EXPECT_EQ(r.Resolve("GET", Segs("/v1/units/a/b/c")).kind, Router::Match::kNotFound);

  m = r.Resolve("DELETE", Segs("/v1/units/x"));
  ASSERT_EQ(m.kind, Router::Match::kMethodNotAllowed);
  EXPECT_EQ(m.allowed, (std::vector<std::string>{"GET", "PUT"}));
}

TEST(RouterTest, RejectsBadPatterns) {
  Router r;
  struct Case {
    const char* pattern;
    const char* why;
  } cases[] = {
      {"v1", "must start with '/'"}, {"/a/*/b", "must be the last"}, {"/a/{}", "bad parameter"},
      {"/a//b", "empty segment"},    {"/a/x{y}", "mixes text"},      {"", "must start with '/'"},
  };
  for (const auto& c : cases) {
    auto st = r.Add("GET", c.pattern, Tagged("x"));
    ASSERT_FALSE(st.ok()) << c.pattern;
    EXPECT_NE(st.message().find(c.why), std::string::npos) << st.ToString();
  }
  ASSERT_TRUE(r.Add("GET", "/a", Tagged("x")).ok());
  auto dup = r.Add("GET", "/a", Tagged("y"));
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.message().find("duplicate"), std::string::npos);
  EXPECT_FALSE(r.Add("GET", "/b", Handler()).ok());
}

}  // namespace
}  // namespace fjord::http
