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
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "api/protocol.h"
#include "api/types.h"
#include "http/client.h"
#include "server/server.h"
#include "store/store.h"
#include "unit/unit.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
using namespace fjord;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

fs::path MakeDir(const std::string& parent) {
  std::string tmpl = parent + "/fjord-bench-server-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  return tmpl;
}

std::string UnitBody(int i) {
  return R"({"desiredState":"launched","options":[{"section":"Unit","name":"Description","value":"bench )" +
         std::to_string(i) +
         R"("},{"section":"Service","name":"ExecStart","value":"/bin/sleep 1000"},)"
         R"({"section":"Service","name":"MemoryMax","value":"16M"}]})";
}

int Submit(int clients, int units, int machines, const std::string& parent) {
  fs::path dir = MakeDir(parent);
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
  fs::path dir = MakeDir(parent);
  {
    auto store = store::OpenSqliteStore(dir / "state.db");
    if (!store.ok()) return 1;
    std::vector<api::UnitOption> options = {{"Service", "ExecStart", "/bin/sleep 1000"},
                                            {"Service", "MemoryMax", "16M"}};
    std::vector<unit::UnitOption> views;
    for (const auto& o : options) views.push_back({o.section, o.name, o.value});
    std::string hash = unit::ContentHash(views);
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
        u.options = options;
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
    std::printf("bench_list_units: `fjord list-units` (%d pending units, every one listed: %s) "
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

// Through the server: `units` launched units and `machines` registered machines are in the store
// when a real Server starts (SQLite, every write durable); its reconciler places them all. The
// figure is the time from Start until every placement is durable under /schedule/. Units ask
// for CPU and memory; one in four also needs zone metadata, one in eight a rack spread.
int Place(int units, int machines, const std::string& parent) {
  fs::path dir = MakeDir(parent);
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
      api::MachineRegistration r;
      char id[32];
      std::snprintf(id, sizeof id, "m%05d", m);
      r.id = id;
      r.primary_ip = "10.0." + std::to_string(m / 250) + "." + std::to_string(m % 250 + 1);
      r.metadata = {{"zone", "z" + std::to_string(m % 4)}, {"rack", "r" + std::to_string(m / 40)}};
      r.capacity = {32000, 128ll << 30, 0};
      txn.success.push_back(store::Op::Put(std::string("/machines/") + id, api::ToJson(r)));
    }
    if (!st->Txn(std::move(txn)).ok()) return 1;
  }
  for (int base = 0; base < units; base += 5000) {
    store::TxnRequest txn;
    for (int i = base; i < std::min(units, base + 5000); ++i) {
      api::ScheduledUnit u;
      char name[64];
      std::snprintf(name, sizeof name, "svc%04d@%d.service", i / 100, i % 100);
      u.name = name;
      u.desired_state = api::UnitStateName::kLaunched;
      u.options = {{"Service", "ExecStart", "/bin/sleep 1000"},
                   {"Service", "CPUQuota", std::to_string(10 + i % 4 * 10) + "%"},
                   {"Service", "MemoryMax", std::to_string(64 << (i % 3)) + "M"}};
      if (i % 4 == 0) u.options.push_back({"X-Fleet", "MachineMetadata", "zone=z" + std::to_string(i % 3)});
      if (i % 8 == 1) u.options.push_back({"X-Fjord", "Constraint", "rack MAX_PER 4"});
      std::vector<unit::UnitOption> views;
      for (const auto& o : u.options) views.push_back({o.section, o.name, o.value});
      u.hash = unit::ContentHash(views);
      txn.success.push_back(store::Op::Put(std::string("/units/") + name, api::ToJson(u)));
    }
    if (!st->Txn(std::move(txn)).ok()) return 1;
  }
  double load = Seconds(Clock::now() - load_start);

  server::ServerOptions o;
  o.port = 0;
  o.data_dir = dir;
  o.store = st;
  o.heartbeat_grace = std::chrono::hours(1);  // simulated machines send no heartbeats
  auto start = Clock::now();
  auto srv = server::Server::Start(o);
  if (!srv.ok()) {
    std::fprintf(stderr, "%s\n", srv.status().ToString().c_str());
    return 1;
  }
  store::RangeRequest rr;
  rr.key = "/schedule/";
  rr.range_end = store::PrefixEnd("/schedule/");
  rr.keys_only = true;
  rr.limit = 1;
  int64_t placed = 0, last = -1;
  auto last_change = Clock::now();
  while (placed < units) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto r = st->Range(rr);
    if (!r.ok()) return 1;
    placed = r->count;
    if (placed != last) {
      if (std::getenv("FJORD_BENCH_VERBOSE")) {
        std::fprintf(stderr, "%.1f s: %lld placed\n", Seconds(Clock::now() - start),
                     static_cast<long long>(placed));
      }
      last = placed;
      last_change = Clock::now();
    } else if (Clock::now() - last_change > std::chrono::seconds(150)) {
      break;  // stalled: some units cannot be placed
    }
  }
  double secs = Seconds(last_change - start);
  std::printf(
      "bench_server_place: %d units on %d machines through the server (SQLite, durable): "
      "%lld placed in %.2f s = %.0f placements/s (store preloaded in %.2f s)\n",
      units, machines, static_cast<long long>(placed), secs, placed / secs, load);
  (*srv)->Stop();
  srv->reset();
  (void)st->Close();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return placed == units ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  std::string self = fs::path(argv[0]).filename();
  auto arg = [&](int i, const char* def) {
    return argc > i ? std::string(argv[i]) : std::string(def);
  };
  if (self == "bench_server_place") {
    return Place(std::stoi(arg(1, "100000")), std::stoi(arg(2, "1000")), arg(3, "/var/tmp"));
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
