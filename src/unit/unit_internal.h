// Private to src/unit: the pieces the parser, validator and accessors share.
#pragma once

#include <array>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "unit/unit.h"

namespace fjord::unit {

// Sections fjord knows. kUnchecked: valid systemd sections whose keys fjord does not check.
enum class SectionKind {
  kUnit,
  kService,
  kInstall,
  kXFleet,
  kXFjord,
  kContainer,
  kUnchecked,
  kExtension,
  kUnknown
};
// One assignment as read from the file, with where it was.
// The views point into the input text or into the reader's storage for continued lines;
// both outlive validation.
struct ParsedOption {
  std::string_view section;
  std::string_view name;
  std::string_view value;
  int line = 0;
  int key_col = 0;
  int value_col = 0;
  SectionKind kind = SectionKind::kUnknown;
  bool in_text = true;  // all three views point into the input text (not a continued line)
};

// Collects diagnostics for one file.
class DiagSink {
 public:
  DiagSink(std::string_view file, std::vector<Diagnostic>* out) : file_(file), out_(out) {}
  void Add(Severity sev, int line, int col, std::string_view section, std::string_view key,
           std::string message, std::string suggestion = {});
  void Error(const ParsedOption& o, bool at_value, std::string message) {
    Add(Severity::kError, o.line, at_value ? o.value_col : o.key_col, o.section, o.name,
        std::move(message));
  }
  // Suggestions cost an edit distance against a whole table; a hostile file with thousands of
  // unknown keys gets them for the first few only, keeping parsing linear.
  bool TakeSuggestionBudget() {
    return suggestions_left_ > 0 ? (--suggestions_left_, true) : false;
  }
  void Warn(const ParsedOption& o, bool at_value, std::string message) {
    Add(Severity::kWarning, o.line, at_value ? o.value_col : o.key_col, o.section, o.name,
        std::move(message));
  }

 private:
  std::string_view file_;
  std::vector<Diagnostic>* out_;
  int suggestions_left_ = 16;
};

// Groups items by section name in order of first appearance: returns each item's group and
// the number of groups. Linear (hash map) however many sections there are.
std::vector<uint32_t> GroupBySection(size_t n, const std::function<std::string_view(size_t)>& at,
                                     size_t* groups);

SectionKind ClassifySection(std::string_view name);

// Checks one option against the known-key tables (keys.cc): unknown keys (with a suggestion),
// deprecated keys, value syntax, specifiers.
void CheckOption(const ParsedOption& o, SectionKind kind, DiagSink& sink);

// Whole-unit rules (validate.cc): service needs ExecStart=, X-Fleet combinations, [X-Fjord],
// [Container]. Fills the requirements structs.
void CheckUnit(const std::vector<ParsedOption>& opts, const UnitName& name, DiagSink& sink,
               FleetRequirements* fleet, FjordRequirements* fjord);

// Word splitting with systemd's quoting and C escapes (exec.cc).
Status NextWord(std::string_view s, size_t* pos, std::string* word, bool* found);
Result<std::vector<std::string>> SplitWords(std::string_view s);
bool IsValidEnvName(std::string_view n);

bool IsKnownSpecifier(char c);

// True if s has any byte of set (a few bytes). SSE2: one pass comparing 16 bytes at a time
// with every byte of set (values are short, so one call per set byte to memchr cost more in
// call overhead than the scan itself). Never reads outside s: a short tail is copied.
inline bool ContainsAny(std::string_view s, std::string_view set) {
#if defined(__SSE2__)
  auto hits = [&](__m128i v) {
    __m128i m = _mm_setzero_si128();
    for (char c : set) m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8(c)));
    return _mm_movemask_epi8(m);
  };
  const char* p = s.data();
  size_t n = s.size();
  if (n >= 16) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
      if (hits(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i))) != 0) return true;
    }
    // The last partial block, read as the (overlapping) final 16 bytes.
    return i < n && hits(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + n - 16))) != 0;
  }
  if (n == 0) return false;
  alignas(16) char buf[16] = {};
  std::memcpy(buf, p, n);
  return (hits(_mm_load_si128(reinterpret_cast<const __m128i*>(buf))) & ((1 << n) - 1)) != 0;
#else
  for (char c : set) {
    if (!s.empty() && std::memchr(s.data(), c, s.size()) != nullptr) return true;
  }
  return false;
#endif
}

// systemd's WHITESPACE (" \t\n\r") as a table: one load per byte in the hot loops.
inline constexpr auto kBlank = [] {
  std::array<bool, 256> t{};
  t[' '] = t['\t'] = t['\n'] = t['\r'] = true;
  return t;
}();
inline bool IsBlank(char c) { return kBlank[static_cast<unsigned char>(c)]; }

// Calls f(word) for each run of non-blank bytes (" \t\n\r"); stops early if f returns false.
template <typename F>
bool ForEachPlainWord(std::string_view s, F&& f) {
  size_t i = 0, n = s.size();
  while (i < n) {
    while (i < n && IsBlank(s[i])) ++i;
    size_t start = i;
    while (i < n && !IsBlank(s[i])) ++i;
    if (i > start && !f(s.substr(start, i - start))) return false;
  }
  return true;
}
// UnitName::Parse without building the name: for validating lists cheaply.
Status CheckUnitName(std::string_view name);
// Only the syntax of quoted words (unterminated quotes), without building them.
Status CheckWordsSyntax(std::string_view s);
// ParseExecLine / ParseEnvironment as validators: the same verdict, without copies when the
// value has no quotes or escapes.
Status CheckExecLine(std::string_view value);
Status CheckEnvironment(std::string_view value);
// Signal name ("SIGTERM", "TERM", "RTMIN+3") or number -> number.
Result<int> ParseSignal(std::string_view s);

// The list semantics: values after the last empty assignment of section.key.
std::vector<std::string_view> ListValues(const std::vector<UnitOption>& opts,
                                         std::string_view section, std::string_view key);

// Builds a Unit (friend of Unit).
struct UnitBuilder {
  // options view text.
  static Unit Make(UnitName name, std::shared_ptr<const char[]> text,
                   std::vector<UnitOption> options, FleetRequirements fleet,
                   FjordRequirements fjord);
};

}  // namespace fjord::unit
