// SqliteStore: the Store contract on one SQLite file in WAL mode, with group commit.
//
// Writes: callers enqueue transactions; one writer thread takes every queued transaction (up to
// Options::max_group), applies them in order inside one SQLite transaction, commits once (one
// WAL fsync with Sync::kFull), then publishes the events to the watch hub and acknowledges each
// caller. Reads lease a connection from a pool and run in their own WAL read transaction, so they
// never wait for the writer. The on-disk schema is documented in src/store/README.md.
#include <fcntl.h>
#include <sys/file.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <variant>

#include "base/fd.h"
#include "store/internal.h"
#include "store/sqlite_conn.h"
#include "store/store.h"
#include "store/watch_hub.h"

namespace fjord::store {
namespace {

using internal::KeyRange;
using internal::SqliteConn;
using internal::Stmt;

constexpr int64_t kSchemaVersion = 1;
constexpr int kPutType = 0;
constexpr int kDeleteType = 1;

// Writes one of the integer rows of `meta` ('revision', 'compacted') inside the caller's txn.
base::Status SetMetaCounter(SqliteConn& c, const char* name, int64_t value) {
  auto s = c.Prepare(std::string("UPDATE meta SET value = ?1 WHERE name = '") + name + "'");
  if (!s.ok()) return s.status();
  s->BindInt(1, value);
  return s->Run();
}
// WAL length (pages) that triggers a background checkpoint; SQLite's own default is 1000.
constexpr int kCheckpointPages = 1000;
// WAL length at which the writer finishes the checkpoint itself. SQLite rewinds the WAL only when
// a write starts after a checkpoint copied every frame; under steady load the background one never
// catches up with the writer, so without this the WAL would grow without bound.
constexpr int kWriterCheckpointPages = 4 * kCheckpointPages;

constexpr const char* kSchema = R"sql(
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta VALUES ('schema_version', 1), ('revision', 0), ('compacted', 0);
CREATE TABLE kv (
  key BLOB NOT NULL UNIQUE, value BLOB NOT NULL,
  create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, version INTEGER NOT NULL
);
CREATE TABLE log (
  rev INTEGER NOT NULL, idx INTEGER NOT NULL, type INTEGER NOT NULL, key BLOB NOT NULL,
  value BLOB NOT NULL, create_rev INTEGER NOT NULL, version INTEGER NOT NULL
);
CREATE UNIQUE INDEX log_rev ON log (rev, idx);
CREATE INDEX log_key ON log (key, rev);
)sql";

// SQL for a key-range filter on column `key`: ?1 is the start, ?2 the end (when bounded).
std::string RangeFilter(const KeyRange& r) {
  if (r.single) return "key = ?1";
  if (r.unbounded) return "key >= ?1";
  return "key >= ?1 AND key < ?2";
}

void BindRange(Stmt& s, const KeyRange& r) {
  s.BindBlob(1, r.start);
  if (!r.single && !r.unbounded) s.BindBlob(2, r.end);
}

// Reads the kv row for `key` from a statement selecting value, create_rev, mod_rev, version.
KeyValue KvFromRow(const Stmt& s, std::string key, int first_col) {
  return KeyValue{std::move(key), s.Blob(first_col), s.Int(first_col + 1), s.Int(first_col + 2),
                  s.Int(first_col + 3)};
}

struct TxnItem {
  TxnRequest req;
  std::function<void(base::Result<TxnResponse>)> done;
};
struct CompactItem {
  Revision revision;
  std::function<void(base::Status)> done;
};
using WorkItem = std::variant<TxnItem, CompactItem>;

class SqliteStore final : public Store, private internal::EventSource {
 public:
  SqliteStore(std::string path, base::UniqueFd lock_fd, std::unique_ptr<SqliteConn> writer,
              Revision revision, Revision compacted, const Options& options)
      : path_(std::move(path)),
        options_(options),
        lock_fd_(std::move(lock_fd)),
        writer_conn_(std::move(writer)),
        revision_(revision),
        compacted_(compacted),
        hub_(std::make_shared<internal::WatchHub>(static_cast<internal::EventSource*>(this),
                                                  revision, options.watch_ring_events)) {
    sqlite3_wal_hook(writer_conn_->db(), &SqliteStore::WalHook, this);
    writer_thread_ = std::thread([this] { WriterLoop(); });
    checkpoint_thread_ = std::thread([this] { CheckpointLoop(); });
  }
  ~SqliteStore() override { (void)Close(); }

  base::Result<RangeResponse> Range(const RangeRequest& req) override;
  void TxnAsync(TxnRequest req, std::function<void(base::Result<TxnResponse>)> done) override;
  base::Result<std::unique_ptr<Watcher>> Watch(const WatchRequest& req) override;
  Revision CurrentRevision() const override { return revision_.load(); }
  base::Status Compact(Revision revision) override;
  Revision CompactedRevision() const override { return compacted_.load(); }
  base::Status Close() override;

 private:
  // A connection leased from the reader pool; returned when it goes away.
  class Lease {
   public:
    Lease(SqliteStore* s, std::unique_ptr<SqliteConn> c) : s_(s), c_(std::move(c)) {}
    Lease(Lease&& o) noexcept = default;
    ~Lease() {
      if (c_) s_->ReturnReader(std::move(c_));
    }
    SqliteConn* operator->() { return c_.get(); }
    SqliteConn& operator*() { return *c_; }

   private:
    SqliteStore* s_;
    std::unique_ptr<SqliteConn> c_;
  };

  // A read transaction on a leased connection that ends (COMMIT) when it goes away.
  class ReadTxn {
   public:
    static base::Result<ReadTxn> Begin(Lease lease);
    ReadTxn(ReadTxn&& o) noexcept
        : revision(o.revision),
          compacted(o.compacted),
          lease_(std::move(o.lease_)),
          active_(std::exchange(o.active_, false)) {}
    ~ReadTxn() {
      if (active_) (void)lease_->Exec("COMMIT");
    }
    SqliteConn& conn() { return *lease_; }
    Revision revision = 0;
    Revision compacted = 0;

   private:
    explicit ReadTxn(Lease lease) : lease_(std::move(lease)) {}
    Lease lease_;
    bool active_ = false;
  };

  // The writer connection seen by ApplyTxn, inside the group's SQLite transaction.
  class View final : public internal::TxnView {
   public:
    View(SqliteConn& c, Revision rev) : c_(c), rev_(rev) {}
    base::Result<std::optional<KeyValue>> Lookup(std::string_view key) override;
    base::Result<std::vector<KeyValue>> Scan(const KeyRange& range) override;
    base::Status Write(const Event& ev, int index) override;

   private:
    SqliteConn& c_;
    Revision rev_;
  };

  base::Result<Lease> AcquireReader();
  void ReturnReader(std::unique_ptr<SqliteConn> c);
  base::Result<internal::EventBatch> ReadEvents(const KeyRange& range, Revision from,
                                                size_t limit) override;
  base::Status ReadCurrent(ReadTxn& t, const KeyRange& range, const RangeRequest& req,
                           RangeResponse& resp);
  base::Status ReadHistorical(ReadTxn& t, const KeyRange& range, const RangeRequest& req,
                              RangeResponse& resp);

  void Enqueue(WorkItem item);
  void WriterLoop();
  // Runs after each commit on the writer thread: wakes the checkpointer when the WAL is long.
  static int WalHook(void* self, sqlite3* db, const char* name, int pages);
  void CheckpointLoop();
  void CommitGroup(std::vector<TxnItem>& items);
  base::Status RunCompaction(Revision rev);
  void MaybeAutoCompact();

  const std::string path_;
  const Options options_;
  base::UniqueFd lock_fd_;  // flock held for the store's lifetime; closed after SQLite
  std::unique_ptr<SqliteConn> writer_conn_;  // used only by the writer thread
  std::atomic<Revision> revision_;
  std::atomic<Revision> compacted_;
  std::shared_ptr<internal::WatchHub> hub_;
  std::thread writer_thread_;
  std::thread checkpoint_thread_;

  std::mutex checkpoint_mu_;  // guards the two flags below
  std::condition_variable checkpoint_cv_;
  bool checkpoint_wanted_ = false;
  bool checkpoint_stop_ = false;
  std::mutex checkpoint_run_mu_;   // held while either thread runs a checkpoint
  std::atomic<int> wal_pages_{0};  // WAL length after the last commit (writer thread's hook)

  std::mutex queue_mu_;  // guards the queue and closing_
  std::condition_variable queue_cv_;
  std::deque<WorkItem> queue_;
  bool closing_ = false;

  std::mutex pool_mu_;  // guards the reader pool
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<SqliteConn>> idle_readers_;
  int leased_ = 0;
  bool pool_closed_ = false;
};

// ---- reads ----

base::Result<SqliteStore::Lease> SqliteStore::AcquireReader() {
  {
    std::lock_guard<std::mutex> l(pool_mu_);
    if (pool_closed_) return internal::ClosedError(path_);
    ++leased_;
    if (!idle_readers_.empty()) {
      auto c = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return Lease(this, std::move(c));
    }
  }
  auto opened = [&]() -> base::Result<std::unique_ptr<SqliteConn>> {
    FJORD_ASSIGN_OR_RETURN(auto c, SqliteConn::Open(path_, false));
    FJORD_RETURN_IF_ERROR(
        c->Exec("PRAGMA busy_timeout = 10000; PRAGMA query_only = 1; PRAGMA mmap_size = "
                "1073741824; PRAGMA cache_size = -32768;"));
    return c;
  }();
  if (!opened.ok()) {
    std::lock_guard<std::mutex> l(pool_mu_);
    --leased_;
    pool_cv_.notify_all();
    return opened.status();
  }
  return Lease(this, std::move(opened).value());
}

void SqliteStore::ReturnReader(std::unique_ptr<SqliteConn> c) {
  std::lock_guard<std::mutex> l(pool_mu_);
  if (!pool_closed_) idle_readers_.push_back(std::move(c));
  --leased_;
  pool_cv_.notify_all();
}

base::Result<SqliteStore::ReadTxn> SqliteStore::ReadTxn::Begin(Lease lease) {
  ReadTxn t(std::move(lease));
  FJORD_RETURN_IF_ERROR(t.conn().Exec("BEGIN"));
  t.active_ = true;
  FJORD_ASSIGN_OR_RETURN(Stmt s, t.conn().Prepare("SELECT name, value FROM meta"));
  while (true) {
    FJORD_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    std::string name = s.Text(0);
    if (name == "revision") t.revision = s.Int(1);
    if (name == "compacted") t.compacted = s.Int(1);
  }
  return t;
}

base::Result<RangeResponse> SqliteStore::Range(const RangeRequest& req) {
  FJORD_ASSIGN_OR_RETURN(KeyRange range, internal::MakeRange("range", req.key, req.range_end));
  FJORD_ASSIGN_OR_RETURN(Lease lease, AcquireReader());
  FJORD_ASSIGN_OR_RETURN(ReadTxn t, ReadTxn::Begin(std::move(lease)));
  if (req.revision > t.revision) return internal::FutureRevisionError(req.revision, t.revision);
  if (req.revision > 0 && req.revision < t.compacted) {
    return internal::CompactedError(req.revision, t.compacted);
  }
  RangeResponse resp;
  resp.revision = t.revision;
  if (req.revision == 0 || req.revision == t.revision) {
    FJORD_RETURN_IF_ERROR(ReadCurrent(t, range, req, resp));
  } else {
    FJORD_RETURN_IF_ERROR(ReadHistorical(t, range, req, resp));
  }
  return resp;
}

base::Status SqliteStore::ReadCurrent(ReadTxn& t, const KeyRange& range, const RangeRequest& req,
                                      RangeResponse& resp) {
  std::string filter = RangeFilter(range);
  {
    std::string sql = std::string("SELECT key, ") + (req.keys_only ? "x''" : "value") +
                      ", create_rev, mod_rev, version FROM kv WHERE " + filter +
                      " ORDER BY key LIMIT ?3";
    FJORD_ASSIGN_OR_RETURN(Stmt s, t.conn().Prepare(sql));
    BindRange(s, range);
    s.BindInt(3, req.limit > 0 ? req.limit + 1 : -1);
    while (true) {
      FJORD_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      if (req.limit > 0 && static_cast<int64_t>(resp.kvs.size()) == req.limit) {
        resp.more = true;
        break;
      }
      resp.kvs.push_back(KvFromRow(s, s.Blob(0), 1));
    }
  }
  resp.count = static_cast<int64_t>(resp.kvs.size());
  if (resp.more) {
    FJORD_ASSIGN_OR_RETURN(Stmt c, t.conn().Prepare("SELECT COUNT(*) FROM kv WHERE " + filter));
    BindRange(c, range);
    FJORD_ASSIGN_OR_RETURN(bool row, c.Step());
    if (row) resp.count = c.Int(0);
  }
  return base::Status::Ok();
}

base::Status SqliteStore::ReadHistorical(ReadTxn& t, const KeyRange& range, const RangeRequest& req,
                                         RangeResponse& resp) {
  // The state at R is each key's last log record at or before R, when that record is a put.
  std::string sql = std::string("SELECT key, ") + (req.keys_only ? "x''" : "value") +
                    ", create_rev, rev, version, type FROM log AS l WHERE " + RangeFilter(range) +
                    " AND rev = (SELECT MAX(m.rev) FROM log AS m WHERE m.key = l.key AND "
                    "m.rev <= ?3) ORDER BY key";
  FJORD_ASSIGN_OR_RETURN(Stmt s, t.conn().Prepare(sql));
  BindRange(s, range);
  s.BindInt(3, req.revision);
  while (true) {
    FJORD_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    if (s.Int(5) == kDeleteType) continue;
    ++resp.count;
    if (req.limit > 0 && static_cast<int64_t>(resp.kvs.size()) == req.limit) {
      resp.more = true;
      continue;
    }
    resp.kvs.push_back(KvFromRow(s, s.Blob(0), 1));
  }
  return base::Status::Ok();
}

base::Result<internal::EventBatch> SqliteStore::ReadEvents(const KeyRange& range, Revision from,
                                                           size_t limit) {
  FJORD_ASSIGN_OR_RETURN(Lease lease, AcquireReader());
  FJORD_ASSIGN_OR_RETURN(ReadTxn t, ReadTxn::Begin(std::move(lease)));
  if (from < t.compacted) return internal::CompactedError(from, t.compacted);
  internal::EventBatch batch;
  batch.upto = t.revision;
  std::string sql = "SELECT rev, type, key, value, create_rev, version FROM log WHERE " +
                    RangeFilter(range) + " AND rev >= ?3 ORDER BY rev, idx";
  FJORD_ASSIGN_OR_RETURN(Stmt s, t.conn().Prepare(sql));
  BindRange(s, range);
  s.BindInt(3, from);
  while (true) {
    FJORD_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    Revision rev = s.Int(0);
    if (batch.events.size() >= limit && batch.events.back().kv.mod_revision != rev) {
      batch.upto = batch.events.back().kv.mod_revision;
      break;
    }
    Event ev;
    ev.kv.key = s.Blob(2);
    ev.kv.mod_revision = rev;
    if (s.Int(1) == kDeleteType) {
      ev.type = Event::Type::kDelete;
    } else {
      ev.kv.value = s.Blob(3);
      ev.kv.create_revision = s.Int(4);
      ev.kv.version = s.Int(5);
    }
    batch.events.push_back(std::move(ev));
  }
  return batch;
}

base::Result<std::unique_ptr<Watcher>> SqliteStore::Watch(const WatchRequest& req) {
  FJORD_ASSIGN_OR_RETURN(KeyRange range, internal::MakeRange("watch", req.key, req.range_end));
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    if (closing_) return internal::ClosedError(path_);
  }
  Revision compacted = compacted_.load();
  if (req.start_revision > 0 && req.start_revision < compacted) {
    return internal::CompactedError(req.start_revision, compacted);
  }
  return hub_->NewWatcher(std::move(range), req.start_revision);
}

// ---- writes ----

base::Result<std::optional<KeyValue>> SqliteStore::View::Lookup(std::string_view key) {
  FJORD_ASSIGN_OR_RETURN(
      Stmt s, c_.Prepare("SELECT value, create_rev, mod_rev, version FROM kv WHERE key = ?1"));
  s.BindBlob(1, key);
  FJORD_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<KeyValue>();
  return std::optional<KeyValue>(KvFromRow(s, std::string(key), 0));
}

base::Result<std::vector<KeyValue>> SqliteStore::View::Scan(const KeyRange& range) {
  FJORD_ASSIGN_OR_RETURN(Stmt s, c_.Prepare("SELECT key FROM kv WHERE " + RangeFilter(range)));
  BindRange(s, range);
  std::vector<KeyValue> out;
  while (true) {
    FJORD_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(KeyValue{s.Blob(0), {}, 0, 0, 0});
  }
  return out;
}

base::Status SqliteStore::View::Write(const Event& ev, int index) {
  const KeyValue& kv = ev.kv;
  bool put = ev.type == Event::Type::kPut;
  if (put) {
    FJORD_ASSIGN_OR_RETURN(Stmt s, c_.Prepare("INSERT OR REPLACE INTO kv (key, value, create_rev, "
                                              "mod_rev, version) VALUES (?1, ?2, ?3, ?4, ?5)"));
    s.BindBlob(1, kv.key);
    s.BindBlob(2, kv.value);
    s.BindInt(3, kv.create_revision);
    s.BindInt(4, kv.mod_revision);
    s.BindInt(5, kv.version);
    FJORD_RETURN_IF_ERROR(s.Run());
  } else {
    FJORD_ASSIGN_OR_RETURN(Stmt s, c_.Prepare("DELETE FROM kv WHERE key = ?1"));
    s.BindBlob(1, kv.key);
    FJORD_RETURN_IF_ERROR(s.Run());
  }
  FJORD_ASSIGN_OR_RETURN(Stmt s, c_.Prepare("INSERT INTO log (rev, idx, type, key, value, "
                                            "create_rev, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                                            "?7)"));
  s.BindInt(1, rev_);
  s.BindInt(2, index);
  s.BindInt(3, put ? kPutType : kDeleteType);
  s.BindBlob(4, kv.key);
  s.BindBlob(5, kv.value);
  s.BindInt(6, kv.create_revision);
  s.BindInt(7, kv.version);
  return s.Run();
}

void SqliteStore::Enqueue(WorkItem item) {
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    if (!closing_) {
      queue_.push_back(std::move(item));
      queue_cv_.notify_one();
      return;
    }
  }
  base::Status closed = internal::ClosedError(path_);
  if (auto* t = std::get_if<TxnItem>(&item)) {
    t->done(closed);
  } else {
    std::get<CompactItem>(item).done(closed);
  }
}

void SqliteStore::TxnAsync(TxnRequest req, std::function<void(base::Result<TxnResponse>)> done) {
  if (base::Status st = internal::ValidateTxn(req); !st.ok()) return done(st);
  Enqueue(TxnItem{std::move(req), std::move(done)});
}

base::Status SqliteStore::Compact(Revision revision) {
  if (revision > revision_.load()) return internal::FutureRevisionError(revision, revision_);
  if (revision <= compacted_.load()) return internal::CompactedError(revision, compacted_);
  std::promise<base::Status> promise;
  auto future = promise.get_future();
  Enqueue(CompactItem{revision, [&promise](base::Status st) { promise.set_value(st); }});
  return future.get();
}

int SqliteStore::WalHook(void* self, sqlite3*, const char*, int pages) {
  auto* store = static_cast<SqliteStore*>(self);
  store->wal_pages_.store(pages);
  if (pages >= kCheckpointPages) {
    std::lock_guard<std::mutex> l(store->checkpoint_mu_);
    store->checkpoint_wanted_ = true;
    store->checkpoint_cv_.notify_one();
  }
  return SQLITE_OK;
}

// Checkpoints copy the WAL back into the database file (and fsync it with Sync::kFull). Doing
// them here, PASSIVE, keeps that work off the commit path: the writer never waits for one.
void SqliteStore::CheckpointLoop() {
  std::unique_ptr<SqliteConn> conn;
  while (true) {
    {
      std::unique_lock<std::mutex> l(checkpoint_mu_);
      checkpoint_cv_.wait(l, [this] { return checkpoint_wanted_ || checkpoint_stop_; });
      if (checkpoint_stop_) return;
      checkpoint_wanted_ = false;
    }
    if (!conn) {
      auto opened = SqliteConn::Open(path_, false);
      if (!opened.ok()) continue;  // retried at the next wake-up; the WAL just grows meanwhile
      conn = std::move(opened).value();
      (void)conn->Exec(options_.sync == Options::Sync::kFull ? "PRAGMA synchronous = FULL"
                                                             : "PRAGMA synchronous = NORMAL");
    }
    std::lock_guard<std::mutex> run(checkpoint_run_mu_);
    sqlite3_wal_checkpoint_v2(conn->db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  }
}

void SqliteStore::WriterLoop() {
  while (true) {
    std::vector<TxnItem> group;
    std::optional<CompactItem> compact;
    {
      std::unique_lock<std::mutex> l(queue_mu_);
      queue_cv_.wait(l, [this] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;  // closing and drained
      while (!queue_.empty() && group.size() < options_.max_group) {
        if (auto* c = std::get_if<CompactItem>(&queue_.front())) {
          if (group.empty()) {
            compact = std::move(*c);
            queue_.pop_front();
          }
          break;
        }
        group.push_back(std::move(std::get<TxnItem>(queue_.front())));
        queue_.pop_front();
      }
    }
    if (compact) {
      base::Status st = RunCompaction(compact->revision);
      compact->done(st);
      continue;
    }
    CommitGroup(group);
    MaybeAutoCompact();
    if (wal_pages_.load() >= kWriterCheckpointPages) {
      // Waits for a running background checkpoint, then copies the few frames it left; the next
      // write then rewinds the WAL.
      std::lock_guard<std::mutex> l(checkpoint_run_mu_);
      sqlite3_wal_checkpoint_v2(writer_conn_->db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                nullptr);
      wal_pages_.store(0);
    }
  }
}

void SqliteStore::CommitGroup(std::vector<TxnItem>& items) {
  SqliteConn& c = *writer_conn_;
  Revision rev = revision_.load();
  std::vector<base::Result<TxnResponse>> results;
  std::vector<std::pair<std::vector<Event>, Revision>> published;
  base::Status st = c.Exec("BEGIN IMMEDIATE");
  for (size_t i = 0; st.ok() && i < items.size(); ++i) {
    View view(c, rev + 1);
    base::Result<internal::TxnOutcome> out = internal::ApplyTxn(view, items[i].req, rev + 1);
    if (!out.ok()) {
      st = out.status();
      break;
    }
    if (!out->events.empty()) published.emplace_back(std::move(out->events), ++rev);
    results.push_back(TxnResponse{out->succeeded, rev, out->deleted});
  }
  if (st.ok() && !published.empty()) {
    st = SetMetaCounter(c, "revision", rev);
  }
  if (st.ok()) st = c.Exec("COMMIT");
  if (!st.ok()) {
    (void)c.Exec("ROLLBACK");
    base::Status failed =
        st.Wrap("commit a group of " + std::to_string(items.size()) + " transactions");
    for (TxnItem& item : items) item.done(failed);
    return;
  }
  revision_.store(rev);
  for (auto& [events, r] : published) hub_->Publish(events, r);
  for (size_t i = 0; i < items.size(); ++i) items[i].done(std::move(results[i]));
}

base::Status SqliteStore::RunCompaction(Revision rev) {
  SqliteConn& c = *writer_conn_;
  Revision old = compacted_.load();
  if (rev <= old) return base::Status::Ok();
  // Drop each touched key's records superseded at `rev`, and deletes older than `rev`: what is
  // left is the state at `rev` plus everything after it. Records before `old` were already
  // reduced to one per key, so only keys written since `old` can change.
  base::Status st = c.Exec("BEGIN IMMEDIATE");
  if (st.ok()) {
    auto s = c.Prepare(
        "DELETE FROM log WHERE key IN (SELECT key FROM log WHERE rev >= ?1 AND rev <= ?2) "
        "AND rev < ?2 AND (type = 1 OR rev < (SELECT MAX(m.rev) FROM log AS m "
        "WHERE m.key = log.key AND m.rev <= ?2))");
    st = s.status();
    if (st.ok()) {
      s->BindInt(1, old);
      s->BindInt(2, rev);
      st = s->Run();
    }
  }
  if (st.ok()) {
    st = SetMetaCounter(c, "compacted", rev);
  }
  if (st.ok()) st = c.Exec("COMMIT");
  if (!st.ok()) {
    (void)c.Exec("ROLLBACK");
    return st.Wrap("compact to revision " + std::to_string(rev));
  }
  compacted_.store(rev);
  return base::Status::Ok();
}

void SqliteStore::MaybeAutoCompact() {
  Revision retain = options_.retain_revisions;
  if (retain <= 0) return;
  Revision cur = revision_.load();
  // Compact in steps of a tenth of the window so the cost is amortised.
  if (cur - compacted_.load() >= retain + std::max<Revision>(retain / 10, 1)) {
    (void)RunCompaction(cur - retain);  // a failure is retried after the next group
  }
}

base::Status SqliteStore::Close() {
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    if (closing_) return base::Status::Ok();
    closing_ = true;
    queue_cv_.notify_all();
  }
  writer_thread_.join();
  {
    std::lock_guard<std::mutex> l(checkpoint_mu_);
    checkpoint_stop_ = true;
    checkpoint_cv_.notify_all();
  }
  checkpoint_thread_.join();
  hub_->Close();
  {
    std::unique_lock<std::mutex> l(pool_mu_);
    pool_closed_ = true;
    pool_cv_.wait(l, [this] { return leased_ == 0; });
    idle_readers_.clear();
  }
  // Closing the last connection checkpoints the WAL into the database file.
  writer_conn_.reset();
  lock_fd_.reset();
  return base::Status::Ok();
}

// ---- open ----

struct Opened {
  std::unique_ptr<SqliteConn> conn;
  Revision revision = 0;
  Revision compacted = 0;
};

base::Result<int64_t> MetaValue(SqliteConn& c, const std::string& name) {
  FJORD_ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT value FROM meta WHERE name = ?1"));
  s.BindText(1, name);
  FJORD_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) {
    return base::Status(base::Code::kIo, "store " + c.path() + ": meta table has no `" + name +
                                             "` row; the file is damaged: restore a backup");
  }
  return s.Int(0);
}

// Creates the schema in a new file, or checks an existing file's schema version.
base::Status InitSchema(SqliteConn& c, Opened& out) {
  FJORD_RETURN_IF_ERROR(c.Exec("BEGIN IMMEDIATE"));
  auto body = [&]() -> base::Status {
    FJORD_ASSIGN_OR_RETURN(Stmt s,
                           c.Prepare("SELECT name FROM sqlite_master WHERE type = 'table'"));
    bool has_meta = false, has_other = false;
    while (true) {
      FJORD_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      (s.Text(0) == "meta" ? has_meta : has_other) = true;
    }
    if (!has_meta && has_other) {
      return base::FailedPrecondition("store " + c.path() +
                                      ": the file is an SQLite database but not a fjord store (no "
                                      "meta table); pass the path of a fjord store or a new file");
    }
    if (!has_meta) return c.Exec(kSchema);
    FJORD_ASSIGN_OR_RETURN(int64_t version, MetaValue(c, "schema_version"));
    if (version > kSchemaVersion) {
      return base::FailedPrecondition(
          "store " + c.path() + " has schema version " + std::to_string(version) +
          ", newer than this fjord understands (" + std::to_string(kSchemaVersion) +
          "); upgrade fjord to open it");
    }
    if (version < 1) {
      return base::FailedPrecondition("store " + c.path() + " has invalid schema version " +
                                      std::to_string(version) + "; restore a backup");
    }
    FJORD_ASSIGN_OR_RETURN(out.revision, MetaValue(c, "revision"));
    FJORD_ASSIGN_OR_RETURN(out.compacted, MetaValue(c, "compacted"));
    return base::Status::Ok();
  };
  base::Status st = body();
  if (st.ok()) st = c.Exec("COMMIT");
  if (!st.ok()) (void)c.Exec("ROLLBACK");
  return st;
}

base::Result<Opened> OpenWriter(const std::string& path, const Options& options) {
  Opened out;
  FJORD_ASSIGN_OR_RETURN(out.conn, SqliteConn::Open(path, true));
  SqliteConn& c = *out.conn;
  // 4 KiB pages: a ~1 KiB value stays inside its rowid-table cell, and a group commit of small
  // writes adds few bytes to the WAL. Only takes effect when the file is new.
  FJORD_RETURN_IF_ERROR(c.Exec("PRAGMA page_size = 4096"));
  {
    FJORD_ASSIGN_OR_RETURN(Stmt s, c.Prepare("PRAGMA journal_mode = WAL"));
    FJORD_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row || s.Text(0) != "wal") {
      return base::Status(base::Code::kIo, "store " + path +
                                               ": cannot switch to WAL journal mode; put the "
                                               "store on a local filesystem");
    }
  }
  FJORD_RETURN_IF_ERROR(c.Exec(options.sync == Options::Sync::kFull
                                   ? "PRAGMA synchronous = FULL"
                                   : "PRAGMA synchronous = NORMAL"));
  // Checkpoints run on the store's checkpoint thread (see CheckpointLoop), not on commit; the
  // WAL file is truncated back to 64 MiB after it was reset.
  FJORD_RETURN_IF_ERROR(
      c.Exec("PRAGMA busy_timeout = 10000; PRAGMA wal_autocheckpoint = 0; "
             "PRAGMA journal_size_limit = 67108864"));
  // The writer's page cache (SQLite's default is 2 MiB): inserts of keys spread over a large
  // key space (e.g. /schedule/<machine>/...) touch index pages all over the file; with the default
  // cache nearly every put re-reads its pages. Pages are allocated as used, so a small store costs
  // no more.
  FJORD_RETURN_IF_ERROR(c.Exec("PRAGMA cache_size = -131072"));
  FJORD_RETURN_IF_ERROR(InitSchema(c, out));
  return out;
}

}  // namespace

base::Result<std::unique_ptr<Store>> OpenSqliteStore(const std::filesystem::path& path,
                                                     const Options& options) {
  const std::string p = path.string();
  if (p.empty()) return base::InvalidArgument("open store: empty path");
  // The flock keeps a second process from running its own writer on the same file. It is a
  // separate open file description, held until SQLite has closed, so it cannot disturb SQLite's
  // own POSIX locks.
  base::UniqueFd lock_fd(::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock_fd) return base::ErrnoStatus("open store " + p);
  if (::flock(lock_fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return base::Unavailable("store " + p +
                               " is in use by another process; stop it or use another path");
    }
    return base::ErrnoStatus("lock store " + p);
  }
  base::Result<Opened> opened = OpenWriter(p, options);
  if (!opened.ok()) return opened.status().Wrap("open store");
  return std::unique_ptr<Store>(new SqliteStore(p, std::move(lock_fd), std::move(opened->conn),
                                                opened->revision, opened->compacted, options));
}

}  // namespace fjord::store
