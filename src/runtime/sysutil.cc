#include "runtime/sysutil.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "base/fd.h"

namespace fjord::runtime {

using base::ErrnoStatus;
using base::Result;
using base::Status;
using base::UniqueFd;

Result<std::string> ReadFile(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open " + path.string());
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + path.string());
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status WriteExisting(const std::filesystem::path& path, std::string_view data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open " + path.string());
  ssize_t n = ::write(fd.get(), data.data(), data.size());
  if (n < 0) return ErrnoStatus("write `" + std::string(data) + "` to " + path.string());
  return Status::Ok();
}

Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data) {
  std::filesystem::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return ErrnoStatus("create " + tmp.string());
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      ssize_t n = ::write(fd.get(), p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        Status st = ErrnoStatus("write " + tmp.string());
        ::unlink(tmp.c_str());
        return st;
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) < 0) {
    Status st = ErrnoStatus("rename " + tmp.string() + " to " + path.string());
    ::unlink(tmp.c_str());
    return st;
  }
  return Status::Ok();
}

std::optional<uint64_t> ProcessStartTime(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return std::nullopt;
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  size_t close = stat->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  const char* p = stat->c_str() + close + 2;
  // Fields from 3 (state) on; start time is field 22.
  int field = 3;
  while (*p != '\0' && field < 22) {
    if (*p == ' ') field++;
    p++;
  }
  char* end = nullptr;
  unsigned long long v = std::strtoull(p, &end, 10);
  if (end == p) return std::nullopt;
  // A zombie is as good as gone for our purposes.
  if (stat->size() > close + 2 && (*stat)[close + 2] == 'Z') return std::nullopt;
  return v;
}

bool ProcessAlive(pid_t pid, uint64_t start_time) {
  auto st = ProcessStartTime(pid);
  return st.has_value() && *st == start_time;
}

std::string RandomId() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 15]);
  }
  return id;
}

}  // namespace fjord::runtime
