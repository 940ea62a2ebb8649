// bench_store: figures for the state store.
//   1. durable put throughput: 64 concurrent writers, group commit, synchronous=FULL, on disk
//      under /var/tmp (not tmpfs); writes/s and ack latency p50/p99.
//   2. Range over 100,000 keys with 1 KiB values (a listing of 100,000 units).
//   3. memory store put rate.
//   4. watch fan-out: 1,000 per-machine prefix watchers; a put wakes only its machine's watcher.
// Usage: bench_store [seconds_per_phase=5] [dir=/var/tmp] [phases=durable,range,memory,watch]
#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

namespace {

using Clock = std::chrono::steady_clock;
using fjord::store::Options;
using fjord::store::Store;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// CPU time of the calling thread: with other jobs on the machine, wall time alone misleads.
double ThreadCpuMs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct Throughput {
  double writes_per_s = 0;
  double p50_ms = 0, p99_ms = 0;
  long total = 0;
};

// `threads` writers each put distinct keys with `value` for `seconds`, timing every ack.
Throughput PutLoad(Store& store, int threads, double seconds, const std::string& value) {
  std::vector<std::vector<float>> lat(threads);
  std::atomic<bool> stop{false};
  std::atomic<bool> failed{false};
  std::vector<std::thread> workers;
  auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (long i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        auto t0 = Clock::now();
        auto r = store.Put("/bench/" + std::to_string(t) + "/" + std::to_string(i), value);
        if (!r.ok()) {
          std::fprintf(stderr, "put failed: %s\n", r.status().ToString().c_str());
          failed = true;
          return;
        }
        lat[t].push_back(static_cast<float>(Seconds(Clock::now() - t0) * 1e3));
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& w : workers) w.join();
  double elapsed = Seconds(Clock::now() - start);
  std::vector<float> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  Throughput out;
  if (failed || all.empty()) return out;
  std::sort(all.begin(), all.end());
  out.total = static_cast<long>(all.size());
  out.writes_per_s = all.size() / elapsed;
  out.p50_ms = all[all.size() / 2];
  out.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return out;
}

std::string MakeTemp(const std::string& base) {
  std::string tmpl = base + "/fjord-bench-store-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  return tmpl;
}

void BenchDurablePuts(const std::string& dir, double seconds) {
  Options opts;
  opts.sync = Options::Sync::kFull;
  auto store = fjord::store::OpenSqliteStore(dir + "/durable.db", opts);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    std::exit(1);
  }
  for (int threads : {1, 64}) {
    Throughput t = PutLoad(**store, threads, seconds, std::string(256, 'v'));
    std::printf(
        "sqlite put, synchronous=FULL, %2d writers, 256 B values: %8.0f writes/s  "
        "ack p50 %.2f ms  p99 %.2f ms  (%ld acks)\n",
        threads, t.writes_per_s, t.p50_ms, t.p99_ms, t.total);
  }
  Throughput t = PutLoad(**store, 64, seconds, std::string(1024, 'v'));
  std::printf(
      "sqlite put, synchronous=FULL, 64 writers, 1 KiB values: %8.0f writes/s  ack p50 %.2f ms  "
      "p99 %.2f ms  (%ld acks)\n",
      t.writes_per_s, t.p50_ms, t.p99_ms, t.total);
  std::error_code ec;
  auto wal = std::filesystem::file_size(dir + "/durable.db-wal", ec);
  std::printf("WAL size after the durable phases: %.1f MiB\n", ec ? -1.0 : wal / 1048576.0);
}

void BenchRange(const std::string& dir) {
  auto store = fjord::store::OpenSqliteStore(dir + "/range.db");
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    std::exit(1);
  }
  constexpr int kKeys = 100'000;
  std::string value(1024, 'u');
  auto load_start = Clock::now();
  for (int base = 0; base < kKeys; base += 1000) {
    fjord::store::TxnRequest txn;
    for (int i = base; i < base + 1000; ++i) {
      char key[64];
      std::snprintf(key, sizeof key, "/units/web-%06d@%d.service", i, i % 7);
      txn.success.push_back(fjord::store::Op::Put(key, value));
    }
    if (!(*store)->Txn(std::move(txn)).ok()) std::exit(1);
  }
  std::printf("sqlite load 100,000 keys x 1 KiB (txns of 1,000): %.2f s\n",
              Seconds(Clock::now() - load_start));
  fjord::store::RangeRequest req{"/units/", fjord::store::PrefixEnd("/units/"), 0, 0, false};
  for (int round = 0; round < 3; ++round) {
    auto t0 = Clock::now();
    double cpu0 = ThreadCpuMs();
    auto r = (*store)->Range(req);
    double ms = Seconds(Clock::now() - t0) * 1e3;
    if (!r.ok() || r->kvs.size() != kKeys) std::exit(1);
    std::printf("sqlite range 100,000 keys x 1 KiB (round %d): %.0f ms wall, %.0f ms cpu\n",
                round + 1, ms, ThreadCpuMs() - cpu0);
  }
  req.keys_only = true;
  auto t0 = Clock::now();
  auto r = (*store)->Range(req);
  if (!r.ok()) std::exit(1);
  std::printf("sqlite range 100,000 keys, keys only: %.0f ms\n", Seconds(Clock::now() - t0) * 1e3);
  req.keys_only = false;
  req.limit = 500;
  t0 = Clock::now();
  r = (*store)->Range(req);
  if (!r.ok()) std::exit(1);
  std::printf("sqlite range first 500 of 100,000 (count + more): %.1f ms\n",
              Seconds(Clock::now() - t0) * 1e3);
}

void BenchMemory(double seconds) {
  auto store = fjord::store::NewMemoryStore();
  for (int threads : {1, 4}) {
    Throughput t = PutLoad(*store, threads, seconds / 2, std::string(256, 'v'));
    std::printf("memory put, %d writers, 256 B values: %8.0f writes/s  p99 %.3f ms\n", threads,
                t.writes_per_s, t.p99_ms);
  }
}

void BenchWatchFanout(const std::string& dir) {
  auto store = fjord::store::OpenSqliteStore(dir + "/watch.db");
  if (!store.ok()) std::exit(1);
  constexpr int kMachines = 1000, kPuts = 2000;
  std::atomic<long> wakeups{0};
  std::vector<std::atomic<Clock::rep>> woke_at(kMachines);
  std::vector<std::unique_ptr<fjord::store::Watcher>> watchers;
  for (int m = 0; m < kMachines; ++m) {
    std::string prefix = "/machines/m" + std::to_string(m) + "/schedule/";
    auto w =
        (*store)->Watch(fjord::store::WatchRequest{prefix, fjord::store::PrefixEnd(prefix), 0});
    if (!w.ok()) std::exit(1);
    (*w)->SetNotify([&, m] {
      ++wakeups;
      woke_at[m] = Clock::now().time_since_epoch().count();
    });
    watchers.push_back(std::move(w).value());
  }
  std::vector<float> lat;
  for (int i = 0; i < kPuts; ++i) {
    int m = (i * 7919) % kMachines;
    woke_at[m] = 0;
    auto t0 = Clock::now();
    std::string key = "/machines/m" + std::to_string(m) + "/schedule/unit" + std::to_string(i);
    if (!(*store)->Put(key, "x").ok()) std::exit(1);
    while (woke_at[m].load() == 0) std::this_thread::yield();
    lat.push_back(static_cast<float>(
        Seconds(Clock::duration(woke_at[m].load()) - t0.time_since_epoch()) * 1e3));
    auto drained = watchers[m]->Next(Clock::now());
    if (!drained.ok() || drained->size() != 1) std::exit(1);
  }
  std::sort(lat.begin(), lat.end());
  std::printf(
      "watch fan-out, %d prefix watchers, %d puts: %ld wake-ups (1 per put expected), "
      "put-to-wake p50 %.2f ms p99 %.2f ms (synchronous=NORMAL)\n",
      kMachines, kPuts, wakeups.load(), lat[lat.size() / 2], lat[lat.size() * 99 / 100]);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 5;
  std::string base = argc > 2 ? argv[2] : "/var/tmp";
  std::string phases = argc > 3 ? argv[3] : "durable,range,memory,watch";
  auto want = [&](const char* p) { return phases.find(p) != std::string::npos; };
  std::string dir = MakeTemp(base);
  if (want("durable")) BenchDurablePuts(dir, seconds);
  if (want("range")) BenchRange(dir);
  if (want("memory")) BenchMemory(seconds);
  if (want("watch")) BenchWatchFanout(dir);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
