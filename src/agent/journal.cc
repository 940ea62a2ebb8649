// Reading a unit's journal.log (written by its shims, rotated once to journal.log.1).
#include <fstream>

#include "agent/internal.h"

namespace fjord::agent {

std::vector<std::string> TailLines(const fs::path& log, size_t lines) {
  std::deque<std::string> tail;
  for (const fs::path& f : {fs::path(log.string() + ".1"), log}) {
    std::ifstream in(f);
    std::string line;
    while (std::getline(in, line)) {
      tail.push_back(std::move(line));
      if (tail.size() > lines) tail.pop_front();
    }
  }
  return {tail.begin(), tail.end()};
}

}  // namespace fjord::agent
