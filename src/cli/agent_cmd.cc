// fjord agent: runs this machine's agent until SIGTERM/SIGINT, which detach it (the units keep
// running; the next agent over the same --state-dir re-adopts them) and exit 0.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "base/strings.h"
#include "cli/commands.h"
#include "cli/version.h"

namespace fjord::cli {
namespace {

struct AgentFlags {
  std::string servers, state_dir, metadata, machine_id, listen, public_ip, cgroup_parent;
};

int AgentMain(const AgentFlags& f) {
  agent::AgentOptions options;
  for (const std::string& s : base::Split(f.servers, ',')) {
    std::string_view trimmed = base::TrimWhitespace(s);
    if (!trimmed.empty()) options.servers.emplace_back(trimmed);
  }
  auto metadata = agent::ParseMetadata(f.metadata);
  if (!metadata.ok()) {
    std::cerr << "fjord agent: " << metadata.status().message() << "\n";
    return 2;
  }
  options.metadata = std::move(*metadata);
  options.state_dir = f.state_dir;
  options.machine_id = f.machine_id;
  options.listen = f.listen;
  options.public_ip = f.public_ip;
  options.cgroup_parent = f.cgroup_parent;
  options.version = std::string(kVersion);
  options.host_factory = agent::SupervisorHostFactory();

  // Block the stop signals before any thread starts so that only sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto started = agent::Agent::Start(std::move(options));
  if (!started.ok()) {
    std::cerr << "fjord agent: " << started.status().message() << "\n";
    return 1;
  }
  agent::Agent& a = **started;
  std::cerr << "fjord agent: machine " << a.machine_id() << " (" << a.registration().primary_ip
            << "), agent API " << a.url() << "\n";
  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cerr << "fjord agent: " << sigabbrev_np(sig) << ": detaching, units keep running\n";
  a.Stop(/*leave_units_running=*/true);
  std::fflush(stdout);
  std::fflush(stderr);
  // A schedule long-poll may still be in flight on its own thread: do not run static
  // destructors under it.
  ::_exit(0);
}

}  // namespace

void RegisterAgentCommands(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<AgentFlags>();
  auto* cmd = app.add_subcommand("agent", "Run this machine's agent: join the cluster, run units");
  cmd->add_option("--server", f->servers,
                  "Server URLs, comma separated; the next is tried when one fails")
      ->required();
  cmd->add_option("--state-dir", f->state_dir,
                  "Agent state (units, logs, machine-id); default $FJORD_ROOT/agent or "
                  "/var/lib/fjord/agent");
  cmd->add_option("--metadata", f->metadata, "Machine metadata: region=no-oslo,disk=nvme");
  cmd->add_option("--machine-id", f->machine_id,
                  "Machine ID (default: <state-dir>/machine-id, /etc/machine-id for the default "
                  "state dir, else a new random one)");
  cmd->add_option("--listen", f->listen,
                  "Agent API address ADDR:PORT (default: the public IP, a free port)");
  cmd->add_option("--public-ip", f->public_ip,
                  "Address to advertise (default: the source address of the route to the server)");
  cmd->add_option("--cgroup-parent", f->cgroup_parent,
                  "cgroup under which units run (default fjord-<machine-id>)");
  cmd->callback([f, &exit_code] { exit_code = AgentMain(*f); });
}

}  // namespace fjord::cli
