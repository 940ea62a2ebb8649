// What the durability writer writes, so the test can recompute every acknowledged value.
#pragma once

#include <string>

namespace fjord::store::durability {

// Values vary in size (0..3 KiB) so groups span several pages and sometimes the WAL wraps.
inline std::string ValueFor(const std::string& key) {
  size_t h = std::hash<std::string>{}(key);
  return key + "=" + std::string(h % 3072, static_cast<char>('a' + h % 26));
}

}  // namespace fjord::store::durability
