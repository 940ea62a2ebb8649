#pragma once

#include <string_view>

namespace fjord::cli {
inline constexpr std::string_view kVersion = "0.1.0";
}  // namespace fjord::cli
