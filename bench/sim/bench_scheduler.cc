// Steady-state Place+Release on a cluster already holding 20 tasks per machine (fjord-sim's
// workload), plain and with a GROUP_BY constraint. fjord-sim gives the whole-run figures.
#include <benchmark/benchmark.h>

#include <string>

#include "scheduler/scheduler.h"
#include "sim/workload.h"

namespace {

using fjord::scheduler::Scheduler;
using fjord::scheduler::TaskRequest;

std::unique_ptr<Scheduler> Filled(size_t machines) {
  fjord::sim::Workload wl = fjord::sim::MakeWorkload(machines, machines * 20, 1);
  auto s = std::move(*Scheduler::Create(wl.machines));
  for (const fjord::sim::SimGroup& g : wl.groups) {
    TaskRequest r = g.tmpl;
    for (uint32_t i = 1; i <= g.instances; ++i) {
      r.name = fjord::sim::InstanceNameOf(g, i);
      r.machine_of = fjord::sim::MachineOfFor(g, i);
      (void)s->Place(r);
    }
  }
  return s;
}

void Run(benchmark::State& state, bool group_by) {
  auto s = Filled(static_cast<size_t>(state.range(0)));
  TaskRequest t;
  t.resources = {100, 128 << 20, 1 << 30};
  if (group_by) t.constraints = {{"zone", fjord::scheduler::Operator::kGroupBy, "", 0}};
  std::vector<std::string> names;
  for (int i = 0; i < 1024; ++i) names.push_back("bench@" + std::to_string(i) + ".service");
  size_t i = 0;
  for (auto _ : state) {
    t.name = names[i++ % names.size()];
    auto p = s->Place(t);
    benchmark::DoNotOptimize(p);
    if (p.ok()) (void)s->Release(t.name);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_PlaceRelease(benchmark::State& state) { Run(state, false); }
void BM_PlaceReleaseGroupBy(benchmark::State& state) { Run(state, true); }

BENCHMARK(BM_PlaceRelease)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PlaceReleaseGroupBy)->Arg(10000)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
