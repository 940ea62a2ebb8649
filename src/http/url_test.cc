#include "http/url.h"

#include <gtest/gtest.h>

namespace fjord::http {
namespace {

TEST(UrlTest, PercentDecode) {
  EXPECT_EQ(*PercentDecode("hello%401.service"), "hello@1.service");
  EXPECT_EQ(*PercentDecode("a%2Fb%2fc"), "a/b/c");
  EXPECT_EQ(*PercentDecode("a+b"), "a+b");
  EXPECT_EQ(*PercentDecode("a+b", /*plus_is_space=*/true), "a b");
  EXPECT_EQ(*PercentDecode(""), "");
  for (const char* bad : {"%", "%4", "%zz", "abc%g1", "%%"}) {
    auto r = PercentDecode(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("two hex digits"), std::string::npos)
        << r.status().ToString();
  }
}

TEST(UrlTest, PercentEncodeRoundTrips) {
  EXPECT_EQ(PercentEncode("hello@1.service"), "hello%401.service");
  EXPECT_EQ(PercentEncode("a b/c?d=e&f"), "a%20b%2Fc%3Fd%3De%26f");
  EXPECT_EQ(PercentEncode("A-z_0.9~"), "A-z_0.9~");
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  EXPECT_EQ(*PercentDecode(PercentEncode(all)), all);
}

TEST(UrlTest, QueryParams) {
  auto q = QueryParams::Parse("a=1&b=x%20y&b=z+w&flag&&empty=");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->Get("a"), "1");
  EXPECT_EQ(q->GetAll("b"), (std::vector<std::string>{"x y", "z w"}));
  EXPECT_EQ(q->Get("flag"), "");
  EXPECT_EQ(q->Get("empty"), "");
  EXPECT_FALSE(q->Has("missing"));
  EXPECT_EQ(q->items().size(), 5u);

  auto bad = QueryParams::Parse("ok=1&token=%zz");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("query parameter `token`"), std::string::npos)
      << bad.status().ToString();

  QueryParams built;
  built.Add("nextPageToken", "a b&c");
  built.Add("x", "1");
  EXPECT_EQ(built.Encode(), "nextPageToken=a%20b%26c&x=1");
  EXPECT_EQ(QueryParams::Parse(built.Encode())->Get("nextPageToken"), "a b&c");
}

TEST(UrlTest, BaseUrl) {
  struct Case {
    const char* in;
    const char* host;
    int port;
    const char* prefix;
  } good[] = {
      {"http://127.0.0.1:7777", "127.0.0.1", 7777, ""},
      {"http://localhost", "localhost", 80, ""},
      {"http://example.org:1/api/", "example.org", 1, "/api"},
      {"http://[::1]:8080", "::1", 8080, ""},
  };
  for (const auto& c : good) {
    auto u = BaseUrl::Parse(c.in);
    ASSERT_TRUE(u.ok()) << c.in << ": " << u.status().ToString();
    EXPECT_EQ(u->host, c.host);
    EXPECT_EQ(u->port, c.port);
    EXPECT_EQ(u->prefix, c.prefix);
  }
  EXPECT_EQ(BaseUrl::Parse("http://[::1]:8080")->ToString(), "http://[::1]:8080");

  struct Bad {
    const char* in;
    const char* why;
  } bad[] = {
      {"127.0.0.1:7777", "must start with http://"},
      {"https://a:1", "https is not supported"},
      {"http://", "missing host"},
      {"http://:80", "missing host"},
      {"http://a:0", "port must be"},
      {"http://a:70000", "port must be"},
      {"http://a:", "port must be"},
      {"http://a:12x", "port must be"},
      {"http://u@a:1", "user info"},
      {"http://a/x?y", "query"},
  };
  for (const auto& c : bad) {
    auto u = BaseUrl::Parse(c.in);
    ASSERT_FALSE(u.ok()) << c.in;
    EXPECT_NE(u.status().message().find(c.why), std::string::npos) << u.status().ToString();
    EXPECT_NE(u.status().message().find("expected e.g. http://"), std::string::npos);
  }
}

}  // namespace
}  // namespace fjord::http
