#include "net/bridge.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <functional>
#include <thread>
#include <utility>

#include "base/fd.h"
#include "base/strings.h"
#include "net/ipam.h"
#include "net/iptables.h"
#include "net/netlink.h"

namespace fjord::net {
namespace {

using base::ErrnoStatus;
using base::InvalidArgument;
using base::Result;
using base::Status;
using base::UniqueFd;

// Runs an undo action at scope exit unless dismissed: each created link, lease or rule gets one,
// so a failure half-way through Attach leaves nothing behind.
class Undo {
 public:
  explicit Undo(std::function<void()> fn) : fn_(std::move(fn)) {}
  Undo(const Undo&) = delete;
  Undo& operator=(const Undo&) = delete;
  ~Undo() {
    if (fn_) fn_();
  }
  void Dismiss() { fn_ = nullptr; }

 private:
  std::function<void()> fn_;
};

// A stable host-side name for a container's veth (at most 15 characters), so Detach can find
// the link even when the lease is gone.
std::string VethName(const std::string& bridge, const std::string& container_id) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (char c : bridge + '\0' + container_id) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  }
  char hex[11];
  for (int i = 9; i >= 0; --i, h >>= 4) hex[i] = "0123456789abcdef"[h & 15];
  hex[10] = '\0';
  return std::string("fjv") + hex;
}

// /proc/sys/net shows the namespace of the process that opens it (unlike /sys, which shows the
// namespace of whoever mounted it), so this works from any fjord process.
Status WriteSysctl(const std::string& key, const char* value) {
  std::string path = "/proc/sys/" + key;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("set sysctl " + key);
  if (::write(fd.get(), value, std::strlen(value)) < 0) return ErrnoStatus("set sysctl " + key);
  return Status::Ok();
}

// Fails if a host process already listens on the port: the DNAT rule would silently steal its
// locally generated traffic.
Status CheckHostPortFree(const PortMapping& p) {
  bool tcp = p.protocol == "tcp";
  UniqueFd fd(::socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus("socket");
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // ignore TIME_WAIT
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(p.host_port);
  sa.sin_addr.s_addr = htonl(INADDR_ANY);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
    if (errno == EADDRINUSE) {
      return base::FailedPrecondition("host port " + std::to_string(p.host_port) + "/" +
                                      p.protocol +
                                      " is already in use by a process on this host; publish "
                                      "on another host port");
    }
    return ErrnoStatus("check host port " + std::to_string(p.host_port));
  }
  return Status::Ok();
}

// Two interfaces routing overlapping subnets would split traffic unpredictably, so a subnet
// already routed through another interface (another bridge, podman's cni0, the LAN) is refused.
Status CheckSubnetUnused(const Subnet& subnet, const std::string& bridge) {
  std::ifstream routes("/proc/net/route");
  std::string line;
  std::getline(routes, line);  // header
  while (std::getline(routes, line)) {
    auto f = base::SplitWhitespace(line);
    if (f.size() < 8 || f[0] == bridge) continue;
    uint32_t dest = 0, mask = 0;
    std::from_chars(f[1].data(), f[1].data() + f[1].size(), dest, 16);
    std::from_chars(f[7].data(), f[7].data() + f[7].size(), mask, 16);
    dest = ntohl(dest);
    mask = ntohl(mask);
    if (mask == 0) continue;  // the default route overlaps everything by design
    uint32_t common = mask & subnet.Mask();
    if ((dest & common) == (subnet.network & common)) {
      int prefix = __builtin_popcount(mask);
      return base::FailedPrecondition("subnet " + subnet.ToString() + " overlaps " +
                                      FormatIpv4(dest) + "/" + std::to_string(prefix) +
                                      ", routed via " + std::string(f[0]) +
                                      "; choose another BridgeConfig.subnet");
    }
  }
  return Status::Ok();
}

// An fd of the network namespace of `pid`, which must not be the caller's own.
Result<UniqueFd> OpenContainerNetns(pid_t pid) {
  if (pid <= 0) return InvalidArgument("netns_pid must be positive");
  std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return base::NotFound("process " + std::to_string(pid) + " is gone");
    return ErrnoStatus("open " + path);
  }
  struct stat target {};
  struct stat self {};
  if (::fstat(fd.get(), &target) < 0) return ErrnoStatus("stat " + path);
  if (::stat("/proc/self/ns/net", &self) == 0 && self.st_ino == target.st_ino &&
      self.st_dev == target.st_dev) {
    return base::FailedPrecondition("process " + std::to_string(pid) +
                                    " is in the host's network namespace; start the container "
                                    "in a new one (CLONE_NEWNET) before attaching it");
  }
  return fd;
}

bool OwnerAlive(const Lease& lease) {
  auto id = ReadProcessIdentity(lease.pid);
  return id.ok() && id->start_time == lease.owner.start_time &&
         id->netns_inode == lease.owner.netns_inode;
}

class BridgeNetworkImpl final : public BridgeNetwork {
 public:
  BridgeNetworkImpl(BridgeConfig config, Subnet subnet, LeaseStore store)
      : config_(std::move(config)), subnet_(subnet), store_(std::move(store)) {}

  Status Setup();
  Result<Attachment> Attach(const std::string& container_id, pid_t netns_pid,
                            const std::vector<PortMapping>& ports) override;
  Status Detach(const std::string& container_id) override;
  Status Recover() override;
  Status RemoveBridgeIfUnused() override;

 private:
  Result<Attachment> AttachImpl(const std::string& container_id, pid_t netns_pid,
                                const std::vector<PortMapping>& ports);
  Status ConfigureInside(int netns_fd, uint32_t address);
  // Fails if another container of this bridge or a host process holds one of `ports`; returns
  // the current leases (the DNAT chain is rewritten from them). Caller holds the lock.
  Result<std::vector<Lease>> CheckPortsFree(const std::vector<PortMapping>& ports);
  // Rewrites every chain and missing jump of this bridge from `leases`.
  Status SyncAllRules(const std::vector<Lease>& leases);
  RuleParams Params() const { return {config_.bridge_name, subnet_, config_.outbound}; }

  const BridgeConfig config_;
  const Subnet subnet_;
  const LeaseStore store_;
};

Status BridgeNetworkImpl::Setup() {
  FJORD_ASSIGN_OR_RETURN(UniqueFd lock, store_.Lock());
  const std::string& br = config_.bridge_name;
  FJORD_RETURN_IF_ERROR(CheckSubnetUnused(subnet_, br));
  FJORD_ASSIGN_OR_RETURN(Netlink nl, Netlink::Open());
  auto index = nl.LinkIndex(br);
  bool created = false;
  if (!index.ok()) {
    if (index.status().code() != base::Code::kNotFound) return index.status();
    FJORD_RETURN_IF_ERROR(nl.CreateBridge(br));
    created = true;
    index = nl.LinkIndex(br);
    if (!index.ok()) return index.status();
  }
  Undo remove_bridge([&] {
    if (created) (void)nl.DeleteLink(br);
  });
  FJORD_RETURN_IF_ERROR(nl.AddAddress(*index, htonl(subnet_.Gateway()), subnet_.prefix_length));
  FJORD_RETURN_IF_ERROR(nl.SetUp(*index));
  // Loopback clients of published ports are DNATed out of the bridge with source 127.0.0.1;
  // route_localnet on the bridge alone lets them (and their replies) be routed.
  FJORD_RETURN_IF_ERROR(WriteSysctl("net/ipv4/conf/" + br + "/route_localnet", "1"));
  // Routing between the bridge's ports (containers reaching published ports through the
  // gateway address) needs forwarding on the bridge; IPv4 checks the input device only.
  FJORD_RETURN_IF_ERROR(WriteSysctl("net/ipv4/conf/" + br + "/forwarding", "1"));
  if (config_.outbound) FJORD_RETURN_IF_ERROR(WriteSysctl("net/ipv4/ip_forward", "1"));
  // Every `fjord run` opens the network, so rules already in place cost one iptables-save.
  FJORD_ASSIGN_OR_RETURN(SavedTables saved, SaveTables());
  if (!RulesInPlace(Params(), saved.nat, saved.filter)) {
    FJORD_ASSIGN_OR_RETURN(auto leases, store_.List());
    Status st = Restore(SyncScript(Params(), leases, saved.nat, saved.filter));
    if (!st.ok()) return st.Wrap("install rules of bridge " + br);
  }
  remove_bridge.Dismiss();
  return Status::Ok();
}

Status BridgeNetworkImpl::SyncAllRules(const std::vector<Lease>& leases) {
  FJORD_ASSIGN_OR_RETURN(SavedTables saved, SaveTables());
  Status st = Restore(SyncScript(Params(), leases, saved.nat, saved.filter));
  if (!st.ok()) return st.Wrap("install rules of bridge " + config_.bridge_name);
  return st;
}

Result<Attachment> BridgeNetworkImpl::Attach(const std::string& container_id, pid_t netns_pid,
                                             const std::vector<PortMapping>& ports) {
  auto r = AttachImpl(container_id, netns_pid, ports);
  if (!r.ok()) {
    return r.status().Wrap("attach container " + container_id + " to bridge " +
                           config_.bridge_name);
  }
  return r;
}

Result<Attachment> BridgeNetworkImpl::AttachImpl(const std::string& container_id, pid_t netns_pid,
                                                 const std::vector<PortMapping>& ports) {
  FJORD_RETURN_IF_ERROR(ValidateContainerId(container_id));
  FJORD_RETURN_IF_ERROR(ValidatePorts(ports));
  FJORD_ASSIGN_OR_RETURN(UniqueFd netns, OpenContainerNetns(netns_pid));
  FJORD_ASSIGN_OR_RETURN(ProcessIdentity owner, ReadProcessIdentity(netns_pid));

  FJORD_ASSIGN_OR_RETURN(UniqueFd lock, store_.Lock());
  FJORD_ASSIGN_OR_RETURN(auto existing, store_.Find(container_id));
  if (existing) {
    return base::AlreadyExists("already attached with address " + FormatIpv4(existing->address) +
                               "; detach it first");
  }
  std::vector<Lease> leases;
  if (!ports.empty()) {
    FJORD_ASSIGN_OR_RETURN(leases, CheckPortsFree(ports));
  }

  Lease lease;
  lease.container_id = container_id;
  FJORD_ASSIGN_OR_RETURN(lease.address, store_.Allocate(subnet_));
  lease.host_veth = VethName(config_.bridge_name, container_id);
  lease.pid = netns_pid;
  lease.owner = owner;
  lease.ports = ports;
  FJORD_RETURN_IF_ERROR(store_.Write(lease));
  Undo drop_lease([&] { (void)store_.Remove(lease); });

  FJORD_ASSIGN_OR_RETURN(Netlink nl, Netlink::Open());
  auto bridge_index = nl.LinkIndex(config_.bridge_name);
  if (!bridge_index.ok()) {
    return base::FailedPrecondition("bridge " + config_.bridge_name +
                                    " does not exist (removed after Open?); open the network "
                                    "again to recreate it");
  }
  // The host-side name is derived from the container id, so a link of that name without a
  // lease is debris of this container from a crashed run.
  if (nl.LinkIndex(lease.host_veth).ok()) {
    Status st = nl.DeleteLink(lease.host_veth);
    if (!st.ok() && st.code() != base::Code::kNotFound) return st.Wrap("remove stale veth");
  }
  Status created = nl.CreateVeth(lease.host_veth, *bridge_index, "eth0", netns.get());
  if (created.sys_errno() == EEXIST) {
    return base::AlreadyExists(
        "the container's network namespace already has an interface "
        "named eth0; attach each namespace once");
  }
  FJORD_RETURN_IF_ERROR(created);
  Undo drop_veth([&] { (void)nl.DeleteLink(lease.host_veth); });
  // A container reaching its own published port through the gateway gets the reply back on
  // the port it came from; the bridge refuses that unless the port is in hairpin mode.
  FJORD_RETURN_IF_ERROR(nl.SetBridgePortHairpin(lease.host_veth));
  FJORD_RETURN_IF_ERROR(ConfigureInside(netns.get(), lease.address));

  if (!ports.empty()) {
    leases.push_back(lease);
    Status st = Restore(DnatScript(config_.bridge_name, leases));
    if (!st.ok()) return st.Wrap("publish ports");
  }
  drop_veth.Dismiss();
  drop_lease.Dismiss();
  return Attachment{container_id,          FormatIpv4(lease.address),
                    subnet_.prefix_length, FormatIpv4(subnet_.Gateway()),
                    lease.host_veth,       ports};
}

Result<std::vector<Lease>> BridgeNetworkImpl::CheckPortsFree(
    const std::vector<PortMapping>& ports) {
  FJORD_ASSIGN_OR_RETURN(auto leases, store_.List());
  for (const auto& other : leases) {
    for (const auto& theirs : other.ports) {
      for (const auto& mine : ports) {
        if (mine.host_port == theirs.host_port && mine.protocol == theirs.protocol) {
          return base::FailedPrecondition("host port " + std::to_string(mine.host_port) + "/" +
                                          mine.protocol + " is already published by container " +
                                          other.container_id +
                                          "; publish on another host port or remove that "
                                          "container");
        }
      }
    }
  }
  for (const auto& p : ports) FJORD_RETURN_IF_ERROR(CheckHostPortFree(p));
  return leases;
}

Status BridgeNetworkImpl::ConfigureInside(int netns_fd, uint32_t address) {
  auto inner = Netlink::OpenInNetns(netns_fd);
  if (!inner.ok()) return inner.status().Wrap("configure container side");
  Netlink& nl = *inner;
  FJORD_ASSIGN_OR_RETURN(int lo, nl.LinkIndex("lo"));
  FJORD_RETURN_IF_ERROR(nl.SetUp(lo));
  FJORD_ASSIGN_OR_RETURN(int eth0, nl.LinkIndex("eth0"));
  FJORD_RETURN_IF_ERROR(nl.AddAddress(eth0, htonl(address), subnet_.prefix_length));
  FJORD_RETURN_IF_ERROR(nl.SetUp(eth0));
  Status st = nl.AddDefaultRoute(eth0, htonl(subnet_.Gateway()));
  if (!st.ok()) return st.Wrap("in the container (does it already have a default route?)");
  return Status::Ok();
}

Status BridgeNetworkImpl::Detach(const std::string& container_id) {
  FJORD_RETURN_IF_ERROR(ValidateContainerId(container_id));
  std::string context = "detach container " + container_id + " from bridge " + config_.bridge_name;
  FJORD_ASSIGN_OR_RETURN(UniqueFd lock, store_.Lock());
  auto lease = store_.Find(container_id);
  if (!lease.ok()) return lease.status().Wrap(context);
  // Deleting a link waits for RCU grace periods in the kernel; unpublishing ports meanwhile
  // overlaps that wait with the iptables-restore run.
  Status link_st;
  std::thread unlink([&] {
    auto nl = Netlink::Open();
    link_st = nl.ok() ? nl->DeleteLink(VethName(config_.bridge_name, container_id)) : nl.status();
    if (link_st.code() == base::Code::kNotFound) link_st = Status::Ok();
  });
  Status rules_st;
  if (*lease && !(*lease)->ports.empty()) {
    // Rules go before the lease, so a failed Detach can be retried.
    auto leases = store_.List();
    rules_st = leases.status();
    if (leases.ok()) {
      std::erase_if(*leases, [&](const Lease& l) { return l.container_id == container_id; });
      rules_st = Restore(DnatScript(config_.bridge_name, *leases));
    }
  }
  unlink.join();
  if (!link_st.ok()) return link_st.Wrap(context);
  if (!rules_st.ok()) return rules_st.Wrap(context + ": unpublish ports");
  if (!*lease) return Status::Ok();
  Status st = store_.Remove(**lease);
  if (!st.ok()) return st.Wrap(context);
  return Status::Ok();
}

Status BridgeNetworkImpl::Recover() {
  std::string context = "recover bridge " + config_.bridge_name;
  FJORD_ASSIGN_OR_RETURN(UniqueFd lock, store_.Lock());
  auto leases = store_.List();
  if (!leases.ok()) return leases.status().Wrap(context);
  FJORD_ASSIGN_OR_RETURN(Netlink nl, Netlink::Open());
  std::vector<Lease> live;
  for (auto& lease : *leases) {
    auto linked = store_.Find(lease.container_id);
    if (!linked.ok()) return linked.status().Wrap(context);
    // A lease without its by-id link is from an Attach that crashed half-way.
    bool complete = *linked && (*linked)->address == lease.address;
    if (complete && OwnerAlive(lease)) {
      live.push_back(std::move(lease));
      continue;
    }
    Status st = nl.DeleteLink(lease.host_veth);
    if (!st.ok() && st.code() != base::Code::kNotFound) return st.Wrap(context);
    st = store_.Remove(lease);
    if (!st.ok()) return st.Wrap(context);
  }
  Status st = store_.RemoveDanglingLinks();
  if (st.ok()) st = SyncAllRules(live);
  if (!st.ok()) return st.Wrap(context);
  return Status::Ok();
}

Status BridgeNetworkImpl::RemoveBridgeIfUnused() {
  const std::string& br = config_.bridge_name;
  std::string context = "remove bridge " + br;
  FJORD_ASSIGN_OR_RETURN(UniqueFd lock, store_.Lock());
  auto leases = store_.List();
  if (!leases.ok()) return leases.status().Wrap(context);
  if (!leases->empty()) {
    return base::FailedPrecondition(context + ": " + std::to_string(leases->size()) +
                                    " container(s) still attached, e.g. " +
                                    leases->front().container_id + "; detach them first");
  }
  auto saved = SaveTables();
  if (!saved.ok()) return saved.status().Wrap(context);
  std::string script = RemoveScript(br, saved->nat, saved->filter);
  if (!script.empty()) {
    Status st = Restore(script);
    if (!st.ok()) return st.Wrap(context);
  }
  FJORD_ASSIGN_OR_RETURN(Netlink nl, Netlink::Open());
  Status st = nl.DeleteLink(br);
  if (!st.ok() && st.code() != base::Code::kNotFound) return st.Wrap(context);
  return Status::Ok();
}

}  // namespace

Result<PortMapping> ParsePortMapping(std::string_view text) {
  std::string shown = base::QuoteForDisplay(text);
  std::string_view rest = text;
  PortMapping p;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    p.protocol = std::string(rest.substr(slash + 1));
    rest = rest.substr(0, slash);
    if (p.protocol != "tcp" && p.protocol != "udp") {
      return InvalidArgument("--publish " + shown + ": protocol must be tcp or udp");
    }
  }
  auto colon = rest.find(':');
  if (colon == std::string_view::npos) {
    return InvalidArgument("--publish " + shown +
                           " must be HOST:CONTAINER[/tcp|/udp], e.g. 8080:80");
  }
  auto port = [&](std::string_view s, const char* which) -> Result<uint16_t> {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v == 0 || v > 65535) {
      return InvalidArgument("--publish " + shown + ": " + which + " port " +
                             base::QuoteForDisplay(s) + " must be a number from 1 to 65535");
    }
    return static_cast<uint16_t>(v);
  };
  FJORD_ASSIGN_OR_RETURN(p.host_port, port(rest.substr(0, colon), "host"));
  FJORD_ASSIGN_OR_RETURN(p.container_port, port(rest.substr(colon + 1), "container"));
  return p;
}

Result<std::optional<Attachment>> FindAttachment(const BridgeConfig& config,
                                                 const std::string& container_id) {
  std::error_code ec;
  if (!std::filesystem::is_directory(config.state_dir, ec)) return std::optional<Attachment>();
  FJORD_RETURN_IF_ERROR(ValidateContainerId(container_id));
  auto subnet = ParseSubnet(config.subnet);
  if (!subnet.ok()) return subnet.status().Wrap("bridge " + config.bridge_name);
  FJORD_ASSIGN_OR_RETURN(LeaseStore store, LeaseStore::Open(config.state_dir));
  FJORD_ASSIGN_OR_RETURN(std::optional<Lease> lease, store.Find(container_id));
  if (!lease) return std::optional<Attachment>();
  return std::optional<Attachment>(Attachment{container_id, FormatIpv4(lease->address),
                                              subnet->prefix_length, FormatIpv4(subnet->Gateway()),
                                              lease->host_veth, lease->ports});
}

Result<std::unique_ptr<BridgeNetwork>> BridgeNetwork::Open(const BridgeConfig& config) {
  std::string context = "open bridge network " + base::QuoteForDisplay(config.bridge_name);
  Status st = ValidateInterfaceName(config.bridge_name, "bridge name");
  if (!st.ok()) return st.Wrap(context);
  auto subnet = ParseSubnet(config.subnet);
  if (!subnet.ok()) return subnet.status().Wrap(context);
  auto store = LeaseStore::Open(config.state_dir);
  if (!store.ok()) return store.status().Wrap(context);
  auto net = std::make_unique<BridgeNetworkImpl>(config, *subnet, std::move(*store));
  st = net->Setup();
  if (!st.ok()) return st.Wrap(context);
  return std::unique_ptr<BridgeNetwork>(std::move(net));
}

}  // namespace fjord::net
