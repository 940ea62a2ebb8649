// Test and benchmark support for the net module (private): a Sandbox owns uniquely named
// bridges, subnets, network namespaces, the processes living in them and a state directory,
// and removes all of them (plus any iptables chains of its bridge) when destroyed, even after a
// failed test.
//
// Thread-safety: not thread-safe.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/status.h"
#include "net/bridge.h"

namespace fjord::net::testing {

class Sandbox {
 public:
  // Picks a bridge name "fjt<pid>x<n>" and a free 10.2xx.y.0/<prefix> subnet.
  explicit Sandbox(int prefix_length = 24);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  BridgeConfig Config() const;
  const std::string& bridge() const { return bridge_; }
  const std::string& subnet() const { return subnet_; }
  const std::filesystem::path& state_dir() const { return state_dir_; }

  // Creates netns "<bridge>-<suffix>" and a process parked inside it; returns its pid.
  base::Result<pid_t> AddNetns(const std::string& suffix);
  std::string NetnsName(const std::string& suffix) const { return bridge_ + "-" + suffix; }
  // A process alone in a fresh, unnamed network namespace: when it dies, the namespace (and any
  // veth end inside it) goes with it, as with a real container.
  base::Result<pid_t> SpawnInNewNetns();
  // Kills and reaps a process this sandbox started.
  void Kill(pid_t pid);

  // Forks a process inside netns `suffix` serving `reply` on `port` (tcp: to each connection,
  // then close; udp: to each datagram). Returns once it listens.
  base::Result<pid_t> Serve(const std::string& suffix, const std::string& protocol, uint16_t port,
                            const std::string& reply);
  // Runs `fn` in a forked child inside netns `suffix` and returns what it returned.
  base::Result<std::string> RunInNetns(const std::string& suffix,
                                       const std::function<std::string()>& fn);
  // Runs a command inside netns `suffix` (ip netns exec); returns its exit code.
  base::Result<int> Exec(const std::string& suffix, const std::vector<std::string>& argv);

 private:
  base::Result<pid_t> ForkInNetns(const std::string& suffix, const std::function<void(int)>& body);

  std::string bridge_;
  std::string subnet_;
  std::filesystem::path state_dir_;
  std::vector<std::string> netns_;
  std::vector<base::UniquePid> children_;
};

// A TCP port on 127.0.0.1 nobody listens on right now.
uint16_t FreeLoopbackPort(bool tcp = true);
// Connects to 127.0.0.1:port (or `host`) and reads until EOF; UDP sends one datagram and reads one
// reply. Fails after `timeout_ms`.
base::Result<std::string> Fetch(const std::string& host, uint16_t port, const std::string& protocol,
                                int timeout_ms = 5000);

}  // namespace fjord::net::testing
