#include "net/runtime_network.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "base/strings.h"

namespace fjord::net {

base::Result<BridgeConfig> BridgeConfigFromEnv(const std::filesystem::path& root) {
  BridgeConfig config;
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v != nullptr ? v : "";
  };
  if (std::string v = env("FJORD_BRIDGE"); !v.empty()) config.bridge_name = v;
  if (std::string v = env("FJORD_SUBNET"); !v.empty()) config.subnet = v;
  if (std::string v = env("FJORD_BRIDGE_OUTBOUND"); !v.empty()) {
    if (v != "0" && v != "1") {
      return base::InvalidArgument("FJORD_BRIDGE_OUTBOUND=" + base::QuoteForDisplay(v) +
                                   ": use 1 (default) or 0");
    }
    config.outbound = v == "1";
  }
  if (config.bridge_name.find('/') != std::string::npos || config.bridge_name == "." ||
      config.bridge_name == "..") {
    return base::InvalidArgument("FJORD_BRIDGE=" + base::QuoteForDisplay(config.bridge_name) +
                                 ": not an interface name");
  }
  config.state_dir = root / "net" / config.bridge_name;
  return config;
}

runtime::NetworkHooks RuntimeNetworkHooks(const BridgeConfig& config) {
  runtime::NetworkHooks hooks;
  hooks.attach = [config](const std::string& id, pid_t pid,
                          const std::vector<runtime::PortPublish>& ports) -> base::Status {
    FJORD_ASSIGN_OR_RETURN(auto bridge, BridgeNetwork::Open(config));
    std::vector<PortMapping> mappings;
    for (const auto& p : ports) mappings.push_back({p.host_port, p.container_port, p.protocol});
    return bridge->Attach(id, pid, mappings).status();
  };
  hooks.detach = [config](const std::string& id) -> base::Status {
    // Nothing to release (and no bridge to create) when this container never got a lease.
    FJORD_ASSIGN_OR_RETURN(auto attachment, FindAttachment(config, id));
    if (!attachment) return base::Status::Ok();
    FJORD_ASSIGN_OR_RETURN(auto bridge, BridgeNetwork::Open(config));
    return bridge->Detach(id);
  };
  return hooks;
}

}  // namespace fjord::net
