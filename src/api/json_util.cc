#include "api/json_util.h"

#include <cstdio>

namespace fjord::api::internal {

namespace {

// At s[i], a byte >= 0x80: the length of the valid UTF-8 sequence there (> 0), or minus the
// number of bytes to replace by one U+FFFD (the lead byte and the continuation bytes that were
// still valid, "maximal subpart" as nlohmann's replacing dump does). Overlong forms, surrogates
// and code points past U+10FFFF are invalid.
int Utf8Sequence(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  int n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k < n; ++k) {
    const size_t at = i + static_cast<size_t>(k);
    const unsigned char min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
    if (at >= s.size() || byte(at) < min || byte(at) > max) return -k;
  }
  return n;
}

}  // namespace

void JsonWriter::Quoted(std::string_view s) {
  std::string& out = *out_;
  out.push_back('"');
  for (size_t i = 0; i < s.size();) {
    // Copy the run of bytes that need no escaping in one append.
    size_t run = i;
    while (run < s.size()) {
      const auto b = static_cast<unsigned char>(s[run]);
      if (b < 0x20 || b >= 0x80 || b == '"' || b == '\\') break;
      ++run;
    }
    out.append(s.data() + i, run - i);
    i = run;
    if (i == s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const int n = Utf8Sequence(s, i);
      if (n < 0) {
        out.append("\xEF\xBF\xBD");  // U+FFFD
        i += static_cast<size_t>(-n);
      } else {
        out.append(s.substr(i, static_cast<size_t>(n)));
        i += static_cast<size_t>(n);
      }
      continue;
    }
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out.append(buf);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

}  // namespace fjord::api::internal
