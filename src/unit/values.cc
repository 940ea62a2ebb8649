// Value grammars shared by the validator and the accessors: booleans, time spans, byte sizes,
// percentages. Each parser is linear in its input and reports overflow instead of wrapping.
#include <cmath>
#include <string>

#include "base/strings.h"
#include "unit/unit.h"

namespace fjord::unit {

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::string Q(std::string_view s) { return base::QuoteForDisplay(s); }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

// A decimal number "123" or "1.5" at s[*i]: the integer part and the fraction as
// numerator/denominator (at most 9 fraction digits kept; the rest only checked as digits).
struct Decimal {
  uint64_t whole = 0;
  uint64_t frac = 0;
  uint64_t frac_den = 1;
};

// Returns false on no digits or an integer part that overflows uint64.
bool ParseDecimal(std::string_view s, size_t* i, Decimal* out, bool* overflow) {
  size_t start = *i;
  *out = Decimal{};
  while (*i < s.size() && IsDigit(s[*i])) {
    uint64_t d = static_cast<uint64_t>(s[*i] - '0');
    if (out->whole > (UINT64_MAX - d) / 10) *overflow = true;
    if (!*overflow) out->whole = out->whole * 10 + d;
    ++*i;
  }
  bool had_int = *i > start;
  bool had_frac = false;
  if (*i < s.size() && s[*i] == '.') {
    ++*i;
    while (*i < s.size() && IsDigit(s[*i])) {
      if (out->frac_den < 1'000'000'000) {
        out->frac = out->frac * 10 + static_cast<uint64_t>(s[*i] - '0');
        out->frac_den *= 10;
      }
      had_frac = true;
      ++*i;
    }
  }
  return (had_int || had_frac) && !*overflow;
}

// whole*mult + frac*mult/frac_den, false on overflow.
bool Scale(const Decimal& d, uint64_t mult, uint64_t* out) {
  unsigned __int128 v = static_cast<unsigned __int128>(d.whole) * mult;
  v += static_cast<unsigned __int128>(d.frac) * mult / d.frac_den;
  if (v >= UINT64_MAX) return false;  // UINT64_MAX itself is reserved for "infinity"
  *out = static_cast<uint64_t>(v);
  return true;
}

struct TimeUnit {
  std::string_view name;
  uint64_t usec;
};

constexpr uint64_t kUsec = 1, kMsec = 1000, kSec = 1000 * kMsec, kMin = 60 * kSec,
                   kHour = 60 * kMin, kDay = 24 * kHour, kWeek = 7 * kDay, kMonth = 2629800 * kSec,
                   kYear = 31557600 * kSec;

// The unit names systemd accepts (matched as a whole word).
constexpr TimeUnit kTimeUnits[] = {
    {"seconds", kSec},  {"second", kSec},  {"minutes", kMin},    {"minute", kMin},
    {"months", kMonth}, {"month", kMonth}, {"hours", kHour},     {"years", kYear},
    {"weeks", kWeek},   {"usec", kUsec},   {"msec", kMsec},      {"hour", kHour},
    {"days", kDay},     {"week", kWeek},   {"year", kYear},      {"sec", kSec},
    {"min", kMin},      {"day", kDay},     {"\xc2\xb5s", kUsec}, {"us", kUsec},
    {"ms", kMsec},      {"hr", kHour},     {"s", kSec},          {"m", kMin},
    {"h", kHour},       {"d", kDay},       {"w", kWeek},         {"M", kMonth},
    {"y", kYear},
};

// The common spellings ("30", "5s", "1min 30s", "200ms"): parts of at most 9 digits with
// us/ms/s/sec/min, separated by single spaces. Returns false for anything else (the general
// parser then decides), so this accepts only what the general parser accepts, with the same
// value. At most 4 parts of at most 999999999 min each: far below kInfiniteTime.
bool ParsePlainTimeSpan(std::string_view t, uint64_t* out) {
  uint64_t total = 0;
  size_t i = 0, n = t.size();
  for (int part = 0; part < 4; ++part) {
    size_t start = i;
    uint64_t v = 0;
    while (i < n && IsDigit(t[i]) && i - start < 9)
      v = v * 10 + static_cast<uint64_t>(t[i++] - '0');
    if (i == start || (i < n && IsDigit(t[i]))) return false;
    size_t u = i;
    while (i < n && t[i] >= 'a' && t[i] <= 'z') ++i;
    std::string_view unit = t.substr(u, i - u);
    uint64_t mult;
    if (unit.empty() || unit == "s" || unit == "sec") {
      mult = kSec;
    } else if (unit == "min") {
      mult = kMin;
    } else if (unit == "ms") {
      mult = kMsec;
    } else if (unit == "us") {
      mult = kUsec;
    } else {
      return false;
    }
    total += v * mult;
    if (i == n) {
      *out = total;
      return true;
    }
    if (t[i] != ' ' || i + 1 == n || !IsDigit(t[i + 1])) return false;
    ++i;
  }
  return false;
}

}  // namespace

Result<bool> ParseBool(std::string_view s) {
  for (std::string_view t : {"1", "yes", "y", "true", "t", "on"}) {
    if (EqualsIgnoreCase(s, t)) return true;
  }
  for (std::string_view f : {"0", "no", "n", "false", "f", "off"}) {
    if (EqualsIgnoreCase(s, f)) return false;
  }
  return base::InvalidArgument(Q(s) + " is not a boolean; use yes/no, true/false, on/off or 1/0");
}

Result<std::chrono::microseconds> ParseTimeSpan(std::string_view s) {
  std::string_view t = base::TrimWhitespace(s);
  if (uint64_t plain; ParsePlainTimeSpan(t, &plain)) {
    return std::chrono::microseconds(static_cast<int64_t>(plain));
  }
  if (t == "infinity") return kInfiniteTime;
  if (t.empty()) return base::InvalidArgument("empty time span; write e.g. 90s or 5min 20s");
  uint64_t total = 0;
  size_t i = 0;
  while (i < t.size()) {
    while (i < t.size() && IsBlank(t[i])) ++i;
    if (i == t.size()) break;
    if (t[i] == '-') {
      return base::InvalidArgument("time span " + Q(t) + " is negative");
    }
    Decimal d;
    bool overflow = false;
    if (!ParseDecimal(t, &i, &d, &overflow)) {
      if (overflow) return base::InvalidArgument("time span " + Q(t) + " is too large");
      return base::InvalidArgument("time span " + Q(t) +
                                   " is not a number with a unit; write e.g. 90s or 5min 20s");
    }
    while (i < t.size() && IsBlank(t[i])) ++i;
    uint64_t mult = kSec;  // a bare number is seconds
    // The unit is the run of letters up to a blank or digit ("5mins" is not "5min" + "s").
    size_t end = i;
    while (end < t.size() && !IsBlank(t[end]) && !IsDigit(t[end]) && t[end] != '.') ++end;
    std::string_view word = t.substr(i, end - i);
    bool found = word.empty();
    for (const TimeUnit& u : kTimeUnits) {
      if (u.name.size() == word.size() && u.name == word) {
        mult = u.usec;
        found = true;
        break;
      }
    }
    if (found) i = end;
    if (!found) {
      return base::InvalidArgument("time span " + Q(t) + " has an unknown unit at " +
                                   Q(t.substr(i, 8)) + "; use us, ms, s, min, h, d, w, M or y");
    }
    uint64_t part;
    if (!Scale(d, mult, &part) || part > UINT64_MAX - 1 - total) {
      return base::InvalidArgument("time span " + Q(t) + " is too large");
    }
    total += part;
  }
  if (total >= static_cast<uint64_t>(kInfiniteTime.count())) {
    return base::InvalidArgument("time span " + Q(t) + " is too large");
  }
  return std::chrono::microseconds(static_cast<int64_t>(total));
}

Result<uint64_t> ParseBytes(std::string_view s) {
  std::string_view t = base::TrimWhitespace(s);
  if (t == "infinity") return kInfiniteBytes;
  if (t.empty()) return base::InvalidArgument("empty size; write e.g. 512M or 1G");
  if (t[0] == '-') return base::InvalidArgument("size " + Q(t) + " is negative");
  size_t i = 0;
  Decimal d;
  bool overflow = false;
  if (!ParseDecimal(t, &i, &d, &overflow)) {
    if (overflow) return base::InvalidArgument("size " + Q(t) + " is too large");
    return base::InvalidArgument("size " + Q(t) + " is not a number; write e.g. 512M or 1.5G");
  }
  while (i < t.size() && IsBlank(t[i])) ++i;
  uint64_t mult = 1;
  if (i < t.size()) {
    static constexpr std::string_view kSuffixes = "BKMGTPE";
    size_t k = kSuffixes.find(t[i]);
    if (k == std::string_view::npos || i + 1 != t.size()) {
      return base::InvalidArgument("size " + Q(t) +
                                   " has an unknown suffix; use K, M, G, T, P or E (powers of "
                                   "1024), or none for bytes");
    }
    mult = k == 0 ? 1 : (uint64_t{1} << (10 * k));
  }
  if (mult == 1 && d.frac != 0) {
    return base::InvalidArgument("size " + Q(t) + " has a fraction of a byte");
  }
  uint64_t v;
  if (!Scale(d, mult, &v)) return base::InvalidArgument("size " + Q(t) + " is too large");
  return v;
}

Result<double> ParsePercent(std::string_view s) {
  std::string_view t = base::TrimWhitespace(s);
  if (t.empty() || t.back() != '%') {
    return base::InvalidArgument(Q(t) + " is not a percentage; write e.g. 50%");
  }
  std::string_view num = base::TrimWhitespace(t.substr(0, t.size() - 1));
  size_t i = 0;
  Decimal d;
  bool overflow = false;
  if (!ParseDecimal(num, &i, &d, &overflow) || i != num.size()) {
    if (overflow) return base::InvalidArgument("percentage " + Q(t) + " is too large");
    return base::InvalidArgument(Q(t) + " is not a percentage; write e.g. 50%");
  }
  if (d.whole > 100'000'000) return base::InvalidArgument("percentage " + Q(t) + " is too large");
  return static_cast<double>(d.whole) +
         static_cast<double>(d.frac) / static_cast<double>(d.frac_den);
}

}  // namespace fjord::unit
