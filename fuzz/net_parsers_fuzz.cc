// Feeds one input to every net parser and checks what a successful parse promises: a subnet
// prints as CIDR that parses back to it, a port mapping has real ports, and a decoded lease
// re-encodes to the same lease and renders iptables lines that cannot smuggle in extra rules.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "net/bridge.h"
#include "net/ipam.h"
#include "net/iptables.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  using namespace fjord;

  if (auto subnet = net::ParseSubnet(text); subnet.ok()) {
    auto again = net::ParseSubnet(subnet->ToString());
    if (!again.ok() || again->network != subnet->network ||
        again->prefix_length != subnet->prefix_length) {
      std::abort();
    }
    if (subnet->FirstHost() > subnet->LastHost()) std::abort();
  }
  if (auto p = net::ParsePortMapping(text); p.ok()) {
    if (p->host_port == 0 || p->container_port == 0) std::abort();
  }
  if (auto lease = net::DecodeLease(text, "fuzz"); lease.ok()) {
    auto again = net::DecodeLease(net::EncodeLease(*lease), "fuzz");
    if (!again.ok() || net::EncodeLease(*again) != net::EncodeLease(*lease)) std::abort();
    for (const auto& line : base::Split(net::DnatScript("fjt0", {*lease}), '\n')) {
      if (!line.empty() && line != "*nat" && line != "COMMIT" &&
          !base::StartsWith(line, ":FJORD-DNAT-fjt0 ") &&
          !base::StartsWith(line, "-A FJORD-DNAT-fjt0 ")) {
        std::abort();
      }
    }
  }
  return 0;
}
