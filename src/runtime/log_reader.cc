#include "runtime/log_reader.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "base/fd.h"
#include "base/strings.h"

namespace fjord::runtime {

namespace fs = std::filesystem;
using base::Result;
using base::Status;
using base::UniqueFd;

std::optional<LogRecord> ParseLogRecord(std::string_view line) {
  size_t s1 = line.find(' ');
  if (s1 == std::string_view::npos) return std::nullopt;
  size_t s2 = line.find(' ', s1 + 1);
  if (s2 == std::string_view::npos || s2 + 2 > line.size()) return std::nullopt;
  std::string_view stream = line.substr(s1 + 1, s2 - s1 - 1);
  char tag = line[s2 + 1];
  if ((stream != "stdout" && stream != "stderr") || (tag != 'F' && tag != 'P')) return std::nullopt;
  if (s2 + 2 < line.size() && line[s2 + 2] != ' ') return std::nullopt;
  LogRecord r;
  r.timestamp = line.substr(0, s1);
  r.is_stderr = stream == "stderr";
  r.partial = tag == 'P';
  r.text = s2 + 3 <= line.size() ? line.substr(s2 + 3) : std::string_view();
  return r;
}

namespace {

using LineSink = std::function<void(std::string_view line)>;

// Reads from `fd` to EOF, passing complete lines (without the newline) to `on_line`; keeps a
// partial tail in `pending`.
void DrainLines(int fd, std::string& pending, const LineSink& on_line) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    pending.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      on_line(std::string_view(pending).substr(start, nl - start));
    }
    pending.erase(0, start);
  }
}

void Drain(int fd, std::string& pending, const std::function<void(const LogRecord&)>& sink) {
  DrainLines(fd, pending, [&](std::string_view line) {
    if (auto r = ParseLogRecord(line)) sink(*r);
  });
}

// The monitor's last record on an attach stream (monitor.c, SendExit):
//   "<stamp> exit F exit_code=N signal=N oom_killed=0|1"
std::optional<AttachedExit> ParseExitRecord(std::string_view line) {
  size_t s1 = line.find(' ');
  if (s1 == std::string_view::npos || line.substr(s1 + 1, 7) != "exit F ") return std::nullopt;
  AttachedExit e;
  int fields = 0;
  for (std::string_view field : base::SplitWhitespace(line.substr(s1 + 8))) {
    size_t eq = field.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = field.substr(0, eq);
    int value = std::atoi(std::string(field.substr(eq + 1)).c_str());
    if (key == "exit_code") {
      e.exit_code = value;
      fields++;
    } else if (key == "signal") {
      e.signal = value;
    } else if (key == "oom_killed") {
      e.oom_killed = value != 0;
    }
  }
  if (fields == 0) return std::nullopt;
  return e;
}

ino_t InodeOf(const fs::path& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace

Result<std::optional<AttachedExit>> ReadLogStream(
    int fd, const std::function<void(const LogRecord&)>& sink) {
  std::optional<AttachedExit> exit;
  auto on_line = [&](std::string_view line) {
    if (auto r = ParseLogRecord(line)) {
      sink(*r);
    } else if (auto e = ParseExitRecord(line)) {
      exit = e;
    }
  };
  std::string pending;
  DrainLines(fd, pending, on_line);
  if (!pending.empty()) on_line(pending);
  return exit;
}

Status ReadContainerLog(const fs::path& path, const std::function<bool()>* running,
                        pid_t monitor_pid, const std::function<void(const LogRecord&)>& sink) {
  // Rotated files first, oldest (highest number) first.
  int last = 0;
  while (fs::exists(path.string() + "." + std::to_string(last + 1))) last++;
  for (int i = last; i >= 1; i--) {
    UniqueFd fd(::open((path.string() + "." + std::to_string(i)).c_str(), O_RDONLY | O_CLOEXEC));
    std::string pending;
    if (fd) Drain(fd.get(), pending, sink);
  }
  UniqueFd inotify;
  if (running != nullptr) {
    inotify.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (inotify) {
      ::inotify_add_watch(inotify.get(), path.parent_path().c_str(),
                          IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE);
    }
  }
  UniqueFd pidfd;
  if (running != nullptr && monitor_pid > 0) {
    pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, monitor_pid, 0)));
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ino_t ino = fd ? InodeOf(path) : 0;
  std::string pending;
  for (;;) {
    bool was_running = running != nullptr && (*running)();
    if (fd) Drain(fd.get(), pending, sink);
    // Rotated (or created) since we opened it: finish the old file (our fd still reads it, even
    // renamed or deleted), then the files rotated after it, oldest first, then the new one.
    ino_t now = InodeOf(path);
    if (now != 0 && now != ino) {
      if (fd) Drain(fd.get(), pending, sink);
      pending.clear();
      int newer = 0;  // rotated files newer than ours: .1 .. .(k-1) where .k is ours
      for (int k = 1; fs::exists(path.string() + "." + std::to_string(k)); k++) {
        if (ino != 0 && InodeOf(path.string() + "." + std::to_string(k)) == ino) break;
        newer = k;
      }
      if (ino == 0) newer = 0;  // there was no file before: nothing was rotated past us
      for (int k = newer; k >= 1; k--) {
        UniqueFd mid(
            ::open((path.string() + "." + std::to_string(k)).c_str(), O_RDONLY | O_CLOEXEC));
        std::string mid_pending;
        if (mid) Drain(mid.get(), mid_pending, sink);
      }
      fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      ino = fd ? InodeOf(path) : 0;
      continue;
    }
    if (!was_running) break;
    struct pollfd pfds[2] = {{inotify.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
    int r = ::poll(pfds, 2, 1000);
    if (r > 0 && (pfds[0].revents & POLLIN)) {
      char evbuf[4096];
      while (::read(inotify.get(), evbuf, sizeof(evbuf)) > 0) {
      }
    }
  }
  return Status::Ok();
}

}  // namespace fjord::runtime
