#include "net/net_testing.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "net/ipam.h"
#include "net/iptables.h"
#include "net/netlink.h"

namespace fjord::net::testing {
namespace {

using base::Result;
using base::Status;
using base::UniqueFd;

std::atomic<int> g_counter{0};

// True if `candidate` overlaps any route in the main table (another bridge, a test in
// parallel, the host's own networks).
bool SubnetInUse(const Subnet& candidate) {
  std::ifstream routes("/proc/net/route");
  std::string line;
  std::getline(routes, line);  // header
  while (std::getline(routes, line)) {
    std::istringstream in(line);
    std::string iface, dest_hex, gw_hex, flags, refcnt, use, metric, mask_hex;
    in >> iface >> dest_hex >> gw_hex >> flags >> refcnt >> use >> metric >> mask_hex;
    uint32_t dest = ntohl(static_cast<uint32_t>(std::stoul(dest_hex, nullptr, 16)));
    uint32_t mask = ntohl(static_cast<uint32_t>(std::stoul(mask_hex, nullptr, 16)));
    if (mask == 0) continue;  // the default route overlaps everything
    if ((dest & candidate.Mask()) == candidate.network ||
        (candidate.network & mask) == (dest & mask)) {
      return true;
    }
  }
  return false;
}

void WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

Sandbox::Sandbox(int prefix_length) {
  int n = g_counter++;
  pid_t pid = ::getpid();
  bridge_ = "fjt" + std::to_string(pid) + "x" + std::to_string(n);
  // Spread pid and counter over 10.200.0.0 - 10.249.255.0 and skip subnets already routed.
  uint32_t h = static_cast<uint32_t>(pid) * 31u + static_cast<uint32_t>(n) * 7919u;
  for (int attempt = 0; attempt < 1000; ++attempt, h += 104729u) {
    uint32_t second = 200 + (h % 50), third = (h / 50) % 256;
    Subnet s{(10u << 24) | (second << 16) | (third << 8), prefix_length};
    s.network &= s.Mask();
    if (!SubnetInUse(s)) {
      subnet_ = s.ToString();
      break;
    }
  }
  char tmpl[] = "/tmp/fjord-net-test-XXXXXX";
  if (::mkdtemp(tmpl) != nullptr) state_dir_ = std::filesystem::path(tmpl) / "state";
}

Sandbox::~Sandbox() {
  children_.clear();  // SIGKILL and reap, before the namespaces go
  for (const auto& ns : netns_) (void)RunCommand({"ip", "netns", "del", ns});
  // Chains, jumps and the bridge: whatever a failed test left behind.
  auto nat = SaveTable("nat");
  auto filter = SaveTable("filter");
  if (nat.ok() && filter.ok()) {
    std::string script = RemoveScript(bridge_, *nat, *filter);
    if (!script.empty()) (void)Restore(script);
  }
  if (auto nl = Netlink::Open(); nl.ok()) (void)nl->DeleteLink(bridge_);
  if (!state_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(state_dir_.parent_path(), ec);
  }
}

BridgeConfig Sandbox::Config() const {
  BridgeConfig c;
  c.bridge_name = bridge_;
  c.subnet = subnet_;
  c.state_dir = state_dir_;
  c.outbound = false;  // tests never let packets leave the host
  return c;
}

Result<pid_t> Sandbox::ForkInNetns(const std::string& suffix,
                                   const std::function<void(int)>& body) {
  std::string path = "/run/netns/" + NetnsName(suffix);
  UniqueFd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) return base::ErrnoStatus("open " + path);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) return base::ErrnoStatus("pipe");
  UniqueFd ready_r(p[0]), ready_w(p[1]);
  pid_t pid = ::fork();
  if (pid < 0) return base::ErrnoStatus("fork");
  if (pid == 0) {
    ready_r.reset();
    if (::setns(ns.get(), CLONE_NEWNET) < 0) ::_exit(120);
    body(ready_w.get());
    ::_exit(0);
  }
  children_.emplace_back(pid);
  ready_w.reset();
  char c;
  if (::read(ready_r.get(), &c, 1) != 1) {
    return base::Internal("process in netns " + NetnsName(suffix) + " failed to start");
  }
  return pid;
}

Result<pid_t> Sandbox::AddNetns(const std::string& suffix) {
  std::string name = NetnsName(suffix);
  FJORD_ASSIGN_OR_RETURN(auto r, RunCommand({"ip", "netns", "add", name}));
  if (r.exit_code != 0) return base::Internal("ip netns add " + name + ": " + r.err);
  netns_.push_back(name);
  return ForkInNetns(suffix, [](int ready) {
    WriteAll(ready, "x");
    for (;;) ::pause();
  });
}

Result<pid_t> Sandbox::SpawnInNewNetns() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) return base::ErrnoStatus("pipe");
  UniqueFd ready_r(p[0]), ready_w(p[1]);
  pid_t pid = ::fork();
  if (pid < 0) return base::ErrnoStatus("fork");
  if (pid == 0) {
    if (::unshare(CLONE_NEWNET) < 0) ::_exit(120);
    WriteAll(ready_w.get(), "x");
    for (;;) ::pause();
  }
  children_.emplace_back(pid);
  ready_w.reset();
  char c;
  if (::read(ready_r.get(), &c, 1) != 1) return base::Internal("unshare -n child failed");
  return pid;
}

void Sandbox::Kill(pid_t pid) {
  for (auto& child : children_) {
    if (child.get() == pid) child.reset();
  }
}

Result<pid_t> Sandbox::Serve(const std::string& suffix, const std::string& protocol, uint16_t port,
                             const std::string& reply) {
  bool tcp = protocol == "tcp";
  return ForkInNetns(suffix, [=](int ready) {
    int fd = ::socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) ::_exit(121);
    if (tcp && ::listen(fd, 16) < 0) ::_exit(122);
    WriteAll(ready, "x");
    for (;;) {
      if (tcp) {
        int c = ::accept(fd, nullptr, nullptr);
        if (c < 0) continue;
        WriteAll(c, reply);
        ::close(c);
      } else {
        char buf[512];
        sockaddr_in from{};
        socklen_t len = sizeof(from);
        if (::recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len) < 0) {
          continue;
        }
        ::sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
      }
    }
  });
}

Result<std::string> Sandbox::RunInNetns(const std::string& suffix,
                                        const std::function<std::string()>& fn) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) return base::ErrnoStatus("pipe");
  UniqueFd out_r(p[0]), out_w(p[1]);
  FJORD_ASSIGN_OR_RETURN(pid_t pid, ForkInNetns(suffix, [&](int ready) {
                           WriteAll(ready, "x");
                           out_r.reset();
                           WriteAll(out_w.get(), fn());
                         }));
  out_w.reset();
  std::string result = ReadAll(out_r.get());
  Kill(pid);
  return result;
}

Result<int> Sandbox::Exec(const std::string& suffix, const std::vector<std::string>& argv) {
  std::vector<std::string> full = {"ip", "netns", "exec", NetnsName(suffix)};
  full.insert(full.end(), argv.begin(), argv.end());
  FJORD_ASSIGN_OR_RETURN(auto r, RunCommand(full));
  return r.exit_code;
}

uint16_t FreeLoopbackPort(bool tcp) {
  UniqueFd fd(::socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len) < 0) {
    return 0;
  }
  return ntohs(sa.sin_port);
}

Result<std::string> Fetch(const std::string& host, uint16_t port, const std::string& protocol,
                          int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
    return base::InvalidArgument("bad host " + host);
  }
  bool tcp = protocol == "tcp";
  Status last = base::Unavailable("no reply");
  while (Clock::now() < deadline) {
    UniqueFd fd(::socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0));
    timeval tv{0, 300000};  // per attempt; the loop retries until the deadline
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
      last = base::ErrnoStatus("connect " + host + ":" + std::to_string(port));
      ::usleep(10000);
      continue;
    }
    if (!tcp) {
      if (::send(fd.get(), "ping", 4, 0) < 0) {
        last = base::ErrnoStatus("send");
        continue;
      }
      char buf[512];
      ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
      if (n > 0) return std::string(buf, static_cast<size_t>(n));
      last = base::ErrnoStatus("recv " + host + ":" + std::to_string(port));
      continue;
    }
    std::string out = ReadAll(fd.get());
    if (!out.empty()) return out;
    last = base::Unavailable("empty reply from " + host + ":" + std::to_string(port));
  }
  return last;
}

}  // namespace fjord::net::testing
