// Output helpers of the fleet verbs: fleetctl-style tables (Go's tabwriter with '\t' padding,
// so columns line up in a terminal and split on tabs in scripts) and JSON arrays.
// Plain values; not thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fjord::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t rows() const { return rows_.size(); }
  // Every cell but a row's last is followed by enough tabs to reach the column's width
  // (the widest cell + 1, rounded up to a multiple of 8), as fleetctl's tabwriter does.
  std::string Render(bool legend = true) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// "[a,b,c]" from already serialized JSON values.
std::string JsonArray(const std::vector<std::string>& items);

// fleetctl's machine column: "<first 8 of id>.../<ip>", or "<id>/<ip>" with `full`.
std::string MachineLegend(std::string_view id, std::string_view ip, bool full);

}  // namespace fjord::cli
