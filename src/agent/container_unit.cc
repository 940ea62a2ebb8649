// [Container] units (podman Quadlet style) through fjord::runtime. The runtime's monitor owns
// the container and outlives the agent; the supervisor watches the monitor's pidfd and reads
// the exit from Runtime::Inspect. Start and stop call the runtime synchronously on the
// supervisor thread; stopping does not block (signal, then watch the monitor's pidfd).
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/internal.h"
#include "base/state_root.h"
#include "base/strings.h"
#include "image/image_store.h"
#include "net/bridge.h"

namespace fjord::agent {

namespace {

Clock::time_point After(std::chrono::microseconds d) {
  if (d == unit::kInfiniteTime) return Clock::time_point::max();
  return Clock::now() + d;
}

// Runtime names allow [A-Za-z0-9_.-]: "<cgroup parent>-<unit name with @ as _>".
std::string ContainerNameFor(const std::string& parent, const std::string& unit) {
  std::string n = parent + "-" + unit;
  for (char& c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') c = '_';
  }
  return n;
}

base::Result<runtime::Mount> ParseVolume(const std::string& v) {
  auto parts = base::Split(v, ':');
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[0][0] != '/') {
    return base::InvalidArgument("Volume=" + v + ": use /host/path:/container/path[:ro]");
  }
  runtime::Mount m;
  m.source = parts[0];
  m.destination = parts[1];
  m.read_only = parts.size() == 3 && parts[2] == "ro";
  return m;
}

base::Result<runtime::ContainerSpec> BuildSpec(const unit::Unit& u, const Supervisor::Options& opts,
                                               const std::string& name) {
  unit::ContainerSpec c = u.Container();
  runtime::ContainerSpec spec;
  spec.name = name;
  fs::path root =
      opts.image_root.empty() ? image::ImageStoreDir(base::StateRoot()) : opts.image_root;
  auto store = image::ImageStore::Open(root);
  if (!store.ok()) return store.status().Wrap("Image=" + c.image);
  auto img = (*store)->Resolve(c.image);
  if (!img.ok()) return img.status().Wrap("Image=" + c.image);
  spec.layers = img->layers;
  spec.argv = c.entrypoint.empty() ? img->config.entrypoint : c.entrypoint;
  const auto& cmd = c.exec.empty() ? img->config.cmd : c.exec;
  spec.argv.insert(spec.argv.end(), cmd.begin(), cmd.end());
  if (spec.argv.empty()) return base::InvalidArgument("Exec=: the image has no command either");
  spec.env = img->config.env;
  for (const auto& e : u.Environment()) spec.env.push_back(e.name + "=" + e.value);
  for (const auto& e : c.environment) spec.env.push_back(e.name + "=" + e.value);
  spec.cwd = !c.working_dir.empty()             ? c.working_dir
             : !img->config.working_dir.empty() ? img->config.working_dir
                                                : "/";
  spec.user = c.user.empty() ? img->config.user : c.user;
  spec.read_only = c.read_only;
  for (const auto& v : c.volumes) {
    auto m = ParseVolume(v);
    if (!m.ok()) return m.status();
    spec.mounts.push_back(*m);
  }
  for (const auto& p : c.publish_ports) {
    auto mapping = net::ParsePortMapping(p);
    if (!mapping.ok()) return mapping.status().Wrap("PublishPort=" + p);
    spec.ports.push_back({mapping->host_port, mapping->container_port, mapping->protocol});
  }
  // As podman: published ports need the bridge; Network=host and none are honoured.
  if (c.network == "host") {
    spec.net = runtime::NetMode::kHost;
  } else if (c.network == "bridge" || (!spec.ports.empty() && c.network != "none")) {
    spec.net = runtime::NetMode::kBridge;
  }
  if (!spec.ports.empty() && spec.net != runtime::NetMode::kBridge) {
    return base::InvalidArgument("PublishPort= needs Network=bridge (the default), not Network=" +
                                 c.network);
  }
  unit::ResourceRequests res = u.Resources();
  if (res.cpu_quota_percent) spec.limits.cpus = *res.cpu_quota_percent / 100.0;
  if (res.memory_max_bytes && *res.memory_max_bytes != unit::kInfiniteBytes) {
    spec.limits.memory_bytes = res.memory_max_bytes;
  }
  if (res.tasks_max && *res.tasks_max != unit::kInfiniteBytes) {
    spec.limits.pids_max = static_cast<int64_t>(*res.tasks_max);
  }
  spec.stop_signal = u.KillSignal();
  return spec;
}

}  // namespace

void Service::StartContainer() {
  SetPhase(Phase::kStart);
  auto rt = env_.runtime();
  if (!rt.ok()) {
    Fail("resources", std::string(rt.status().message()));
    EnterDead();
    return;
  }
  std::string name = ContainerNameFor(env_.opts->cgroup_parent, a_.name);
  (void)(*rt)->Destroy(name, true);  // a leftover of an earlier run of this unit
  auto spec = BuildSpec(*unit_, *env_.opts, name);
  if (!spec.ok()) {
    Fail("resources", std::string(spec.status().message()));
    EnterDead();
    return;
  }
  auto started = (*rt)->Start(*spec);
  if (!started.ok()) {
    Fail("resources", "start container: " + std::string(started.status().message()));
    EnterDead();
    return;
  }
  container_id_ = started->id;
  AdoptContainer();
}

void Service::AdoptContainer() {
  auto rt = env_.runtime();
  if (!rt.ok() || container_id_.empty()) {
    phase_ = Phase::kDead;
    return;
  }
  auto info = (*rt)->Inspect(container_id_);
  if (!info.ok()) {
    Fail("resources", "container " + container_id_ + ": " + std::string(info.status().message()));
    container_id_.clear();
    EnterDead();
    return;
  }
  main_pid_container_ = info->init_pid;
  if (info->state == runtime::State::kRunning && info->monitor_pid > 0) {
    container_pidfd_ =
        base::UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, info->monitor_pid, 0)));
  }
  if (!container_pidfd_) {
    OnContainerExit();
    return;
  }
  if (phase_ != Phase::kRunning) SetPhase(Phase::kRunning);
}

void Service::OnContainerExit() {
  container_pidfd_.reset();
  auto rt = env_.runtime();
  if (!rt.ok()) return;
  // The monitor writes the exit before it exits; Wait also covers a monitor that died.
  auto info = (*rt)->Wait(container_id_);
  if (info.ok()) {
    exit_status_ = info->exit_code;
    if (info->oom_killed) {
      Fail("oom-kill", "the container was killed by the OOM killer");
    } else if (info->exit_code != 0 && !stop_requested_) {
      Fail(info->exit_code > 128 ? "signal" : "exit-code",
           info->error.empty() ? "container exited with status " + std::to_string(info->exit_code)
                               : info->error);
    }
  }
  (void)(*rt)->Destroy(container_id_, true);
  container_id_.clear();
  main_pid_container_ = 0;
  EnterDead();
}

// Non-blocking: signal now, the monitor's pidfd says when it is over, OnContainerTimeout
// escalates to SIGKILL after TimeoutStopSec=.
void Service::StopContainer() {
  auto rt = env_.runtime();
  if (!rt.ok() || container_id_.empty() || !container_pidfd_) {
    if (rt.ok() && !container_id_.empty()) (void)(*rt)->Destroy(container_id_, true);
    container_id_.clear();
    EnterDead();
    return;
  }
  SetPhase(Phase::kStopSigterm);
  (void)(*rt)->Kill(container_id_, unit_->KillSignal());
  deadline_ = After(unit_->TimeoutStopSec());
}

void Service::OnContainerTimeout() {
  auto rt = env_.runtime();
  if (phase_ == Phase::kStopSigterm && rt.ok()) {
    Fail("timeout", "the container did not exit on its stop signal within TimeoutStopSec=");
    SetPhase(Phase::kStopSigkill);
    (void)(*rt)->Kill(container_id_, SIGKILL);
    deadline_ = After(unit_->TimeoutStopSec());
    return;
  }
  OnContainerExit();
}

}  // namespace fjord::agent
