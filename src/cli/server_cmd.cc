// fjord server: runs the control plane (src/server) until SIGTERM or SIGINT.
// fjord dev: the control plane and one agent in one process, the way to run fjord on one
// machine (`make run`).
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iostream>

#include "agent/agent.h"
#include "base/state_root.h"
#include "cli/commands.h"
#include "cli/version.h"
#include "server/server.h"

namespace fjord::cli {

namespace {

struct ServerFlags {
  std::string listen = "127.0.0.1:7777";
  std::string data_dir;
  std::string grace = "10s";
  std::string log_level = "info";
  // Rescheduling after a machine is lost (server::ServerOptions).
  double reschedule_rate = 1000;
  double reschedule_burst = 100;
  double reschedule_per_machine = 2;
};

// "10s", "300ms", "2m", or a bare number of seconds.
bool ParseDuration(std::string_view s, std::chrono::milliseconds* out) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || n < 0) return false;
  std::string_view unit(p, s.data() + s.size() - p);
  if (unit.empty() || unit == "s") {
    *out = std::chrono::seconds(n);
  } else if (unit == "ms") {
    *out = std::chrono::milliseconds(n);
  } else if (unit == "m" || unit == "min") {
    *out = std::chrono::minutes(n);
  } else {
    return false;
  }
  return true;
}

// "host:port" (an IPv6 host in brackets).
bool ParseListen(const std::string& s, std::string* host, uint16_t* port) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  *host = s.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  unsigned v = 0;
  std::string_view p(s.data() + colon + 1, s.size() - colon - 1);
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (ec != std::errc() || end != p.data() + p.size() || v > 65535) return false;
  *port = static_cast<uint16_t>(v);
  return true;
}

// Checks the flags shared by `server` and `dev` and sets up logging; 0 or the exit code.
int PrepareServer(const char* verb, const ServerFlags& flags, const std::filesystem::path& data_dir,
                  server::ServerOptions* options) {
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error"};
  if (std::find(std::begin(kLevels), std::end(kLevels), flags.log_level) == std::end(kLevels)) {
    std::cerr << "fjord " << verb << ": --log-level " << flags.log_level
              << ": expected trace, debug, info, warn or error\n";
    return 2;
  }
  auto logger = spdlog::stderr_color_mt("fjord-server");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(flags.log_level));

  if (!ParseListen(flags.listen, &options->address, &options->port)) {
    std::cerr << "fjord " << verb << ": --listen " << flags.listen
              << ": expected HOST:PORT, e.g. 127.0.0.1:7777\n";
    return 2;
  }
  if (!ParseDuration(flags.grace, &options->heartbeat_grace) ||
      options->heartbeat_grace.count() == 0) {
    std::cerr << "fjord " << verb << ": --heartbeat-grace " << flags.grace
              << ": expected a duration such as 10s or 500ms\n";
    return 2;
  }
  if (!(flags.reschedule_rate > 0) || !(flags.reschedule_burst >= 1) ||
      !(flags.reschedule_per_machine >= 0)) {
    std::cerr << "fjord " << verb
              << ": --reschedule-rate must be > 0, --reschedule-burst >= 1 and "
                 "--reschedule-per-machine >= 0\n";
    return 2;
  }
  options->reschedule_per_second = flags.reschedule_rate;
  options->reschedule_burst = flags.reschedule_burst;
  options->reschedule_per_machine = flags.reschedule_per_machine;
  options->data_dir = data_dir;
  return 0;
}

// Blocks SIGTERM and SIGINT in every thread started after this, for sigwait.
sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

int RunServer(const ServerFlags& flags) {
  server::ServerOptions options;
  const std::filesystem::path data_dir =
      flags.data_dir.empty() ? base::StateRoot() / "server" : std::filesystem::path(flags.data_dir);
  if (int code = PrepareServer("server", flags, data_dir, &options); code != 0) return code;
  sigset_t set = BlockStopSignals();

  auto srv = server::Server::Start(options);
  if (!srv.ok()) {
    std::cerr << "fjord server: " << srv.status().ToString() << "\n";
    return 1;
  }
  spdlog::info("fjord server listening on {} (data in {})", (*srv)->url(),
               options.data_dir.string());
  std::printf("%s\n", (*srv)->url().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  spdlog::info("received {}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*srv)->Stop();
  return 0;
}

struct DevFlags {
  ServerFlags server;
  std::string metadata;
};

int RunDev(const DevFlags& flags) {
  const std::filesystem::path root = flags.server.data_dir.empty()
                                         ? base::StateRoot() / "dev"
                                         : std::filesystem::path(flags.server.data_dir);
  server::ServerOptions options;
  if (int code = PrepareServer("dev", flags.server, root / "server", &options); code != 0) {
    return code;
  }
  auto metadata = agent::ParseMetadata(flags.metadata);
  if (!metadata.ok()) {
    std::cerr << "fjord dev: " << metadata.status().message() << "\n";
    return 2;
  }
  sigset_t set = BlockStopSignals();
  auto srv = server::Server::Start(options);
  if (!srv.ok()) {
    std::cerr << "fjord dev: " << srv.status().ToString() << "\n";
    return 1;
  }
  agent::AgentOptions agent_options;
  agent_options.servers = {(*srv)->url()};
  agent_options.state_dir = root / "agent";
  agent_options.metadata = std::move(*metadata);
  // The agent API listens where the server does (loopback by default), on a free port.
  agent_options.public_ip = options.address == "0.0.0.0" ? "127.0.0.1" : options.address;
  agent_options.listen = agent_options.public_ip + ":0";
  agent_options.version = std::string(kVersion);
  agent_options.host_factory = agent::SupervisorHostFactory();
  auto agt = agent::Agent::Start(std::move(agent_options));
  if (!agt.ok()) {
    std::cerr << "fjord dev: start the agent: " << agt.status().ToString() << "\n";
    (*srv)->Stop();
    return 1;
  }
  spdlog::info("fjord dev: server and agent (machine {}) in one process, state in {}",
               (*agt)->machine_id(), root.string());
  std::printf(
      "fjord dev is running.\n  API:       %s  (fleet API v1 under /fleet/v1)\n"
      "  agent API: %s\n  dashboard: not built yet\n"
      "Try: FJORD_ENDPOINT=%s fjord list-machines\n",
      (*srv)->url().c_str(), (*agt)->url().c_str(), (*srv)->url().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  spdlog::info("received {}: stopping (units keep running; the next fjord dev re-adopts them)",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*agt)->Stop(/*leave_units_running=*/true);
  (*srv)->Stop();
  std::fflush(stdout);
  std::fflush(stderr);
  // As `fjord agent`: a schedule long-poll may still be in flight on its own thread.
  ::_exit(0);
}

}  // namespace

void RegisterServerCommands(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<ServerFlags>();
  auto* cmd = app.add_subcommand("server", "Run the control plane (fleet API v1 and fjord's API)");
  cmd->add_option("--listen", flags->listen, "Address to serve the API on (HOST:PORT)")
      ->capture_default_str();
  cmd->add_option("--data-dir", flags->data_dir,
                  "Where the state lives (default: $FJORD_ROOT/server or /var/lib/fjord/server)");
  cmd->add_option("--heartbeat-grace", flags->grace,
                  "A machine silent this long is lost and its units move (e.g. 10s, 500ms)")
      ->capture_default_str();
  cmd->add_option("--log-level", flags->log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  cmd->add_option("--reschedule-rate", flags->reschedule_rate,
                  "Units of lost machines placed again per second, at least")
      ->capture_default_str();
  cmd->add_option("--reschedule-burst", flags->reschedule_burst,
                  "How many of them may be placed at once, at least")
      ->capture_default_str();
  cmd->add_option("--reschedule-per-machine", flags->reschedule_per_machine,
                  "Per alive machine: the rate grows with the cluster (0: the fixed rate only)")
      ->capture_default_str();
  cmd->callback([flags, &exit_code] { exit_code = RunServer(*flags); });

  auto dev = std::make_shared<DevFlags>();
  auto* dev_cmd = app.add_subcommand(
      "dev", "Run fjord on this one machine: the server and an agent in one process");
  dev_cmd->add_option("--listen", dev->server.listen, "Address to serve the API on (HOST:PORT)")
      ->capture_default_str();
  dev_cmd->add_option("--data-dir", dev->server.data_dir,
                      "State of both (default: $FJORD_ROOT/dev or /var/lib/fjord/dev)");
  dev_cmd->add_option("--metadata", dev->metadata, "Machine metadata: region=no-oslo,disk=nvme");
  dev_cmd->add_option("--heartbeat-grace", dev->server.grace, "As for `fjord server`")
      ->capture_default_str();
  dev_cmd->add_option("--log-level", dev->server.log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  dev_cmd->callback([dev, &exit_code] { exit_code = RunDev(*dev); });
}

}  // namespace fjord::cli
