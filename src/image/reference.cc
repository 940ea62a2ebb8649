#include "image/reference.h"

#include <cctype>

#include "base/strings.h"
#include "image/digest.h"

namespace fjord::image {

namespace {

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxTagLength = 128;

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// path-component: [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
bool ValidPathComponent(std::string_view s) {
  if (s.empty() || !IsLowerAlnum(s.front()) || !IsLowerAlnum(s.back())) return false;
  for (size_t i = 0; i < s.size();) {
    if (IsLowerAlnum(s[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && !IsLowerAlnum(s[j])) ++j;
    std::string_view sep = s.substr(i, j - i);
    bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (sep != "." && sep != "_" && sep != "__" && !dashes) return false;
    i = j;
  }
  return true;
}

// domain: labels of [A-Za-z0-9-] separated by dots, optional :port.
bool ValidDomain(std::string_view s) {
  size_t colon = s.find(':');
  if (colon != std::string_view::npos) {
    std::string_view port = s.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string_view::npos) {
      return false;
    }
    s = s.substr(0, colon);
  }
  for (const auto& label : base::Split(s, '.')) {
    if (label.empty() || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
  }
  return true;
}

bool ValidTag(std::string_view s) {
  if (s.empty() || s.size() > kMaxTagLength) return false;
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (!word(s.front())) return false;
  for (char c : s) {
    if (!word(c) && c != '.' && c != '-') return false;
  }
  return true;
}

base::Status Bad(std::string_view text, std::string_view why) {
  return base::InvalidArgument("invalid image reference " + base::QuoteForDisplay(text) + ": " +
                               std::string(why));
}

}  // namespace

std::string Reference::String() const {
  std::string out = repository;
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + digest;
  return out;
}

base::Result<Reference> ParseReference(std::string_view text) {
  if (text.empty()) return Bad(text, "it is empty");
  Reference ref;
  std::string_view rest = text;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    ref.digest = std::string(rest.substr(at + 1));
    if (!ValidateDigest(ref.digest, "").ok()) {
      return Bad(text, "the part after `@` must be sha256:<64 lowercase hex digits>");
    }
    rest = rest.substr(0, at);
  }
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    ref.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (!ValidTag(ref.tag)) {
      return Bad(text, "tag must be 1-128 of [A-Za-z0-9_.-], not starting with `.` or `-`");
    }
  }
  if (rest.empty()) return Bad(text, "the repository name is empty");
  if (rest.size() > kMaxNameLength) return Bad(text, "the repository name is over 255 characters");
  std::vector<std::string> parts = base::Split(rest, '/');
  size_t first = 0;
  // As docker: the first part is a registry if it has a dot or port, is localhost, or has
  // uppercase letters (which a path component may not).
  const std::string& head = parts[0];
  bool has_upper = head != base::AsciiLower(head);
  if (parts.size() > 1 &&
      (head.find_first_of(".:") != std::string::npos || head == "localhost" || has_upper)) {
    if (!ValidDomain(head)) return Bad(text, "registry `" + head + "` is not a valid host[:port]");
    first = 1;
  }
  for (size_t i = first; i < parts.size(); ++i) {
    if (parts[i] != base::AsciiLower(parts[i])) {
      return Bad(text, "repository name must be lowercase");
    }
    if (!ValidPathComponent(parts[i])) {
      return Bad(text, "name component `" + parts[i] +
                           "` must be lowercase letters and digits, joined by `.`, `_`, `__` "
                           "or dashes");
    }
  }
  ref.repository = std::string(rest);
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

bool LooksLikeId(std::string_view text) {
  if (text.substr(0, kSha256Prefix.size()) == kSha256Prefix) text = DigestHex(text);
  return !text.empty() && text.size() <= 64 && IsLowerHex(text);
}

}  // namespace fjord::image
