#include "image/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace fjord::image {

using base::ErrnoStatus;
using base::Result;
using base::Status;
using base::UniqueFd;

Result<UniqueFd> OpenBeneath(int dir_fd, std::string_view path, int flags, mode_t mode) {
  std::string p(path.empty() ? "." : path);
  struct open_how how;
  std::memset(&how, 0, sizeof(how));
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd;
  do {
    fd = static_cast<int>(::syscall(SYS_openat2, dir_fd, p.c_str(), &how, sizeof(how)));
  } while (fd < 0 && (errno == EINTR || errno == EAGAIN));
  if (fd < 0) {
    if (errno == EXDEV) {
      return base::InvalidArgument("path `" + p +
                                   "` leads outside its root (absolute, `..` or a symlink)");
    }
    return ErrnoStatus("open " + p);
  }
  return UniqueFd(fd);
}

Result<UniqueFd> OpenDir(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + path.string());
  return UniqueFd(fd);
}

namespace {

Result<std::string> ReadAll(int fd, const std::string& what, size_t max_bytes) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + what);
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      return base::InvalidArgument(what + ": larger than " + std::to_string(max_bytes) +
                                   " bytes, not a plausible image file");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status WriteAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + what);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> ReadFileBeneath(int dir_fd, std::string_view path, size_t max_bytes) {
  FJORD_ASSIGN_OR_RETURN(UniqueFd fd, OpenBeneath(dir_fd, path, O_RDONLY));
  return ReadAll(fd.get(), std::string(path), max_bytes);
}

Result<std::string> ReadFile(const std::filesystem::path& path, size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open " + path.string());
  return ReadAll(fd.get(), path.string(), max_bytes);
}

Status SyncDir(const std::filesystem::path& dir) {
  FJORD_ASSIGN_OR_RETURN(UniqueFd fd, OpenDir(dir));
  if (::fsync(fd.get()) < 0) return ErrnoStatus("fsync " + dir.string());
  return Status::Ok();
}

Status WriteFileAtomic(const std::filesystem::path& path, std::string_view content) {
  std::string tmp = path.string() + ".tmp." + std::to_string(::getpid());
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return ErrnoStatus("create " + tmp);
    Status st = WriteAll(fd.get(), content, tmp);
    if (st.ok() && ::fsync(fd.get()) < 0) st = ErrnoStatus("fsync " + tmp);
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) < 0) {
    Status st = ErrnoStatus("rename " + tmp + " to " + path.string());
    ::unlink(tmp.c_str());
    return st;
  }
  return SyncDir(path.parent_path());
}

Status RemoveTreeAt(int dir_fd, const std::string& name) {
  if (::unlinkat(dir_fd, name.c_str(), 0) == 0 || errno == ENOENT) return Status::Ok();
  if (errno != EISDIR) return ErrnoStatus("remove " + name);
  int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + name);
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    ::close(fd);
    return ErrnoStatus("opendir " + name);
  }
  std::vector<std::string> children;
  while (dirent* ent = ::readdir(dir)) {
    if (std::strcmp(ent->d_name, ".") != 0 && std::strcmp(ent->d_name, "..") != 0) {
      children.emplace_back(ent->d_name);
    }
  }
  Status st;
  for (const auto& child : children) {
    st = RemoveTreeAt(::dirfd(dir), child);
    if (!st.ok()) break;
  }
  ::closedir(dir);
  if (!st.ok()) return st.Wrap(name);
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT) {
    return ErrnoStatus("remove " + name);
  }
  return Status::Ok();
}

Status RemoveTree(const std::filesystem::path& path) {
  auto parent = path.parent_path();
  FJORD_ASSIGN_OR_RETURN(UniqueFd fd, OpenDir(parent.empty() ? "." : parent));
  return RemoveTreeAt(fd.get(), path.filename().string()).Wrap("in " + parent.string());
}

Result<std::filesystem::path> MakeTempDir(const std::filesystem::path& parent,
                                          std::string_view prefix) {
  std::string tmpl = (parent / std::string(prefix)).string() + "XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus("mkdtemp " + tmpl);
  return std::filesystem::path(tmpl);
}

Result<FileLock> FileLock::Acquire(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return ErrnoStatus("open lock " + path.string());
  while (::flock(fd.get(), LOCK_EX) < 0) {
    if (errno != EINTR) return ErrnoStatus("flock " + path.string());
  }
  return FileLock(std::move(fd));
}

TempDirGuard::~TempDirGuard() {
  if (!path_.empty()) (void)RemoveTree(path_);  // best effort; the next mutation sweeps tmp/
}

}  // namespace fjord::image
