// The unit-file reader: lines, comments, continuations, sections and assignments, following
// systemd's config_parse() (see README.md for the grammar decisions). One pass over the input,
// string_views into it; a logical line is copied only when it spans several physical lines.
#include <algorithm>
#include <cstring>
#include <memory>
#include <unordered_map>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/strings.h"
#include "unit/unit_internal.h"

namespace fjord::unit {

namespace {

// systemd's LONG_LINE_MAX: longer lines (and continued lines) are refused.
constexpr size_t kMaxLine = 1024 * 1024;

bool IsWs(char c) { return IsBlank(c); }

// Trims systemd's WHITESPACE (" \t\n\r") and reports how much was cut on the left.
std::string_view Strip(std::string_view s, size_t* left = nullptr) {
  size_t b = 0, e = s.size();
  while (b < e && IsWs(s[b])) ++b;
  while (e > b && IsWs(s[e - 1])) --e;
  if (left) *left = b;
  return s.substr(b, e - b);
}

// Offset of the first byte that breaks UTF-8 in s, or npos. Rejects overlongs, surrogates and
// code points above U+10FFFF, as systemd's utf8_is_valid does.
size_t FindInvalidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      // Skip ASCII eight bytes at a time; most unit files are all ASCII.
      uint64_t w;
      while (i + 8 <= n && (std::memcpy(&w, p + i, 8), (w & 0x8080808080808080ULL) == 0)) i += 8;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
      return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

// Finds the end of the line starting at pos (the first '\n' or '\r', or n) and sets *special
// when the line holds a NUL or a non-ASCII byte. Eight bytes at a time: most lines are short
// ASCII, so this one pass replaces separate searches for '\n', '\r', NUL and UTF-8.
size_t ScanLine(const char* d, size_t pos, size_t n, bool* special) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  size_t i = pos;
#if defined(__SSE2__)
  // Sixteen bytes at a time while nothing is special; the first hit is the usual line end.
  const __m128i nl = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r'), nul = _mm_setzero_si128();
  while (i + 16 <= n) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + i));
    __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, nl), _mm_cmpeq_epi8(v, cr)),
                               _mm_or_si128(_mm_cmpeq_epi8(v, nul), v));  // v: the high bit
    int mask = _mm_movemask_epi8(hit);
    if (mask == 0) {
      i += 16;
      continue;
    }
    size_t at = i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
    if (d[at] == '\n' || d[at] == '\r') return at;
    i = at;  // a NUL or non-ASCII byte: the byte loop below takes the rest of the line
    break;
  }
#endif
  while (i < n) {
    if (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, d + i, 8);
      if ((has_zero(w ^ (kOnes * '\n')) | has_zero(w ^ (kOnes * '\r')) | has_zero(w) |
           (w & kHigh)) == 0) {
        i += 8;
        continue;
      }
    }
    for (size_t stop = std::min(n, i + 8); i < stop; ++i) {
      unsigned char c = static_cast<unsigned char>(d[i]);
      if (c == '\n' || c == '\r') return i;
      if (c == 0 || c >= 0x80) *special = true;
    }
  }
  return n;
}

// True when the line ends in an unescaped backslash (an odd run of trailing backslashes).
bool EndsInContinuation(std::string_view s) {
  size_t k = 0;
  while (k < s.size() && s[s.size() - 1 - k] == '\\') ++k;
  return (k & 1) != 0;
}

class Reader {
 public:
  // Continued lines are kept in *storage so options can point into them.
  Reader(std::string_view text, DiagSink& sink, std::vector<ParsedOption>* out,
         std::vector<std::unique_ptr<std::string>>* storage)
      : text_(text), sink_(sink), out_(out), storage_(storage) {}

  void Run();

 private:
  // continued: l is in *storage_, not in the input text.
  void HandleLogical(std::string_view l, int line, bool continued);
  void Error(int line, int col, std::string msg) {
    sink_.Add(Severity::kError, line, col, section_, {}, std::move(msg));
  }

  std::string_view text_;
  DiagSink& sink_;
  std::vector<ParsedOption>* out_;
  std::vector<std::unique_ptr<std::string>>* storage_;
  std::string_view section_;
  bool section_in_text_ = true;  // section_ views the input text (not a continued header)
  SectionKind kind_ = SectionKind::kUnknown;
  bool have_section_ = false;
  bool bad_section_ = false;  // the last header was broken: its keys are dropped quietly
  std::string continuation_;
  int cont_line_ = 0;
  bool continuing_ = false;
};

void Reader::Run() {
  size_t pos = 0;
  int line = 0;
  const char* data = text_.data();
  size_t n = text_.size();
  if (n >= 3 && std::memcmp(data, "\xEF\xBB\xBF", 3) == 0) pos = 3;  // UTF-8 byte order mark
  while (pos < n) {
    ++line;
    // Lines end at \n, \r\n or \r (systemd's read_line).
    bool special = false;
    size_t end = ScanLine(data, pos, n, &special);
    size_t next = end == n ? n : end + 1;
    if (end < n && data[end] == '\r' && end + 1 < n && data[end + 1] == '\n') next = end + 2;
    std::string_view raw = text_.substr(pos, end - pos);
    pos = next;

    if (raw.size() > kMaxLine || (continuing_ && continuation_.size() + raw.size() > kMaxLine)) {
      Error(line, 1,
            "line is " + std::to_string(raw.size() + (continuing_ ? continuation_.size() : 0)) +
                " bytes long; systemd refuses lines over 1 MiB");
      continuing_ = false;
      continuation_.clear();
      continue;
    }
    const void* z = special ? std::memchr(raw.data(), '\0', raw.size()) : nullptr;
    if (z != nullptr) {
      Error(line, static_cast<int>(static_cast<const char*>(z) - raw.data()) + 1,
            "NUL byte in the line; unit files are text, this line is ignored");
      continuing_ = false;
      continuation_.clear();
      continue;
    }
    if (size_t bad = special ? FindInvalidUtf8(raw) : std::string_view::npos;
        bad != std::string_view::npos) {
      Error(line, static_cast<int>(bad) + 1,
            "invalid UTF-8 (byte " + base::QuoteForDisplay(raw.substr(bad, 1)) +
                "); unit files must be UTF-8, this line is ignored");
      continuing_ = false;
      continuation_.clear();
      continue;
    }
    // Comment lines are skipped, even inside a continuation (systemd does the same).
    size_t first = 0;
    while (first < raw.size() && IsWs(raw[first])) ++first;
    if (first < raw.size() && (raw[first] == '#' || raw[first] == ';')) continue;

    std::string_view logical = raw;
    if (continuing_) {
      continuation_.append(raw);
      logical = continuation_;
    }
    if (EndsInContinuation(logical)) {
      if (!continuing_) {
        continuation_.assign(raw);
        cont_line_ = line;
        continuing_ = true;
      }
      continuation_.back() = ' ';  // the backslash becomes a space
      continue;
    }
    if (continuing_) {
      storage_->push_back(std::make_unique<std::string>(std::move(continuation_)));
      continuation_.clear();
      continuing_ = false;
      HandleLogical(*storage_->back(), cont_line_, true);
    } else {
      HandleLogical(logical, line, false);
    }
  }
  if (continuing_) {
    sink_.Add(Severity::kWarning, line, 0, section_, {},
              "the file ends with a '\\' line continuation; the continued line (from line " +
                  std::to_string(cont_line_) + ") is read as if it ended there");
    storage_->push_back(std::make_unique<std::string>(std::move(continuation_)));
    continuing_ = false;
    HandleLogical(*storage_->back(), cont_line_, true);
  }
}

void Reader::HandleLogical(std::string_view raw, int line, bool continued) {
  size_t left = 0;
  std::string_view l = Strip(raw, &left);
  if (l.empty()) return;
  int col = static_cast<int>(left) + 1;
  if (l[0] == '[') {
    if (l.back() != ']' || l.size() < 2) {
      size_t close = l.find(']');
      if (close != std::string_view::npos) {  // "[Unit] # note": systemd has no trailing comments
        Error(line, col + static_cast<int>(close) + 1,
              "section header " + base::QuoteForDisplay(l) +
                  " has text after ']'; comments must be on their own line");
      } else {
        Error(line, col + static_cast<int>(l.size()),
              "section header " + base::QuoteForDisplay(l) + " is missing its closing ']'");
      }
      bad_section_ = true;
      have_section_ = false;
      return;
    }
    std::string_view name = l.substr(1, l.size() - 2);
    if (name.empty()) {
      Error(line, col, "empty section name \"[]\"; write e.g. [Service]");
      bad_section_ = true;
      have_section_ = false;
      return;
    }
    section_ = name;
    section_in_text_ = !continued;
    kind_ = ClassifySection(name);
    have_section_ = true;
    bad_section_ = false;
    if (kind_ == SectionKind::kUnknown) {
      sink_.Add(Severity::kWarning, line, col, section_, {},
                "unknown section [" + std::string(section_) +
                    "]; systemd ignores it and every key in it (name extension sections "
                    "\"X-...\" to keep them quietly)");
    }
    return;
  }
  if (l[0] == '.' && base::StartsWith(l, ".include ")) {
    Error(line, col, "\".include\" is not supported (systemd removed it); use a drop-in file");
    return;
  }
  size_t eq = l.find('=');
  if (eq == std::string_view::npos) {
    Error(line, col,
          "missing '=' in " + base::QuoteForDisplay(l, 40) +
              "; an assignment is Key=value (systemd would ignore this line)");
    return;
  }
  // l is already trimmed: the key needs trimming on its right only, the value on its left.
  std::string_view key = l.substr(0, eq);
  while (!key.empty() && IsWs(key.back())) key.remove_suffix(1);
  size_t value_left = eq + 1;
  while (value_left < l.size() && IsWs(l[value_left])) ++value_left;
  std::string_view value = l.substr(value_left);
  if (key.empty()) {
    Error(line, col, "assignment without a key name before '='");
    return;
  }
  if (!have_section_) {
    if (!bad_section_) {
      Error(line, col,
            "assignment " + base::QuoteForDisplay(key, 40) +
                " comes before any section; put it under a header such as [Unit] or [Service]");
    }
    return;
  }
  ParsedOption& o = out_->emplace_back();
  o.section = section_;
  o.name = key;
  o.value = value;
  o.line = line;
  o.key_col = col;
  o.value_col = col + static_cast<int>(value_left);
  o.kind = kind_;
  o.in_text = !continued && section_in_text_;
}

// The Unit's own copy of what its options view: the whole input text (one copy, no per-option
// strings) followed by the few values that live elsewhere (continued lines).
class UnitText {
 public:
  UnitText(std::string_view text, const std::vector<ParsedOption>& parsed) : text_(text) {
    size_t extra = 0;
    for (const ParsedOption& p : parsed) {
      if (!p.in_text) extra += p.section.size() + p.name.size() + p.value.size();
    }
    buf_ = std::make_shared_for_overwrite<char[]>(text.size() + extra + 1);
    if (!text.empty()) std::memcpy(buf_.get(), text.data(), text.size());
    tail_ = text.size();
  }
  // p's views into the buffer.
  UnitOption Rebase(const ParsedOption& p) {
    if (p.in_text) return {Offset(p.section), Offset(p.name), Offset(p.value)};
    return {Copy(p.section), Copy(p.name), Copy(p.value)};
  }
  std::shared_ptr<const char[]> Release() { return std::move(buf_); }

 private:
  std::string_view Offset(std::string_view v) const {
    return {buf_.get() + (v.data() - text_.data()), v.size()};
  }
  std::string_view Copy(std::string_view v) {
    if (!v.empty()) std::memcpy(buf_.get() + tail_, v.data(), v.size());
    std::string_view out(buf_.get() + tail_, v.size());
    tail_ += v.size();
    return out;
  }
  std::string_view text_;
  std::shared_ptr<char[]> buf_;
  size_t tail_ = 0;
};

// Groups options by section in order of first appearance (the canonical order), as views into
// *text.
std::vector<UnitOption> Canonical(const std::vector<ParsedOption>& parsed, UnitText* text) {
  std::vector<UnitOption> out;
  auto rebase = [&](const ParsedOption& p) { return text->Rebase(p); };
  // The usual case: each section appears once, so file order is already canonical. Checked
  // against the sections seen so far (a few), without allocating.
  bool in_order = true;
  std::string_view seen[16];
  size_t nseen = 0;
  for (size_t i = 0; i < parsed.size() && in_order; ++i) {
    if (i > 0 && parsed[i].section.data() == parsed[i - 1].section.data()) continue;
    std::string_view s = parsed[i].section;
    if (nseen > 0 && seen[nseen - 1] == s) continue;
    for (size_t k = 0; k < nseen; ++k) in_order &= seen[k] != s;
    if (nseen == std::size(seen)) in_order = false;
    if (in_order) seen[nseen++] = s;
  }
  if (in_order) {
    out.reserve(parsed.size());
    for (const ParsedOption& p : parsed) out.push_back(rebase(p));
    return out;
  }
  size_t groups = 0;
  std::vector<uint32_t> group = GroupBySection(
      parsed.size(), [&](size_t i) { return parsed[i].section; }, &groups);
  // Counting sort by group keeps file order inside each section.
  std::vector<uint32_t> start(groups + 1, 0);
  for (uint32_t g : group) ++start[g + 1];
  for (size_t g = 1; g < start.size(); ++g) start[g] += start[g - 1];
  out.resize(parsed.size());
  for (size_t i = 0; i < parsed.size(); ++i) out[start[group[i]]++] = rebase(parsed[i]);
  return out;
}

}  // namespace

std::vector<uint32_t> GroupBySection(size_t n, const std::function<std::string_view(size_t)>& at,
                                     size_t* groups) {
  std::vector<uint32_t> group(n);
  std::vector<std::string_view> names;                 // few sections: a linear scan
  std::unordered_map<std::string_view, uint32_t> ids;  // many (hostile input): a hash map
  constexpr size_t kLinearMax = 16;
  std::string_view prev;
  for (size_t i = 0; i < n; ++i) {
    std::string_view s = at(i);
    if (i > 0 && s == prev) {  // most options share the previous option's section
      group[i] = group[i - 1];
      continue;
    }
    prev = s;
    if (ids.empty()) {
      auto it = std::find(names.begin(), names.end(), s);
      if (it != names.end()) {
        group[i] = static_cast<uint32_t>(it - names.begin());
        continue;
      }
      if (names.size() < kLinearMax) {
        group[i] = static_cast<uint32_t>(names.size());
        names.push_back(s);
        continue;
      }
      for (size_t k = 0; k < names.size(); ++k) ids.emplace(names[k], static_cast<uint32_t>(k));
    }
    auto [it, inserted] = ids.emplace(s, static_cast<uint32_t>(ids.size()));
    group[i] = it->second;
  }
  *groups = ids.empty() ? names.size() : ids.size();
  return group;
}

std::string_view SeverityName(Severity s) { return s == Severity::kError ? "error" : "warning"; }

std::string Diagnostic::ToString() const {
  std::string out = file;
  if (line > 0) {
    out += ":" + std::to_string(line);
    if (column > 0) out += ":" + std::to_string(column);
  }
  out += ": ";
  out += SeverityName(severity);
  out += ": ";
  out += message;
  return out;
}

bool HasErrors(const std::vector<Diagnostic>& diags) {
  return std::any_of(diags.begin(), diags.end(),
                     [](const Diagnostic& d) { return d.severity == Severity::kError; });
}

void DiagSink::Add(Severity sev, int line, int col, std::string_view section, std::string_view key,
                   std::string message, std::string suggestion) {
  Diagnostic& d = out_->emplace_back();
  d.file.assign(file_);
  d.line = line;
  d.column = col;
  d.severity = sev;
  d.section.assign(section);
  d.key.assign(key);
  d.message = std::move(message);
  d.suggestion = std::move(suggestion);
}

ParseResult ParseUnit(std::string_view text, std::string_view file_name, const UnitName& name) {
  ParseResult r;
  DiagSink sink(file_name, &r.diagnostics);
  std::vector<ParsedOption> parsed;
  parsed.reserve(64);
  std::vector<std::unique_ptr<std::string>> storage;  // continued lines; options view them
  Reader(text, sink, &parsed, &storage).Run();

  for (const ParsedOption& p : parsed) CheckOption(p, p.kind, sink);
  FleetRequirements fleet;
  FjordRequirements fjord;
  CheckUnit(parsed, name, sink, &fleet, &fjord);

  std::stable_sort(r.diagnostics.begin(), r.diagnostics.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     int la = a.line == 0 ? INT32_MAX : a.line;
                     int lb = b.line == 0 ? INT32_MAX : b.line;
                     return la < lb;
                   });
  if (!HasErrors(r.diagnostics)) {
    UnitText owned(text, parsed);
    std::vector<UnitOption> options = Canonical(parsed, &owned);
    r.unit = UnitBuilder::Make(name, owned.Release(), std::move(options), std::move(fleet),
                               std::move(fjord));
  }
  return r;
}

ParseResult ParseOptions(const std::vector<UnitOption>& options, const UnitName& name) {
  ParseResult r;
  DiagSink sink("<options>", &r.diagnostics);
  for (size_t i = 0; i < options.size(); ++i) {
    const UnitOption& o = options[i];
    std::string where = "option " + std::to_string(i + 1) + " (" +
                        base::QuoteForDisplay(o.section, 40) + ", " +
                        base::QuoteForDisplay(o.name, 40) + ")";
    auto bad_chars = [](std::string_view s) {
      return s.find_first_of(std::string_view("\n\r\0", 3)) != std::string_view::npos ||
             FindInvalidUtf8(s) != std::string_view::npos;
    };
    std::string problem;
    if (o.section.empty() || bad_chars(o.section)) {
      problem = "section must be non-empty UTF-8 text on one line";
    } else if (o.name.empty() || bad_chars(o.name) || o.name.find('=') != std::string::npos ||
               Strip(o.name) != o.name || o.name[0] == '#' || o.name[0] == ';' ||
               o.name[0] == '[') {
      problem = "name must be one line without '=' or surrounding spaces";
    } else if (bad_chars(o.value) || Strip(o.value) != o.value) {
      problem = "value must be UTF-8 on one line without surrounding spaces";
    }
    if (!problem.empty()) {
      sink.Add(Severity::kError, 0, 0, o.section, o.name, where + ": " + problem);
    }
  }
  if (HasErrors(r.diagnostics)) return r;
  return ParseUnit(Serialize(options), "<options>", name);
}

}  // namespace fjord::unit
