// Store: fjord's durable cluster state, modelled one-to-one on etcd v3 so an etcd backend can
// slot in later.
//
// The model: a flat key space of byte-string keys (non-empty) and values, ordered bytewise. Every
// write transaction that changes something advances one global revision; all its changes carry
// that revision. Each key records the revision that created it (create_revision), the revision of
// its last put (mod_revision) and how many puts it has had since creation (version). History is
// kept as a log of put/delete events: reads may ask for an older revision and watches may start
// from one, until compaction drops history older than the compacted revision (IsCompacted()).
//
// Key ranges follow etcd: a request names `key` and `range_end`; an empty range_end means the one
// key `key`; range_end "\0" (a single zero byte) means every key >= key; otherwise the range is
// [key, range_end). PrefixEnd(p) is the range_end that selects every key starting with p.
//
// Durability: a write is acknowledged (Txn returns, TxnAsync calls back) only after it is
// committed to disk. The SQLite backend commits many concurrent writers' transactions in one
// SQLite transaction (group commit) on its own writer thread. See src/store/README.md.
//
// Thread-safety: every Store method is thread-safe. A Watcher is used by one thread at a time,
// except SetNotify, which any thread may call. Leases (TTL keys) are not part of this interface:
// machine liveness uses heartbeat timestamps in values; a separate LeaseStore may follow with etcd.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"

namespace fjord::store {

using Revision = int64_t;

// Larger keys or values are rejected with InvalidArgument before they reach a backend.
inline constexpr size_t kMaxKeyBytes = 64 * 1024;
inline constexpr size_t kMaxValueBytes = 32 * 1024 * 1024;

struct KeyValue {
  std::string key;
  std::string value;
  Revision create_revision = 0;  // revision of the put that created the key (after its last delete)
  Revision mod_revision = 0;     // revision of the key's last put
  int64_t version = 0;           // puts since creation: 1 after the first

  bool operator==(const KeyValue&) const = default;
};

// The range_end selecting every key that starts with `prefix` ("\0" when no such end exists).
std::string PrefixEnd(std::string_view prefix);

// True for the error returned when a read or watch asks for history that compaction removed.
// The caller should re-list at the current revision and watch from there (as with etcd).
bool IsCompacted(const base::Status& status);

struct RangeRequest {
  std::string key;
  std::string range_end{};  // see the header comment
  int64_t limit = 0;        // at most this many kvs; 0 means no limit
  Revision revision = 0;    // read as of this revision; 0 means the current one
  bool keys_only = false;   // leave values empty (listing keys is then cheap)
};

struct RangeResponse {
  std::vector<KeyValue> kvs;  // sorted by key, bytewise
  bool more = false;          // the range holds more keys than were returned
  int64_t count = 0;          // keys in the range, ignoring limit
  Revision revision = 0;      // the store's revision when the read was served
};

// A condition on one key, evaluated atomically with the transaction. A missing key has version,
// create and mod revision 0 and an empty value, so `version == 0` tests for absence.
struct Compare {
  enum class Target { kVersion, kCreateRevision, kModRevision, kValue };
  enum class Result { kEqual, kNotEqual, kLess, kGreater };

  std::string key;
  Target target = Target::kVersion;
  Result result = Result::kEqual;
  int64_t number = 0;  // compared with version / create / mod revision
  std::string value;   // compared (bytewise) when target is kValue

  static Compare Missing(std::string key);                    // version == 0
  static Compare Exists(std::string key);                     // version > 0
  static Compare ModRevisionIs(std::string key, Revision r);  // mod_revision == r
  static Compare ValueIs(std::string key, std::string value);
};

struct Op {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  std::string key;
  std::string value;      // kPut
  std::string range_end;  // kDelete: deletes the range [key, range_end) as in RangeRequest

  static Op Put(std::string key, std::string value);
  static Op Delete(std::string key, std::string range_end = {});
};

// If every compare holds, runs `success`, else `failure`. Within one branch a key may be put at
// most once and may not be both put and deleted (as in etcd); such a request is rejected.
struct TxnRequest {
  std::vector<Compare> compare;
  std::vector<Op> success;
  std::vector<Op> failure;
};

struct TxnResponse {
  bool succeeded = false;  // the compares held and `success` ran
  Revision revision = 0;   // the txn's revision if it changed anything, else the current one
  int64_t deleted = 0;     // keys deleted by the branch that ran
};

struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for kDelete: only key and mod_revision (the deletion's revision) are set

  bool operator==(const Event&) const = default;
};

struct WatchRequest {
  std::string key;
  std::string range_end{};      // as in RangeRequest: one key, a range or a prefix
  Revision start_revision = 0;  // first revision to deliver; 0 means changes after now
};

// A stream of the events in one key range, in revision order, without gaps or duplicates. Only
// writes inside the range wake it, so a server can hold one watcher per agent on that machine's
// prefix and long-poll it. The events are buffered for the watcher; one that falls far behind
// catches up from the store's log on its next Next() (or gets IsCompacted()).
// Thread-safety: Next from one thread at a time; SetNotify from any thread. Destroying a watcher
// cancels it; it must not be destroyed while another thread is in Next().
class Watcher {
 public:
  virtual ~Watcher() = default;

  // Returns the next events (all of each revision, in order) as soon as there are any, or an
  // empty vector once `deadline` passes. Errors: IsCompacted(), or Unavailable once the store is
  // closed. A deadline in the past makes it a non-blocking poll.
  virtual base::Result<std::vector<Event>> Next(base::Clock::TimePoint deadline) = 0;

  // `fn` runs on a store thread whenever new events may be ready, for event-loop users that poll
  // with a past deadline instead of blocking. It is edge-triggered: after a call, poll Next until
  // it returns no events. It must be quick and must not call into this watcher or the store
  // (post to your loop instead). Empty `fn` removes it.
  virtual void SetNotify(std::function<void()> fn) = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  virtual base::Result<RangeResponse> Range(const RangeRequest& req) = 0;

  // Runs the transaction; `done` receives the result once it is durable (SQLite: on the writer
  // thread; memory: before TxnAsync returns). `done` must be quick and must not block on the store.
  virtual void TxnAsync(TxnRequest req, std::function<void(base::Result<TxnResponse>)> done) = 0;

  virtual base::Result<std::unique_ptr<Watcher>> Watch(const WatchRequest& req) = 0;

  // The revision of the last durable write (0 for an empty store).
  virtual Revision CurrentRevision() const = 0;

  // Drops history older than `revision` (reads and watches need revision >= it afterwards). The
  // current state of every key is kept.
  virtual base::Status Compact(Revision revision) = 0;
  virtual Revision CompactedRevision() const = 0;

  // Completes pending writes, ends every watcher's stream (Unavailable) and releases the files.
  // Later calls fail with Unavailable. The destructor closes too.
  virtual base::Status Close() = 0;

  // Conveniences built on the calls above.
  base::Result<TxnResponse> Txn(TxnRequest req);  // waits for TxnAsync
  base::Result<std::optional<KeyValue>> Get(std::string_view key, Revision revision = 0);
  base::Result<Revision> Put(std::string key, std::string value);  // the put's revision
  // Deletes one key or a range; returns how many keys were deleted.
  base::Result<int64_t> Delete(std::string key, std::string range_end = {});
};

struct Options {
  // In WAL mode, kNormal fsyncs only at checkpoints: a commit is in the OS page cache when it is
  // acknowledged, so it survives a kill -9 of fjord but not a power loss or kernel crash. kFull
  // fsyncs the WAL at each (group) commit and survives power loss as well. SQLite only.
  enum class Sync { kNormal, kFull };
  Sync sync = Sync::kNormal;

  // Auto-compaction keeps at least this many revisions of history; 0 disables it.
  Revision retain_revisions = 100'000;

  // Recent events kept in memory so watchers near the head never read the disk.
  size_t watch_ring_events = 8192;

  // Most transactions committed in one SQLite transaction by the writer thread.
  size_t max_group = 1024;
};

// Opens (creating it if missing) the SQLite store at `path`, e.g. /var/lib/fjord/state.db. The
// file is locked for the process lifetime: a second opener gets an error naming the path.
base::Result<std::unique_ptr<Store>> OpenSqliteStore(const std::filesystem::path& path,
                                                     const Options& options = {});

// A store held in memory with the same semantics, for tests and the scheduler simulator.
std::unique_ptr<Store> NewMemoryStore(const Options& options = {});

}  // namespace fjord::store
