// The glue between bridge networking and the container runtime, shared by `fjord run` and the
// agent's [Container] units so that both agree on one host's bridge: which bridge and subnet
// (from the environment), where its address leases live, and the runtime's attach/detach hooks.
//
// The environment: FJORD_BRIDGE (default fjord0), FJORD_SUBNET (default 10.88.0.0/16),
// FJORD_BRIDGE_OUTBOUND=0 to keep containers off other networks (and the host's ip_forward
// untouched). The bridge's state lives in <root>/net/<bridge>.
//
// The functions are thread-safe; the hooks open the bridge on each call (they run rarely).
#pragma once

#include <filesystem>

#include "base/status.h"
#include "net/bridge.h"
#include "runtime/runtime.h"

namespace fjord::net {

base::Result<BridgeConfig> BridgeConfigFromEnv(const std::filesystem::path& root);

// Hooks that attach a container to the bridge of `config` (publishing its ports) and detach it.
runtime::NetworkHooks RuntimeNetworkHooks(const BridgeConfig& config);

}  // namespace fjord::net
