// fjord-sim: drives the real scheduler with simulated agents (no process per machine) and
// reports throughput, latency, memory and placement quality, re-verified by an independent
// checker. See src/scheduler/README.md for the figures and how they were measured.
//
//   fjord-sim --machines N --tasks M [--seed S] [--lose-percent P] [--rate R] [--burst B]
//             [--through-store [--store-dir DIR] [--keep-store] [--sync normal|full]
//              [--batch N] [--in-flight N]]
//
// --through-store writes every machine, unit and placement to the real SQLite store (key layout
// in sim/durable.h, the one the server will use); a placement counts as placed only once the
// transaction carrying it is durable. At the end the schedule is read back from the store and the
// checker runs on what the store holds.
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
#include "sim/durable.h"
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
  fjord::sim::DurableOptions store;
  bool check = true;  // --no-check: skip the independent checker (for profiling only)
};

int Usage(const char* why) {
  std::fprintf(stderr,
               "fjord-sim: %s\nusage: fjord-sim --machines N --tasks M [--seed S] "
               "[--lose-percent P] [--rate PLACEMENTS_PER_S] [--burst B]\n"
               "       [--through-store [--store-dir DIR] [--keep-store] [--sync normal|full] "
               "[--batch PUTS_PER_TXN] [--in-flight TXNS]]\n",
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

    // --through-store: the desired state (machines, units) is durable before anything is placed,
    // as when units are submitted to the server before the scheduler sees them.
    double submit_wall = 0;
    size_t unit_put0 = 0;  // put index of the first unit (globals first, then `order`)
    if (args_.through_store) {
      auto t = Clock::now();
      if (!Submit(order, &unit_put0)) return 1;
      submit_wall = Seconds(Clock::now() - t);
    }
    size_t schedule_puts0 = durable_ ? durable_->durable_puts() : 0;
    size_t schedule_adds = 0;
    auto add_placement = [&](const std::string& machine, const std::string& task, size_t unit_put) {
      ++schedule_adds;
      std::string value =
          "{\"unit_revision\":" + std::to_string(durable_->RevisionOfPut(unit_put)) + "}";
      auto st = durable_->Add(fjord::sim::ScheduleKey(machine, task), std::move(value));
      if (!st.ok()) std::fprintf(stderr, "fjord-sim: %s\n", st.ToString().c_str());
      return st.ok();
    };

    size_t global_instances = 0;
    for (size_t gx = 0; gx < wl_.globals.size(); ++gx) {
      const TaskRequest& g = wl_.globals[gx];
      std::vector<fjord::scheduler::PendingTask> missed;
      auto placed = sched_->PlaceGlobal(g, &missed);
      if (!placed.ok()) {
        std::fprintf(stderr, "fjord-sim: global %s: %s\n", g.name.c_str(),
                     placed.status().ToString().c_str());
        return 1;
      }
      global_instances += placed->size();
      if (durable_) {
        for (const Placement& p : *placed) {
          if (!add_placement(p.machine_id, g.name, unit_put0 + gx)) return 1;
        }
      }
    }

    // The placement loop: each group's instances in order, one Place call each.
    std::vector<uint32_t> ns;
    ns.reserve(args_.tasks);
    size_t placed = 0, pending = 0;
    std::string first_pending;
    size_t bytes_before_tasks = sched_->MemoryBytes();
    std::map<std::string, std::vector<uint32_t>> by_profile;  // ns per placement
    auto t0 = Clock::now();
    double cpu0 = ThreadCpuSeconds();
    size_t unit_put = unit_put0 + wl_.globals.size();
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
          if (durable_ && !add_placement(p->machine_id, req.name, unit_put)) return 1;
        } else {
          if (p.status().code() != fjord::base::Code::kResourceExhausted) {
            std::fprintf(stderr, "fjord-sim: %s\n", p.status().ToString().c_str());
            return 1;
          }
          if (pending++ == 0) first_pending = std::string(p.status().message());
        }
        ++unit_put;
      }
    }
    if (durable_) {
      // The placement loop ends when the last placement is durable, not when it is queued.
      auto st = durable_->Drain();
      if (!st.ok()) {
        std::fprintf(stderr, "fjord-sim: %s\n", st.ToString().c_str());
        return 1;
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
    int rc = 0;
    if (durable_) {
      size_t durable_placements = durable_->durable_puts() - schedule_puts0;
      rc |= VerifyStore(durable_placements, schedule_adds, submit_wall, wall);
    } else {
      rc |= Verify("after placement");
    }

    if (args_.lose_percent > 0) rc |= LoseAndReschedule();
    // Last line, for scripts: wall-clock rate (includes time the core was taken by other
    // processes) and, in parentheses, the rate per cpu-second of this thread.
    std::printf("placements/s: %.0f (wall; %.0f per cpu-second)\n",
                wall > 0 ? static_cast<double>(args_.tasks) / wall : 0.0,
                cpu > 0 ? static_cast<double>(args_.tasks) / cpu : 0.0);
    return rc;
  }

 private:
  // Opens the store and writes every machine and unit (globals, then `order`), durably.
  bool Submit(const std::vector<std::pair<size_t, uint32_t>>& order, size_t* unit_put0) {
    auto opened = fjord::sim::DurableSchedule::Open(args_.store);
    if (!opened.ok()) {
      std::fprintf(stderr, "fjord-sim: --through-store: %s\n", opened.status().ToString().c_str());
      return false;
    }
    durable_ = std::move(*opened);
    fjord::base::Status st;
    for (const auto& m : wl_.machines) {
      if (st.ok()) st = durable_->Add(fjord::sim::MachineKey(m.id), fjord::sim::MachineValue(m));
    }
    *unit_put0 = wl_.machines.size();
    for (const TaskRequest& g : wl_.globals) {
      if (st.ok()) st = durable_->Add(fjord::sim::UnitKey(g.name), fjord::sim::UnitValue(g));
    }
    for (const auto& [gi, i] : order) {
      if (!st.ok()) break;
      const SimGroup& g = wl_.groups[gi];
      TaskRequest req = g.tmpl;
      req.name = fjord::sim::InstanceNameOf(g, i);
      if (!g.tmpl.machine_of.empty()) req.machine_of = fjord::sim::MachineOfFor(g, i);
      st = durable_->Add(fjord::sim::UnitKey(req.name), fjord::sim::UnitValue(req));
    }
    if (st.ok()) st = durable_->Drain();
    if (!st.ok()) {
      std::fprintf(stderr, "fjord-sim: writing machines and units: %s\n", st.ToString().c_str());
      return false;
    }
    return true;
  }

  // Reads the schedule back from the store and checks it is exactly the scheduler's, then runs
  // the independent checker on what the store holds.
  int VerifyStore(size_t durable_placements, size_t adds, double submit_wall, double place_wall) {
    auto t0 = Clock::now();
    auto keys = durable_->Keys(fjord::sim::kSchedulePrefix);
    auto units = durable_->Count(fjord::sim::kUnitsPrefix);
    auto machines = durable_->Count(fjord::sim::kMachinesPrefix);
    if (!keys.ok() || !units.ok() || !machines.ok()) {
      const auto& st = !keys.ok()    ? keys.status()
                       : !units.ok() ? units.status()
                                     : machines.status();
      std::fprintf(stderr, "fjord-sim: reading the store back: %s\n", st.ToString().c_str());
      return 1;
    }
    std::vector<fjord::scheduler::TaskLocation> from_store;
    from_store.reserve(keys->size());
    int rc = 0;
    for (const std::string& k : *keys) {
      size_t slash = k.find('/', fjord::sim::kSchedulePrefix.size());
      if (slash == std::string::npos) {
        std::printf("store check: malformed schedule key %s\n", k.c_str());
        return 1;
      }
      size_t p = fjord::sim::kSchedulePrefix.size();
      from_store.push_back({k.substr(slash + 1), k.substr(p, slash - p), 0});
    }
    std::vector<std::string> expected;
    expected.reserve(sched_->task_count());
    for (const auto& loc : sched_->Tasks()) {
      expected.push_back(fjord::sim::ScheduleKey(loc.machine_id, loc.name));
    }
    std::sort(expected.begin(), expected.end());
    bool same = expected == *keys;
    bool counts = keys->size() == durable_placements && durable_placements == adds &&
                  adds == sched_->task_count();
    size_t want_units = wl_.globals.size() + args_.tasks;
    bool desired = static_cast<size_t>(*units) == want_units &&
                   static_cast<size_t>(*machines) == wl_.machines.size();
    std::printf(
        "store check: %zu placements made by the scheduler, %zu acknowledged durable, %zu read "
        "back from /schedule/ (%s the scheduler's placements); %lld units, %lld machines in the "
        "store (%.2f s): %s\n",
        sched_->task_count(), durable_placements, keys->size(), same ? "exactly" : "NOT",
        static_cast<long long>(*units), static_cast<long long>(*machines),
        Seconds(Clock::now() - t0), same && counts && desired ? "ok" : "MISMATCH");
    if (!(same && counts && desired)) rc = 1;
    rc |= Verify("from the store", from_store);
    auto bytes = durable_->CloseAndMeasure();
    if (!bytes.ok()) {
      std::fprintf(stderr, "fjord-sim: closing the store: %s\n", bytes.status().ToString().c_str());
      return 1;
    }
    const auto& o = durable_->options();
    std::printf(
        "through store: %s/state.db (%s), sync %s, %zu puts per transaction, up to %zu "
        "transactions in flight, %zu transactions; submit machines+units %.2f s, place + "
        "durable schedule %.2f s, total %.2f s; size on disk %.1f MiB (%.0f B per placement)\n",
        durable_->dir().c_str(), o.keep ? "kept" : "removed at exit",
        o.sync == fjord::store::Options::Sync::kFull ? "full" : "normal (default)", o.batch,
        o.max_in_flight, durable_->transactions(), submit_wall, place_wall,
        submit_wall + place_wall, static_cast<double>(*bytes) / (1 << 20),
        static_cast<double>(*bytes) / std::max<size_t>(1, keys->size()));
    durable_.reset();
    return rc;
  }

  int Verify(const char* when) { return Verify(when, sched_->Tasks()); }

  int Verify(const char* when, const std::vector<fjord::scheduler::TaskLocation>& locations) {
    if (!args_.check) {
      std::printf("quality %s: not checked (--no-check)\n", when);
      return 0;
    }
    fjord::sim::CheckInput in;
    in.machines = wl_.machines;
    in.lost = lost_;
    for (const TaskRequest& g : wl_.globals) in.globals.push_back(&g);
    for (const auto& loc : locations) {
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
  std::unique_ptr<fjord::sim::DurableSchedule> durable_;
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
    if (a == "--keep-store") {
      args.store.keep = true;
      continue;
    }
    if (i + 1 >= argc) return Usage(("missing value for " + a).c_str());
    if (a == "--store-dir") {
      args.store.dir = argv[++i];
      if (args.store.dir.empty()) return Usage("--store-dir: empty directory name");
      continue;
    }
    if (a == "--sync") {
      std::string v = argv[++i];
      if (v == "normal") {
        args.store.sync = fjord::store::Options::Sync::kNormal;
      } else if (v == "full") {
        args.store.sync = fjord::store::Options::Sync::kFull;
      } else {
        return Usage(("--sync: `" + v + "` is neither normal nor full").c_str());
      }
      continue;
    }
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
    else if (a == "--batch" && v >= 1)
      args.store.batch = static_cast<size_t>(v);
    else if (a == "--in-flight" && v >= 1)
      args.store.max_in_flight = static_cast<size_t>(v);
    else if (a == "--batch" || a == "--in-flight")
      return Usage((a + " must be at least 1").c_str());
    else
      return Usage(("unknown option " + a).c_str());
  }
  if (args.through_store && args.lose_percent > 0) {
    return Usage(
        "--through-store with --lose-percent is not supported yet (lost machines' "
        "placements would have to be deleted from the store)");
  }
  if (args.machines == 0) return Usage("--machines must be at least 1");
  if (args.lose_percent > 100) return Usage("--lose-percent must be at most 100");
  if (args.rate <= 0 || args.burst < 1) return Usage("--rate must be > 0 and --burst >= 1");
  return Sim(args).Run();
}
