// Fuzzes the unit-file parser: it must never crash or hang, and a unit it accepts must
// round-trip: parse -> options -> Serialize -> parse gives the same options and hash.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "unit/unit.h"

namespace {

using fjord::unit::ParseUnit;
using fjord::unit::UnitName;

void Fail(const char* what, std::string_view text) {
  std::fprintf(stderr, "unit_parser_fuzz: %s\n--- input ---\n%.*s\n", what,
               static_cast<int>(text.size()), text.data());
  std::abort();
}

void Exercise(const fjord::unit::Unit& u) {
  fjord::unit::SpecifierContext ctx{u.name(), "host", "0123456789abcdef0123456789abcdef", "b"};
  for (const char* key : {"ExecStart", "ExecStartPre", "ExecStop"}) {
    auto cmds = u.Exec(key, ctx);
    if (cmds.ok()) {
      for (const auto& c : *cmds) (void)fjord::unit::ExpandExecArgv(c.argv, u.Environment());
    }
  }
  (void)u.Resources();
  (void)u.TimeoutStartSec();
  (void)u.TimeoutStopSec();
  (void)u.KillSignal();
  (void)u.Deps();
  (void)u.Container();
  (void)u.EnvironmentFiles();
}

void RoundTrip(std::string_view text, const UnitName& name) {
  auto first = ParseUnit(text, "fuzz", name);
  for (const auto& d : first.diagnostics) {
    if (d.message.empty()) Fail("diagnostic without a message", text);
  }
  if (!first.unit) return;
  Exercise(*first.unit);
  const auto& opts = first.unit->options();
  std::string again = fjord::unit::Serialize(opts);
  auto second = ParseUnit(again, "fuzz", name);
  if (!second.unit) Fail("serialized unit no longer parses", again);
  if (second.unit->options() != opts) Fail("options differ after a round trip", text);
  if (fjord::unit::ContentHash(second.unit->options()) != fjord::unit::ContentHash(opts)) {
    Fail("hash differs after a round trip", text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  static const UnitName kService = *UnitName::Parse("fuzz@1.service");
  static const UnitName kSocket = *UnitName::Parse("fuzz.socket");  // no ExecStart= needed
  RoundTrip(text, kService);
  RoundTrip(text, kSocket);

  // The value parsers and name handling on raw bytes.
  std::string_view head = text.substr(0, 512);
  (void)fjord::unit::ParseTimeSpan(head);
  (void)fjord::unit::ParseBytes(head);
  (void)fjord::unit::ParsePercent(head);
  (void)fjord::unit::ParseExecLine(head);
  (void)fjord::unit::ParseEnvironment(head);
  if (auto n = UnitName::Parse(head); n.ok()) {
    (void)n->Template();
    (void)n->Instantiate("x");
    fjord::unit::SpecifierContext ctx{*n, "h", "m", "b"};
    (void)fjord::unit::ExpandSpecifiers(head, ctx);
  }
  (void)fjord::unit::UnitNameUnescape(head);
  size_t mid = head.size() / 2;
  (void)fjord::unit::GlobMatch(head.substr(0, mid), head.substr(mid));
  return 0;
}
