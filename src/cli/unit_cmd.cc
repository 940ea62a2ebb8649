// fjord unit check: reads unit files as systemd and fleet would and reports what is wrong.
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "unit/unit.h"

namespace fjord::cli {

namespace {

struct CheckOptions {
  std::vector<std::string> files;
  bool strict = false;
  bool json = false;
};

// Reads a whole file, or explains why it cannot.
bool ReadFile(const std::string& path, std::string* out, std::string* error) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    *error = "cannot read " + path + ": it is a directory; pass a unit file";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  *out = std::move(ss).str();
  return true;
}

std::vector<unit::Diagnostic> CheckFile(const std::string& path) {
  std::vector<unit::Diagnostic> diags;
  auto file_error = [&](std::string msg) {
    unit::Diagnostic d;
    d.file = path;
    d.severity = unit::Severity::kError;
    d.message = std::move(msg);
    diags.push_back(std::move(d));
  };
  std::string text, error;
  if (!ReadFile(path, &text, &error)) {
    file_error(error);
    return diags;
  }
  std::string base = std::filesystem::path(path).filename().string();
  auto name = unit::UnitName::Parse(base);
  if (!name.ok()) {
    file_error("the file name is not a unit name: " + std::string(name.status().message()));
    name = unit::UnitName::Parse("unit.service");  // still check the contents
  }
  unit::ParseResult r = unit::ParseUnit(text, path, *name);
  diags.insert(diags.end(), std::make_move_iterator(r.diagnostics.begin()),
               std::make_move_iterator(r.diagnostics.end()));
  return diags;
}

int RunCheck(const CheckOptions& opts) {
  std::vector<unit::Diagnostic> all;
  for (const std::string& f : opts.files) {
    auto d = CheckFile(f);
    all.insert(all.end(), std::make_move_iterator(d.begin()), std::make_move_iterator(d.end()));
  }
  size_t errors = 0, warnings = 0;
  for (const auto& d : all) (d.severity == unit::Severity::kError ? errors : warnings)++;
  if (opts.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& d : all) {
      out.push_back({{"file", d.file},
                     {"line", d.line},
                     {"column", d.column},
                     {"severity", unit::SeverityName(d.severity)},
                     {"section", d.section},
                     {"key", d.key},
                     {"message", d.message},
                     {"suggestion", d.suggestion}});
    }
    // Invalid UTF-8 from a broken file must not throw: replace it.
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    for (const auto& d : all) std::cout << d.ToString() << "\n";
    std::cout << "checked " << opts.files.size()
              << (opts.files.size() == 1 ? " file: " : " files: ") << errors
              << (errors == 1 ? " error, " : " errors, ") << warnings
              << (warnings == 1 ? " warning" : " warnings")
              << (opts.strict && warnings > 0 && errors == 0 ? " (--strict: warnings fail)" : "")
              << "\n";
  }
  if (errors > 0 || (opts.strict && warnings > 0)) return 1;
  return 0;
}

}  // namespace

void RegisterUnitCommands(CLI::App& app, int& exit_code) {
  auto* unit_cmd = app.add_subcommand("unit", "Work with systemd unit files");
  unit_cmd->require_subcommand(1);
  auto opts = std::make_shared<CheckOptions>();
  auto* check = unit_cmd->add_subcommand(
      "check", "Check unit files as systemd and fleet would read them; exit 1 on errors");
  check->add_option("files", opts->files, "Unit files to check")->required();
  check->add_flag("--strict", opts->strict, "Warnings fail the check too");
  check->add_flag("--json", opts->json,
                  "Print diagnostics as a JSON array of "
                  "{file,line,column,severity,section,key,message,suggestion}");
  check->callback([opts, &exit_code] { exit_code = RunCheck(*opts); });
}

}  // namespace fjord::cli
