#include <gtest/gtest.h>

#include "unit/unit.h"

namespace fjord::unit {
namespace {

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(ParseBool, AcceptsSystemdSpellingsCaseInsensitively) {
  struct Case {
    const char* in;
    bool want;
  } cases[] = {{"yes", true}, {"YES", true}, {"true", true}, {"On", true},     {"1", true},
               {"y", true},   {"t", true},   {"no", false},  {"False", false}, {"OFF", false},
               {"0", false},  {"n", false},  {"f", false}};
  for (const auto& c : cases) {
    auto r = ParseBool(c.in);
    ASSERT_TRUE(r.ok()) << c.in;
    EXPECT_EQ(*r, c.want) << c.in;
  }
  for (const char* bad : {"", "maybe", "2", "yess", " yes"}) {
    auto r = ParseBool(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("boolean"), std::string_view::npos);
    }
  }
}

TEST(ParseTimeSpan, Grammar) {
  struct Case {
    const char* in;
    microseconds want;
  } cases[] = {
      {"5min 20s", seconds(320)},
      {"1h30m", minutes(90)},
      {"100ms", milliseconds(100)},
      {"90", seconds(90)},
      {"0", seconds(0)},
      {"1.5h", minutes(90)},
      {"2d", hours(48)},
      {"1w", hours(168)},
      {"500us", microseconds(500)},
      {"5 min", minutes(5)},
      {"1min 30", seconds(90)},
      {"3 seconds", seconds(3)},
      {"1hour 1minute", minutes(61)},
      {"0.5s", milliseconds(500)},
      {"2hr", hours(2)},
      {"1y", seconds(31557600)},
      {"1M", seconds(2629800)},
      {"10usec", microseconds(10)},
      {"infinity", kInfiniteTime},
      {"  7s  ", seconds(7)},
  };
  for (const auto& c : cases) {
    auto r = ParseTimeSpan(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.status().ToString();
    EXPECT_EQ(r->count(), c.want.count()) << c.in;
  }
}

TEST(ParseTimeSpan, RejectsWithReason) {
  struct Case {
    const char* in;
    const char* why;
  } cases[] = {
      {"", "empty"},
      {"-5s", "negative"},
      {"5x", "unknown unit"},
      {"5mins", "unknown unit"},
      {"abc", "not a number"},
      {"99999999999999999999h", "too large"},
      {"18446744073709551615", "too large"},
      {"300000y", "too large"},
      {"9223372036854775807us", "too large"},
  };
  for (const auto& c : cases) {
    auto r = ParseTimeSpan(c.in);
    ASSERT_FALSE(r.ok()) << c.in;
    EXPECT_NE(r.status().message().find(c.why), std::string_view::npos)
        << c.in << ": " << r.status().message();
  }
}

TEST(ParseBytes, Grammar) {
  struct Case {
    const char* in;
    uint64_t want;
  } cases[] = {
      {"512M", 512ull << 20},
      {"1G", 1ull << 30},
      {"1.5G", 3ull << 29},
      {"100", 100},
      {"1K", 1024},
      {"2T", 2ull << 40},
      {"1P", 1ull << 50},
      {"1E", 1ull << 60},
      {"0", 0},
      {"7B", 7},
      {"1 G", 1ull << 30},
      {"0.5K", 512},
      {"infinity", kInfiniteBytes},
  };
  for (const auto& c : cases) {
    auto r = ParseBytes(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.status().ToString();
    EXPECT_EQ(*r, c.want) << c.in;
  }
  struct Bad {
    const char* in;
    const char* why;
  } bad[] = {{"", "empty"},
             {"-1", "negative"},
             {"1X", "unknown suffix"},
             {"1KB", "unknown suffix"},
             {"1.5", "fraction of a byte"},
             {"99999999999E", "too large"},
             {"16E", "too large"},
             {"G", "not a number"},
             {"18446744073709551616", "too large"}};
  for (const auto& c : bad) {
    auto r = ParseBytes(c.in);
    ASSERT_FALSE(r.ok()) << c.in;
    EXPECT_NE(r.status().message().find(c.why), std::string_view::npos)
        << c.in << ": " << r.status().message();
  }
}

TEST(ParsePercent, Grammar) {
  EXPECT_DOUBLE_EQ(*ParsePercent("50%"), 50.0);
  EXPECT_DOUBLE_EQ(*ParsePercent("250%"), 250.0);
  EXPECT_DOUBLE_EQ(*ParsePercent("12.5%"), 12.5);
  EXPECT_DOUBLE_EQ(*ParsePercent("0%"), 0.0);
  for (const char* bad : {"50", "%", "abc%", "-5%", "5 0%", "", "999999999999%"}) {
    EXPECT_FALSE(ParsePercent(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace fjord::unit
