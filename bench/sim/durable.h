// fjord-sim --through-store: writes the simulated cluster's desired state and every placement to
// the real embedded store (src/store, SQLite WAL with group commit), as the server will.
//
// Key layout (the one the server will use; values are compact JSON):
//
//   /machines/<machine-id>             {"id":..,"metadata":{..},"capacity":{"cpu_millis":..,..}}
//   /units/<unit-name>                 the desired unit (the sim stores a summary of its request;
//                                      the server stores the parsed unit file)
//   /schedule/<machine-id>/<unit-name> {"unit_revision":R}: the unit is placed on that machine;
//                                      R is the mod_revision of /units/<unit-name> it was placed
//                                      from. An agent lists and watches only its own prefix
//                                      /schedule/<machine-id>/ (PrefixEnd), so a placement wakes
//                                      one agent. Machine ids and unit names contain no '/'.
//
// Writes are batched (`batch` puts per transaction) and pipelined (up to `max_in_flight`
// transactions queued at the store at once), so the store's writer thread commits many of them
// per SQLite transaction (group commit). A put counts as durable only when its transaction's
// TxnAsync callback reports success, i.e. after the COMMIT that made it durable.
//
// Thread-safety: not thread-safe; one thread calls every method. The store's callbacks run on its
// writer thread and touch only the mutex-guarded counters.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "scheduler/scheduler.h"
#include "store/store.h"

namespace fjord::sim {

struct DurableOptions {
  std::filesystem::path dir;  // empty: a fresh mkdtemp directory under /var/tmp
  bool keep = false;          // keep the store files at exit
  store::Options::Sync sync = store::Options::Sync::kNormal;
  size_t batch = 1024;         // puts per transaction
  size_t max_in_flight = 256;  // transactions queued at the store before Add waits
};

std::string MachineKey(std::string_view machine_id);
std::string UnitKey(std::string_view unit);
std::string ScheduleKey(std::string_view machine_id, std::string_view unit);
inline constexpr std::string_view kSchedulePrefix = "/schedule/";
inline constexpr std::string_view kUnitsPrefix = "/units/";
inline constexpr std::string_view kMachinesPrefix = "/machines/";

std::string MachineValue(const scheduler::MachineSpec& m);
std::string UnitValue(const scheduler::TaskRequest& request);  // uses request.name / machine_of

class DurableSchedule {
 public:
  static base::Result<std::unique_ptr<DurableSchedule>> Open(const DurableOptions& options);
  ~DurableSchedule();  // closes the store; removes its files unless options.keep

  // Queues a put; sends a transaction every `batch` puts. Waits while `max_in_flight`
  // transactions are outstanding. Fails once any earlier transaction failed.
  base::Status Add(std::string key, std::string value);
  // Sends the partial batch and waits until every queued transaction is durable.
  base::Status Drain();

  // Revision of the transaction that carried the n-th put (0-based, in Add order); valid after
  // Drain() for puts added before it.
  store::Revision RevisionOfPut(size_t n) const;
  size_t durable_puts() const;
  size_t transactions() const { return sent_txns_; }

  // Every key under `prefix`, read back from the store in pages (keys only).
  base::Result<std::vector<std::string>> Keys(std::string_view prefix);
  base::Result<int64_t> Count(std::string_view prefix);

  // Closes the store (so the WAL is checkpointed) and returns the bytes of its files.
  base::Result<uint64_t> CloseAndMeasure();
  const std::filesystem::path& dir() const { return dir_; }
  const DurableOptions& options() const { return options_; }

 private:
  DurableSchedule() = default;
  void Send();

  DurableOptions options_;
  std::filesystem::path dir_;
  bool created_dir_ = false;
  std::unique_ptr<store::Store> store_;
  store::TxnRequest pending_;
  size_t added_ = 0;               // puts sent
  std::vector<size_t> txn_first_;  // per sent transaction: index of its first put
  size_t sent_txns_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t in_flight_ = 0;                  // guarded by mu_
  size_t durable_ = 0;                    // guarded by mu_
  base::Status error_;                    // guarded by mu_: the first failure
  std::vector<store::Revision> txn_rev_;  // guarded by mu_: per sent transaction
};

}  // namespace fjord::sim
