// Figures for the control plane (src/server), through its HTTP API end to end.
//
// bench_server_submit [clients=64] [units=30000] [machines=100] [dir=/var/tmp]
//   Many concurrent clients PUT /fleet/v1/units/<name> (launched) to a real Server on the
//   SQLite store; every 201 is an acknowledged durable write. Then the server is stopped, the
//   store reopened, and every acknowledged unit is checked to be there. Prints units/s.
//
// bench_list_units [units=100000] [dir=/var/tmp]
//   Stores N units, starts a Server over them, and times full listings through the API:
//   GET /v1/units (pages of 10,000) and GET /fleet/v1/units (fleet's pages of 100), each decoded
//   by the client.
//
// bench_server_place [units=20000] [machines=200] [dir=/var/tmp] [--http] [--clients=16]
//   The issue 5 figure through a real Server on SQLite (every placement durable). The units are
//   instances of apps: units/100 templates app<t>@.service, each with its own profile, scaled to
//   100 instances. Preloaded (default): templates, instances and machines are written to the store
//   and the server's reconciler places everything after Start. --http: the server starts on an
//   empty store and concurrent clients register the machines, submit the templates and scale
//   them over loopback HTTP. Placements are counted with a watcher on /schedule/ (no rescans).
//   Prints the times, placements/s and the process's memory growth per task and per machine.
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/native_client.h"
#include "api/protocol.h"
#include "api/types.h"
#include "base/clock.h"
#include "http/client.h"
#include "server/server.h"
#include "store/store.h"
#include "unit/unit.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
using namespace fjord;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// A fresh directory under `parent`, removed when the run ends, early error returns included
// (declared before the store and server that use it, so it goes after them).
class BenchDir {
 public:
  explicit BenchDir(const std::string& parent) {
    std::string tmpl = parent + "/fjord-bench-server-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      std::exit(1);
    }
    path_ = tmpl;
  }
  ~BenchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  BenchDir(const BenchDir&) = delete;
  BenchDir& operator=(const BenchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string UnitBody(int i) {
  return R"({"desiredState":"launched","options":[{"section":"Unit","name":"Description","value":"bench )" +
         std::to_string(i) +
         R"("},{"section":"Service","name":"ExecStart","value":"/bin/sleep 1000"},)"
         R"({"section":"Service","name":"MemoryMax","value":"16M"}]})";
}

int Submit(int clients, int units, int machines, const std::string& parent) {
  BenchDir bench_dir(parent);
  const fs::path& dir = bench_dir.path();
  server::ServerOptions o;
  o.port = 0;
  o.data_dir = dir;
  o.heartbeat_grace = std::chrono::hours(1);  // the simulated machines do not heartbeat
  auto srv = server::Server::Start(o);
  if (!srv.ok()) {
    std::fprintf(stderr, "start: %s\n", srv.status().ToString().c_str());
    return 1;
  }
  std::string url = (*srv)->url();
  {
    auto c = *http::HttpClient::Create(url);
    for (int m = 0; m < machines; ++m) {
      api::MachineRegistration reg;
      reg.id = "m" + std::to_string(m);
      reg.capacity = {64000, int64_t{256} << 30, 0};
      auto r = c->Put("/v1/machines/" + reg.id, api::ToJson(reg));
      if (!r.ok() || r->status != 200) {
        std::fprintf(stderr, "register %s failed\n", reg.id.c_str());
        return 1;
      }
    }
  }
  std::atomic<int> next{0};
  std::atomic<int> failed{0};
  std::vector<std::vector<int>> acked(clients);
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      auto c = *http::HttpClient::Create(url);
      while (true) {
        int i = next.fetch_add(1);
        if (i >= units) break;
        auto r = c->Put("/fleet/v1/units/bench-" + std::to_string(i) + ".service", UnitBody(i));
        if (r.ok() && r->status == 201) {
          acked[t].push_back(i);
        } else {
          failed.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  double secs = Seconds(Clock::now() - start);
  size_t total = 0;
  for (const auto& a : acked) total += a.size();
  (*srv)->Stop();
  srv->reset();

  // Every acknowledged unit is in the store.
  auto store = store::OpenSqliteStore(dir / "state.db");
  if (!store.ok()) return 1;
  size_t missing = 0;
  for (const auto& a : acked) {
    for (int i : a) {
      auto kv = (*store)->Get("/units/bench-" + std::to_string(i) + ".service");
      if (!kv.ok() || !kv->has_value()) ++missing;
    }
  }
  store::RangeRequest rr;
  rr.key = "/schedule/";
  rr.range_end = store::PrefixEnd(rr.key);
  rr.keys_only = true;
  auto placed = (*store)->Range(rr);
  std::printf(
      "bench_server_submit: %d clients, %zu units acknowledged in %.2f s = %.0f units/s "
      "(failed %d, missing after reopen %zu, placements written %lld, %d machines)\n",
      clients, total, secs, total / secs, failed.load(), missing,
      placed.ok() ? static_cast<long long>(placed->count) : -1LL, machines);
  (void)(*store)->Close();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return missing == 0 && failed == 0 ? 0 : 1;
}

// Runs `command` through the shell and returns the seconds it took, or -1 when it failed.
double TimeCommand(const std::string& command) {
  auto start = Clock::now();
  int rc = std::system(command.c_str());
  return rc == 0 ? Seconds(Clock::now() - start) : -1.0;
}

// `fjord_bin` non-empty: the units are launched (pending: there are no machines) and the real
// `fjord list-units` is timed too, from its start to its last line.
int List(int units, const std::string& parent, const std::string& fjord_bin) {
  BenchDir bench_dir(parent);
  const fs::path& dir = bench_dir.path();
  {
    auto store = store::OpenSqliteStore(dir / "state.db");
    if (!store.ok()) return 1;
    std::vector<api::UnitOption> options = {{"Service", "ExecStart", "/bin/sleep 1000"},
                                            {"Service", "MemoryMax", "16M"}};
    std::vector<unit::UnitOption> views;
    for (const auto& o : options) views.push_back({o.section, o.name, o.value});
    std::string hash = unit::ContentHash(views);
    // The server's layout: the content once under /unitfiles/<hash>, units name it.
    if (!(*store)->Put("/unitfiles/" + hash, api::ToJson(api::UnitFile{hash, options})).ok()) {
      return 1;
    }
    for (int base = 0; base < units; base += 5000) {
      store::TxnRequest txn;
      for (int i = base; i < std::min(units, base + 5000); ++i) {
        api::ScheduledUnit u;
        char name[64];
        std::snprintf(name, sizeof name, "unit-%06d.service", i);
        u.name = name;
        u.hash = hash;
        u.desired_state =
            fjord_bin.empty() ? api::UnitStateName::kInactive : api::UnitStateName::kLaunched;
        txn.success.push_back(store::Op::Put(std::string("/units/") + name, api::ToJson(u)));
      }
      if (!(*store)->Txn(std::move(txn)).ok()) return 1;
    }
    (void)(*store)->Close();
  }
  server::ServerOptions o;
  o.port = 0;
  o.data_dir = dir;
  auto load_start = Clock::now();
  auto srv = server::Server::Start(o);
  if (!srv.ok()) return 1;
  double load = Seconds(Clock::now() - load_start);
  auto c = *http::HttpClient::Create((*srv)->url());

  auto native = [&](int limit) {
    auto start = Clock::now();
    size_t n = 0;
    std::string token;
    do {
      std::string target = "/v1/units?limit=" + std::to_string(limit);
      if (!token.empty()) target += "&nextPageToken=" + token;
      auto r = c->Get(target);
      if (!r.ok() || r->status != 200) return -1.0;
      auto page = api::UnitViewPageFromJson(r->body);
      if (!page.ok()) return -1.0;
      n += page->units.size();
      token = page->next_page_token;
    } while (!token.empty());
    if (n != static_cast<size_t>(units)) return -1.0;
    return Seconds(Clock::now() - start);
  };
  auto fleet = [&] {
    auto start = Clock::now();
    size_t n = 0;
    std::string token;
    do {
      auto r = c->Get("/fleet/v1/units" + (token.empty() ? "" : "?nextPageToken=" + token));
      if (!r.ok() || r->status != 200) return -1.0;
      auto page = api::UnitPageFromJson(r->body);
      if (!page.ok()) return -1.0;
      n += page->units.size();
      token = page->next_page_token;
    } while (!token.empty());
    if (n != static_cast<size_t>(units)) return -1.0;
    return Seconds(Clock::now() - start);
  };
  double n10k = native(10000), n100k = native(100000), f = fleet();
  std::printf(
      "bench_list_units: %d units: server start (load) %.2f s; full list GET /v1/units "
      "(pages of 10,000) %.3f s, (one page) %.3f s; GET /fleet/v1/units (pages of 100) %.3f s\n",
      units, load, n10k, n100k, f);
  if (!fjord_bin.empty()) {
    const std::string env = "FJORD_ENDPOINT=" + (*srv)->url() + " ";
    const std::string lines = "/tmp/fjord-bench-list-units." + std::to_string(::getpid());
    double cli = TimeCommand(env + fjord_bin + " list-units --no-legend >" + lines);
    double cli_json = TimeCommand(env + fjord_bin + " list-units --output json >/dev/null");
    std::string count_cmd = "test $(wc -l <" + lines + ") -eq " + std::to_string(units);
    bool all = std::system(count_cmd.c_str()) == 0;
    fs::remove(lines);
    std::printf(
        "bench_list_units: `fjord list-units` (%d pending units, every one listed: %s) "
        "%.3f s; --output json %.3f s\n",
        units, all ? "yes" : "NO", cli, cli_json);
    if (!all || cli < 0) f = -1;
  }
  (*srv)->Stop();
  srv->reset();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return n10k > 0 && f > 0 ? 0 : 1;
}

// ---- bench_server_place: the issue 5 figure through a running server.

int64_t ReadMemRss() {
  int64_t rss = 0;
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
      long long kb = 0;
      if (std::sscanf(line, "VmRSS: %lld kB", &kb) == 1) rss = kb * 1024;
    }
    std::fclose(f);
  }
  return rss;
}

// The process's memory: resident set (VmRSS) and bytes malloc has handed out (mallinfo2: heap
// chunks in use plus mmapped blocks). Both cover the whole process, bench included.
struct Mem {
  int64_t rss = 0;
  int64_t heap = 0;
};

Mem ReadMem() {
  Mem m;
  m.rss = ReadMemRss();
  struct mallinfo2 mi = mallinfo2();
  m.heap = static_cast<int64_t>(mi.uordblks + mi.hblkhd);
  return m;
}

// The resident set once malloc has returned its free pages to the kernel (malloc_trim): freed
// memory, such as the bench's own transient event batches, no longer counts.
int64_t TrimmedRss() {
  malloc_trim(0);
  return ReadMemRss();
}

double MiB(int64_t bytes) { return bytes / 1048576.0; }

// The simulated cluster. Machine m: 32 cores, 128 GiB, zone z0..z3, a rack of consecutive
// machines (at least 25 racks, so a `rack MAX_PER 4` template of 100 instances fits).
api::MachineRegistration MachineOf(int m, int machines) {
  api::MachineRegistration r;
  char id[32];
  std::snprintf(id, sizeof id, "m%05d", m);
  r.id = id;
  r.primary_ip = "10.0." + std::to_string(m / 250) + "." + std::to_string(m % 250 + 1);
  int racks = std::max(25, machines / 40);
  r.metadata = {{"zone", "z" + std::to_string(m % 4)},
                {"rack", "r" + std::to_string(static_cast<int64_t>(m) * racks / machines)}};
  r.capacity = {32000, 128ll << 30, 0};
  return r;
}

// Tasks are instances of apps: template t is app<t>@.service with its own profile (CPU 10-40%,
// memory 64-256M; a quarter need a zone, an eighth spread at most 4 per rack) and `fjord scale`
// makes kInstancesPerTemplate instances app<t>@1..100.service carrying exactly its options.
constexpr int kInstancesPerTemplate = 100;

std::string TemplateName(int t) {
  char name[64];
  std::snprintf(name, sizeof name, "app%05d@.service", t);
  return name;
}

std::string InstanceName(int t, int i) {
  char name[64];
  std::snprintf(name, sizeof name, "app%05d@%d.service", t, i);
  return name;
}

std::vector<api::UnitOption> TemplateOptions(int t) {
  std::vector<api::UnitOption> o = {{"Service", "ExecStart", "/bin/sleep 1000"},
                                    {"Service", "CPUQuota", std::to_string(10 + t % 4 * 10) + "%"},
                                    {"Service", "MemoryMax", std::to_string(64 << (t % 3)) + "M"}};
  if (t % 4 == 0) o.push_back({"X-Fleet", "MachineMetadata", "zone=z" + std::to_string(t % 3)});
  if (t % 8 == 1) o.push_back({"X-Fjord", "Constraint", "rack MAX_PER 4"});
  return o;
}

int Templates(int units) { return (units + kInstancesPerTemplate - 1) / kInstancesPerTemplate; }
int InstancesOf(int t, int units) {
  return std::min(kInstancesPerTemplate, units - t * kInstancesPerTemplate);
}

// When each revision became durable: a thread samples Store::CurrentRevision() (an atomic load,
// set after the commit) every 2 ms. A watcher that falls behind delivers its events late, so the
// figures take the time from here, not from when the events were counted.
class RevisionTimeline {
 public:
  explicit RevisionTimeline(store::Store* st) : st_(st), thread_([this] { Run(); }) {}
  ~RevisionTimeline() {
    stop_ = true;
    thread_.join();
  }

  // The first time the store's revision was seen at or past `rev` (now if not seen yet).
  Clock::time_point TimeOf(store::Revision rev) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = std::lower_bound(seen_.begin(), seen_.end(), rev,
                               [](const auto& e, store::Revision r) { return e.first < r; });
    return it == seen_.end() ? Clock::now() : it->second;
  }

 private:
  void Run() {
    store::Revision last = -1;
    while (!stop_) {
      store::Revision rev = st_->CurrentRevision();
      if (rev != last) {
        std::lock_guard<std::mutex> l(mu_);
        seen_.emplace_back(rev, Clock::now());
        last = rev;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  store::Store* st_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::pair<store::Revision, Clock::time_point>> seen_;  // revisions ascending
  std::thread thread_;
};

// Counts the keys under /schedule/ without rescanning them: one Range count, then a watcher on
// the prefix adds creations (a put with version 1) and subtracts deletions. Watch events are
// published after their commit, so a count seen here is durable. A watcher that falls behind
// catches up from the store's log inside Next(); if compaction overtook it (IsCompacted) the
// counter counts once more with a Range and watches on from there.
class PlacementCounter {
 public:
  explicit PlacementCounter(store::Store* st) : st_(st) {}

  base::Status Resync() {
    store::RangeRequest rr;
    rr.key = "/schedule/";
    rr.range_end = store::PrefixEnd(rr.key);
    rr.keys_only = true;
    rr.limit = 1;
    FJORD_ASSIGN_OR_RETURN(store::RangeResponse r, st_->Range(rr));
    count_ = r.count;
    last_rev_ = r.revision;
    FJORD_ASSIGN_OR_RETURN(watcher_, st_->Watch({rr.key, rr.range_end, r.revision + 1}));
    ++resyncs_;
    return base::Status::Ok();
  }

  // Applies the events that arrive before `deadline`; true if the count changed.
  base::Result<bool> Poll(base::Clock::TimePoint deadline) {
    auto events = watcher_->Next(deadline);
    if (!events.ok()) {
      if (!store::IsCompacted(events.status())) return events.status();
      int64_t before = count_;
      FJORD_RETURN_IF_ERROR(Resync());
      return count_ != before;
    }
    int64_t before = count_;
    for (const store::Event& e : *events) {
      if (e.type == store::Event::Type::kDelete) {
        --count_;
      } else if (e.kv.version == 1) {
        ++count_;
      } else {
        continue;
      }
      last_rev_ = e.kv.mod_revision;
    }
    return count_ != before;
  }

  int64_t count() const { return count_; }
  // The revision of the last placement (or removal) counted.
  store::Revision last_revision() const { return last_rev_; }
  int resyncs() const { return resyncs_; }

 private:
  store::Store* st_;
  std::unique_ptr<store::Watcher> watcher_;
  int64_t count_ = 0;
  store::Revision last_rev_ = 0;
  int resyncs_ = -1;  // the first Resync is the start
};

struct Placed {
  Clock::time_point durable;  // the commit of the last placement counted
  Clock::time_point counted;  // when the watcher delivered it
};

// Waits until `target` placements are durable. Gives up once nothing changed for 150 s after
// `quiet_from()` (some units cannot be placed).
template <typename QuietFrom>
base::Result<Placed> WaitPlaced(PlacementCounter& counter, RevisionTimeline& timeline,
                                int64_t target, Clock::time_point start, QuietFrom quiet_from) {
  bool verbose = std::getenv("FJORD_BENCH_VERBOSE") != nullptr;
  auto last_change = Clock::now();
  auto last_print = last_change;
  while (counter.count() < target) {
    FJORD_ASSIGN_OR_RETURN(bool changed, counter.Poll(Clock::now() + std::chrono::seconds(1)));
    auto now = Clock::now();
    if (changed) last_change = now;
    if (verbose && (now - last_print > std::chrono::seconds(1) || counter.count() >= target)) {
      spdlog::info("bench: {:.1f} s: {} placed", Seconds(now - start), counter.count());
      last_print = now;
    }
    if (now - std::max(last_change, quiet_from()) > std::chrono::seconds(150)) break;
  }
  // The sampler may see the revision a little after the watcher delivered it.
  return Placed{std::min(timeline.TimeOf(counter.last_revision()), last_change), last_change};
}

// One Range count after the timing, to check the watcher's bookkeeping.
int64_t CountPlacements(store::Store& st) {
  PlacementCounter c(&st);
  return c.Resync().ok() ? c.count() : -1;
}

// Preloaded: the templates, their instances (as `fjord scale` writes them) and the machine
// registrations are in the store when a real Server starts (SQLite, every write durable); its
// reconciler places them all. The figure is the time from Start until every placement is durable
// under /schedule/.
// A server on the bench's store (so that the bench can watch it), on a free port; the
// simulated machines send no heartbeats, so the grace is long.
server::ServerOptions PlacementServerOptions(const fs::path& dir,
                                             std::shared_ptr<store::Store> st) {
  server::ServerOptions o;
  o.port = 0;
  o.data_dir = dir;
  o.store = std::move(st);
  o.heartbeat_grace = std::chrono::hours(1);
  return o;
}

// What to do after the preloaded placement: lose a share of the machines and time the
// rate-limited rescheduling of their tasks (0: skip).
struct LoseOptions {
  int percent = 0;
  double per_second = 0;  // the server's rescheduling rate (0: its default)
  double burst = 0;
  double per_machine = -1;  // per alive machine (< 0: the server's default)
  int clients = 16;
};
int LoseMachines(server::Server& srv, store::Store& st, base::FakeClock& fake, int machines,
                 const LoseOptions& lose);

int PlacePreloaded(int units, int machines, const std::string& parent, const LoseOptions& lose) {
  BenchDir bench_dir(parent);
  const fs::path& dir = bench_dir.path();
  auto opened = store::OpenSqliteStore(dir / "state.db");
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
    return 1;
  }
  std::shared_ptr<store::Store> st = std::move(*opened);
  auto load_start = Clock::now();
  {
    store::TxnRequest txn;
    for (int m = 0; m < machines; ++m) {
      api::MachineRegistration r = MachineOf(m, machines);
      txn.success.push_back(store::Op::Put("/machines/" + r.id, api::ToJson(r)));
    }
    if (!st->Txn(std::move(txn)).ok()) return 1;
  }
  store::TxnRequest txn;
  std::set<std::string> stored_files;  // templates with equal profiles share a unit file
  for (int t = 0; t < Templates(units); ++t) {
    api::ScheduledUnit u;
    u.name = TemplateName(t);
    u.desired_state = api::UnitStateName::kInactive;  // as `fjord submit` leaves it
    u.options = TemplateOptions(t);
    std::vector<unit::UnitOption> views;
    for (const auto& o : u.options) views.push_back({o.section, o.name, o.value});
    u.hash = unit::ContentHash(views);
    // The server's layout: the content once under /unitfiles/<hash>, units name it.
    if (stored_files.insert(u.hash).second) {
      txn.success.push_back(
          store::Op::Put("/unitfiles/" + u.hash, api::ToJson(api::UnitFile{u.hash, u.options})));
    }
    u.options.clear();
    txn.success.push_back(store::Op::Put("/units/" + u.name, api::ToJson(u)));
    u.desired_state = api::UnitStateName::kLaunched;  // what scale gives new instances
    for (int i = 1; i <= InstancesOf(t, units); ++i) {
      u.name = InstanceName(t, i);
      txn.success.push_back(store::Op::Put("/units/" + u.name, api::ToJson(u)));
    }
    if (txn.success.size() >= 5000 || t + 1 == Templates(units)) {
      if (auto r = st->Txn(std::move(txn)); !r.ok()) {
        std::fprintf(stderr, "bench_server_place: preload: %s\n", r.status().ToString().c_str());
        return 1;
      }
      txn = store::TxnRequest();
    }
  }
  double load = Seconds(Clock::now() - load_start);

  PlacementCounter counter(st.get());
  if (auto s = counter.Resync(); !s.ok()) {
    std::fprintf(stderr, "count placements: %s\n", s.ToString().c_str());
    return 1;
  }
  server::ServerOptions o = PlacementServerOptions(dir, st);
  // A fake clock that runs at real speed and can jump: losing machines (below) jumps past the
  // heartbeat grace instead of waiting an hour.
  base::FakeClock fake;
  std::atomic<bool> clock_stop{false};
  std::thread clock_driver([&] {
    auto last = Clock::now();
    while (!clock_stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      auto now = Clock::now();
      fake.Advance(now - last);
      last = now;
    }
  });
  struct JoinClock {
    std::atomic<bool>& stop;
    std::thread& t;
    ~JoinClock() {
      stop = true;
      t.join();
    }
  } join_clock{clock_stop, clock_driver};
  o.clock = &fake;
  if (lose.per_second > 0) o.reschedule_per_second = lose.per_second;
  if (lose.burst > 0) o.reschedule_burst = lose.burst;
  if (lose.per_machine >= 0) o.reschedule_per_machine = lose.per_machine;
  RevisionTimeline timeline(st.get());
  Mem before = ReadMem();
  spdlog::info("bench: server starting");
  auto start = Clock::now();
  auto srv = server::Server::Start(o);
  if (!srv.ok()) {
    std::fprintf(stderr, "%s\n", srv.status().ToString().c_str());
    return 1;
  }
  spdlog::info("bench: server started");
  double started = Seconds(Clock::now() - start);
  auto done = WaitPlaced(counter, timeline, units, start, [&] { return start; });
  if (!done.ok()) {
    std::fprintf(stderr, "count placements: %s\n", done.status().ToString().c_str());
    return 1;
  }
  Mem after = ReadMem();
  double secs = Seconds(done->durable - start);
  int64_t placed = counter.count();
  int64_t trimmed = TrimmedRss();
  int64_t checked = CountPlacements(*st);  // after the memory: it fills SQLite's page cache
  std::printf(
      "bench_server_place: store preloaded in %.2f s (%d templates, %d instances, %d machines); "
      "server started (store loaded) in %.2f s; last placement counted %.2f s after its commit "
      "(watcher resyncs %d); Range count after: %lld\n",
      load, Templates(units), units, machines, started, Seconds(done->counted - done->durable),
      counter.resyncs(), static_cast<long long>(checked));
  std::printf(
      "bench_server_place: memory from before Start to all placed (whole process): RSS %.0f -> "
      "%.0f MiB (+%.0f MiB; %.0f MiB in all after malloc_trim), malloc in use %.0f -> %.0f MiB "
      "(+%.0f MiB)\n",
      MiB(before.rss), MiB(after.rss), MiB(after.rss - before.rss), MiB(trimmed), MiB(before.heap),
      MiB(after.heap), MiB(after.heap - before.heap));
  std::printf(
      "bench_server_place: %d units on %d machines through the server (SQLite, durable): "
      "%lld placed in %.2f s = %.0f placements/s; server memory per task (machines included): "
      "malloc %.0f B, RSS %.0f B (%.0f B after malloc_trim)\n",
      units, machines, static_cast<long long>(placed), secs, placed / secs,
      static_cast<double>(after.heap - before.heap) / units,
      static_cast<double>(after.rss - before.rss) / units,
      static_cast<double>(trimmed - before.rss) / units);
  LoseOptions effective = lose;
  effective.per_second = o.reschedule_per_second;
  effective.burst = o.reschedule_burst;
  effective.per_machine = o.reschedule_per_machine;
  int lost_rc = lose.percent > 0 ? LoseMachines(**srv, *st, fake, machines, effective) : 0;
  (*srv)->Stop();
  srv->reset();
  (void)st->Close();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return placed == units && checked == units && lost_rc == 0 ? 0 : 1;
}

// Runs `fn(client, i)` for i in [0, n) on `clients` threads, each with its own connection;
// returns how many calls failed (the first failure is printed).
int Parallel(const std::string& url, int clients, int n,
             const std::function<base::Status(api::NativeClient&, int)>& fn) {
  std::atomic<int> next{0}, failed{0};
  std::atomic<bool> printed{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      http::HttpClient::Options ho;
      ho.request_timeout = std::chrono::minutes(5);
      auto client = api::NativeClient::Create(url, ho);
      if (!client.ok()) {
        failed.fetch_add(1);
        return;
      }
      for (int i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
        base::Status s = fn(**client, i);
        if (!s.ok()) {
          failed.fetch_add(1);
          if (!printed.exchange(true)) std::fprintf(stderr, "%s\n", s.ToString().c_str());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return failed.load();
}

// Loses `percent` of the machines (spread over zones and racks: every machine whose index mod
// 100 is below it): the survivors heartbeat, the fake clock jumps past the grace, and the
// reconciler reschedules the lost machines' tasks at the server's rate limit. Timed until the
// last old placement is deleted, which the reconciler does in the transaction that writes the
// new one. Then checks that no survivor is over capacity (the free resources it publishes).
int LoseMachines(server::Server& srv, store::Store& st, base::FakeClock& fake, int machines,
                 const LoseOptions& lose) {
  const std::string url = srv.url();
  std::set<std::string> victims;
  std::vector<std::string> survivors;
  for (int m = 0; m < machines; ++m) {
    std::string id = MachineOf(m, machines).id;
    if (m * lose.percent % 100 < lose.percent) {  // spread: every (100/percent)th machine
      victims.insert(std::move(id));
    } else {
      survivors.push_back(std::move(id));
    }
  }
  auto client = api::NativeClient::Create(url);
  if (!client.ok()) return 1;
  auto before = (*client)->ListMachines();
  if (!before.ok()) {
    std::fprintf(stderr, "list machines: %s\n", before.status().ToString().c_str());
    return 1;
  }
  int64_t displaced = 0;
  for (const auto& m : *before) {
    if (victims.count(m.machine.id)) displaced += m.units;
  }
  // The grace is an hour: jump to just before it ends, let the survivors heartbeat, then jump
  // past it for the victims only.
  fake.Advance(std::chrono::minutes(59));
  int failed = Parallel(url, lose.clients, static_cast<int>(survivors.size()),
                        [&](api::NativeClient& c, int i) { return c.Heartbeat(survivors[i]); });
  if (failed > 0) return 1;
  auto watcher = st.Watch({"/schedule/", store::PrefixEnd("/schedule/"), st.CurrentRevision() + 1});
  if (!watcher.ok()) return 1;
  fake.Advance(std::chrono::minutes(2));
  auto start = Clock::now();
  auto last_change = start;
  // A task's old key goes in the transaction that writes its new one; a task that fits nowhere
  // any more loses its old key too and waits (pending).
  std::set<std::string> gone, placed_again;  // unit names: old key deleted, new key written
  auto moved = [&] {
    int64_t n = 0;
    for (const auto& u : gone) n += placed_again.count(u);
    return n;
  };
  while (static_cast<int64_t>(gone.size()) < displaced &&
         Clock::now() - last_change < std::chrono::seconds(60)) {
    auto events = (*watcher)->Next(base::Clock::Real().Now() + std::chrono::seconds(1));
    if (!events.ok()) {
      std::fprintf(stderr, "watch placements: %s\n", events.status().ToString().c_str());
      return 1;
    }
    for (const store::Event& e : *events) {
      std::string_view key = std::string_view(e.kv.key).substr(std::strlen("/schedule/"));
      size_t slash = key.find('/');
      bool on_victim = victims.count(std::string(key.substr(0, slash))) > 0;
      std::string unit(key.substr(slash + 1));
      if (e.type == store::Event::Type::kDelete && on_victim) {
        gone.insert(std::move(unit));
        last_change = Clock::now();
      } else if (e.type == store::Event::Type::kPut && !on_victim) {
        placed_again.insert(std::move(unit));
      }
    }
  }
  int64_t moved_n = moved();
  double secs = Seconds(last_change - start);
  auto after = (*client)->ListMachines();
  if (!after.ok()) return 1;
  int over = 0, victims_alive = 0;
  for (const auto& m : *after) {
    if (victims.count(m.machine.id)) {
      victims_alive += m.alive ? 1 : 0;
    } else if (m.free.cpu_millis < 0 || m.free.memory_bytes < 0 || m.free.disk_bytes < 0) {
      ++over;
    }
  }
  std::printf(
      "bench_server_place: lost %zu of %d machines (%d%%): %lld displaced tasks handled in %.2f "
      "s (rate limit: %.0f/s and burst %.0f at least, %.0f/s per alive machine): %lld placed "
      "again, %lld pending (fit nowhere now); survivors over capacity: %d; lost machines still "
      "alive: %d\n",
      victims.size(), machines, lose.percent, static_cast<long long>(displaced), secs,
      lose.per_second, lose.burst, lose.per_machine, static_cast<long long>(moved_n),
      static_cast<long long>(static_cast<int64_t>(gone.size()) - moved_n), over, victims_alive);
  return static_cast<int64_t>(gone.size()) == displaced && over == 0 && victims_alive == 0 ? 0 : 1;
}

// End to end through HTTP: a real Server on an empty SQLite store; `clients` connections
// register every machine (PUT /v1/machines/{id}), then submit each template (PUT /v1/units, as
// `fjord submit`) and scale it (PUT /v1/units/{t}/scale, as `fjord scale`). The figure is the time
// from the first request until every placement is durable.
int PlaceHttp(int units, int machines, const std::string& parent, int clients) {
  BenchDir bench_dir(parent);
  const fs::path& dir = bench_dir.path();
  auto opened = store::OpenSqliteStore(dir / "state.db");  // what the server opens itself
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
    return 1;
  }
  std::shared_ptr<store::Store> st = std::move(*opened);
  PlacementCounter counter(st.get());
  if (auto s = counter.Resync(); !s.ok()) {
    std::fprintf(stderr, "count placements: %s\n", s.ToString().c_str());
    return 1;
  }
  server::ServerOptions o = PlacementServerOptions(dir, st);
  RevisionTimeline timeline(st.get());
  Mem before = ReadMem();
  auto srv = server::Server::Start(o);
  if (!srv.ok()) {
    std::fprintf(stderr, "%s\n", srv.status().ToString().c_str());
    return 1;
  }
  Mem started = ReadMem();  // the empty server: threads, buffers, SQLite caches
  std::string url = (*srv)->url();
  const int templates = Templates(units);

  // The clients run beside the counter; times are seconds from the first request.
  auto start = Clock::now();
  std::atomic<int64_t> submit_done_ns{INT64_MAX};
  double registered = 0, submitted = 0;
  int failed = 0;
  Mem after_machines;
  std::thread driver([&] {
    failed += Parallel(url, clients, machines, [&](api::NativeClient& c, int m) -> base::Status {
      return c.Register(MachineOf(m, machines)).status();
    });
    registered = Seconds(Clock::now() - start);
    after_machines = ReadMem();
    auto submit_start = Clock::now();
    failed += Parallel(url, clients, templates, [&](api::NativeClient& c, int t) -> base::Status {
      api::PutUnitRequest put;  // no desired state: submitted (inactive), as `fjord submit`
      put.options = TemplateOptions(t);
      FJORD_RETURN_IF_ERROR(c.PutUnit(TemplateName(t), put).status());
      api::ScaleRequest scale;
      scale.instances = InstancesOf(t, units);
      FJORD_ASSIGN_OR_RETURN(api::ScaleReply reply, c.Scale(TemplateName(t), scale));
      if (static_cast<int64_t>(reply.added.size()) != scale.instances) {
        return base::Internal("scale " + TemplateName(t) + ": added " +
                              std::to_string(reply.added.size()));
      }
      return base::Status::Ok();
    });
    submitted = Seconds(Clock::now() - submit_start);
    submit_done_ns = (Clock::now() - start).count();
  });
  auto done = WaitPlaced(counter, timeline, units, start, [&] {
    return start + Clock::duration(std::min<int64_t>(submit_done_ns.load(), INT64_MAX / 2));
  });
  driver.join();
  if (!done.ok()) {
    std::fprintf(stderr, "count placements: %s\n", done.status().ToString().c_str());
    return 1;
  }
  Mem after = ReadMem();
  int64_t trimmed = TrimmedRss();
  double secs = Seconds(done->durable - start);
  int64_t placed = counter.count();
  int64_t checked = CountPlacements(*st);  // after the memory: it fills SQLite's page cache
  int64_t machine_rss = after_machines.rss - started.rss,
          machine_heap = after_machines.heap - started.heap;
  int64_t task_rss = after.rss - after_machines.rss, task_heap = after.heap - after_machines.heap;
  std::printf(
      "bench_server_place --http: %d clients; register %d machines %.2f s (%.0f/s); submit %d "
      "templates + scale to %d instances %.2f s (%.0f instances/s); failed requests %d; last "
      "placement counted %.2f s after its commit (watcher resyncs %d); Range count after: %lld\n",
      clients, machines, registered, machines / registered, templates, units, submitted,
      units / submitted, failed, Seconds(done->counted - done->durable), counter.resyncs(),
      static_cast<long long>(checked));
  std::printf(
      "bench_server_place --http: memory (whole process): before Start RSS %.0f MiB, malloc %.0f "
      "MiB; empty server started +%.0f MiB RSS (malloc +%.0f MiB); machines registered +%.0f MiB "
      "RSS = %.0f B/machine (malloc %.0f B/machine); then tasks placed +%.0f MiB RSS = %.0f B/task "
      "(malloc %.0f B/task); total RSS %.0f MiB (%.0f MiB after malloc_trim)\n",
      MiB(before.rss), MiB(before.heap), MiB(started.rss - before.rss),
      MiB(started.heap - before.heap), MiB(machine_rss),
      static_cast<double>(machine_rss) / machines, static_cast<double>(machine_heap) / machines,
      MiB(task_rss), static_cast<double>(task_rss) / units, static_cast<double>(task_heap) / units,
      MiB(after.rss), MiB(trimmed));
  std::printf(
      "bench_server_place --http: %d units on %d machines through HTTP and the server (SQLite, "
      "durable): %lld placed %.2f s after the first request = %.0f placements/s; server memory "
      "malloc %.0f B/task, %.0f B/machine (RSS %.0f B/task, %.0f B/machine)\n",
      units, machines, static_cast<long long>(placed), secs, placed / secs,
      static_cast<double>(task_heap) / units, static_cast<double>(machine_heap) / machines,
      static_cast<double>(task_rss) / units, static_cast<double>(machine_rss) / machines);
  (*srv)->Stop();
  srv->reset();
  (void)st->Close();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return placed == units && checked == units && failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // FJORD_BENCH_VERBOSE: progress, and the server's log (placement passes), with timestamps.
  spdlog::set_level(std::getenv("FJORD_BENCH_VERBOSE") ? spdlog::level::info : spdlog::level::warn);
  std::string self = fs::path(argv[0]).filename();
  auto arg = [&](int i, const char* def) {
    return argc > i ? std::string(argv[i]) : std::string(def);
  };
  if (self == "bench_server_place") {
    // bench_server_place [UNITS=20000] [MACHINES=200] [DIR=/var/tmp] [--http] [--clients=N]
    //                    [--lose-percent=P [--reschedule-rate=R] [--reschedule-burst=B]
    //                                      [--reschedule-per-machine=M]]
    std::vector<std::string> pos;
    bool http_mode = false;
    int clients = 16;
    LoseOptions lose;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--http") {
        http_mode = true;
      } else if (a.rfind("--clients=", 0) == 0) {
        clients = std::atoi(a.c_str() + 10);
      } else if (a.rfind("--lose-percent=", 0) == 0) {
        lose.percent = std::atoi(a.c_str() + 15);
      } else if (a.rfind("--reschedule-rate=", 0) == 0) {
        lose.per_second = std::atof(a.c_str() + 18);
      } else if (a.rfind("--reschedule-burst=", 0) == 0) {
        lose.burst = std::atof(a.c_str() + 19);
      } else if (a.rfind("--reschedule-per-machine=", 0) == 0) {
        lose.per_machine = std::atof(a.c_str() + 25);
      } else if (a.rfind("--", 0) == 0) {
        std::fprintf(stderr, "bench_server_place: unknown flag %s\n", a.c_str());
        return 2;
      } else {
        pos.push_back(a);
      }
    }
    int units = 0, machines = 0;
    try {
      units = pos.size() > 0 ? std::stoi(pos[0]) : 20000;
      machines = pos.size() > 1 ? std::stoi(pos[1]) : 200;
    } catch (const std::exception&) {
      std::fprintf(stderr, "bench_server_place: UNITS and MACHINES must be numbers\n");
      return 2;
    }
    std::string parent = pos.size() > 2 ? pos[2] : "/var/tmp";
    if (units <= 0 || machines <= 0 || clients <= 0) {
      std::fprintf(stderr, "bench_server_place: UNITS, MACHINES and --clients must be > 0\n");
      return 2;
    }
    if (lose.percent < 0 || lose.percent > 99 || lose.per_second < 0 || lose.burst < 0 ||
        (http_mode && lose.percent > 0)) {
      std::fprintf(stderr,
                   "bench_server_place: --lose-percent takes 1-99 (preloaded mode only); rates "
                   "must be >= 0\n");
      return 2;
    }
    lose.clients = clients;
    return http_mode ? PlaceHttp(units, machines, parent, clients)
                     : PlacePreloaded(units, machines, parent, lose);
  }
  if (self == "bench_list_units") {
    // The fjord binary beside the bench directory (build/fjord), if built.
    fs::path fjord_bin = fs::absolute(fs::path(argv[0])).parent_path().parent_path() / "fjord";
    std::error_code ec;
    return List(std::stoi(arg(1, "100000")), arg(2, "/var/tmp"),
                fs::exists(fjord_bin, ec) ? fjord_bin.string() : "");
  }
  return Submit(std::stoi(arg(1, "64")), std::stoi(arg(2, "30000")), std::stoi(arg(3, "100")),
                arg(4, "/var/tmp"));
}
