// Where fjord keeps its state on a machine: one rule for every module and verb.
#pragma once

#include <cstdlib>
#include <filesystem>

namespace fjord::base {

// `flag` when given (e.g. --root), else $FJORD_ROOT when set and non-empty, else /var/lib/fjord.
inline std::filesystem::path StateRoot(const std::filesystem::path& flag = {}) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("FJORD_ROOT");
  return (env != nullptr && env[0] != '\0') ? std::filesystem::path(env)
                                            : std::filesystem::path("/var/lib/fjord");
}

}  // namespace fjord::base
