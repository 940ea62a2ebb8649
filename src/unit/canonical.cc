// The canonical option list, its text (fleet/go-systemd's serialization) and its hash.
#include <openssl/sha.h>

#include <algorithm>

#include "unit/unit_internal.h"

namespace fjord::unit {

std::string Serialize(const std::vector<UnitOption>& options) {
  size_t groups = 0;
  std::vector<uint32_t> group = GroupBySection(
      options.size(), [&](size_t i) { return std::string_view(options[i].section); }, &groups);
  // Options of each group in order (counting sort), so the text is built in one pass.
  std::vector<uint32_t> start(groups + 1, 0), order(options.size());
  for (uint32_t g : group) ++start[g + 1];
  for (size_t g = 1; g <= groups; ++g) start[g] += start[g - 1];
  std::vector<uint32_t> fill(start.begin(), start.end() - 1);
  size_t bytes = 0;
  for (size_t i = 0; i < options.size(); ++i) {
    order[fill[group[i]]++] = static_cast<uint32_t>(i);
    bytes += options[i].name.size() + options[i].value.size() + 3;
  }
  std::string out;
  out.reserve(bytes + groups * 16);
  for (size_t g = 0; g < groups; ++g) {
    out += '[';
    out += options[order[start[g]]].section;
    out += "]\n";
    for (uint32_t k = start[g]; k < start[g + 1]; ++k) {
      const UnitOption& o = options[order[k]];
      out += o.name;
      out += '=';
      out += o.value;
      // A value ending in an odd run of backslashes would read back as a line continuation;
      // a trailing space stops that and is trimmed again on reading.
      size_t n = 0;
      while (n < o.value.size() && o.value[o.value.size() - 1 - n] == '\\') ++n;
      if (n & 1) out += ' ';
      out += '\n';
    }
    if (g + 1 < groups) out += '\n';
  }
  return out;
}

std::string ContentHash(const std::vector<UnitOption>& options) {
  std::string text = Serialize(options);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * SHA_DIGEST_LENGTH);
  for (unsigned char b : digest) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  return hex;
}

Unit UnitBuilder::Make(UnitName name, std::shared_ptr<const char[]> text,
                       std::vector<UnitOption> options, FleetRequirements fleet,
                       FjordRequirements fjord) {
  Unit u;
  u.name_ = std::move(name);
  u.text_ = std::move(text);
  u.options_ = std::move(options);
  u.fleet_ = std::move(fleet);
  u.fjord_ = std::move(fjord);
  return u;
}

std::vector<std::string_view> ListValues(const std::vector<UnitOption>& opts,
                                         std::string_view section, std::string_view key) {
  std::vector<std::string_view> out;
  for (const UnitOption& o : opts) {
    if (o.section != section || o.name != key) continue;
    if (o.value.empty()) {
      out.clear();
    } else {
      out.push_back(o.value);
    }
  }
  return out;
}

bool Unit::HasSection(std::string_view section) const {
  return std::any_of(options_.begin(), options_.end(),
                     [&](const UnitOption& o) { return o.section == section; });
}

std::optional<std::string_view> Unit::Get(std::string_view section, std::string_view key) const {
  for (auto it = options_.rbegin(); it != options_.rend(); ++it) {
    if (it->section == section && it->name == key) return std::string_view(it->value);
  }
  return std::nullopt;
}

std::vector<std::string_view> Unit::GetAll(std::string_view section, std::string_view key) const {
  return ListValues(options_, section, key);
}

}  // namespace fjord::unit
