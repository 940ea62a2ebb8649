#include "base/strings.h"

#include <gtest/gtest.h>

namespace fjord::base {
namespace {

TEST(StringsTest, Trim) {
  EXPECT_EQ(TrimWhitespace("  a b \t\n"), "a b");
  EXPECT_EQ(TrimWhitespace(""), "");
  EXPECT_EQ(TrimWhitespace("   "), "");
}

TEST(StringsTest, Split) {
  EXPECT_EQ(Split("a,b,,c", ','), (std::vector<std::string>{"a", "b", "", "c"}));
  auto w = SplitWhitespace("  x  y\tz ");
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[2], "z");
}

TEST(StringsTest, EditDistance) {
  struct Case {
    const char* a;
    const char* b;
    size_t d;
  } cases[] = {{"ExecStartPRE", "ExecStartPre", 2}, {"", "abc", 3}, {"kitten", "sitting", 3},
               {"same", "same", 0}};
  for (const auto& c : cases) EXPECT_EQ(EditDistance(c.a, c.b), c.d) << c.a << " vs " << c.b;
}

TEST(StringsTest, QuoteForDisplayEscapesBinary) {
  EXPECT_EQ(QuoteForDisplay(std::string("a\x01\xff\"", 4)), "\"a\\x01\\xff\\\"\"");
  EXPECT_EQ(QuoteForDisplay("abcdef", 3), "\"abc\"...");
}

}  // namespace
}  // namespace fjord::base
