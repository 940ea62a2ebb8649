// systemd's word splitting (quotes and C escapes), Exec command lines, Environment= and $VAR
// expansion. Linear in the input; every error names the position and the fix.
#include <array>
#include <string>

#include "base/strings.h"
#include "unit/unit.h"
#include "unit/unit_internal.h"

namespace fjord::unit {

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// One C escape after a backslash at s[i] (s[i] is the character after '\'). Returns the number
// of characters consumed after the backslash, or 0 if it is not a valid escape (systemd's
// "relaxed" mode then keeps the backslash and the character as they are).
size_t CUnescapeOne(std::string_view s, size_t i, std::string* out) {
  char c = s[i];
  switch (c) {
    case 'a':
      *out += '\a';
      return 1;
    case 'b':
      *out += '\b';
      return 1;
    case 'f':
      *out += '\f';
      return 1;
    case 'n':
      *out += '\n';
      return 1;
    case 'r':
      *out += '\r';
      return 1;
    case 't':
      *out += '\t';
      return 1;
    case 'v':
      *out += '\v';
      return 1;
    case 's':
      *out += ' ';
      return 1;
    case '\\':
    case '"':
    case '\'':
      *out += c;
      return 1;
    case 'x': {
      if (i + 2 >= s.size()) return 0;
      int a = Hex(s[i + 1]), b = Hex(s[i + 2]);
      if (a < 0 || b < 0 || (a == 0 && b == 0)) return 0;  // no NUL bytes
      *out += static_cast<char>(a * 16 + b);
      return 3;
    }
    case 'u':
    case 'U': {
      size_t n = c == 'u' ? 4 : 8;
      if (i + n >= s.size()) return 0;
      uint32_t cp = 0;
      for (size_t k = 1; k <= n; ++k) {
        int h = Hex(s[i + k]);
        if (h < 0) return 0;
        cp = cp * 16 + static_cast<uint32_t>(h);
      }
      if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
      AppendUtf8(cp, out);
      return n + 1;
    }
    default:
      if (c >= '0' && c <= '7') {
        if (i + 2 >= s.size()) return 0;
        int a = c - '0', b = s[i + 1] - '0', d = s[i + 2] - '0';
        if (b < 0 || b > 7 || d < 0 || d > 7 || a > 3) return 0;
        int v = a * 64 + b * 8 + d;
        if (v == 0) return 0;
        *out += static_cast<char>(v);
        return 3;
      }
      return 0;
  }
}

}  // namespace

Status NextWord(std::string_view s, size_t* pos, std::string* word, bool* found) {
  word->clear();
  *found = false;
  size_t i = *pos;
  while (i < s.size() && IsSpace(s[i])) ++i;
  if (i == s.size()) {
    *pos = i;
    return Status::Ok();
  }
  *found = true;
  char quote = 0;
  size_t quote_start = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\') {
      if (i + 1 == s.size()) {  // a trailing backslash stays (relaxed, as systemd)
        *word += '\\';
        continue;
      }
      size_t n = CUnescapeOne(s, i + 1, word);
      if (n == 0) {
        *word += '\\';
        *word += s[i + 1];
        n = 1;
      }
      i += n;
    } else if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        *word += c;
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
      quote_start = i;
    } else if (IsSpace(c)) {
      break;
    } else {
      // Copy the run of ordinary characters at once.
      size_t j = i + 1;
      while (j < s.size() && !IsSpace(s[j]) && s[j] != '\\' && s[j] != '"' && s[j] != '\'') ++j;
      word->append(s.data() + i, j - i);
      i = j - 1;
    }
  }
  if (quote != 0) {
    return base::InvalidArgument(std::string("unterminated ") +
                                 (quote == '"' ? "double" : "single") + " quote at offset " +
                                 std::to_string(quote_start + 1) + "; close it with " + quote);
  }
  *pos = i;
  return Status::Ok();
}

Status CheckWordsSyntax(std::string_view s) {
  if (!ContainsAny(s, "\"'\\")) return Status::Ok();  // most values: no quotes, no escapes
  char quote = 0;
  size_t quote_start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\') {
      ++i;
    } else if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
      quote_start = i;
    }
  }
  if (quote == 0) return Status::Ok();
  return base::InvalidArgument(std::string("unterminated ") + (quote == '"' ? "double" : "single") +
                               " quote at offset " + std::to_string(quote_start + 1) +
                               "; close it with " + quote);
}

Result<std::vector<std::string>> SplitWords(std::string_view s) {
  std::vector<std::string> words;
  size_t pos = 0;
  std::string word;
  bool found = true;
  while (true) {
    FJORD_RETURN_IF_ERROR(NextWord(s, &pos, &word, &found));
    if (!found) break;
    words.push_back(word);
  }
  return words;
}

namespace {

bool IsValidExecutable(std::string_view p) {
  if (p.empty()) return false;
  if (p[0] == '/') return true;
  return p.find('/') == std::string_view::npos && p != "." && p != "..";
}

}  // namespace

Result<std::vector<ExecCommand>> ParseExecLine(std::string_view value) {
  std::vector<ExecCommand> cmds;
  size_t pos = 0;
  while (true) {
    while (pos < value.size() && IsSpace(value[pos])) ++pos;
    if (pos == value.size()) break;
    ExecCommand cmd;
    // Prefixes are read from the raw text before unquoting, as systemd does.
    for (; pos < value.size(); ++pos) {
      char c = value[pos];
      bool any_priv = cmd.full_privileges || cmd.no_setuid || cmd.ambient_magic;
      if (c == '-' && !cmd.ignore_failure) {
        cmd.ignore_failure = true;
      } else if (c == '@' && !cmd.separate_argv0) {
        cmd.separate_argv0 = true;
      } else if (c == ':' && !cmd.no_env_expand) {
        cmd.no_env_expand = true;
      } else if (c == '+' && !any_priv) {
        cmd.full_privileges = true;
      } else if (c == '!' && !any_priv) {
        cmd.no_setuid = true;
      } else if (c == '!' && cmd.no_setuid && !cmd.ambient_magic) {
        cmd.no_setuid = false;
        cmd.ambient_magic = true;
      } else {
        break;
      }
    }
    std::string word;
    bool found = false;
    std::vector<std::string> words;
    bool separator = false;
    while (true) {
      FJORD_RETURN_IF_ERROR(NextWord(value, &pos, &word, &found));
      if (!found) break;
      if (word == ";") {
        separator = true;
        break;
      }
      words.push_back(word == "\\;" ? std::string(";") : word);
    }
    if (words.empty()) {
      return base::InvalidArgument(separator ? "empty command before ';'"
                                             : "prefix characters but no command");
    }
    cmd.path = words[0];
    if (!IsValidExecutable(cmd.path)) {
      return base::InvalidArgument("executable " + base::QuoteForDisplay(cmd.path) +
                                   " is neither an absolute path nor a plain file name; write "
                                   "e.g. /usr/bin/docker");
    }
    if (cmd.separate_argv0) {
      if (words.size() < 2) {
        return base::InvalidArgument("'@' prefix needs argv[0] after the executable");
      }
      cmd.argv.assign(words.begin() + 1, words.end());
    } else {
      cmd.argv = std::move(words);
    }
    cmds.push_back(std::move(cmd));
  }
  return cmds;
}

Status CheckExecLine(std::string_view value) {
  // Quotes, escapes, ';' and \v\f (which base::SplitWhitespace splits on) take the full path.
  if (ContainsAny(value, "\"'\\;")) {
    return base::StatusOf(ParseExecLine(value));
  }
  size_t pos = 0;
  bool argv0 = false;
  int priv = 0;  // '+', '!' or '!!' seen
  bool dash = false, colon = false;
  for (; pos < value.size(); ++pos) {  // the same prefix rules as ParseExecLine
    char c = value[pos];
    if (c == '-' && !dash) {
      dash = true;
    } else if (c == '@' && !argv0) {
      argv0 = true;
    } else if (c == ':' && !colon) {
      colon = true;
    } else if ((c == '+' || c == '!') && priv == 0) {
      priv = c == '+' ? 1 : 2;
    } else if (c == '!' && priv == 2) {
      priv = 3;
    } else {
      break;
    }
  }
  // The first word, and only with '@' whether a second word exists (its end is not needed).
  size_t n = value.size();
  while (pos < n && IsBlank(value[pos])) ++pos;
  size_t first_end = pos;
  while (first_end < n && !IsBlank(value[first_end])) ++first_end;
  std::string_view first = value.substr(pos, first_end - pos);
  bool second = false;
  if (argv0) {
    size_t k = first_end;
    while (k < n && IsBlank(value[k])) ++k;
    second = k < n;
  }
  if (first.empty() || (argv0 && !second) || !IsValidExecutable(first)) {
    return base::StatusOf(ParseExecLine(value));  // for its precise message
  }
  return Status::Ok();
}

// Bytes that end or change the plain run of an Environment= value after '=': blanks, quotes,
// backslash. Everything else is skipped with one table load.
constexpr auto kEnvValueStop = [] {
  std::array<bool, 256> t{};
  t[' '] = t['\t'] = t['\n'] = t['\r'] = t['"'] = t['\''] = t['\\'] = true;
  return t;
}();

Status CheckEnvironment(std::string_view value) {
  // Walks the words as NextWord would, checking each NAME before '='; anything unusual
  // (escapes, a bad name, unbalanced quotes) is left to ParseEnvironment for the exact verdict
  // and message, so this only has to be right when it says Ok.
  auto full = [&] { return base::StatusOf(ParseEnvironment(value)); };
  size_t i = 0, n = value.size();
  while (true) {
    while (i < n && IsSpace(value[i])) ++i;
    if (i == n) return Status::Ok();
    char quote = 0;
    size_t name_len = 0;
    for (;; ++i) {  // NAME, possibly with quotes in it, up to '='
      if (i == n) return full();
      char c = value[i];
      if (quote != 0 && c == quote) {
        quote = 0;
        continue;
      }
      if (quote == 0 && (c == '"' || c == '\'')) {
        quote = c;
        continue;
      }
      if (c == '=') break;
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                (c >= '0' && c <= '9' && name_len > 0);
      if (!ok) return full();
      ++name_len;
    }
    if (name_len == 0) return full();
    for (++i; i < n; ++i) {  // the value: plain bytes cost one table load
      char c = value[i];
      if (!kEnvValueStop[static_cast<unsigned char>(c)]) continue;
      if (c == '\\') return full();
      if (quote != 0) {
        if (c == quote) quote = 0;
        continue;
      }
      if (c == '"' || c == '\'') {
        quote = c;
        continue;
      }
      break;  // a blank outside quotes ends the word
    }
    if (quote != 0) return full();
  }
}

bool IsValidEnvName(std::string_view n) {
  if (n.empty() || (n[0] >= '0' && n[0] <= '9')) return false;
  for (char c : n) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

Result<std::vector<EnvVar>> ParseEnvironment(std::string_view value) {
  FJORD_ASSIGN_OR_RETURN(std::vector<std::string> words, SplitWords(value));
  std::vector<EnvVar> vars;
  vars.reserve(words.size());
  for (std::string& w : words) {
    size_t eq = w.find('=');
    if (eq == std::string::npos || !IsValidEnvName(std::string_view(w).substr(0, eq))) {
      return base::InvalidArgument(
          "environment assignment " + base::QuoteForDisplay(w) +
          " is not NAME=value (names are letters, digits and '_'); quote values with spaces: "
          "Environment=\"NAME=a b\"");
    }
    vars.push_back(EnvVar{w.substr(0, eq), w.substr(eq + 1)});
  }
  return vars;
}

namespace {

const std::string* Lookup(const std::vector<EnvVar>& env, std::string_view name) {
  for (auto it = env.rbegin(); it != env.rend(); ++it) {
    if (it->name == name) return &it->value;
  }
  return nullptr;
}

std::string ExpandInline(std::string_view w, const std::vector<EnvVar>& env) {
  std::string out;
  for (size_t i = 0; i < w.size(); ++i) {
    if (w[i] != '$' || i + 1 == w.size()) {
      out += w[i];
    } else if (w[i + 1] == '$') {
      out += '$';
      ++i;
    } else if (w[i + 1] == '{') {
      size_t close = w.find('}', i + 2);
      if (close == std::string_view::npos) {
        out += w.substr(i);
        break;
      }
      if (const std::string* v = Lookup(env, w.substr(i + 2, close - i - 2))) out += *v;
      i = close;
    } else {
      out += '$';
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> ExpandExecArgv(const std::vector<std::string>& argv,
                                        const std::vector<EnvVar>& env) {
  std::vector<std::string> out;
  out.reserve(argv.size());
  for (const std::string& w : argv) {
    if (w.size() > 1 && w[0] == '$' && IsValidEnvName(std::string_view(w).substr(1))) {
      // A whole-word $NAME becomes as many words as its value has.
      if (const std::string* v = Lookup(env, std::string_view(w).substr(1))) {
        auto words = SplitWords(*v);
        if (words.ok()) {
          for (auto& x : *words) out.push_back(std::move(x));
        } else {
          for (auto x : base::SplitWhitespace(*v)) out.emplace_back(x);
        }
      }
      continue;
    }
    out.push_back(ExpandInline(w, env));
  }
  return out;
}

}  // namespace fjord::unit
