#include "image/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <memory>
#include <vector>

#include "base/fd.h"
#include "base/strings.h"
#include "image/digest.h"
#include "image/fs.h"

namespace fjord::image {

namespace {

using base::ErrnoStatus;
using base::Result;
using base::Status;
using base::UniqueFd;

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr std::string_view kOverlayXattrPrefix = "trusted.overlay.";
constexpr size_t kBufSize = 1 << 16;

struct ArchiveFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveFree>;

std::string ArchiveError(archive* a) {
  const char* msg = archive_error_string(a);
  return msg != nullptr ? msg : "unknown archive error";
}

// The outer reader: raw bytes from an fd through libarchive's decompression filters ("raw"
// format), hashing both sides. The tar reader pulls decompressed bytes from it.
class Decompressor {
 public:
  explicit Decompressor(int fd) : fd_(fd), raw_buf_(kBufSize) {}

  Status Open() {
    a_.reset(archive_read_new());
    archive_read_support_filter_all(a_.get());
    archive_read_support_format_raw(a_.get());
    if (archive_read_open(a_.get(), this, nullptr, &RawRead, nullptr) != ARCHIVE_OK) {
      return base::InvalidArgument("not a readable archive: " + Error());
    }
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(a_.get(), &entry);
    if (r == ARCHIVE_EOF) {
      eof_ = true;
    } else if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return base::InvalidArgument("not a readable archive: " + Error());
    }
    return Status::Ok();
  }

  // Decompressed bytes; 0 at the end, -1 on error (see Error()).
  ssize_t Read(void* buf, size_t n) {
    if (eof_) return 0;
    la_ssize_t r = archive_read_data(a_.get(), buf, n);
    if (r < 0) return -1;
    if (r == 0) eof_ = true;
    diff_.Update(buf, static_cast<size_t>(r));
    diff_size_ += static_cast<uint64_t>(r);
    return r;
  }

  // Consumes the rest of both streams so the digests cover every byte.
  Status Drain() {
    std::vector<char> buf(kBufSize);
    for (;;) {
      ssize_t n = Read(buf.data(), buf.size());
      if (n < 0) return base::InvalidArgument("corrupted data: " + Error());
      if (n == 0) break;
    }
    for (;;) {
      const void* unused;
      la_ssize_t n = RawRead(nullptr, this, &unused);
      if (n < 0) return ErrnoStatus("read", read_errno_);
      if (n == 0) break;
    }
    return Status::Ok();
  }

  void Fill(UnpackResult& out) {
    out.raw_digest = raw_.Finish();
    out.raw_size = raw_size_;
    out.diff_digest = diff_.Finish();
  }

  std::string Error() {
    if (read_errno_ != 0) return ErrnoStatus("read", read_errno_).ToString();
    return ArchiveError(a_.get());
  }

 private:
  static la_ssize_t RawRead(archive* a, void* self_ptr, const void** buf) {
    auto* self = static_cast<Decompressor*>(self_ptr);
    ssize_t n;
    do {
      n = ::read(self->fd_, self->raw_buf_.data(), self->raw_buf_.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      self->read_errno_ = errno;
      if (a != nullptr) archive_set_error(a, errno, "read failed");
      return -1;
    }
    self->raw_.Update(self->raw_buf_.data(), static_cast<size_t>(n));
    self->raw_size_ += static_cast<uint64_t>(n);
    *buf = self->raw_buf_.data();
    return n;
  }

  int fd_;
  std::vector<char> raw_buf_;
  ArchivePtr a_;
  bool eof_ = false;
  int read_errno_ = 0;
  Sha256 raw_, diff_;
  uint64_t raw_size_ = 0, diff_size_ = 0;
};

struct TarSource {
  Decompressor* dec;
  std::vector<char> buf = std::vector<char>(kBufSize);
};

la_ssize_t TarRead(archive* a, void* self_ptr, const void** buf) {
  auto* src = static_cast<TarSource*>(self_ptr);
  ssize_t n = src->dec->Read(src->buf.data(), src->buf.size());
  if (n < 0) {
    archive_set_error(a, EIO, "%s", src->dec->Error().c_str());
    return -1;
  }
  *buf = src->buf.data();
  return n;
}

std::pair<std::string, std::string> SplitParent(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

// Removes whatever is at `name` so an entry can take its place (tar semantics: later wins).
Status ClearName(int dir_fd, const std::string& name) { return RemoveTreeAt(dir_fd, name); }

class Extractor {
 public:
  Extractor(int root_fd, const UnpackOptions& options)
      : root_fd_(root_fd), options_(options), chown_(options.layer && ::geteuid() == 0) {}

  Status Apply(archive* a, archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    if (raw == nullptr) return base::InvalidArgument("an entry has no readable path name");
    FJORD_ASSIGN_OR_RETURN(std::string path, CleanEntryPath(raw));
    return ApplyAt(a, e, path).Wrap("entry " + base::QuoteForDisplay(raw));
  }

  // Directory times are set last: creating children would change them again.
  void Finish() {
    for (auto& [path, times] : dir_times_) {
      auto fd = OpenBeneath(root_fd_, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      if (fd.ok()) (void)::futimens(fd->get(), times.data());
    }
  }

  uint64_t file_bytes() const { return file_bytes_; }

 private:
  Status ApplyAt(archive* a, archive_entry* e, const std::string& path) {
    if (path.empty()) {  // the root itself, e.g. "./": only its metadata applies
      if (archive_entry_filetype(e) != AE_IFDIR) {
        return base::InvalidArgument("the archive root must be a directory");
      }
      return FinishDir(root_fd_, e, "");
    }
    auto [parent, base_name] = SplitParent(path);
    FJORD_ASSIGN_OR_RETURN(UniqueFd dir, OpenParent(parent));
    if (options_.layer && base::StartsWith(base_name, kWhiteoutPrefix)) {
      return Whiteout(dir.get(), base_name);
    }
    if (const char* target = archive_entry_hardlink(e)) {
      return HardLink(dir.get(), base_name, target);
    }
    switch (archive_entry_filetype(e)) {
      case AE_IFDIR:
        return Directory(dir.get(), base_name, e, path);
      case AE_IFREG:
        return RegularFile(a, dir.get(), base_name, e);
      case AE_IFLNK:
        return Symlink(dir.get(), base_name, e);
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO:
        if (!options_.layer) {
          return base::InvalidArgument("device nodes and fifos do not belong in an image archive");
        }
        return Node(dir.get(), base_name, e);
      case AE_IFSOCK:
        return Status::Ok();  // sockets are runtime state; docker skips them too
      default:
        return base::InvalidArgument("unsupported entry type");
    }
  }

  // Opens the parent directory beneath the root, creating missing components (0755) the way
  // tar does when an archive omits directory entries.
  Result<UniqueFd> OpenParent(const std::string& parent) {
    auto fd = OpenBeneath(root_fd_, parent, O_RDONLY | O_DIRECTORY);
    if (fd.ok() || fd.status().sys_errno() != ENOENT) return fd;
    UniqueFd cur;
    std::string prefix;
    for (const auto& part : base::Split(parent, '/')) {
      std::string next = prefix.empty() ? part : prefix + "/" + part;
      auto sub = OpenBeneath(root_fd_, next, O_RDONLY | O_DIRECTORY);
      if (!sub.ok() && sub.status().sys_errno() == ENOENT) {
        FJORD_ASSIGN_OR_RETURN(UniqueFd p, OpenBeneath(root_fd_, prefix, O_RDONLY | O_DIRECTORY));
        if (::mkdirat(p.get(), part.c_str(), 0755) < 0 && errno != EEXIST) {
          return ErrnoStatus("mkdir " + next);
        }
        sub = OpenBeneath(root_fd_, next, O_RDONLY | O_DIRECTORY);
      }
      if (!sub.ok()) return sub.status();
      cur = std::move(*sub);
      prefix = std::move(next);
    }
    return cur;
  }

  Status Whiteout(int dir_fd, const std::string& name) {
    if (name == kOpaqueMarker) {
      if (::fsetxattr(dir_fd, "trusted.overlay.opaque", "y", 1, 0) < 0) {
        return ErrnoStatus("set trusted.overlay.opaque on the directory");
      }
      return Status::Ok();
    }
    if (base::StartsWith(name, kWhiteoutMetaPrefix)) return Status::Ok();  // aufs metadata
    std::string hidden = name.substr(kWhiteoutPrefix.size());
    if (hidden.empty() || hidden == "." || hidden == "..") {
      return base::InvalidArgument("whiteout names no file");
    }
    FJORD_RETURN_IF_ERROR(ClearName(dir_fd, hidden));
    if (::mknodat(dir_fd, hidden.c_str(), S_IFCHR | 0, makedev(0, 0)) < 0) {
      return ErrnoStatus("create overlay whiteout for `" + hidden + "` (needs root)");
    }
    return Status::Ok();
  }

  Status HardLink(int dir_fd, const std::string& name, const char* raw_target) {
    FJORD_ASSIGN_OR_RETURN(std::string target, CleanEntryPath(raw_target));
    if (target.empty()) return base::InvalidArgument("hard link to the archive root");
    auto [tparent, tname] = SplitParent(target);
    auto tdir = OpenBeneath(root_fd_, tparent, O_RDONLY | O_DIRECTORY);
    if (!tdir.ok()) return tdir.status().Wrap("hard link target `" + target + "`");
    FJORD_RETURN_IF_ERROR(ClearName(dir_fd, name));
    // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink, never what it points to.
    if (::linkat(tdir->get(), tname.c_str(), dir_fd, name.c_str(), 0) < 0) {
      return ErrnoStatus("hard link to `" + target + "` (it must be earlier in the same archive)");
    }
    return Status::Ok();
  }

  Status Directory(int dir_fd, const std::string& name, archive_entry* e, const std::string& path) {
    if (::mkdirat(dir_fd, name.c_str(), 0700) < 0) {
      if (errno != EEXIST) return ErrnoStatus("mkdir");
      struct stat st;
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) return ErrnoStatus("stat");
      if (!S_ISDIR(st.st_mode)) {
        FJORD_RETURN_IF_ERROR(ClearName(dir_fd, name));
        if (::mkdirat(dir_fd, name.c_str(), 0700) < 0) return ErrnoStatus("mkdir");
      }
    }
    UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return ErrnoStatus("open directory");
    return FinishDir(fd.get(), e, path);
  }

  Status FinishDir(int fd, archive_entry* e, const std::string& path) {
    FJORD_RETURN_IF_ERROR(ApplyMeta(fd, e, /*dir=*/true));
    if (options_.layer) dir_times_.emplace_back(path, Times(e));
    return Status::Ok();
  }

  Status RegularFile(archive* a, int dir_fd, const std::string& name, archive_entry* e) {
    FJORD_RETURN_IF_ERROR(ClearName(dir_fd, name));
    UniqueFd fd(
        ::openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return ErrnoStatus("create file");
    for (;;) {
      const void* buf;
      size_t size;
      la_int64_t offset;
      int r = archive_read_data_block(a, &buf, &size, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        return base::InvalidArgument("corrupted archive: " + ArchiveError(a));
      }
      const char* p = static_cast<const char*>(buf);
      while (size > 0) {
        ssize_t n = ::pwrite(fd.get(), p, size, offset);
        if (n < 0) {
          if (errno == EINTR) continue;
          return ErrnoStatus("write");
        }
        p += n;
        offset += n;
        size -= static_cast<size_t>(n);
      }
    }
    if (archive_entry_size_is_set(e)) {
      // Sparse files end in a hole that no data block covers.
      if (::ftruncate(fd.get(), archive_entry_size(e)) < 0) return ErrnoStatus("truncate");
      file_bytes_ += static_cast<uint64_t>(archive_entry_size(e));
    }
    FJORD_RETURN_IF_ERROR(ApplyMeta(fd.get(), e, /*dir=*/false));
    if (options_.layer) {
      auto times = Times(e);
      if (::futimens(fd.get(), times.data()) < 0) return ErrnoStatus("set times");
    }
    return Status::Ok();
  }

  Status Symlink(int dir_fd, const std::string& name, archive_entry* e) {
    const char* target = archive_entry_symlink(e);
    if (target == nullptr) return base::InvalidArgument("symlink without a target");
    FJORD_RETURN_IF_ERROR(ClearName(dir_fd, name));
    // The target is stored as data; it is never followed while unpacking.
    if (::symlinkat(target, dir_fd, name.c_str()) < 0) return ErrnoStatus("symlink");
    return NameMeta(dir_fd, name, e, /*chmod=*/false);
  }

  Status Node(int dir_fd, const std::string& name, archive_entry* e) {
    FJORD_RETURN_IF_ERROR(ClearName(dir_fd, name));
    mode_t type = archive_entry_filetype(e);
    if (::mknodat(dir_fd, name.c_str(), type | 0600, archive_entry_rdev(e)) < 0) {
      return ErrnoStatus("mknod (needs root)");
    }
    return NameMeta(dir_fd, name, e, /*chmod=*/true);
  }

  // Owner, mode and times by name, for entries that cannot be opened (symlinks, devices).
  Status NameMeta(int dir_fd, const std::string& name, archive_entry* e, bool chmod) {
    if (chown_ && ::fchownat(dir_fd, name.c_str(), static_cast<uid_t>(archive_entry_uid(e)),
                             static_cast<gid_t>(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW) < 0) {
      return ErrnoStatus("chown");
    }
    if (chmod && ::fchmodat(dir_fd, name.c_str(), archive_entry_perm(e) & 07777, 0) < 0) {
      return ErrnoStatus("chmod");
    }
    if (options_.layer) {
      auto times = Times(e);
      if (::utimensat(dir_fd, name.c_str(), times.data(), AT_SYMLINK_NOFOLLOW) < 0) {
        return ErrnoStatus("set times");
      }
    }
    return Status::Ok();
  }

  // Order matters: chown clears setuid bits and security.capability, so it goes first.
  Status ApplyMeta(int fd, archive_entry* e, bool dir) {
    if (chown_ && ::fchown(fd, static_cast<uid_t>(archive_entry_uid(e)),
                           static_cast<gid_t>(archive_entry_gid(e))) < 0) {
      return ErrnoStatus("chown");
    }
    mode_t mode = archive_entry_perm(e) & 07777;
    if (!options_.layer) mode = dir ? 0755 : ((mode & 0111) ? 0755 : 0644);
    if (::fchmod(fd, mode) < 0) return ErrnoStatus("chmod");
    if (!options_.layer) return Status::Ok();
    archive_entry_xattr_reset(e);
    const char* xname;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(e, &xname, &value, &size) == ARCHIVE_OK) {
      // Overlay's own attributes would change how layers stack (redirects, opaque dirs).
      if (base::StartsWith(xname, kOverlayXattrPrefix)) continue;
      if (::fsetxattr(fd, xname, value, size, 0) < 0 && errno != ENOTSUP) {
        return ErrnoStatus(std::string("set xattr ") + xname);
      }
    }
    return Status::Ok();
  }

  static std::array<timespec, 2> Times(archive_entry* e) {
    timespec mtime{archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
    timespec atime = mtime;
    if (archive_entry_atime_is_set(e)) {
      atime = {archive_entry_atime(e), archive_entry_atime_nsec(e)};
    }
    return {atime, mtime};
  }

  int root_fd_;
  UnpackOptions options_;
  bool chown_;
  uint64_t file_bytes_ = 0;
  std::vector<std::pair<std::string, std::array<timespec, 2>>> dir_times_;
};

}  // namespace

Result<std::string> CleanEntryPath(std::string_view raw) {
  auto bad = [&](std::string_view why) {
    return base::InvalidArgument("path " + base::QuoteForDisplay(raw) + " " + std::string(why));
  };
  if (!raw.empty() && raw.front() == '/')
    return bad("is absolute; image archives hold relative paths");
  std::string out;
  for (const auto& part : base::Split(raw, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") return bad("contains `..`: it would leave the archive root");
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

Result<UnpackResult> Unpack(int src_fd, int dest_dir_fd, const UnpackOptions& options) {
  Decompressor dec(src_fd);
  FJORD_RETURN_IF_ERROR(dec.Open());
  TarSource src{&dec};
  ArchivePtr tar(archive_read_new());
  archive_read_support_format_tar(tar.get());
  archive_read_support_format_empty(tar.get());
  if (archive_read_open(tar.get(), &src, nullptr, &TarRead, nullptr) != ARCHIVE_OK) {
    return base::InvalidArgument("not a tar archive: " + ArchiveError(tar.get()));
  }
  Extractor ex(dest_dir_fd, options);
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(tar.get(), &e);
    if (r == ARCHIVE_EOF) break;
    // ARCHIVE_RETRY (a damaged header) sorts above ARCHIVE_WARN; it is an error here too.
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return base::InvalidArgument("corrupted tar: " + ArchiveError(tar.get()));
    }
    FJORD_RETURN_IF_ERROR(ex.Apply(tar.get(), e));
  }
  ex.Finish();
  FJORD_RETURN_IF_ERROR(dec.Drain());
  UnpackResult out;
  dec.Fill(out);
  out.file_bytes = ex.file_bytes();
  return out;
}

Result<std::string> RawDigest(int src_fd) {
  Sha256 hash;
  std::vector<char> buf(kBufSize);
  for (;;) {
    ssize_t n = ::read(src_fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read");
    }
    if (n == 0) break;
    hash.Update(buf.data(), static_cast<size_t>(n));
  }
  return hash.Finish();
}

Result<UnpackResult> DigestBlob(int src_fd) {
  Decompressor dec(src_fd);
  FJORD_RETURN_IF_ERROR(dec.Open());
  FJORD_RETURN_IF_ERROR(dec.Drain());
  UnpackResult out;
  dec.Fill(out);
  return out;
}

}  // namespace fjord::image
