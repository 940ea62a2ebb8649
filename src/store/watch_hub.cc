#include "store/watch_hub.h"

#include <algorithm>

namespace fjord::store::internal {

namespace {

// Events a live watcher may have buffered before it is switched to catching up from the log.
constexpr size_t kMaxBufferedEvents = 16384;
// Events read from the log per catch-up step.
constexpr size_t kCatchUpBatch = 1024;

enum class Kind { kExact, kPrefix, kOther };

Kind KindOf(const KeyRange& r) {
  if (r.single) return Kind::kExact;
  if (!r.unbounded && r.end == PrefixEnd(r.start)) return Kind::kPrefix;
  if (r.unbounded && PrefixEnd(r.start) == std::string(1, '\0')) return Kind::kPrefix;
  return Kind::kOther;
}

}  // namespace

class HubWatcher final : public Watcher {
 public:
  HubWatcher(std::shared_ptr<WatchHub> hub, KeyRange range, Revision start)
      : hub_(std::move(hub)), range_(std::move(range)), kind_(KindOf(range_)), next_rev_(start) {}

  ~HubWatcher() override { hub_->Unregister(this); }

  base::Result<std::vector<Event>> Next(base::Clock::TimePoint deadline) override;
  void SetNotify(std::function<void()> fn) override {
    std::lock_guard<std::mutex> l(hub_->mu_);
    notify_ = std::move(fn);
  }

 private:
  friend class WatchHub;

  // Reads the log from next_rev_ without the hub lock; `l` is held on entry and on return.
  base::Status CatchUp(std::unique_lock<std::mutex>& l);

  std::shared_ptr<WatchHub> hub_;
  const KeyRange range_;
  const Kind kind_;
  // All below guarded by hub_->mu_.
  std::deque<Event> buffer_;
  bool synced_ = false;
  // Events with revision < next_rev_ are buffered or delivered; for a synced watcher that last
  // received an event of revision r, next_rev_ == r (later events of r may still follow).
  Revision next_rev_;
  std::function<void()> notify_;
  std::condition_variable cv_;
};

WatchHub::WatchHub(EventSource* source, Revision current, size_t ring_capacity)
    : source_(source),
      ring_capacity_(std::max<size_t>(ring_capacity, 1)),
      max_buffer_(kMaxBufferedEvents),
      last_rev_(current),
      ring_from_(current + 1) {}

std::unique_ptr<Watcher> WatchHub::NewWatcher(KeyRange range, Revision start) {
  std::lock_guard<std::mutex> l(mu_);
  if (start <= 0) start = last_rev_ + 1;
  auto w = std::make_unique<HubWatcher>(shared_from_this(), std::move(range), start);
  Register(w.get());
  // A watcher that starts inside the ring (or in the future) joins the live stream at once;
  // older starts catch up from the log in Next().
  if (start >= ring_from_) SyncFromRing(w.get());
  return w;
}

void WatchHub::Register(HubWatcher* w) {
  switch (w->kind_) {
    case Kind::kExact:
      exact_[w->range_.start].push_back(w);
      break;
    case Kind::kPrefix:
      prefix_[w->range_.start].push_back(w);
      ++prefix_lengths_[w->range_.start.size()];
      break;
    case Kind::kOther:
      other_.push_back(w);
      break;
  }
}

void WatchHub::Unregister(HubWatcher* w) {
  std::lock_guard<std::mutex> l(mu_);
  auto erase_from = [w](std::vector<HubWatcher*>& v) { std::erase(v, w); };
  switch (w->kind_) {
    case Kind::kExact: {
      auto it = exact_.find(w->range_.start);
      erase_from(it->second);
      if (it->second.empty()) exact_.erase(it);
      break;
    }
    case Kind::kPrefix: {
      auto it = prefix_.find(w->range_.start);
      erase_from(it->second);
      if (it->second.empty()) prefix_.erase(it);
      if (--prefix_lengths_[w->range_.start.size()] == 0) {
        prefix_lengths_.erase(w->range_.start.size());
      }
      break;
    }
    case Kind::kOther:
      erase_from(other_);
      break;
  }
}

bool WatchHub::SyncFromRing(HubWatcher* w) {
  if (w->next_rev_ < ring_from_) return false;
  if (w->next_rev_ <= last_rev_) {
    auto first = std::lower_bound(ring_.begin(), ring_.end(), w->next_rev_,
                                  [](const Event& e, Revision r) { return e.kv.mod_revision < r; });
    for (auto it = first; it != ring_.end(); ++it) {
      if (w->range_.Contains(it->kv.key)) w->buffer_.push_back(*it);
    }
    w->next_rev_ = last_rev_ + 1;
  }
  w->synced_ = true;
  return true;
}

void WatchHub::Offer(HubWatcher* w, const Event& ev, std::vector<HubWatcher*>& touched) {
  Revision rev = ev.kv.mod_revision;
  if (!w->synced_ || rev < w->next_rev_) return;
  if (w->buffer_.size() >= max_buffer_) {
    // Too far behind: drop the partial revision and catch up from the log from its start.
    while (!w->buffer_.empty() && w->buffer_.back().kv.mod_revision == rev) w->buffer_.pop_back();
    w->synced_ = false;
    w->next_rev_ = rev;
  } else {
    w->buffer_.push_back(ev);
    w->next_rev_ = rev;
  }
  if (touched.empty() || touched.back() != w) touched.push_back(w);
}

void WatchHub::Publish(const std::vector<Event>& events, Revision rev) {
  std::lock_guard<std::mutex> l(mu_);
  if (closed_) return;
  std::vector<HubWatcher*> touched;
  for (const Event& ev : events) {
    ring_.push_back(ev);
    const std::string& key = ev.kv.key;
    if (auto it = exact_.find(key); it != exact_.end()) {
      for (HubWatcher* w : it->second) Offer(w, ev, touched);
    }
    for (const auto& [len, count] : prefix_lengths_) {
      if (len > key.size()) break;
      if (auto it = prefix_.find(std::string_view(key).substr(0, len)); it != prefix_.end()) {
        for (HubWatcher* w : it->second) Offer(w, ev, touched);
      }
    }
    for (HubWatcher* w : other_) {
      if (w->range_.Contains(key)) Offer(w, ev, touched);
    }
  }
  last_rev_ = std::max(last_rev_, rev);
  while (ring_.size() > ring_capacity_) {
    ring_from_ = ring_.front().kv.mod_revision + 1;
    ring_.pop_front();
  }
  if (ring_.empty()) ring_from_ = last_rev_ + 1;
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (HubWatcher* w : touched) {
    w->cv_.notify_all();
    if (w->notify_) w->notify_();
  }
}

void WatchHub::Close() {
  std::unique_lock<std::mutex> l(mu_);
  closed_ = true;
  auto wake = [](const Index& index) {
    for (const auto& [key, ws] : index) {
      for (HubWatcher* w : ws) {
        w->cv_.notify_all();
        if (w->notify_) w->notify_();
      }
    }
  };
  wake(exact_);
  wake(prefix_);
  for (HubWatcher* w : other_) {
    w->cv_.notify_all();
    if (w->notify_) w->notify_();
  }
  idle_cv_.wait(l, [this] { return readers_ == 0; });
  source_ = nullptr;
}

base::Status HubWatcher::CatchUp(std::unique_lock<std::mutex>& l) {
  WatchHub& hub = *hub_;
  Revision from = next_rev_;
  ++hub.readers_;
  l.unlock();
  base::Result<EventBatch> batch = hub.source_->ReadEvents(range_, from, kCatchUpBatch);
  l.lock();
  if (--hub.readers_ == 0) hub.idle_cv_.notify_all();
  if (!batch.ok()) return batch.status();
  for (Event& ev : batch->events) buffer_.push_back(std::move(ev));
  next_rev_ = std::max(next_rev_, batch->upto + 1);
  // The log may be ahead of the hub (committed, not yet published): Offer skips what we have.
  hub.SyncFromRing(this);
  return base::Status::Ok();
}

base::Result<std::vector<Event>> HubWatcher::Next(base::Clock::TimePoint deadline) {
  std::unique_lock<std::mutex> l(hub_->mu_);
  while (true) {
    if (hub_->closed_) return base::Unavailable("watch ended: the store is closed");
    if (!buffer_.empty()) {
      std::vector<Event> out(std::make_move_iterator(buffer_.begin()),
                             std::make_move_iterator(buffer_.end()));
      buffer_.clear();
      return out;
    }
    if (!synced_) {
      FJORD_RETURN_IF_ERROR(CatchUp(l));
      continue;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::vector<Event>();
    cv_.wait_until(l, deadline);
  }
}

}  // namespace fjord::store::internal
