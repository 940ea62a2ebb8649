// Private to src/unit: the pieces the parser, validator and accessors share.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "unit/unit.h"

namespace fjord::unit {

// One assignment as read from the file, with where it was.
struct ParsedOption {
  UnitOption opt;
  int line = 0;
  int key_col = 0;
  int value_col = 0;
};

// Collects diagnostics for one file.
class DiagSink {
 public:
  DiagSink(std::string_view file, std::vector<Diagnostic>* out) : file_(file), out_(out) {}
  void Add(Severity sev, int line, int col, std::string_view section, std::string_view key,
           std::string message, std::string suggestion = {});
  void Error(const ParsedOption& o, bool at_value, std::string message) {
    Add(Severity::kError, o.line, at_value ? o.value_col : o.key_col, o.opt.section, o.opt.name,
        std::move(message));
  }
  void Warn(const ParsedOption& o, bool at_value, std::string message) {
    Add(Severity::kWarning, o.line, at_value ? o.value_col : o.key_col, o.opt.section,
        o.opt.name, std::move(message));
  }

 private:
  std::string_view file_;
  std::vector<Diagnostic>* out_;
};

// Sections fjord knows. kUnchecked: valid systemd sections whose keys fjord does not check.
enum class SectionKind { kUnit, kService, kInstall, kXFleet, kXFjord, kContainer, kUnchecked,
                         kExtension, kUnknown };
SectionKind ClassifySection(std::string_view name);

// Checks one option against the known-key tables (keys.cc): unknown keys (with a suggestion),
// deprecated keys, value syntax, specifiers.
void CheckOption(const ParsedOption& o, SectionKind kind, DiagSink& sink);

// Whole-unit rules (validate.cc): service needs ExecStart=, X-Fleet combinations, [X-Fjord],
// [Container]. Fills the requirements structs.
void CheckUnit(const std::vector<ParsedOption>& opts, const UnitName& name, DiagSink& sink,
               FleetRequirements* fleet, FjordRequirements* fjord);

// Word splitting with systemd's quoting and C escapes (exec.cc).
Status NextWord(std::string_view s, size_t* pos, std::string* word, bool* found);
Result<std::vector<std::string>> SplitWords(std::string_view s);
bool IsValidEnvName(std::string_view n);

bool IsKnownSpecifier(char c);
// Signal name ("SIGTERM", "TERM", "RTMIN+3") or number -> number.
Result<int> ParseSignal(std::string_view s);

// The list semantics: values after the last empty assignment of section.key.
std::vector<std::string_view> ListValues(const std::vector<UnitOption>& opts,
                                         std::string_view section, std::string_view key);

// Builds a Unit (friend of Unit).
struct UnitBuilder {
  static Unit Make(UnitName name, std::vector<UnitOption> options, FleetRequirements fleet,
                   FjordRequirements fjord);
};

}  // namespace fjord::unit
