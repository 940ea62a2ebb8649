// Parse throughput: 10,000 typical unit files (about 30 lines each) parsed and validated.
// Target: under 50 ms per 10k units on one core. Reported as time per 10k units.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "unit/unit.h"

namespace {

// A fleet-style unit of about 30 lines; n varies names and values so nothing is cached.
std::string TypicalUnit(int n) {
  std::string s = "# app " + std::to_string(n) + "\n";
  s += "[Unit]\nDescription=App server " + std::to_string(n) + " instance %i\n";
  s += "Documentation=https://example.com/docs/app\n";
  s += "After=docker.service network-online.target\nRequires=docker.service\n";
  s += "Wants=network-online.target\n\n[Service]\nType=simple\n";
  s += "TimeoutStartSec=" + std::to_string(n % 300) + "s\nTimeoutStopSec=1min 30s\n";
  s += "Restart=on-failure\nRestartSec=5s\nKillMode=mixed\nKillSignal=SIGTERM\n";
  s += "Environment=\"APP_PORT=" + std::to_string(8000 + n % 1000) + "\" APP_ENV=production\n";
  s += "Environment=LOG_LEVEL=info\nEnvironmentFile=-/etc/default/app\n";
  s += "User=app\nWorkingDirectory=/srv/app\n";
  s += "MemoryMax=" + std::to_string(128 + n % 512) +
       "M\nCPUQuota=" + std::to_string(10 + n % 190) + "%\nTasksMax=512\n";
  s += "ExecStartPre=-/usr/bin/docker kill app-%i\nExecStartPre=-/usr/bin/docker rm app-%i\n";
  s +=
      "ExecStartPre=/usr/bin/docker pull registry.example.com/app:" + std::to_string(n % 50) + "\n";
  s += "ExecStart=/usr/bin/docker run --name app-%i -p ${APP_PORT}:8080 \\\n"
       "    -e APP_ENV=$APP_ENV registry.example.com/app:" +
       std::to_string(n % 50) + "\n";
  s += "ExecStop=/usr/bin/docker stop app-%i\n\n[Install]\nWantedBy=multi-user.target\n\n";
  s += "[X-Fleet]\nConflicts=app@*.service\nMachineMetadata=region=us-east region=us-west\n";
  s += "MachineMetadata=disk=ssd\n";
  return s;
}

void BM_Parse10kUnits(benchmark::State& state) {
  std::vector<std::string> units;
  units.reserve(10000);
  size_t bytes = 0;
  for (int i = 0; i < 10000; ++i) {
    units.push_back(TypicalUnit(i));
    bytes += units.back().size();
  }
  auto name = *fjord::unit::UnitName::Parse("app@1.service");
  for (auto _ : state) {
    size_t ok = 0;
    for (const std::string& u : units) {
      auto r = fjord::unit::ParseUnit(u, "app@.service", name);
      ok += r.unit.has_value();
    }
    if (ok != units.size()) state.SkipWithError("a benchmark unit did not parse cleanly");
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["units"] = 10000;
}
BENCHMARK(BM_Parse10kUnits)->Unit(benchmark::kMillisecond)->MinTime(1.0);

void BM_ContentHash(benchmark::State& state) {
  auto name = *fjord::unit::UnitName::Parse("app@1.service");
  auto r = fjord::unit::ParseUnit(TypicalUnit(7), "app@.service", name);
  for (auto _ : state) benchmark::DoNotOptimize(fjord::unit::ContentHash(r.unit->options()));
}
BENCHMARK(BM_ContentHash);

}  // namespace

BENCHMARK_MAIN();
