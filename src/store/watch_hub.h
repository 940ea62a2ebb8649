// WatchHub: fans committed events out to watchers; shared by both backends.
//
// The backend calls Publish() once per committed revision, in revision order. The hub keeps a ring
// of recent events and pushes each event only to the watchers whose range holds its key: exact-key
// and prefix watchers are found by hash lookups on the key's prefixes, so a per-machine prefix
// watcher is never touched by other machines' writes. A watcher that starts before the ring, or
// whose buffer overflows, becomes "unsynced" and catches up from the backend's log (EventSource)
// inside its own Next(), without holding the hub lock; then it rejoins the live stream.
//
// Thread-safety: all methods are thread-safe. Lock order: backend lock -> hub lock; the hub never
// calls the EventSource while holding its lock.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/internal.h"

namespace fjord::store::internal {

struct EventBatch {
  std::vector<Event> events;  // matching events with from <= revision <= upto, in order
  Revision upto = 0;          // every matching event up to this revision is in `events`
};

// The backend's durable log, for watchers that fall behind the ring.
class EventSource {
 public:
  virtual ~EventSource() = default;
  // Matching events from revision `from` on, stopping at a revision boundary once at least
  // `limit` events were found. CompactedError if `from` is below the compacted revision.
  virtual base::Result<EventBatch> ReadEvents(const KeyRange& range, Revision from,
                                              size_t limit) = 0;
};

class HubWatcher;

class WatchHub : public std::enable_shared_from_this<WatchHub> {
 public:
  // `source` must stay valid until Close() returns. `current` is the store's revision at open.
  WatchHub(EventSource* source, Revision current, size_t ring_capacity);

  // Delivers the events of one revision `rev` (may be called with no events to advance it).
  void Publish(const std::vector<Event>& events, Revision rev);

  // A watcher from `start` (0: after the current revision). `start` may be in the future.
  std::unique_ptr<Watcher> NewWatcher(KeyRange range, Revision start);

  // Ends every watcher's stream and waits until no watcher is reading the EventSource.
  void Close();

 private:
  friend class HubWatcher;
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Index =
      std::unordered_map<std::string, std::vector<HubWatcher*>, StringHash, std::equal_to<>>;

  void Register(HubWatcher* w);
  void Unregister(HubWatcher* w);
  void Offer(HubWatcher* w, const Event& ev, std::vector<HubWatcher*>& touched);
  // Appends ring events for `w` from its next revision and marks it synced; false if the ring no
  // longer reaches back that far.
  bool SyncFromRing(HubWatcher* w);

  EventSource* source_;
  const size_t ring_capacity_;
  const size_t max_buffer_;

  std::mutex mu_;  // guards everything below and every HubWatcher's state
  std::condition_variable idle_cv_;
  bool closed_ = false;
  int readers_ = 0;    // watchers inside EventSource::ReadEvents
  Revision last_rev_;  // last published revision
  std::deque<Event> ring_;
  Revision ring_from_;  // the ring holds every event with revision >= ring_from_
  Index exact_;
  Index prefix_;
  std::map<size_t, int> prefix_lengths_;  // length -> prefix watchers with that length
  std::vector<HubWatcher*> other_;
};

}  // namespace fjord::store::internal
