#include "cli/output.h"

#include <algorithm>

namespace fjord::cli {

std::string Table::Render(bool legend) const {
  constexpr size_t kTabWidth = 8;
  std::vector<const std::vector<std::string>*> lines;
  if (legend) lines.push_back(&header_);
  for (const auto& r : rows_) lines.push_back(&r);
  std::vector<size_t> width;
  for (const auto* line : lines) {
    for (size_t c = 0; c + 1 < line->size(); c++) {
      if (width.size() <= c) width.resize(c + 1, 0);
      width[c] = std::max(width[c], (*line)[c].size() + 1);
    }
  }
  for (size_t& w : width) w = (w + kTabWidth - 1) / kTabWidth * kTabWidth;
  std::string out;
  for (const auto* line : lines) {
    for (size_t c = 0; c < line->size(); c++) {
      const std::string& cell = (*line)[c];
      out += cell;
      if (c + 1 == line->size()) break;
      size_t tabs = (width[c] - cell.size() + kTabWidth - 1) / kTabWidth;
      out.append(std::max<size_t>(tabs, 1), '\t');
    }
    out += '\n';
  }
  return out;
}

std::string JsonArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); i++) {
    if (i > 0) out += ",";
    out += items[i];
  }
  return out + "]";
}

std::string MachineLegend(std::string_view id, std::string_view ip, bool full) {
  std::string out = full || id.size() <= 8 ? std::string(id) : std::string(id.substr(0, 8)) + "...";
  if (!ip.empty()) out += "/" + std::string(ip);
  return out;
}

}  // namespace fjord::cli
