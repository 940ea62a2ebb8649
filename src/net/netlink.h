// Netlink: a minimal NETLINK_ROUTE (rtnetlink) client for the few link, address and route
// operations the bridge network needs. Private to the net module.
//
// A Netlink socket belongs to the network namespace it was created in; OpenInNetns() creates one
// inside another namespace (from a short-lived thread, so the caller's namespace never changes),
// and every later request through it acts in that namespace.
//
// Thread-safety: not thread-safe; one socket per thread.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>

#include "base/fd.h"
#include "base/status.h"

namespace fjord::net {

class Netlink {
 public:
  // A socket in the calling thread's network namespace.
  static base::Result<Netlink> Open();
  // A socket inside the namespace `netns_fd` refers to (an open /proc/<pid>/ns/net).
  static base::Result<Netlink> OpenInNetns(int netns_fd);

  // The interface index of `name`; NotFound if there is no such link.
  base::Result<int> LinkIndex(const std::string& name);

  // Creates a bridge `name`; AlreadyExists if a link of that name exists.
  base::Status CreateBridge(const std::string& name);
  // Creates a veth pair: `host_name` here (enslaved to `master_index`, up) and `peer_name` in
  // the namespace `peer_netns_fd`. AlreadyExists if either name is taken.
  base::Status CreateVeth(const std::string& host_name, int master_index,
                          const std::string& peer_name, int peer_netns_fd);
  // Lets bridge port `name` send a frame back out of the port it came in on.
  base::Status SetBridgePortHairpin(const std::string& name);
  // Removes link `name` (a veth's peer goes with it). NotFound if it does not exist.
  base::Status DeleteLink(const std::string& name);

  base::Status SetUp(int index);
  // Adds an IPv4 address (network byte order); an existing equal address is OK.
  base::Status AddAddress(int index, in_addr_t address, int prefix_length);
  // Adds the default IPv4 route via `gateway` (network byte order) out of `index`.
  base::Status AddDefaultRoute(int index, in_addr_t gateway);

 private:
  explicit Netlink(base::UniqueFd fd) : fd_(std::move(fd)) {}
  // Sends one request and waits for its acknowledgement (or, when `reply_type` is nonzero, a
  // reply of that type whose payload is copied to `reply`).
  base::Status Transact(std::string& request, uint16_t reply_type = 0,
                        std::string* reply = nullptr);

  base::UniqueFd fd_;
  uint32_t seq_ = 0;
};

}  // namespace fjord::net
