// Long-polls: one thread waits on every pending poll's watcher notification and deadline.
#include <spdlog/spdlog.h>

#include "server/impl.h"

namespace fjord::server {

struct LongPolls::Poll {
  std::unique_ptr<store::Watcher> watcher;
  base::Clock::TimePoint deadline;
  http::Responder responder;
  Build build;
};

LongPolls::LongPolls(store::Store* store, base::Clock* clock) : store_(store), clock_(clock) {}

LongPolls::~LongPolls() { Stop(); }

void LongPolls::Start() {
  thread_ = std::thread([this] { Run(); });
}

void LongPolls::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::map<uint64_t, std::shared_ptr<Poll>> polls;
  {
    std::lock_guard<std::mutex> l(mu_);
    polls.swap(polls_);
  }
  for (auto& [id, p] : polls) {
    p->watcher->SetNotify({});
    p->responder.Respond(ErrorResponse(503, "server is stopping"));
  }
}

void LongPolls::Add(std::unique_ptr<store::Watcher> watcher, base::Clock::TimePoint deadline,
                    http::Responder responder, Build build) {
  auto poll =
      std::make_shared<Poll>(Poll{std::move(watcher), deadline, responder, std::move(build)});
  uint64_t id;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) {
      responder.Respond(ErrorResponse(503, "server is stopping"));
      return;
    }
    id = next_id_++;
    polls_.emplace(id, poll);
    ready_.insert(id);  // check once now: events may have arrived before the notify was set
  }
  poll->watcher->SetNotify([this, id] {
    {
      std::lock_guard<std::mutex> l(mu_);
      ready_.insert(id);
    }
    cv_.notify_one();
  });
  responder.OnCancel([this, id] {
    {
      std::lock_guard<std::mutex> l(mu_);
      ready_.insert(id);  // the thread sees the cancellation and drops the poll
    }
    cv_.notify_one();
  });
  cv_.notify_one();
}

void LongPolls::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    auto now = clock_->Now();
    auto next = now + std::chrono::seconds(1);
    std::vector<std::pair<uint64_t, std::shared_ptr<Poll>>> due;
    for (auto& [id, p] : polls_) {
      if (ready_.count(id) || p->deadline <= now) {
        due.emplace_back(id, p);
      } else {
        next = std::min(next, p->deadline);
      }
    }
    ready_.clear();
    if (due.empty()) {
      // Real time: deadlines come from the same clock in production; a fake clock in tests
      // just makes the thread re-check every few milliseconds.
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now);
      cv_.wait_for(l, std::max(wait, std::chrono::milliseconds(1)),
                   [this] { return stop_ || !ready_.empty(); });
      continue;
    }
    l.unlock();
    std::vector<uint64_t> finished;
    for (auto& [id, p] : due) {
      if (p->responder.cancelled()) {
        finished.push_back(id);
        continue;
      }
      auto events = p->watcher->Next(base::Clock::TimePoint{});
      bool expired = clock_->Now() >= p->deadline;
      if (!events.ok()) {
        // Compacted or closed: answer at once with the full state.
        p->responder.Respond(p->build(*store_, {}));
        finished.push_back(id);
      } else if (!events->empty() || expired) {
        p->responder.Respond(p->build(*store_, std::move(*events)));
        finished.push_back(id);
      }
    }
    l.lock();
    for (uint64_t id : finished) {
      auto it = polls_.find(id);
      if (it == polls_.end()) continue;
      std::shared_ptr<Poll> p = it->second;
      polls_.erase(it);
      l.unlock();
      p->watcher->SetNotify({});
      p.reset();  // destroys the watcher outside the lock
      l.lock();
    }
  }
}

}  // namespace fjord::server
