// fjord run / ps / inspect / logs / rm, and the container half of `fjord stop` (StopContainer;
// fleet_cmd.cc owns the verb): the local container verbs, over runtime/runtime.h.
//
// Exit codes of `fjord run` (docker's convention): the container's exit code; 125 when fjord
// itself failed (bad input, setup failure); 126 command not executable; 127 command not found;
// 128+N when the container was killed by signal N (137 for SIGKILL and OOM kills).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/state_root.h"
#include "base/strings.h"
#include "cli/commands.h"
#include "image/image_store.h"
#include "net/bridge.h"
#include "net/runtime_network.h"
#include "runtime/runtime.h"

namespace fjord::cli {
namespace {

namespace rt = fjord::runtime;
using base::Result;
using base::Status;

constexpr int kFjordFailed = 125;

// --image: the image's layers (lowest first; the runtime stacks them) and its config, which
// the command line overrides: arguments replace Cmd (after Entrypoint), --env adds to Env,
// --workdir and --user replace WorkingDir and User.
Status ApplyImage(const std::string& ref, const std::filesystem::path& root,
                  rt::ContainerSpec& spec) {
  FJORD_ASSIGN_OR_RETURN(auto store, image::ImageStore::Open(image::ImageStoreDir(root)));
  FJORD_ASSIGN_OR_RETURN(image::Image img, store->Resolve(ref));
  spec.layers = img.layers;
  if (spec.argv.empty()) {
    spec.argv = img.config.entrypoint;
    spec.argv.insert(spec.argv.end(), img.config.cmd.begin(), img.config.cmd.end());
  } else if (!img.config.entrypoint.empty()) {
    spec.argv.insert(spec.argv.begin(), img.config.entrypoint.begin(), img.config.entrypoint.end());
  }
  std::vector<std::string> env = img.config.env;
  env.insert(env.end(), spec.env.begin(), spec.env.end());
  spec.env = env;
  if (spec.cwd == "/" && !img.config.working_dir.empty()) spec.cwd = img.config.working_dir;
  if (spec.user.empty()) spec.user = img.config.user;
  if (!img.config.stop_signal.empty()) {
    for (int s = 1; s < NSIG; s++) {
      const char* abbrev = sigabbrev_np(s);
      if (abbrev != nullptr && (img.config.stop_signal == std::string("SIG") + abbrev ||
                                img.config.stop_signal == abbrev)) {
        spec.stop_signal = s;
      }
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<rt::Runtime>> OpenRuntime(const std::string& root_flag) {
  rt::RuntimeOptions options;
  options.root = base::StateRoot(root_flag);
  if (const char* parent = std::getenv("FJORD_CGROUP_PARENT"); parent && parent[0] != '\0') {
    options.cgroup_parent = parent;
  }
  // The bridge of `--net bridge`: the environment decides, so every verb on a root agrees.
  FJORD_ASSIGN_OR_RETURN(net::BridgeConfig bridge, net::BridgeConfigFromEnv(options.root));
  options.network = net::RuntimeNetworkHooks(bridge);
  FJORD_ASSIGN_OR_RETURN(auto runtime, rt::Runtime::Open(options));
  FJORD_RETURN_IF_ERROR(runtime->Recover());
  return runtime;
}

int Fail(std::string_view verb, const Status& st) {
  std::cerr << "fjord " << verb << ": " << st.message() << "\n";
  return kFjordFailed;
}

struct RunFlags {
  std::string root, image, rootfs, name, cpu_quota, memory, net = "none", workdir = "/", hostname;
  std::string user, log_max_size = "10M";
  int64_t pids_max = 0;
  int log_max_files = 3;
  uint64_t cpu_weight = 0;
  std::vector<std::string> publish, volumes, env;
  bool read_only = false, detach = false, privileged = false, remove = false, userns = false;
};

Result<rt::ContainerSpec> BuildSpec(const RunFlags& f, std::vector<std::string> argv) {
  rt::ContainerSpec spec;
  spec.argv = std::move(argv);
  spec.name = f.name;
  spec.rootfs = f.rootfs;
  spec.cwd = f.workdir;
  spec.hostname = f.hostname;
  spec.read_only = f.read_only;
  spec.auto_remove = f.remove;
  spec.privileged = f.privileged;
  spec.user_namespace = f.userns;
  spec.user = f.user;
  if (!f.cpu_quota.empty()) {
    FJORD_ASSIGN_OR_RETURN(double cpus, rt::ParseCpuQuota(f.cpu_quota));
    spec.limits.cpus = cpus;
  }
  if (f.cpu_weight != 0) {
    if (f.cpu_weight > 10000) return base::InvalidArgument("--cpu-weight: must be 1..10000");
    spec.limits.cpu_weight = f.cpu_weight;
  }
  if (!f.memory.empty()) {
    auto bytes = rt::ParseByteSize(f.memory);
    if (!bytes.ok()) return bytes.status().Wrap("--memory");
    spec.limits.memory_bytes = *bytes;
  }
  if (f.pids_max != 0) spec.limits.pids_max = f.pids_max;
  auto log_bytes = rt::ParseByteSize(f.log_max_size);
  if (!log_bytes.ok()) return log_bytes.status().Wrap("--log-max-size");
  spec.log.max_bytes = *log_bytes;
  spec.log.max_files = f.log_max_files;
  if (f.net == "none") {
    spec.net = rt::NetMode::kNone;
  } else if (f.net == "host") {
    spec.net = rt::NetMode::kHost;
  } else if (f.net == "bridge") {
    spec.net = rt::NetMode::kBridge;
  } else {
    return base::InvalidArgument("--net " + base::QuoteForDisplay(f.net) +
                                 ": use none, host or bridge");
  }
  for (const std::string& p : f.publish) {
    std::string proto = "tcp";
    std::string body = p;
    if (size_t slash = body.find('/'); slash != std::string::npos) {
      proto = body.substr(slash + 1);
      body.resize(slash);
    }
    auto parts = base::Split(body, ':');
    auto port = [](const std::string& s) -> int {
      if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos) {
        return -1;
      }
      int v = std::atoi(s.c_str());
      return v >= 1 && v <= 65535 ? v : -1;
    };
    if (parts.size() != 2 || port(parts[0]) < 0 || port(parts[1]) < 0 ||
        (proto != "tcp" && proto != "udp")) {
      return base::InvalidArgument("--publish " + base::QuoteForDisplay(p) +
                                   ": expected HOSTPORT:CONTAINERPORT[/tcp|udp], e.g. 8080:80");
    }
    spec.ports.push_back(
        {static_cast<uint16_t>(port(parts[0])), static_cast<uint16_t>(port(parts[1])), proto});
  }
  for (const std::string& v : f.volumes) {
    auto parts = base::Split(v, ':');
    if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty() ||
        (parts.size() == 3 && parts[2] != "ro" && parts[2] != "rw")) {
      return base::InvalidArgument("--volume " + base::QuoteForDisplay(v) +
                                   ": expected HOSTDIR:CTRDIR[:ro|rw]");
    }
    spec.mounts.push_back({parts[0], parts[1], parts.size() == 3 && parts[2] == "ro"});
  }
  for (const std::string& e : f.env) {
    if (e.empty() || e[0] == '=') {
      return base::InvalidArgument("--env " + base::QuoteForDisplay(e) + ": expected KEY=VALUE");
    }
    if (e.find('=') == std::string::npos) {
      // Like docker: a bare KEY takes the caller's value, and is left out when unset.
      if (const char* v = std::getenv(e.c_str())) spec.env.push_back(e + "=" + v);
      continue;
    }
    spec.env.push_back(e);
  }
  if (!f.image.empty() && !f.rootfs.empty()) {
    return base::InvalidArgument("give either --image or --rootfs, not both");
  }
  if (!f.image.empty()) FJORD_RETURN_IF_ERROR(ApplyImage(f.image, base::StateRoot(f.root), spec));
  return spec;
}

// Forwards the foreground run's signals to the container's init.
volatile pid_t g_forward_pid = 0;
void ForwardSignal(int sig) {
  if (g_forward_pid > 0) ::kill(g_forward_pid, sig);
}

void PrintRecord(const rt::LogRecord& r) {
  FILE* out = r.is_stderr ? stderr : stdout;
  std::fwrite(r.text.data(), 1, r.text.size(), out);
  if (!r.partial) std::fputc('\n', out);
  std::fflush(out);
}

int RunMain(const RunFlags& flags, const std::vector<std::string>& argv) {
  auto spec = BuildSpec(flags, argv);
  if (!spec.ok()) return Fail("run", spec.status());
  auto runtime = OpenRuntime(flags.root);
  if (!runtime.ok()) return Fail("run", runtime.status());
  rt::Runtime& r = **runtime;
  base::UniqueFd attach;
  auto started = r.Start(*spec, flags.detach ? nullptr : &attach);
  if (!started.ok()) return Fail("run", started.status());
  const std::string& id = started->id;
  if (!started->exec_error.empty()) std::cerr << "fjord run: " << started->exec_error << "\n";
  if (flags.detach) {
    // A command that could not be exec'd fails the run even detached (the container exited).
    if (!started->exec_error.empty()) return started->exec_exit_code;
    std::cout << id << "\n";
    return 0;
  }
  g_forward_pid = started->init_pid;
  struct sigaction sa = {};
  sa.sa_handler = ForwardSignal;
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) sigaction(s, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  auto reported = rt::ReadLogStream(attach.get(), PrintRecord);
  if (!reported.ok())
    std::cerr << "fjord run: reading output: " << reported.status().message() << "\n";
  const bool told = reported.ok() && reported->has_value();
  rt::AttachedExit exit = told ? **reported : rt::AttachedExit{};
  const std::string name = spec->name.empty() ? id.substr(0, 12) : spec->name;
  // The monitor said how it ended, and has removed it if asked to: done, unless the container's
  // network is ours to release (bridge), or the monitor died before it could say. Wait does
  // both, and removes an auto-remove container that its monitor left.
  if (!told || spec->net == rt::NetMode::kBridge) {
    auto info = r.Wait(id);
    if (info.ok()) {
      if (!info->error.empty() && started->exec_error.empty()) {
        std::cerr << "fjord run: " << info->error << "\n";
      }
      if (!told) exit = {info->exit_code, 0, info->oom_killed};
    } else if (!told) {
      return Fail("run", info.status());
    }
  }
  if (exit.oom_killed) std::cerr << "fjord run: container " << name << " was OOM-killed\n";
  return exit.exit_code;
}

std::string Shorten(const std::vector<std::string>& argv, size_t max) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

int PsMain(const std::string& root, bool all) {
  auto runtime = OpenRuntime(root);
  if (!runtime.ok()) return Fail("ps", runtime.status());
  auto list = (*runtime)->List();
  if (!list.ok()) return Fail("ps", list.status());
  std::printf("%-12s  %-20s  %-14s  %s\n", "CONTAINER ID", "NAME", "STATUS", "COMMAND");
  for (const rt::ContainerInfo& c : *list) {
    if (!all && c.state != rt::State::kRunning) continue;
    std::printf("%-12s  %-20s  %-14s  %s\n", c.id.substr(0, 12).c_str(), c.name.c_str(),
                c.StatusString().c_str(), Shorten(c.argv, 40).c_str());
  }
  return 0;
}

// One container as JSON, with its bridge address when it has one (how a user or test learns
// where to reach it).
int InspectMain(const std::string& root, const std::string& name) {
  auto runtime = OpenRuntime(root);
  if (!runtime.ok()) return Fail("inspect", runtime.status());
  auto info = (*runtime)->Inspect(name);
  if (!info.ok()) return Fail("inspect", info.status());
  nlohmann::json out = {{"id", info->id},
                        {"name", info->name},
                        {"status", info->StatusString()},
                        {"pid", info->init_pid},
                        {"exit_code", info->exit_code},
                        {"oom_killed", info->oom_killed},
                        {"error", info->error},
                        {"command", info->argv},
                        {"created_unix", info->created_unix},
                        {"finished_unix", info->finished_unix}};
  auto config = net::BridgeConfigFromEnv(base::StateRoot(root));
  if (!config.ok()) return Fail("inspect", config.status());
  auto attachment = net::FindAttachment(*config, info->id);
  if (!attachment.ok()) return Fail("inspect", attachment.status());
  if (*attachment) {
    const net::Attachment& a = **attachment;
    nlohmann::json ports = nlohmann::json::array();
    for (const auto& p : a.ports) {
      ports.push_back({{"host_port", p.host_port},
                       {"container_port", p.container_port},
                       {"protocol", p.protocol}});
    }
    out["network"] = {{"bridge", config->bridge_name},    {"address", a.address},
                      {"prefix_length", a.prefix_length}, {"gateway", a.gateway},
                      {"host_veth", a.host_veth},         {"ports", ports}};
  }
  std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return 0;
}

}  // namespace

bool LocalContainerExists(const std::string& root, const std::string& name) {
  // No state root yet means no container: do not create one just to look.
  std::error_code ec;
  if (!std::filesystem::exists(base::StateRoot(root), ec)) return false;
  auto runtime = OpenRuntime(root);
  return runtime.ok() && (*runtime)->Inspect(name).ok();
}

int StopContainer(const std::string& root, const std::string& name, double seconds) {
  auto runtime = OpenRuntime(root);
  if (!runtime.ok()) return Fail("stop", runtime.status());
  auto ms = std::chrono::milliseconds(static_cast<int64_t>(std::max(0.0, seconds) * 1000));
  Status st = (*runtime)->Stop(name, ms);
  return st.ok() ? 0 : Fail("stop", st);
}

void RegisterRunCommands(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<RunFlags>();
  auto* run = app.add_subcommand("run", "Run a command in a new container");
  run->add_option("--root", flags->root, "State directory (default $FJORD_ROOT or /var/lib/fjord)");
  run->add_option("--image", flags->image, "Image reference from the local image store");
  run->add_option("--rootfs", flags->rootfs, "Directory used as the read-only root filesystem");
  run->add_option("--name", flags->name, "Container name (default: the short id)");
  run->add_option("--cpu-quota", flags->cpu_quota, "CPU quota: 50% of one CPU, or 1.5 CPUs");
  run->add_option("--cpu-weight", flags->cpu_weight, "CPU weight 1..10000 (100 = default)");
  run->add_option("--memory", flags->memory, "Memory limit, e.g. 256M; no swap on top");
  run->add_option("--pids-max", flags->pids_max, "Maximum number of processes");
  run->add_option("--net", flags->net,
                  "Network: none (loopback only), host or bridge ($FJORD_BRIDGE, default fjord0, "
                  "on $FJORD_SUBNET, default 10.88.0.0/16; FJORD_BRIDGE_OUTBOUND=0: no outbound)");
  run->add_option("--publish", flags->publish, "Publish HOSTPORT:CONTAINERPORT (bridge)")
      ->allow_extra_args(false);
  run->add_option("--volume", flags->volumes, "Bind mount HOSTDIR:CTRDIR[:ro]")
      ->allow_extra_args(false);
  run->add_option("--env", flags->env, "Environment variable KEY=VALUE")->allow_extra_args(false);
  run->add_option("--workdir", flags->workdir, "Working directory inside the container");
  run->add_option("--hostname", flags->hostname, "Container hostname");
  run->add_option("--user", flags->user, "UID[:GID] to run the command as");
  run->add_option("--log-max-size", flags->log_max_size, "Size of one log file (default 10M)");
  run->add_option("--log-max-files", flags->log_max_files, "Log files kept (default 3)");
  run->add_flag("--read-only", flags->read_only, "Mount the root filesystem read-only");
  run->add_flag("--detach,-d", flags->detach, "Print the container id and return");
  run->add_flag("--privileged", flags->privileged, "All capabilities, no seccomp filter");
  run->add_flag("--userns", flags->userns,
                "User namespace: container root is host uid 100000 (rootfs files read-only)");
  run->add_flag("--rm", flags->remove, "Remove the container when it exits");
  auto argv = std::make_shared<std::vector<std::string>>();
  run->add_option("command", *argv, "The command and its arguments, after `--`");
  run->callback([flags, argv, &exit_code] { exit_code = RunMain(*flags, *argv); });

  auto root = std::make_shared<std::string>();
  auto all = std::make_shared<bool>(false);
  auto* ps = app.add_subcommand("ps", "List containers");
  ps->add_option("--root", *root, "State directory");
  ps->add_flag("--all,-a", *all, "Also list exited containers");
  ps->callback([root, all, &exit_code] { exit_code = PsMain(*root, *all); });

  auto name = std::make_shared<std::string>();
  auto* inspect = app.add_subcommand("inspect", "Print a container's state and address as JSON");
  inspect->add_option("name", *name, "Container name or id")->required();
  inspect->add_option("--root", *root, "State directory");
  inspect->callback([root, name, &exit_code] { exit_code = InspectMain(*root, *name); });

  auto follow = std::make_shared<bool>(false);
  auto* logs = app.add_subcommand("logs", "Print a container's output");
  logs->add_option("name", *name, "Container name or id")->required();
  logs->add_option("--root", *root, "State directory");
  logs->add_flag("--follow,-f", *follow, "Keep printing until the container exits");
  logs->callback([root, name, follow, &exit_code] {
    auto runtime = OpenRuntime(*root);
    if (!runtime.ok()) {
      exit_code = Fail("logs", runtime.status());
      return;
    }
    ::signal(SIGPIPE, SIG_IGN);
    Status st = (*runtime)->Logs(*name, *follow, PrintRecord);
    exit_code = st.ok() ? 0 : Fail("logs", st);
  });

  auto force = std::make_shared<bool>(false);
  auto* rm = app.add_subcommand("rm", "Remove a container");
  rm->add_option("name", *name, "Container name or id")->required();
  rm->add_option("--root", *root, "State directory");
  rm->add_flag("--force,-f", *force, "Stop it first if it is running");
  rm->callback([root, name, force, &exit_code] {
    auto runtime = OpenRuntime(*root);
    if (!runtime.ok()) {
      exit_code = Fail("rm", runtime.status());
      return;
    }
    Status st = (*runtime)->Destroy(*name, *force);
    exit_code = st.ok() ? 0 : Fail("rm", st);
  });
}

}  // namespace fjord::cli
