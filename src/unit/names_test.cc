#include <gtest/gtest.h>

#include "unit/unit.h"

namespace fjord::unit {
namespace {

TEST(UnitName, ParsesPrefixInstanceType) {
  struct Case {
    const char* in;
    const char* prefix;
    const char* instance;
    const char* type;
    bool is_template, is_instance;
  } cases[] = {
      {"hello@.service", "hello", "", "service", true, false},
      {"hello@1.service", "hello", "1", "service", false, true},
      {"web.service", "web", "", "service", false, false},
      {"db@a@b.socket", "db", "a@b", "socket", false, true},
      {"x:y_z-1.2.timer", "x:y_z-1.2", "", "timer", false, false},
      {"getty@tty\\x2d1.service", "getty", "tty\\x2d1", "service", false, true},
  };
  for (const auto& c : cases) {
    auto n = UnitName::Parse(c.in);
    ASSERT_TRUE(n.ok()) << c.in << ": " << n.status().ToString();
    EXPECT_EQ(n->str(), c.in);
    EXPECT_EQ(n->prefix(), c.prefix) << c.in;
    EXPECT_EQ(n->instance(), c.instance) << c.in;
    EXPECT_EQ(n->type(), c.type) << c.in;
    EXPECT_EQ(n->is_template(), c.is_template) << c.in;
    EXPECT_EQ(n->is_instance(), c.is_instance) << c.in;
  }
}

TEST(UnitName, RejectsWithReason) {
  struct Case {
    std::string in;
    const char* why;
  } cases[] = {
      {"", "empty"},
      {"hello", "type suffix"},
      {".service", "type suffix"},
      {"hello.unknown", "unknown type"},
      {"@1.service", "empty name"},
      {"hel lo.service", "invalid character"},
      {"a/b.service", "invalid character"},
      {"caf\xc3\xa9.service", "invalid character"},
      {std::string(250, 'a') + ".service", "longer than 255"},
  };
  for (const auto& c : cases) {
    auto n = UnitName::Parse(c.in);
    ASSERT_FALSE(n.ok()) << c.in;
    EXPECT_NE(n.status().message().find(c.why), std::string_view::npos)
        << c.in << ": " << n.status().message();
  }
}

TEST(UnitName, InstantiateAndTemplate) {
  auto t = *UnitName::Parse("hello@.service");
  auto i = t.Instantiate("1");
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(i->str(), "hello@1.service");
  EXPECT_EQ(i->Template().str(), "hello@.service");
  EXPECT_EQ(i->Template(), t);
  EXPECT_FALSE(t.Instantiate("a b").ok());
  EXPECT_FALSE(t.Instantiate("").ok());
  EXPECT_FALSE(i->Instantiate("2").ok());  // not a template
  auto plain = *UnitName::Parse("web.service");
  EXPECT_EQ(plain.Template(), plain);
}

TEST(UnitNameEscape, RoundTripsLikeSystemdEscape) {
  struct Case {
    const char* raw;
    const char* escaped;
  } cases[] = {
      {"/var/lib/x y", "-var-lib-x\\x20y"},
      {".hidden", "\\x2ehidden"},
      {"a-b", "a\\x2db"},
      {"plain_name:1.2", "plain_name:1.2"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(UnitNameEscape(c.raw), c.escaped);
    auto back = UnitNameUnescape(c.escaped);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, c.raw);
  }
  EXPECT_FALSE(UnitNameUnescape("bad\\x4").ok());
  EXPECT_FALSE(UnitNameUnescape("bad\\q00").ok());
}

TEST(ExpandSpecifiers, UnitHostAndErrors) {
  SpecifierContext ctx;
  ctx.unit = *UnitName::Parse("web-app@my\\x2dinst.service");
  ctx.hostname = "node1";
  ctx.machine_id = "0123456789abcdef0123456789abcdef";
  ctx.boot_id = "bootid";
  struct Case {
    const char* in;
    const char* want;
  } cases[] = {
      {"%n", "web-app@my\\x2dinst.service"},
      {"%N", "web-app@my\\x2dinst"},
      {"%p", "web-app"},
      {"%P", "web/app"},
      {"%i", "my\\x2dinst"},
      {"%I", "my-inst"},
      {"%j", "app"},
      {"%f", "/my-inst"},
      {"%H/%m/%b", "node1/0123456789abcdef0123456789abcdef/bootid"},
      {"100%%", "100%"},
      {"no specifiers", "no specifiers"},
  };
  for (const auto& c : cases) {
    auto r = ExpandSpecifiers(c.in, ctx);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.status().ToString();
    EXPECT_EQ(*r, c.want) << c.in;
  }
  struct Bad {
    const char* in;
    const char* why;
  } bad[] = {{"%z", "unknown specifier %z"}, {"50%", "lone '%'"}, {"%u", "cannot expand"}};
  for (const auto& c : bad) {
    auto r = ExpandSpecifiers(c.in, ctx);
    ASSERT_FALSE(r.ok()) << c.in;
    EXPECT_NE(r.status().message().find(c.why), std::string_view::npos) << r.status().message();
  }
  SpecifierContext no_host;
  no_host.unit = ctx.unit;
  auto r = ExpandSpecifiers("%H", no_host);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("host name"), std::string_view::npos);
  EXPECT_FALSE(ExpandSpecifiers("%n", SpecifierContext{}).ok());
}

}  // namespace
}  // namespace fjord::unit
