// Clock: the one way fjord code reads time, so tests can advance a fake clock instead of
// sleeping. SystemClock is thread-safe; FakeClock is thread-safe (atomic).
#pragma once

#include <atomic>
#include <chrono>

namespace fjord::base {

class Clock {
 public:
  using Duration = std::chrono::nanoseconds;
  using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

  virtual ~Clock() = default;
  // Monotonic time, for timeouts and intervals.
  virtual TimePoint Now() const = 0;
  // Wall-clock time, for timestamps shown to people and stored.
  virtual std::chrono::system_clock::time_point WallNow() const = 0;

  // The process-wide real clock.
  static Clock& Real();
};

class FakeClock final : public Clock {
 public:
  TimePoint Now() const override { return TimePoint(Duration(mono_ns_.load())); }
  std::chrono::system_clock::time_point WallNow() const override {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            Duration(wall_ns_.load())));
  }
  void Advance(Duration d) {
    mono_ns_ += d.count();
    wall_ns_ += d.count();
  }

 private:
  std::atomic<long long> mono_ns_{1'000'000'000};
  std::atomic<long long> wall_ns_{1'700'000'000'000'000'000};
};

}  // namespace fjord::base
