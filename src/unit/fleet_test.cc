// [X-Fleet] read as fleet reads it, with units in the style of fleet's own fixtures.
#include <gtest/gtest.h>

#include "unit/unit.h"

namespace fjord::unit {
namespace {

std::string Dump(const std::vector<Diagnostic>& d) {
  std::string out;
  for (const auto& x : d) out += x.ToString() + "\n";
  return out;
}

ParseResult ParseFleet(const std::string& xfleet, const char* name = "web.service") {
  std::string text =
      "[Unit]\nDescription=fixture\n\n[Service]\nExecStart=/usr/bin/sleep 1d\n\n"
      "[X-Fleet]\n" +
      xfleet;
  return ParseUnit(text, name, *UnitName::Parse(name));
}

using Strings = std::vector<std::string>;

TEST(FleetRequirements, Fixtures) {
  {
    auto r = ParseFleet("Global=true\nMachineMetadata=disk=ssd\n");
    ASSERT_TRUE(r.unit) << Dump(r.diagnostics);
    EXPECT_TRUE(r.unit->fleet().global);
    ASSERT_EQ(r.unit->fleet().metadata.size(), 1u);
    EXPECT_EQ(r.unit->fleet().metadata[0].key, "disk");
  }
  {
    auto r = ParseFleet("Conflicts=foo*.service bar.service\nConflicts=\"baz@*.service\"\n");
    ASSERT_TRUE(r.unit) << Dump(r.diagnostics);
    EXPECT_EQ(r.unit->fleet().conflicts, (Strings{"foo*.service", "bar.service", "baz@*.service"}));
    EXPECT_FALSE(r.unit->fleet().global);
  }
  {
    auto r = ParseFleet("MachineOf=db.service\nReplaces=old.service\n");
    ASSERT_TRUE(r.unit) << Dump(r.diagnostics);
    EXPECT_EQ(r.unit->fleet().machine_of, Strings{"db.service"});
    EXPECT_EQ(r.unit->fleet().replaces, Strings{"old.service"});
  }
  {
    auto r = ParseFleet("MachineID=0123456789abcdef0123456789abcdef\n");
    ASSERT_TRUE(r.unit) << Dump(r.diagnostics);
    EXPECT_EQ(r.unit->fleet().machine_id, "0123456789abcdef0123456789abcdef");
  }
}

TEST(FleetRequirements, MetadataOrWithinKeyAndAcrossKeys) {
  auto r = ParseFleet(
      "MachineMetadata=region=us-east region=us-west\n"
      "MachineMetadata=\"disk=ssd\"\n"
      "MachineMetadata=region=eu-west region=us-east\n");
  ASSERT_TRUE(r.unit) << Dump(r.diagnostics);
  const auto& m = r.unit->fleet().metadata;
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].key, "region");
  EXPECT_EQ(m[0].values, (Strings{"us-east", "us-west", "eu-west"}));  // any of them (OR)
  EXPECT_EQ(m[1].key, "disk");                                         // and this key too
  EXPECT_EQ(m[1].values, Strings{"ssd"});
  auto bad = ParseFleet("MachineMetadata=region\n");
  EXPECT_FALSE(bad.unit);
  ASSERT_FALSE(bad.diagnostics.empty());
  EXPECT_NE(bad.diagnostics[0].message.find("not key=value"), std::string::npos);
}

TEST(FleetRequirements, TemplateSpecifiersExpandWithTheInstanceName) {
  auto r = ParseFleet("Conflicts=%p@*.service\nMachineOf=%p-db@%i.service\n", "hello@3.service");
  ASSERT_TRUE(r.unit) << Dump(r.diagnostics);
  EXPECT_EQ(r.unit->fleet().conflicts, Strings{"hello@*.service"});
  EXPECT_EQ(r.unit->fleet().machine_of, Strings{"hello-db@3.service"});
  auto host = ParseFleet("MachineID=%H\n");
  EXPECT_FALSE(host.unit);
}

TEST(FleetRequirements, InvalidCombinationsAsFleetRefusesThem) {
  struct Case {
    const char* xfleet;
    const char* says;
    int line;  // in ParseFleet's text: the X-Fleet body starts at line 8
  } cases[] = {
      {"MachineID=abc\nMachineOf=db.service\n", "MachineID= cannot be used with MachineOf=", 9},
      {"MachineID=abc\nConflicts=x*\n", "MachineID= cannot be used with Conflicts=", 9},
      {"Global=true\nMachineID=abc\n", "MachineID= cannot be used with Global=", 9},
      {"MachineID=abc\nReplaces=x.service\n", "MachineID= cannot be used with Replaces=", 9},
      {"Global=true\nMachineOf=db.service\n", "Global= cannot be used with MachineOf=", 9},
      {"Replaces=x.service\nGlobal=true\n", "Global= cannot be used with Replaces=", 9},
      {"Conflicts=a*\nReplaces=b.service\n", "Conflicts= cannot be used with Replaces=", 9},
      {"MachineOf=db.service\nConflicts=d*\n", "MachineOf=db.service matches Conflicts=d*", 8},
      {"Global=maybe\n", "not a boolean", 8},
      {"Machineid=abc\n", "did you mean \"MachineID\"", 8},
      {"MachineOf=not-a-unit\n", "type suffix", 8},
  };
  for (const auto& c : cases) {
    auto r = ParseFleet(c.xfleet);
    EXPECT_FALSE(r.unit.has_value()) << c.xfleet;
    bool found = false;
    for (const auto& d : r.diagnostics) {
      found |= d.severity == Severity::kError && d.line == c.line &&
               d.message.find(c.says) != std::string::npos;
    }
    EXPECT_TRUE(found) << c.xfleet << "\n" << Dump(r.diagnostics);
  }
  // What fleet allows: Global with MachineMetadata and Conflicts; MachineOf with Replaces
  // when they do not match.
  for (const char* ok :
       {"Global=true\nMachineMetadata=a=b\nConflicts=x*.service\n",
        "MachineOf=db.service\nReplaces=old.service\n", "Global=false\nMachineID=abc\n"}) {
    auto r = ParseFleet(ok);
    EXPECT_TRUE(r.unit.has_value()) << ok << Dump(r.diagnostics);
  }
}

TEST(FleetRequirements, DeprecatedAliasesWarnAndCount) {
  auto r = ParseFleet(
      "X-ConditionMachineOf=db.service\nX-Conflicts=web*.service\n"
      "X-ConditionMachineMetadata=role=web\n");
  ASSERT_TRUE(r.unit) << Dump(r.diagnostics);
  EXPECT_EQ(r.unit->fleet().machine_of, Strings{"db.service"});
  EXPECT_EQ(r.unit->fleet().conflicts, Strings{"web*.service"});
  ASSERT_EQ(r.unit->fleet().metadata.size(), 1u);
  ASSERT_EQ(r.diagnostics.size(), 3u);
  const char* news[] = {"use MachineOf", "use Conflicts", "use MachineMetadata"};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r.diagnostics[i].severity, Severity::kWarning);
    EXPECT_NE(r.diagnostics[i].message.find(news[i]), std::string::npos) << Dump(r.diagnostics);
  }
  auto id = ParseFleet("X-ConditionMachineID=abc\n");
  ASSERT_TRUE(id.unit);
  EXPECT_EQ(id.unit->fleet().machine_id, "abc");
}

TEST(FleetRequirements, GlobalNeedsTheExactWordTrue) {
  auto r = ParseFleet("Global=yes\n");
  ASSERT_TRUE(r.unit);
  EXPECT_FALSE(r.unit->fleet().global);  // as fleet: only "true" is true
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_NE(r.diagnostics[0].message.find("write Global=true"), std::string::npos);
}

TEST(GlobMatch, GoPathMatchRules) {
  struct Case {
    const char* pattern;
    const char* name;
    bool want;
  } cases[] = {
      {"foo*.service", "foo@1.service", true},
      {"foo*.service", "bar.service", false},
      {"*", "anything", true},
      {"a?c", "abc", true},
      {"a?c", "ac", false},
      {"[a-c]x", "bx", true},
      {"[^a-c]x", "bx", false},
      {"[!a]x", "!x", true},
      {"a\\*b", "a*b", true},
      {"a\\*b", "axb", false},
      {"*b*c*", "abxbyc", true},
      {"[unterminated", "u", false},
      {"exact.service", "exact.service", true},
      {"", "", true},
      {"*.service", "x.socket", false},
  };
  for (const auto& c : cases) EXPECT_EQ(GlobMatch(c.pattern, c.name), c.want) << c.pattern;
}

}  // namespace
}  // namespace fjord::unit
