// Feeds one input to the runtime's log parsers: as single record lines (ParseLogRecord) and as
// an attach stream (ReadLogStream). A parsed record must print back to the line it came from,
// and a stream must yield exactly the records its lines parse to.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "runtime/log_reader.h"
#include "runtime/runtime.h"

using fjord::runtime::LogRecord;

namespace {

std::string Print(const LogRecord& r) {
  return std::string(r.timestamp) + (r.is_stderr ? " stderr " : " stdout ") +
         (r.partial ? "P" : "F") + (r.text.empty() ? "" : " " + std::string(r.text));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t records = 0;
  for (const std::string& line : fjord::base::Split(text, '\n')) {
    auto r = fjord::runtime::ParseLogRecord(line);
    if (!r) continue;
    records++;
    // "t stdout F" and "t stdout F " both mean an empty line.
    std::string printed = Print(*r);
    if (printed != line && printed + " " != line) std::abort();
  }
  if (size >= 60000) return 0;  // must fit the pipe without a reader
  int fds[2];
  if (::pipe(fds) != 0) return 0;
  if (::write(fds[1], data, size) != static_cast<ssize_t>(size)) std::abort();
  ::close(fds[1]);
  size_t streamed = 0;
  auto exit = fjord::runtime::ReadLogStream(fds[0], [&](const LogRecord&) { streamed++; });
  ::close(fds[0]);
  if (!exit.ok() || streamed != records) std::abort();
  return 0;
}
