#include "net/netlink.h"

#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace fjord::net {
namespace {

using base::ErrnoStatus;
using base::Result;
using base::Status;
using base::UniqueFd;

// Builds one netlink message in a byte string: header, family header, attributes (nestable).
class Message {
 public:
  // Get requests carry no NLM_F_ACK: their answer is the reply or an error, never both.
  Message(uint16_t type, uint16_t flags) {
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = NLM_F_REQUEST | flags | (type == RTM_GETLINK ? 0 : NLM_F_ACK);
    Append(&h, sizeof(h));
  }
  template <typename T>
  void Header(const T& family_header) {
    Append(&family_header, sizeof(T));
  }
  void Attr(uint16_t type, const void* data, size_t len) {
    rtattr a{};
    a.rta_type = type;
    a.rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
    Append(&a, sizeof(a));
    Append(data, len);
  }
  void String(uint16_t type, const std::string& s) { Attr(type, s.c_str(), s.size() + 1); }
  void U32(uint16_t type, uint32_t v) { Attr(type, &v, sizeof(v)); }
  size_t BeginNest(uint16_t type) {
    size_t at = buf_.size();
    Attr(type, nullptr, 0);
    return at;
  }
  void EndNest(size_t at) {
    auto* a = reinterpret_cast<rtattr*>(buf_.data() + at);
    a->rta_len = static_cast<uint16_t>(buf_.size() - at);
  }
  std::string& Finish() {
    reinterpret_cast<nlmsghdr*>(buf_.data())->nlmsg_len = static_cast<uint32_t>(buf_.size());
    return buf_;
  }

 private:
  void Append(const void* data, size_t len) {
    if (len > 0) buf_.append(static_cast<const char*>(data), len);
    buf_.resize(NLMSG_ALIGN(buf_.size()), '\0');
  }
  std::string buf_;
};

Result<UniqueFd> RouteSocket() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return ErrnoStatus("open netlink socket");
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) < 0) {
    return ErrnoStatus("bind netlink socket");
  }
  return fd;
}

ifinfomsg LinkHeader(int index = 0) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  return ifi;
}

}  // namespace

Result<Netlink> Netlink::Open() {
  FJORD_ASSIGN_OR_RETURN(UniqueFd fd, RouteSocket());
  return Netlink(std::move(fd));
}

Result<Netlink> Netlink::OpenInNetns(int netns_fd) {
  // setns() changes only the calling thread's namespace; a throwaway thread keeps ours intact.
  // The socket stays bound to the namespace it was created in.
  Status status;
  UniqueFd fd;
  std::thread worker([&] {
    if (::setns(netns_fd, CLONE_NEWNET) < 0) {
      status = ErrnoStatus("enter network namespace");
      return;
    }
    auto sock = RouteSocket();
    if (!sock.ok()) {
      status = sock.status();
      return;
    }
    fd = std::move(*sock);
  });
  worker.join();
  if (!status.ok()) return status;
  return Netlink(std::move(fd));
}

Status Netlink::Transact(std::string& request, uint16_t reply_type, std::string* reply) {
  auto* hdr = reinterpret_cast<nlmsghdr*>(request.data());
  hdr->nlmsg_seq = ++seq_;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_.get(), request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof(kernel)) < 0) {
    return ErrnoStatus("send netlink request");
  }
  alignas(nlmsghdr) char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("receive netlink reply");
    }
    size_t len = static_cast<size_t>(n);
    for (auto* m = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(m, len); m = NLMSG_NEXT(m, len)) {
      if (m->nlmsg_seq != seq_) continue;  // a stale reply to an earlier request
      if (m->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(m));
        if (err->error == 0) return Status::Ok();
        return ErrnoStatus("netlink", -err->error);
      }
      if (reply_type != 0 && m->nlmsg_type == reply_type) {
        if (reply != nullptr) {
          reply->assign(static_cast<const char*>(NLMSG_DATA(m)), NLMSG_PAYLOAD(m, 0));
        }
        return Status::Ok();
      }
    }
  }
}

Result<int> Netlink::LinkIndex(const std::string& name) {
  Message msg(RTM_GETLINK, 0);
  msg.Header(LinkHeader());
  msg.String(IFLA_IFNAME, name);
  std::string reply;
  Status st = Transact(msg.Finish(), RTM_NEWLINK, &reply);
  if (!st.ok()) {
    if (st.sys_errno() == ENODEV) return base::NotFound("no link named " + name);
    return st.Wrap("look up link " + name);
  }
  if (reply.size() < sizeof(ifinfomsg)) return base::Internal("short RTM_NEWLINK reply");
  ifinfomsg ifi;
  std::memcpy(&ifi, reply.data(), sizeof(ifi));
  return ifi.ifi_index;
}

Status Netlink::CreateBridge(const std::string& name) {
  Message msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi = LinkHeader();
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  msg.Header(ifi);
  msg.String(IFLA_IFNAME, name);
  size_t info = msg.BeginNest(IFLA_LINKINFO);
  msg.String(IFLA_INFO_KIND, "bridge");
  msg.EndNest(info);
  Status st = Transact(msg.Finish());
  if (!st.ok()) return st.Wrap("create bridge " + name);
  return st;
}

Status Netlink::CreateVeth(const std::string& host_name, int master_index,
                           const std::string& peer_name, int peer_netns_fd) {
  Message msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi = LinkHeader();
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  msg.Header(ifi);
  msg.String(IFLA_IFNAME, host_name);
  msg.U32(IFLA_MASTER, static_cast<uint32_t>(master_index));
  size_t info = msg.BeginNest(IFLA_LINKINFO);
  msg.String(IFLA_INFO_KIND, "veth");
  size_t data = msg.BeginNest(IFLA_INFO_DATA);
  size_t peer = msg.BeginNest(VETH_INFO_PEER);
  // The peer is created directly in the container's namespace under its final name, so there
  // is no window where it is visible on the host or needs a rename.
  msg.Header(LinkHeader());
  msg.String(IFLA_IFNAME, peer_name);
  msg.U32(IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
  msg.EndNest(peer);
  msg.EndNest(data);
  msg.EndNest(info);
  Status st = Transact(msg.Finish());
  if (!st.ok()) return st.Wrap("create veth pair " + host_name + " / " + peer_name);
  return st;
}

Status Netlink::SetBridgePortHairpin(const std::string& name) {
  Message msg(RTM_NEWLINK, 0);
  msg.Header(LinkHeader());
  msg.String(IFLA_IFNAME, name);
  size_t info = msg.BeginNest(IFLA_LINKINFO);
  msg.String(IFLA_INFO_SLAVE_KIND, "bridge");
  size_t data = msg.BeginNest(IFLA_INFO_SLAVE_DATA);
  uint8_t on = 1;
  msg.Attr(IFLA_BRPORT_MODE, &on, sizeof(on));
  msg.EndNest(data);
  msg.EndNest(info);
  Status st = Transact(msg.Finish());
  if (!st.ok()) return st.Wrap("set hairpin mode on bridge port " + name);
  return st;
}

Status Netlink::DeleteLink(const std::string& name) {
  Message msg(RTM_DELLINK, 0);
  msg.Header(LinkHeader());
  msg.String(IFLA_IFNAME, name);
  Status st = Transact(msg.Finish());
  if (!st.ok()) {
    if (st.sys_errno() == ENODEV) return base::NotFound("no link named " + name);
    return st.Wrap("delete link " + name);
  }
  return st;
}

Status Netlink::SetUp(int index) {
  Message msg(RTM_NEWLINK, 0);
  ifinfomsg ifi = LinkHeader(index);
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  msg.Header(ifi);
  Status st = Transact(msg.Finish());
  if (!st.ok()) return st.Wrap("set link " + std::to_string(index) + " up");
  return st;
}

Status Netlink::AddAddress(int index, in_addr_t address, int prefix_length) {
  Message msg(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET;
  ifa.ifa_prefixlen = static_cast<unsigned char>(prefix_length);
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<uint32_t>(index);
  msg.Header(ifa);
  msg.Attr(IFA_LOCAL, &address, sizeof(address));
  msg.Attr(IFA_ADDRESS, &address, sizeof(address));
  Status st = Transact(msg.Finish());
  if (st.sys_errno() == EEXIST) return Status::Ok();
  if (!st.ok()) return st.Wrap("add address to link " + std::to_string(index));
  return st;
}

Status Netlink::AddDefaultRoute(int index, in_addr_t gateway) {
  Message msg(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  rtmsg rt{};
  rt.rtm_family = AF_INET;
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = RTPROT_BOOT;
  rt.rtm_scope = RT_SCOPE_UNIVERSE;
  rt.rtm_type = RTN_UNICAST;
  msg.Header(rt);
  msg.Attr(RTA_GATEWAY, &gateway, sizeof(gateway));
  msg.U32(RTA_OIF, static_cast<uint32_t>(index));
  Status st = Transact(msg.Finish());
  if (!st.ok()) return st.Wrap("add default route");
  return st;
}

}  // namespace fjord::net
