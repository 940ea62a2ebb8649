// fjord's control plane: the /fleet/v1 and /v1 HTTP APIs, the agent protocol and the reconciler
// that places units on machines (docs/PROTOCOL.md is the wire contract).
//
// Data flow: API writes go to the store (/units/<name>, /machines/<id>, /states/<m>/<unit>) and
// are acknowledged only once durable. Each acknowledged write updates the server's in-memory
// view (what reads are served from) and wakes the reconciler: one thread that owns the
// scheduler and writes placements to /schedule/<machine>/<unit>. Agents long-poll their own
// /schedule prefix. Heartbeats stay in memory; a machine silent past heartbeat_grace is lost and
// its units are rescheduled (rate-limited). See src/server/README.md.
//
// Thread-safety: Start/Stop/url/port may be called from any thread; Stop is idempotent and the
// destructor calls it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "base/clock.h"
#include "base/status.h"

namespace fjord::store {
class Store;
}

namespace fjord::server {

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 7777;  // 0: the kernel picks one (tests); read it back with port()
  // The SQLite store lives at data_dir/state.db unless `store` is given.
  std::filesystem::path data_dir;
  std::shared_ptr<store::Store> store;  // injected store (tests, `fjord dev`); else SQLite

  std::chrono::milliseconds heartbeat_interval{1000};  // told to agents at registration
  std::chrono::milliseconds heartbeat_grace{10000};    // silent this long: the machine is lost
  // Rescheduling after a machine is lost: placements per second and burst, at least; and per
  // alive machine, so that a large cluster recovers in seconds while each survivor still takes
  // only a couple of new units a second (10,000 machines: 20,000/s, burst 2,000).
  double reschedule_per_second = 1000;
  double reschedule_burst = 100;
  double reschedule_per_machine = 2;  // 0: the fixed rate above only

  size_t http_worker_threads = 4;  // for blocking handlers (lists, reads)
  uint64_t scheduler_seed = 1;
  base::Clock* clock = nullptr;  // nullptr: the real clock
};

class Server {
 public:
  // Opens the store, rebuilds the placements from it, starts the reconciler and the listener.
  static base::Result<std::unique_ptr<Server>> Start(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // "http://127.0.0.1:PORT".
  std::string url() const;
  uint16_t port() const;
  // Stops the listener (pending long-polls get 503), the reconciler, and closes the store if it
  // opened it. Idempotent.
  void Stop();

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fjord::server
