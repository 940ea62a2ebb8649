// fjord-sim: drives the real scheduler with simulated agents (no process per machine) and
// reports throughput, latency, memory and placement quality, re-verified by an independent
// checker. See src/scheduler/README.md for the figures and how they were measured.
//
//   fjord-sim --machines N --tasks M [--seed S] [--lose-percent P] [--rate R] [--burst B]
//             [--through-store]
//
// Exit status: 0 when the checker finds no violation (and, with --lose-percent, every displaced
// task was placed again with no machine over capacity); 1 otherwise; 2 on bad usage.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "scheduler/scheduler.h"
#include "sim/checker.h"
#include "sim/workload.h"

namespace {

using fjord::scheduler::Placement;
using fjord::scheduler::Scheduler;
using fjord::scheduler::TaskRequest;
using fjord::sim::SimGroup;
using Clock = std::chrono::steady_clock;

struct Args {
  size_t machines = 1000;
  size_t tasks = 10000;
  uint64_t seed = 1;
  double lose_percent = 0;
  double rate = 20000;
  double burst = 2000;
  bool through_store = false;
  bool check = true;  // --no-check: skip the independent checker (for profiling only)
};

int Usage(const char* why) {
  std::fprintf(stderr,
               "fjord-sim: %s\nusage: fjord-sim --machines N --tasks M [--seed S] "
               "[--lose-percent P] [--rate PLACEMENTS_PER_S] [--burst B] [--through-store]\n",
               why);
  return 2;
}

bool ParseNumber(const char* s, double* out) {
  char* end = nullptr;
  *out = std::strtod(s, &end);
  return end != s && *end == '\0' && *out >= 0;
}

long RssKiB() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long pages = 0, rss = 0;
  if (std::fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
  std::fclose(f);
  return rss * 4;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// CPU time of this thread: unlike wall time, not inflated while other processes hold the core.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

// The simulation's view of every request: group templates plus per-instance name / MachineOf.
class Sim {
 public:
  Sim(const Args& args)
      : args_(args), wl_(fjord::sim::MakeWorkload(args.machines, args.tasks, args.seed)) {}

  int Run() {
    long rss0 = RssKiB();
    auto created = Scheduler::Create(wl_.machines, {.seed = args_.seed});
    if (!created.ok()) {
      std::fprintf(stderr, "fjord-sim: %s\n", created.status().ToString().c_str());
      return 1;
    }
    sched_ = std::move(*created);
    size_t bytes_machines = sched_->MemoryBytes();
    std::printf(
        "machines: %zu (%zu zones, %zu racks), tasks: %zu in %zu groups, %zu global "
        "units, seed %llu\n",
        args_.machines, wl_.zones, wl_.racks, args_.tasks, wl_.groups.size(), wl_.globals.size(),
        static_cast<unsigned long long>(args_.seed));

    size_t global_instances = 0;
    for (const TaskRequest& g : wl_.globals) {
      std::vector<fjord::scheduler::PendingTask> missed;
      auto placed = sched_->PlaceGlobal(g, &missed);
      if (!placed.ok()) {
        std::fprintf(stderr, "fjord-sim: global %s: %s\n", g.name.c_str(),
                     placed.status().ToString().c_str());
        return 1;
      }
      global_instances += placed->size();
    }

    // The placement loop: each group's instances in order, one Place call each.
    std::vector<uint32_t> ns;
    ns.reserve(args_.tasks);
    size_t placed = 0, pending = 0;
    std::string first_pending;
    size_t bytes_before_tasks = sched_->MemoryBytes();
    std::map<std::string, std::vector<uint32_t>> by_profile;  // ns per placement
    // A sidecar group (MachineOf= its service) is placed pairwise with the service it follows,
    // as the server co-schedules MachineOf pairs.
    std::vector<std::pair<size_t, uint32_t>> order;
    order.reserve(args_.tasks);
    for (size_t gi = 0; gi < wl_.groups.size(); ++gi) {
      if (wl_.groups[gi].profile == "sidecar") continue;
      bool paired = gi + 1 < wl_.groups.size() && wl_.groups[gi + 1].profile == "sidecar";
      for (uint32_t i = 1; i <= wl_.groups[gi].instances; ++i) {
        order.emplace_back(gi, i);
        if (paired) order.emplace_back(gi + 1, i);
      }
    }
    std::vector<TaskRequest> reqs;
    for (const SimGroup& g : wl_.groups) reqs.push_back(g.tmpl);
    auto t0 = Clock::now();
    double cpu0 = ThreadCpuSeconds();
    for (const auto& [gi, i] : order) {
      const SimGroup& g = wl_.groups[gi];
      TaskRequest& req = reqs[gi];
      {
        req.name = fjord::sim::InstanceNameOf(g, i);
        if (!g.tmpl.machine_of.empty()) req.machine_of = fjord::sim::MachineOfFor(g, i);
        auto a = Clock::now();
        auto p = sched_->Place(req);
        auto b = Clock::now();
        ns.push_back(static_cast<uint32_t>(std::min<int64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count(), UINT32_MAX)));
        by_profile[g.profile].push_back(ns.back());
        if (p.ok()) {
          ++placed;
        } else {
          if (p.status().code() != fjord::base::Code::kResourceExhausted) {
            std::fprintf(stderr, "fjord-sim: %s\n", p.status().ToString().c_str());
            return 1;
          }
          if (pending++ == 0) first_pending = std::string(p.status().message());
        }
      }
    }
    double wall = Seconds(Clock::now() - t0);
    double cpu = ThreadCpuSeconds() - cpu0;
    size_t bytes_after = sched_->MemoryBytes();
    long rss1 = RssKiB();

    std::sort(ns.begin(), ns.end());
    auto pct = [&](double q) {
      return ns.empty() ? 0.0
                        : ns[std::min(ns.size() - 1, static_cast<size_t>(q * ns.size()))] / 1000.0;
    };
    std::printf("placed: %zu tasks + %zu global instances, pending: %zu\n", placed,
                global_instances, pending);
    if (pending > 0) std::printf("first pending: %s\n", first_pending.c_str());
    std::printf(
        "time to place one task: p50 %.2f us, p99 %.2f us, max %.2f us; all: %.3f s wall, "
        "%.3f s cpu (%.0f placements per cpu-second)\n",
        pct(0.50), pct(0.99), ns.empty() ? 0.0 : ns.back() / 1000.0, wall, cpu,
        cpu > 0 ? args_.tasks / cpu : 0.0);
    std::printf(
        "memory (data-structure accounting): %.0f B per machine, %.0f B per task; "
        "RSS delta %.0f B per task (includes the sim's timing array, 4 B per task)\n",
        static_cast<double>(bytes_machines) / std::max<size_t>(1, args_.machines),
        static_cast<double>(bytes_after - bytes_before_tasks) /
            std::max<size_t>(1, placed + global_instances),
        (rss1 - rss0) * 1024.0 / std::max<size_t>(1, placed + global_instances));
    std::printf("p50/p99 per profile (us):");
    for (auto& [name, v] : by_profile) {
      std::sort(v.begin(), v.end());
      std::printf(" %s %.1f/%.1f (%zu);", name.c_str(), v[v.size() / 2] / 1000.0,
                  v[std::min(v.size() - 1, v.size() * 99 / 100)] / 1000.0, v.size());
    }
    std::printf("\n");
    int rc = Verify("after placement");

    if (args_.lose_percent > 0) rc |= LoseAndReschedule();
    // Last line, for scripts: wall-clock rate (includes time the core was taken by other
    // processes) and, in parentheses, the rate per cpu-second of this thread.
    std::printf("placements/s: %.0f (wall; %.0f per cpu-second)\n",
                wall > 0 ? static_cast<double>(args_.tasks) / wall : 0.0,
                cpu > 0 ? static_cast<double>(args_.tasks) / cpu : 0.0);
    return rc;
  }

 private:
  int Verify(const char* when) {
    if (!args_.check) {
      std::printf("quality %s: not checked (--no-check)\n", when);
      return 0;
    }
    fjord::sim::CheckInput in;
    in.machines = wl_.machines;
    in.lost = lost_;
    for (const TaskRequest& g : wl_.globals) in.globals.push_back(&g);
    for (const auto& loc : sched_->Tasks()) {
      fjord::sim::CheckedTask t;
      t.name = loc.name;
      t.machine = loc.machine_id;
      size_t gi;
      uint32_t idx;
      if (fjord::sim::ParseInstance(loc.name, &gi, &idx)) {
        t.request = &wl_.groups[gi].tmpl;
        t.machine_of = fjord::sim::MachineOfFor(wl_.groups[gi], idx);
      } else {
        for (const TaskRequest& g : wl_.globals) {
          if (g.name == loc.name) t.request = &g;
        }
      }
      if (t.request == nullptr) {
        std::fprintf(stderr, "fjord-sim: unknown task %s in the schedule\n", loc.name.c_str());
        return 1;
      }
      in.placed.push_back(std::move(t));
    }
    auto t0 = Clock::now();
    fjord::sim::CheckReport r = fjord::sim::CheckSchedule(in);
    std::printf(
        "quality %s: cpu %.1f%% used, memory %.1f%% used, disk %.1f%% used; machines over "
        "capacity: %zu; constraint violations: %zu (independent checker, %.2f s)\n",
        when, 100 * r.cpu_used, 100 * r.mem_used, 100 * r.disk_used, r.over_capacity_machines,
        r.violations, Seconds(Clock::now() - t0));
    for (const std::string& e : r.examples) std::printf("  violation: %s\n", e.c_str());
    return r.violations == 0 ? 0 : 1;
  }

  int LoseAndReschedule() {
    std::mt19937_64 rng(args_.seed ^ 0x5eed);
    std::vector<size_t> order(wl_.machines.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    size_t lose = static_cast<size_t>(args_.lose_percent / 100.0 * order.size());
    std::vector<fjord::scheduler::DisplacedTask> displaced;
    for (size_t i = 0; i < lose; ++i) {
      const std::string& id = wl_.machines[order[i]].id;
      auto names = sched_->LoseMachine(id);
      if (!names.ok()) {
        std::fprintf(stderr, "fjord-sim: %s\n", names.status().ToString().c_str());
        return 1;
      }
      lost_.insert(id);
      for (std::string& n : *names) {
        size_t gi;
        uint32_t idx;
        int prio = fjord::sim::ParseInstance(n, &gi, &idx) ? wl_.groups[gi].tmpl.priority : 0;
        std::string follows = fjord::sim::ParseInstance(n, &gi, &idx)
                                  ? fjord::sim::MachineOfFor(wl_.groups[gi], idx)
                                  : std::string();
        displaced.push_back({std::move(n), prio, false, std::move(follows)});
      }
    }
    fjord::scheduler::ReschedulePlanner planner({args_.rate, args_.burst}, 0);
    planner.Add(displaced);
    int64_t now = 0, done_at = 0;
    size_t replaced = 0, attempts = 0;
    bool progress = false;
    auto t0 = Clock::now();
    while (true) {
      for (const std::string& name : planner.NextBatch(now)) {
        size_t gi;
        uint32_t idx;
        fjord::sim::ParseInstance(name, &gi, &idx);
        const SimGroup& g = wl_.groups[gi];
        TaskRequest req = g.tmpl;
        req.name = name;
        req.machine_of = fjord::sim::MachineOfFor(g, idx);
        ++attempts;
        auto p = sched_->Place(req);
        if (p.ok()) {
          ++replaced;
          progress = true;
          done_at = now;
        } else {
          planner.MarkPending(name, g.tmpl.priority, std::string(p.status().message()));
        }
      }
      if (planner.queued() == 0) {
        if (planner.pending().empty() || !progress) break;
        progress = false;
        planner.RetryPending();  // something moved: dependants (MachineOf) may fit now
      }
      now += std::max<int64_t>(1, planner.MillisUntilNextToken(now));
    }
    double wall = Seconds(Clock::now() - t0);
    std::printf(
        "lost %zu machines (%.1f%%): %zu tasks displaced, %zu placed again in %.3f s of "
        "simulated time at %.0f placements/s (burst %.0f), %zu attempts, %.3f s wall; "
        "still pending: %zu\n",
        lose, args_.lose_percent, displaced.size(), replaced, done_at / 1000.0, args_.rate,
        args_.burst, attempts, wall, planner.pending().size());
    for (const auto& [name, p] : planner.pending()) {
      std::printf("  pending %s: %s\n", name.c_str(), p.reason.c_str());
      break;
    }
    int rc = Verify("after rescheduling");
    return rc != 0 || !planner.pending().empty() ? 1 : 0;
  }

  Args args_;
  fjord::sim::Workload wl_;
  std::unique_ptr<Scheduler> sched_;
  std::set<std::string> lost_;
};

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--through-store") {
      args.through_store = true;
      continue;
    }
    if (a == "--no-check") {
      args.check = false;
      continue;
    }
    if (i + 1 >= argc) return Usage(("missing value for " + a).c_str());
    double v;
    if (!ParseNumber(argv[i + 1], &v)) {
      return Usage((a + ": `" + argv[i + 1] + "` is not a non-negative number").c_str());
    }
    ++i;
    if (a == "--machines")
      args.machines = static_cast<size_t>(v);
    else if (a == "--tasks")
      args.tasks = static_cast<size_t>(v);
    else if (a == "--seed")
      args.seed = static_cast<uint64_t>(v);
    else if (a == "--lose-percent")
      args.lose_percent = v;
    else if (a == "--rate")
      args.rate = v;
    else if (a == "--burst")
      args.burst = v;
    else
      return Usage(("unknown option " + a).c_str());
  }
  if (args.through_store) {
    std::fprintf(stderr,
                 "fjord-sim: --through-store: not built with store support yet (src/store is "
                 "wired in when the store module is merged)\n");
    return 2;
  }
  if (args.machines == 0) return Usage("--machines must be at least 1");
  if (args.lose_percent > 100) return Usage("--lose-percent must be at most 100");
  if (args.rate <= 0 || args.burst < 1) return Usage("--rate must be > 0 and --burst >= 1");
  return Sim(args).Run();
}
