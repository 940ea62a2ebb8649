// MemoryStore: the Store contract held in memory, for tests and the scheduler simulator.
//
// Each key keeps its history (puts and deletes, oldest first) so reads at an older revision work
// as in the SQLite backend; a log of events serves watchers that fall behind the hub's ring.
// One mutex serialises everything; Publish happens under it so watchers see revision order.
#include <algorithm>
#include <deque>
#include <map>
#include <mutex>

#include "store/internal.h"
#include "store/store.h"
#include "store/watch_hub.h"

namespace fjord::store {
namespace {

using internal::KeyRange;

struct Record {
  Revision rev = 0;
  bool deleted = false;
  KeyValue kv;  // for a put
};

class MemoryStore final : public Store, private internal::EventSource {
 public:
  explicit MemoryStore(const Options& options)
      : options_(options),
        hub_(std::make_shared<internal::WatchHub>(static_cast<internal::EventSource*>(this), 0,
                                                  options.watch_ring_events)) {}
  ~MemoryStore() override { (void)Close(); }

  base::Result<RangeResponse> Range(const RangeRequest& req) override;
  void TxnAsync(TxnRequest req, std::function<void(base::Result<TxnResponse>)> done) override;
  base::Result<std::unique_ptr<Watcher>> Watch(const WatchRequest& req) override;
  Revision CurrentRevision() const override {
    std::lock_guard<std::mutex> l(mu_);
    return revision_;
  }
  base::Status Compact(Revision revision) override;
  Revision CompactedRevision() const override {
    std::lock_guard<std::mutex> l(mu_);
    return compacted_;
  }
  base::Status Close() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (closed_) return base::Status::Ok();
      closed_ = true;
    }
    hub_->Close();
    return base::Status::Ok();
  }

 private:
  using Keys = std::map<std::string, std::vector<Record>, std::less<>>;

  class View final : public internal::TxnView {
   public:
    View(MemoryStore& s, Revision rev) : s_(s), rev_(rev) {}
    base::Result<std::optional<KeyValue>> Lookup(std::string_view key) override {
      const KeyValue* kv = s_.LiveAt(key, rev_);
      return kv ? std::optional<KeyValue>(*kv) : std::nullopt;
    }
    base::Result<std::vector<KeyValue>> Scan(const KeyRange& range) override {
      std::vector<KeyValue> out;
      s_.ForEachLive(range, rev_, [&](const KeyValue& kv) {
        out.push_back(kv);
        return true;
      });
      return out;
    }
    base::Status Write(const Event& ev, int) override {
      auto& history = s_.keys_[ev.kv.key];
      history.push_back(Record{rev_, ev.type == Event::Type::kDelete, ev.kv});
      s_.log_.push_back(ev);
      return base::Status::Ok();
    }

   private:
    MemoryStore& s_;
    Revision rev_;
  };

  // The live value of `key` as of `rev`, or null.
  const KeyValue* LiveAt(std::string_view key, Revision rev) const;
  template <typename Fn>
  void ForEachLive(const KeyRange& range, Revision rev, Fn fn) const;
  base::Status Check(Revision rev) const;
  base::Result<internal::EventBatch> ReadEvents(const KeyRange& range, Revision from,
                                                size_t limit) override;
  void MaybeAutoCompact();
  void CompactLocked(Revision rev);

  const Options options_;
  std::shared_ptr<internal::WatchHub> hub_;
  mutable std::mutex mu_;  // guards everything below
  bool closed_ = false;
  Revision revision_ = 0;
  Revision compacted_ = 0;
  Keys keys_;
  std::deque<Event> log_;  // events with revision >= compacted_, in order
};

const KeyValue* MemoryStore::LiveAt(std::string_view key, Revision rev) const {
  auto it = keys_.find(key);
  if (it == keys_.end()) return nullptr;
  const std::vector<Record>& h = it->second;
  auto r = std::upper_bound(h.begin(), h.end(), rev,
                            [](Revision v, const Record& rec) { return v < rec.rev; });
  if (r == h.begin()) return nullptr;
  --r;
  return r->deleted ? nullptr : &r->kv;
}

template <typename Fn>
void MemoryStore::ForEachLive(const KeyRange& range, Revision rev, Fn fn) const {
  if (range.single) {
    if (const KeyValue* kv = LiveAt(range.start, rev)) fn(*kv);
    return;
  }
  auto end = range.unbounded ? keys_.end() : keys_.lower_bound(range.end);
  for (auto it = keys_.lower_bound(range.start); it != end; ++it) {
    if (const KeyValue* kv = LiveAt(it->first, rev)) {
      if (!fn(*kv)) return;
    }
  }
}

base::Status MemoryStore::Check(Revision rev) const {
  if (closed_) return internal::ClosedError("(memory)");
  if (rev > revision_) return internal::FutureRevisionError(rev, revision_);
  if (rev > 0 && rev < compacted_) return internal::CompactedError(rev, compacted_);
  return base::Status::Ok();
}

base::Result<RangeResponse> MemoryStore::Range(const RangeRequest& req) {
  FJORD_ASSIGN_OR_RETURN(KeyRange range, internal::MakeRange("range", req.key, req.range_end));
  std::lock_guard<std::mutex> l(mu_);
  FJORD_RETURN_IF_ERROR(Check(req.revision));
  RangeResponse resp;
  resp.revision = revision_;
  Revision at = req.revision > 0 ? req.revision : revision_;
  ForEachLive(range, at, [&](const KeyValue& kv) {
    ++resp.count;
    if (req.limit > 0 && static_cast<int64_t>(resp.kvs.size()) >= req.limit) {
      resp.more = true;
      return true;
    }
    resp.kvs.push_back(kv);
    if (req.keys_only) resp.kvs.back().value.clear();
    return true;
  });
  return resp;
}

void MemoryStore::TxnAsync(TxnRequest req, std::function<void(base::Result<TxnResponse>)> done) {
  if (base::Status st = internal::ValidateTxn(req); !st.ok()) return done(st);
  base::Result<TxnResponse> result = [&]() -> base::Result<TxnResponse> {
    std::lock_guard<std::mutex> l(mu_);
    if (closed_) return internal::ClosedError("(memory)");
    View view(*this, revision_ + 1);
    FJORD_ASSIGN_OR_RETURN(internal::TxnOutcome out, internal::ApplyTxn(view, req, revision_ + 1));
    if (!out.events.empty()) {
      ++revision_;
      hub_->Publish(out.events, revision_);
      MaybeAutoCompact();
    }
    return TxnResponse{out.succeeded, revision_, out.deleted};
  }();
  done(std::move(result));
}

base::Result<std::unique_ptr<Watcher>> MemoryStore::Watch(const WatchRequest& req) {
  FJORD_ASSIGN_OR_RETURN(KeyRange range, internal::MakeRange("watch", req.key, req.range_end));
  std::lock_guard<std::mutex> l(mu_);
  if (closed_) return internal::ClosedError("(memory)");
  if (req.start_revision > 0 && req.start_revision < compacted_) {
    return internal::CompactedError(req.start_revision, compacted_);
  }
  return hub_->NewWatcher(std::move(range), req.start_revision);
}

base::Result<internal::EventBatch> MemoryStore::ReadEvents(const KeyRange& range, Revision from,
                                                           size_t limit) {
  std::lock_guard<std::mutex> l(mu_);
  if (from < compacted_) return internal::CompactedError(from, compacted_);
  internal::EventBatch batch;
  batch.upto = revision_;
  auto it = std::lower_bound(log_.begin(), log_.end(), from,
                             [](const Event& e, Revision r) { return e.kv.mod_revision < r; });
  for (; it != log_.end(); ++it) {
    Revision rev = it->kv.mod_revision;
    if (batch.events.size() >= limit && batch.events.back().kv.mod_revision != rev) {
      batch.upto = batch.events.back().kv.mod_revision;
      break;
    }
    if (range.Contains(it->kv.key)) batch.events.push_back(*it);
  }
  return batch;
}

base::Status MemoryStore::Compact(Revision revision) {
  std::lock_guard<std::mutex> l(mu_);
  if (closed_) return internal::ClosedError("(memory)");
  if (revision > revision_) return internal::FutureRevisionError(revision, revision_);
  if (revision <= compacted_) return internal::CompactedError(revision, compacted_);
  CompactLocked(revision);
  return base::Status::Ok();
}

void MemoryStore::MaybeAutoCompact() {
  Revision retain = options_.retain_revisions;
  if (retain <= 0) return;
  // Compact in steps of a tenth of the window so the cost is amortised.
  if (revision_ - compacted_ >= retain + std::max<Revision>(retain / 10, 1)) {
    CompactLocked(revision_ - retain);
  }
}

void MemoryStore::CompactLocked(Revision rev) {
  for (auto it = keys_.begin(); it != keys_.end();) {
    std::vector<Record>& h = it->second;
    // Keep the last record at or before `rev` (the state at `rev`) unless it is a delete.
    auto keep = std::upper_bound(h.begin(), h.end(), rev,
                                 [](Revision v, const Record& r) { return v < r.rev; });
    if (keep != h.begin()) {
      auto last = std::prev(keep);
      if (last->deleted && last->rev < rev) ++last;
      h.erase(h.begin(), last);
    }
    it = h.empty() ? keys_.erase(it) : std::next(it);
  }
  while (!log_.empty() && log_.front().kv.mod_revision < rev) log_.pop_front();
  compacted_ = rev;
}

}  // namespace

std::unique_ptr<Store> NewMemoryStore(const Options& options) {
  return std::make_unique<MemoryStore>(options);
}

}  // namespace fjord::store
