// URL pieces shared by the HTTP server and client: percent-encoding, query strings, base URLs.
// Pure functions over strings; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace fjord::http {

// Decodes %XX escapes. With `plus_is_space` (query strings, form encoding) '+' becomes ' '.
// A '%' not followed by two hex digits is an error naming the offending text.
base::Result<std::string> PercentDecode(std::string_view s, bool plus_is_space = false);

// Escapes everything but RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~), so the result is
// safe as one path segment or one query key/value: "hello@1.service" -> "hello%401.service".
std::string PercentEncode(std::string_view s);

// A parsed query string, in request order; a key may repeat.
class QueryParams {
 public:
  QueryParams() = default;
  // Parses "a=1&b=x%20y&flag"; a key without '=' has an empty value.
  static base::Result<QueryParams> Parse(std::string_view query);

  // The first value of `key`, if present.
  std::optional<std::string> Get(std::string_view key) const;
  std::vector<std::string> GetAll(std::string_view key) const;
  bool Has(std::string_view key) const { return Get(key).has_value(); }
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }

  void Add(std::string key, std::string value) {
    items_.emplace_back(std::move(key), std::move(value));
  }
  // "a=1&b=x%20y", escaped; empty when there are no items.
  std::string Encode() const;

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// "http://host:port[/prefix]". Only plain http; the prefix (without a trailing '/') is
// prepended to every request path.
struct BaseUrl {
  std::string host;
  uint16_t port = 80;
  std::string prefix;

  static base::Result<BaseUrl> Parse(std::string_view url);
  // "http://host:port<prefix>" as given back to people in error messages.
  std::string ToString() const;
};

}  // namespace fjord::http
