// Agent: the per-machine process of a fjord cluster (`fjord agent`).
//
// It registers the machine with the server (PUT /v1/machines/{id}), heartbeats, long-polls the
// machine's own schedule and hands the complete list to the unit host (the Supervisor) level-
// triggered, reports unit states (debounced: changes within ~20 ms go in one report) and serves
// the agent API (/agent/v1: units, status, journal) on its own listener. docs/PROTOCOL.md is
// the contract.
//
// Failure model: with several servers it fails over to the next on connection errors, backing
// off; while no server answers, units keep running as last applied and the agent retries
// forever. A 404 on heartbeat or schedule means the server forgot the machine: register again
// and re-send the states. On start the host re-adopts units that outlived a previous agent
// (kill -9 of an agent loses no unit) before the first schedule is applied.
//
// Thread-safety: Start/Stop from one thread; machine_id()/url() from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/protocol.h"
#include "base/status.h"

namespace fjord::agent {

// What the agent needs from the machine's init system. Implementations are thread-safe.
class UnitHost {
 public:
  virtual ~UnitHost() = default;
  // The complete set of units this machine should have (level-triggered).
  virtual void Apply(const std::vector<api::ScheduledUnit>& units) = 0;
  // Every unit the host has, machineID left for the agent to fill.
  virtual std::vector<api::UnitStatusReport> List() const = 0;
  virtual base::Result<api::UnitStatusReport> Get(std::string_view name) const = 0;
  // Like `systemctl status NAME`.
  virtual std::string StatusText(std::string_view name) const = 0;
  // The unit's output, last `lines` lines; with `follow` new lines as they come until `sink`
  // returns false. An empty line passed to sink is a keep-alive.
  virtual base::Status Journal(std::string_view name, size_t lines, bool follow,
                               const std::function<bool(std::string_view)>& sink) const = 0;
  virtual void Detach() = 0;   // leave units running; the next host re-adopts them
  virtual void StopAll() = 0;  // stop every unit
};

struct UnitHostContext {
  std::filesystem::path state_dir;
  std::string machine_id;
  std::string hostname;
  std::string cgroup_parent;
  std::function<void()> on_change;  // any unit's state changed (the agent reports)
};
using UnitHostFactory =
    std::function<base::Result<std::unique_ptr<UnitHost>>(const UnitHostContext&)>;

// The Supervisor as a UnitHost (supervisor_host.cc).
UnitHostFactory SupervisorHostFactory();

struct AgentOptions {
  std::vector<std::string> servers;  // "http://10.0.0.1:7777"; tried in order on failure
  std::filesystem::path state_dir;   // empty: DefaultStateDir()
  std::map<std::string, std::string> metadata;
  std::string machine_id;  // empty: see ResolveMachineId
  std::string listen;      // agent API "ADDR:PORT"; empty: <public ip>:0
  std::string public_ip;   // empty: the source address of the route to the first server
  std::string cgroup_parent;
  std::string version;
  // Long-poll wait asked of the server for the schedule.
  std::chrono::milliseconds poll_timeout{25'000};
  // Reports of state changes closer together than this go out as one.
  std::chrono::milliseconds report_debounce{20};
  std::chrono::milliseconds max_backoff{5'000};
  UnitHostFactory host_factory;  // required; `fjord agent` uses SupervisorHostFactory()
};

class Agent {
 public:
  // Resolves identity, resources and address, opens the unit host (which re-adopts surviving
  // units), starts the agent API and the server loops. Does not wait for the server: a server
  // that is down is retried in the background.
  static base::Result<std::unique_ptr<Agent>> Start(AgentOptions options);
  ~Agent();  // Stop(true)

  std::string machine_id() const;
  // "http://10.0.0.5:41234": where the agent API listens (agentURL).
  std::string url() const;
  const api::MachineRegistration& registration() const;
  // True once the server accepted the registration (tests wait for it).
  bool registered() const;

  // Ends the loops and the agent API. Units keep running unless `leave_units_running` is false.
  void Stop(bool leave_units_running = true);

 private:
  struct Core;
  explicit Agent(std::shared_ptr<Core> core);
  std::shared_ptr<Core> core_;
};

// /var/lib/fjord/agent (or $FJORD_ROOT/agent).
std::filesystem::path DefaultStateDir();

// --machine-id, else <state-dir>/machine-id, else /etc/machine-id when `state_dir` is the
// default one, else a random 32-hex id; the result is kept in <state-dir>/machine-id.
// `etc_machine_id` is a parameter for tests.
base::Result<std::string> ResolveMachineId(
    const std::string& flag, const std::filesystem::path& state_dir, bool is_default_state_dir,
    const std::filesystem::path& etc_machine_id = "/etc/machine-id");

// CPUs this process may run on x 1000, and MemTotal.
base::Result<api::Resources> DetectResources();
// Parses /proc/meminfo text: MemTotal in bytes.
base::Result<int64_t> ParseMemTotal(std::string_view meminfo);

// The local address the kernel would use to reach `server_url`'s host (no packet is sent).
base::Result<std::string> SourceAddressFor(std::string_view server_url);

// "region=no-oslo,disk=nvme" -> {{"disk","nvme"},{"region","no-oslo"}}; errors name the item.
base::Result<std::map<std::string, std::string>> ParseMetadata(std::string_view text);

}  // namespace fjord::agent
