// fjord agent: runs this machine's agent until SIGTERM/SIGINT, which detach it (the units keep
// running; the next agent over the same --state-dir re-adopts them) and exit 0.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
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

int g_signal_pipe[2] = {-1, -1};

void OnStopSignal(int sig) {
  unsigned char b = static_cast<unsigned char>(sig);
  int saved = errno;
  (void)!::write(g_signal_pipe[1], &b, 1);
  errno = saved;
}

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

  // Stop signals reach a handler that writes to a pipe the main thread waits on. Not
  // sigwait(): a blocked mask would be inherited by every unit process the supervisor starts,
  // and their SIGTERM would never arrive.
  if (::pipe2(g_signal_pipe, O_CLOEXEC) != 0) {
    std::cerr << "fjord agent: pipe: " << std::strerror(errno) << "\n";
    return 1;
  }
  struct sigaction sa = {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  // A handler rather than SIG_IGN, which exec would pass on to the units.
  sa.sa_handler = [](int) {};
  sigaction(SIGPIPE, &sa, nullptr);

  auto started = agent::Agent::Start(std::move(options));
  if (!started.ok()) {
    std::cerr << "fjord agent: " << started.status().message() << "\n";
    return 1;
  }
  agent::Agent& a = **started;
  std::cerr << "fjord agent: machine " << a.machine_id() << " (" << a.registration().primary_ip
            << "), agent API " << a.url() << "\n";
  unsigned char sig = 0;
  while (::read(g_signal_pipe[0], &sig, 1) != 1 && errno == EINTR) {
  }
  std::cerr << "fjord agent: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
            << ": detaching, units keep running\n";
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
