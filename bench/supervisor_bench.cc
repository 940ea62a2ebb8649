// bench_supervisor: (1) median and p95 time from Supervisor::Apply of a launched simple unit
// (/bin/sleep 1000) until its process runs (main PID known and exec'd into sleep), over 100
// units started one after another while the earlier ones keep running; (2) the RSS of this
// process (the supervisor) with those 100 units running, and the RSS of one unit shim.
// Needs root (cgroups). Cleans up: stops every unit and removes its cgroups and state dir.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/supervisor.h"
#include "unit/unit.h"

namespace {

using namespace fjord;
namespace fs = std::filesystem;

long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string k;
  while (in >> k) {
    if (k == "VmRSS:") {
      long v;
      in >> v;
      return v;
    }
  }
  return -1;
}

bool IsSleep(pid_t pid) {
  std::error_code ec;
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec).filename() == "sleep";
}

}  // namespace

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::printf("bench_supervisor: skipped (needs root for cgroups)\n");
    return 0;
  }
  int units = argc > 1 ? std::atoi(argv[1]) : 100;
  char tmpl[] = "/tmp/fjord-bench-supervisor.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  agent::Supervisor::Options o;
  o.state_dir = fs::path(tmpl) / "state";
  o.cgroup_parent = "fjord-bench-" + std::to_string(::getpid());
  auto sup = agent::Supervisor::Open(o);
  if (!sup.ok()) {
    std::fprintf(stderr, "open: %s\n", sup.status().ToString().c_str());
    return 1;
  }
  std::vector<agent::UnitAssignment> assigned;
  std::vector<double> ms;
  pid_t a_main = 0;
  for (int i = 0; i < units; ++i) {
    std::vector<api::UnitOption> opts = {{"Service", "ExecStart", "/bin/sleep 1000"}};
    std::vector<unit::UnitOption> views;
    for (const auto& x : opts) views.push_back({x.section, x.name, x.value});
    std::string name = "bench@" + std::to_string(i) + ".service";
    assigned.push_back({name, unit::ContentHash(views), api::UnitStateName::kLaunched, opts});
    auto t0 = std::chrono::steady_clock::now();
    (*sup)->Apply(assigned);
    for (;;) {
      auto st = (*sup)->Get(name);
      if (st.ok() && st->main_pid > 0 && IsSleep(st->main_pid)) {
        a_main = st->main_pid;
        break;
      }
      if (st.ok() && st->active_state == "failed") {
        std::fprintf(stderr, "%s failed: %s\n", name.c_str(), st->reason.c_str());
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the last starts settle
  long rss = RssKiB(::getpid());
  // The shim is the parent of the unit's main process.
  pid_t shim_pid = 0;
  {
    std::ifstream in("/proc/" + std::to_string(a_main) + "/stat");
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto rp = s.rfind(')');
    if (rp != std::string::npos) std::sscanf(s.c_str() + rp + 2, "%*c %d", &shim_pid);
  }
  long shim = RssKiB(shim_pid);
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double p) {
    return sorted[std::min(sorted.size() - 1, size_t(p * sorted.size()))];
  };
  std::printf("apply_to_running_ms: n=%zu median=%.2f p95=%.2f max=%.2f\n", sorted.size(), pct(0.5),
              pct(0.95), sorted.back());
  std::printf("supervisor_rss_kib_with_%d_running_units: %ld\n", units, rss);
  std::printf("one_unit_shim_rss_kib: %ld\n", shim);
  auto t0 = std::chrono::steady_clock::now();
  (*sup)->StopAll();
  std::printf(
      "stop_all_ms: %.1f\n",
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  sup->reset();
  std::error_code ec;
  for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    fs::path p = h.path() / o.cgroup_parent;
    if (fs::is_directory(p)) ::rmdir(p.c_str());
  }
  fs::remove_all(tmpl, ec);
  return 0;
}
