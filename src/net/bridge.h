// BridgeNetwork: connects containers to a host bridge with a veth pair and an address from a
// configured subnet, and publishes container ports on the host's loopback.
//
// State (address leases, published ports) lives on disk under `state_dir`, so any fjord process
// (a restarted agent, the next `fjord rm`) can release what another one set up; Recover()
// removes leases whose network namespace no longer exists.
//
// Thread-safety: not thread-safe; mutations across processes serialise on an flock of state_dir.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace fjord::net {

struct BridgeConfig {
  std::string bridge_name = "fjord0";
  std::string subnet = "10.88.0.0/16";  // the bridge takes the first host address as gateway
  std::filesystem::path state_dir;      // e.g. /var/lib/fjord/net/<bridge_name>
  // Lets containers reach other networks: masquerades the subnet and sets the host-wide
  // net.ipv4.ip_forward=1. When false, containers reach only the bridge (each other, the host,
  // published ports) and forwarded traffic from the bridge elsewhere is dropped.
  bool outbound = true;
};

struct PortMapping {
  uint16_t host_port = 0;  // answers on 127.0.0.1 (and the host's addresses)
  uint16_t container_port = 0;
  std::string protocol = "tcp";  // "tcp" or "udp"
};

// Parses a `--publish` value "HOST:CONTAINER[/tcp|/udp]", e.g. "8080:80" or "5353:53/udp".
base::Result<PortMapping> ParsePortMapping(std::string_view text);

struct Attachment {
  std::string container_id;
  std::string address;  // e.g. "10.88.0.5"
  int prefix_length = 16;
  std::string gateway;    // bridge address
  std::string host_veth;  // host side interface name
  std::vector<PortMapping> ports;
};

// The attachment of `container_id` recorded under config.state_dir, or nullopt when it has none
// (or the state dir does not exist). Only reads: no bridge setup, no lock; for status output.
base::Result<std::optional<Attachment>> FindAttachment(const BridgeConfig& config,
                                                       const std::string& container_id);

class BridgeNetwork {
 public:
  virtual ~BridgeNetwork() = default;

  // Validates the config, creates the bridge if missing (idempotent).
  static base::Result<std::unique_ptr<BridgeNetwork>> Open(const BridgeConfig& config);

  // Moves one end of a new veth pair into the network namespace of `netns_pid` (named eth0
  // there, loopback up, default route via the bridge) and publishes `ports`. Either everything is
  // set up or nothing is left behind.
  virtual base::Result<Attachment> Attach(const std::string& container_id, pid_t netns_pid,
                                          const std::vector<PortMapping>& ports) = 0;

  // Removes the veth, the port publications and the address lease. Idempotent: detaching an
  // unknown container is OK.
  virtual base::Status Detach(const std::string& container_id) = 0;

  // Releases leases, veths and rules of containers whose owning process (netns_pid, matched by
  // start time) is gone, e.g. after a crash; rewrites the bridge's rules from the leases.
  virtual base::Status Recover() = 0;

  // Removes the bridge itself when no container is attached (used by tests).
  virtual base::Status RemoveBridgeIfUnused() = 0;
};

}  // namespace fjord::net
