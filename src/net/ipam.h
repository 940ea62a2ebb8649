// IPAM for one bridge: subnet parsing and address leases kept on disk, so every fjord process
// on the machine shares them. Private to the net module.
//
// On-disk layout under a bridge's state_dir (the one place it is written down):
//   lock                      flock(LOCK_EX) held for every read-modify-write of the leases
//   last                      the last address handed out, so addresses are reused round-robin
//   leases/<address>          one JSON lease per address (see Lease), written by rename
//   by-id/<container_id>      symlink whose target is the <address> of that container's lease
// A lease file is written before its by-id link and removed after it, so a crash between the two
// leaves at most a lease without a link, which Recover() reclaims.
//
// Thread-safety: LeaseStore is not thread-safe; processes serialise through LeaseStore::Lock().
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "base/status.h"
#include "net/bridge.h"

namespace fjord::net {

// Names that become file names, interface names or iptables comments are limited to letters,
// digits, '_', '-' and '.'; errors name `what` and the rule.
base::Status ValidateInterfaceName(const std::string& name, std::string_view what);
base::Status ValidateContainerId(const std::string& id);
// Protocols tcp/udp, ports 1-65535, no host port/protocol twice.
base::Status ValidatePorts(const std::vector<PortMapping>& ports);

// IPv4 addresses are kept in host byte order inside the module.
base::Result<uint32_t> ParseIpv4(std::string_view text);
std::string FormatIpv4(uint32_t address);

struct Subnet {
  uint32_t network = 0;  // host bits zero
  int prefix_length = 0;

  uint32_t Mask() const { return prefix_length == 0 ? 0 : ~uint32_t{0} << (32 - prefix_length); }
  uint32_t Broadcast() const { return network | ~Mask(); }
  uint32_t Gateway() const { return network + 1; }    // the bridge's own address
  uint32_t FirstHost() const { return network + 2; }  // first container address
  uint32_t LastHost() const { return Broadcast() - 1; }
  bool Contains(uint32_t a) const { return (a & Mask()) == network; }
  std::string ToString() const;
};

// "10.88.0.0/16" -> Subnet. Errors name the string and the fix (host bits set, a prefix too
// long to hold a gateway and a container, not a dotted quad).
base::Result<Subnet> ParseSubnet(std::string_view text);

// Identity of the process owning a namespace, to tell a live owner from a reused pid.
struct ProcessIdentity {
  uint64_t start_time = 0;   // /proc/<pid>/stat field 22, clock ticks since boot
  uint64_t netns_inode = 0;  // st_ino of /proc/<pid>/ns/net
};
base::Result<ProcessIdentity> ReadProcessIdentity(pid_t pid);

struct Lease {
  std::string container_id;
  uint32_t address = 0;
  std::string host_veth;
  pid_t pid = 0;
  ProcessIdentity owner;
  std::vector<PortMapping> ports;
};

class LeaseStore {
 public:
  // Creates the directories if missing. The store is usable before Lock(), but callers that
  // read-modify-write must hold the lock.
  static base::Result<LeaseStore> Open(const std::filesystem::path& state_dir);

  // Blocks until this process holds the exclusive lock; released when the UniqueFd closes.
  base::Result<base::UniqueFd> Lock() const;

  base::Result<std::vector<Lease>> List() const;
  // The lease of `container_id`, or nullopt.
  base::Result<std::optional<Lease>> Find(const std::string& container_id) const;
  // A free address in `subnet` (not the gateway), after the last one handed out.
  // ResourceExhausted, naming the subnet, when every address is leased.
  base::Result<uint32_t> Allocate(const Subnet& subnet) const;
  // Writes the lease file and then its by-id link. AlreadyExists if the address is taken.
  base::Status Write(const Lease& lease) const;
  // Removes the by-id link and the lease file; missing files are fine.
  base::Status Remove(const Lease& lease) const;
  // Removes by-id links whose lease file is gone or belongs to another container.
  base::Status RemoveDanglingLinks() const;

  const std::filesystem::path& dir() const { return dir_; }

 private:
  explicit LeaseStore(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
};

// JSON encoding of a lease (exposed for tests).
std::string EncodeLease(const Lease& lease);
base::Result<Lease> DecodeLease(std::string_view json, std::string_view where);

}  // namespace fjord::net
