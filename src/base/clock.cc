#include "base/clock.h"

namespace fjord::base {
namespace {

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override {
    return std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now());
  }
  std::chrono::system_clock::time_point WallNow() const override {
    return std::chrono::system_clock::now();
  }
};

}  // namespace

Clock& Clock::Real() {
  static SystemClock clock;
  return clock;
}

}  // namespace fjord::base
