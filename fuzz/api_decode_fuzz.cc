// Fuzzes the API wire decoders: any bytes must decode or fail with a Status, never crash, and
// whatever decodes must survive a round trip through ToJson.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/types.h"

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
  return 0;
}
