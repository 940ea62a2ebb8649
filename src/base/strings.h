// Small string helpers shared by every module (parsing, trimming, splitting, edit distance).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fjord::base {

std::string_view TrimWhitespace(std::string_view s);
std::vector<std::string_view> SplitWhitespace(std::string_view s);
std::vector<std::string> Split(std::string_view s, char sep);
bool StartsWith(std::string_view s, std::string_view prefix);
bool EndsWith(std::string_view s, std::string_view suffix);
std::string AsciiLower(std::string_view s);
// Levenshtein distance, case-sensitive; used to suggest the nearest known key or name.
size_t EditDistance(std::string_view a, std::string_view b);
// Quotes a string for display in an error message: control and non-UTF-8 bytes escaped.
std::string QuoteForDisplay(std::string_view s, size_t max_len = 80);

}  // namespace fjord::base
