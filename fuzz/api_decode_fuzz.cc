// Fuzzes the API wire decoders: any bytes must decode or fail with a Status, never crash, and
// whatever decodes must survive a round trip through ToJson.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/protocol.h"
#include "api/types.h"

namespace {

// Whatever decodes must encode and decode back to the same value.
template <typename Decode>
void RoundTrip(std::string_view in, Decode decode) {
  auto v = decode(in);
  if (!v.ok()) return;
  auto again = decode(fjord::api::ToJson(*v));
  if (!again.ok() || !(*again == *v)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  using namespace fjord::api;
  if (auto u = UnitFromJson(in); u.ok()) {
    auto again = UnitFromJson(ToJson(*u));
    if (!again.ok() || !(*again == *u)) std::abort();
  }
  (void)UnitStateFromJson(in);
  (void)MachineFromJson(in);
  if (auto p = UnitPageFromJson(in); p.ok()) (void)ToJson(*p);
  (void)UnitStatePageFromJson(in);
  (void)MachinePageFromJson(in);
  (void)ErrorFromJson(in);
  // fjord's native protocol (api/protocol.h).
  RoundTrip(in, MachineRegistrationFromJson);
  RoundTrip(in, RegistrationReplyFromJson);
  RoundTrip(in, ScheduledUnitFromJson);
  RoundTrip(in, UnitFileFromJson);
  RoundTrip(in, ScheduleFromJson);
  RoundTrip(in, UnitStatusReportFromJson);
  RoundTrip(in, StateReportFromJson);
  RoundTrip(in, ErrorBodyFromJson);
  RoundTrip(in, PutUnitRequestFromJson);
  RoundTrip(in, UnitViewFromJson);
  RoundTrip(in, UnitViewPageFromJson);
  RoundTrip(in, MachineViewFromJson);
  RoundTrip(in, MachineViewPageFromJson);
  RoundTrip(in, ScaleRequestFromJson);
  RoundTrip(in, ScaleReplyFromJson);
  return 0;
}
