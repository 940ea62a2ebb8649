#include "image/image_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>

#include "base/clock.h"
#include "base/state_root.h"
#include "base/strings.h"
#include "image/digest.h"
#include "image/fs.h"
#include "image/manifest.h"
#include "image/paths.h"
#include "image/reference.h"
#include "image/source.h"
#include "image/unpack.h"

namespace fjord::image {

namespace {

using base::ErrnoStatus;
using base::Result;
using base::Status;
using base::UniqueFd;
namespace fs = std::filesystem;

constexpr size_t kMaxJsonBytes = 16 << 20;

Status Mismatch(std::string_view what, std::string_view want, std::string_view got) {
  return base::InvalidArgument(std::string(what) + ": digest mismatch: expected " +
                               std::string(want) + ", got " + std::string(got) +
                               " (the blob is corrupted or was modified)");
}

std::vector<std::string> DirNames(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& ent : fs::directory_iterator(dir, ec)) out.push_back(ent.path().filename());
  return out;
}

class LocalImageStore final : public ImageStore {
 public:
  explicit LocalImageStore(fs::path root) : paths_(std::move(root)) {}

  Result<Image> Import(const fs::path& source, std::optional<std::string> name) override;
  Result<Image> Resolve(std::string_view ref) const override;
  Result<std::vector<Image>> List() const override;
  Status Remove(std::string_view ref) override;

 private:
  struct Match {
    size_t index;
    std::string name;  // the reference matched, empty when matched by id
  };

  Result<FileLock> LockAndSweep();
  Result<std::vector<IndexEntry>> LoadIndex() const;
  Status SaveIndex(const std::vector<IndexEntry>& index);
  Result<Image> ToImage(const IndexEntry& e) const;
  Result<Match> Find(const std::vector<IndexEntry>& index, std::string_view ref) const;
  Result<IndexEntry> ImportOne(int dir_fd, const ImagePlan& plan);
  Result<uint64_t> EnsureLayer(int dir_fd, const LayerPlan& plan, const std::string& diff_id);
  Status UnpackLayer(int dir_fd, const LayerPlan& plan, const std::string& diff_id,
                     const fs::path& tmp, uint64_t* size);
  Status CollectGarbage(const std::vector<IndexEntry>& index);

  StorePaths paths_;
};

Result<FileLock> LocalImageStore::LockAndSweep() {
  FJORD_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(paths_.lock));
  // Under the lock nobody else is mid-mutation, so anything in tmp/ is a crashed leftover.
  FJORD_ASSIGN_OR_RETURN(UniqueFd tmp, OpenDir(paths_.tmp));
  for (const auto& name : DirNames(paths_.tmp)) {
    FJORD_RETURN_IF_ERROR(RemoveTreeAt(tmp.get(), name).Wrap("clean " + paths_.tmp.string()));
  }
  return lock;
}

Result<std::vector<IndexEntry>> LocalImageStore::LoadIndex() const {
  auto text = ReadFile(paths_.index, kMaxJsonBytes);
  if (!text.ok()) {
    if (text.status().sys_errno() == ENOENT) return std::vector<IndexEntry>{};
    return text.status();
  }
  return ParseStoreIndex(*text, paths_.index.string());
}

Status LocalImageStore::SaveIndex(const std::vector<IndexEntry>& index) {
  return WriteFileAtomic(paths_.index, SerializeStoreIndex(index));
}

Result<Image> LocalImageStore::ToImage(const IndexEntry& e) const {
  fs::path blob = paths_.Blob(e.id);
  FJORD_ASSIGN_OR_RETURN(std::string text, ReadFile(blob, kMaxJsonBytes));
  FJORD_ASSIGN_OR_RETURN(ParsedConfig parsed, ParseImageConfig(text, blob.string()));
  Image image;
  image.id = e.id;
  image.names = e.names;
  // A layer listed twice (docker images repeat empty layers) is kept at its last position
  // only: re-applying a changeset redoes all of its earlier effects, and overlayfs would
  // otherwise get the same lowerdir twice.
  for (size_t i = 0; i < e.layers.size(); ++i) {
    if (std::find(e.layers.begin() + static_cast<long>(i) + 1, e.layers.end(), e.layers[i]) ==
        e.layers.end()) {
      image.layers.push_back(paths_.LayerFs(e.layers[i]));
    }
  }
  image.config = std::move(parsed.config);
  image.size_bytes = e.size_bytes;
  image.created_unix = e.created_unix;
  return image;
}

Result<LocalImageStore::Match> LocalImageStore::Find(const std::vector<IndexEntry>& index,
                                                     std::string_view ref) const {
  auto parsed = ParseReference(ref);
  std::string shown(ref);
  if (parsed.ok()) {
    shown = parsed->String();
    for (size_t i = 0; i < index.size(); ++i) {
      const auto& names = index[i].names;
      if (parsed->digest.empty()) {
        if (std::find(names.begin(), names.end(), shown) != names.end()) return Match{i, shown};
      } else if (index[i].id == parsed->digest) {
        return Match{i, ""};
      }
    }
  }
  if (LooksLikeId(ref)) {
    std::string_view hex = base::StartsWith(ref, kSha256Prefix) ? DigestHex(ref) : ref;
    std::vector<size_t> hits;
    for (size_t i = 0; i < index.size(); ++i) {
      if (base::StartsWith(DigestHex(index[i].id), hex)) hits.push_back(i);
    }
    if (hits.size() == 1) return Match{hits[0], ""};
    if (hits.size() > 1) {
      std::string ids;
      for (size_t i : hits) ids += (ids.empty() ? "" : ", ") + ShortId(index[i].id);
      return base::InvalidArgument("image id prefix `" + std::string(ref) +
                                   "` is ambiguous: " + "it matches " + ids + "; give more digits");
    }
  } else if (!parsed.ok()) {
    return parsed.status();
  }
  return base::NotFound("no image named `" + shown + "`; `fjord image ls` lists them");
}

Result<Image> LocalImageStore::Resolve(std::string_view ref) const {
  FJORD_ASSIGN_OR_RETURN(auto index, LoadIndex());
  FJORD_ASSIGN_OR_RETURN(Match m, Find(index, ref));
  return ToImage(index[m.index]);
}

Result<std::vector<Image>> LocalImageStore::List() const {
  FJORD_ASSIGN_OR_RETURN(auto index, LoadIndex());
  std::vector<Image> out;
  for (const auto& e : index) {
    auto image = ToImage(e);
    // A concurrent `rm` may delete a config after we read the index; that image is gone.
    if (!image.ok() && image.status().sys_errno() == ENOENT) continue;
    if (!image.ok()) return image.status();
    out.push_back(std::move(*image));
  }
  return out;
}

Status LocalImageStore::UnpackLayer(int dir_fd, const LayerPlan& plan, const std::string& diff_id,
                                    const fs::path& tmp, uint64_t* size) {
  auto blob = OpenBeneath(dir_fd, plan.path, O_RDONLY);
  if (!blob.ok()) return blob.status();
  if (::mkdirat(AT_FDCWD, (tmp / "fs").c_str(), 0755) < 0) return ErrnoStatus("mkdir layer fs");
  FJORD_ASSIGN_OR_RETURN(UniqueFd fs_fd, OpenDir(tmp / "fs"));
  auto result = Unpack(blob->get(), fs_fd.get(), UnpackOptions{.layer = true});
  if (!result.ok()) {
    // A corrupted blob usually surfaces as a broken tar; name the digest that is wrong instead.
    if (::lseek(blob->get(), 0, SEEK_SET) == 0) {
      if (!plan.blob_digest.empty()) {
        auto raw = RawDigest(blob->get());
        if (raw.ok() && *raw != plan.blob_digest) return Mismatch("blob", plan.blob_digest, *raw);
      } else if (auto d = DigestBlob(blob->get()); d.ok() && d->diff_digest != diff_id) {
        return Mismatch("uncompressed content", diff_id, d->diff_digest);
      }
    }
    return result.status();
  }
  if (!plan.blob_digest.empty() && result->raw_digest != plan.blob_digest) {
    return Mismatch("blob", plan.blob_digest, result->raw_digest);
  }
  if (plan.blob_size >= 0 && result->raw_size != static_cast<uint64_t>(plan.blob_size)) {
    return base::InvalidArgument("size " + std::to_string(result->raw_size) +
                                 " does not match the manifest's " +
                                 std::to_string(plan.blob_size));
  }
  if (result->diff_digest != diff_id) {
    return Mismatch("uncompressed content (config rootfs.diff_ids)", diff_id, result->diff_digest);
  }
  *size = result->file_bytes;
  FJORD_RETURN_IF_ERROR(WriteFileAtomic(tmp / "size", std::to_string(*size) + "\n"));
  // One syncfs instead of an fsync per file: the layer must be durable before it is renamed in.
  if (::syncfs(fs_fd.get()) < 0) return ErrnoStatus("syncfs");
  return Status::Ok();
}

Result<uint64_t> LocalImageStore::EnsureLayer(int dir_fd, const LayerPlan& plan,
                                              const std::string& diff_id) {
  fs::path final_dir = paths_.Layer(diff_id);
  if (auto size = ReadFile(paths_.LayerSize(diff_id), 64); size.ok()) {
    return std::strtoull(size->c_str(), nullptr, 10);  // already unpacked for another image
  }
  FJORD_ASSIGN_OR_RETURN(fs::path tmp, MakeTempDir(paths_.tmp, "layer-"));
  TempDirGuard guard(tmp);
  // mkdtemp makes it 0700; user-namespaced containers must still traverse to the layer.
  if (::chmod(tmp.c_str(), 0755) < 0) return ErrnoStatus("chmod " + tmp.string());
  uint64_t size = 0;
  FJORD_RETURN_IF_ERROR(UnpackLayer(dir_fd, plan, diff_id, tmp, &size).Wrap("layer " + plan.path));
  // A leftover without a size file (impossible via rename, but cheap to handle) is replaced.
  FJORD_RETURN_IF_ERROR(RemoveTree(final_dir));
  if (::rename(tmp.c_str(), final_dir.c_str()) < 0) {
    return ErrnoStatus("rename " + tmp.string() + " to " + final_dir.string());
  }
  guard.Release();
  FJORD_RETURN_IF_ERROR(SyncDir(paths_.layers));
  return size;
}

Result<IndexEntry> LocalImageStore::ImportOne(int dir_fd, const ImagePlan& plan) {
  auto text = ReadFileBeneath(dir_fd, plan.config_path, kMaxJsonBytes);
  if (!text.ok()) return text.status().Wrap("image config");
  std::string id = Sha256Digest(*text);
  if (!plan.config_digest.empty() && id != plan.config_digest) {
    return Mismatch("image config " + plan.config_path, plan.config_digest, id);
  }
  if (plan.config_size >= 0 && static_cast<int64_t>(text->size()) != plan.config_size) {
    return base::InvalidArgument("image config " + plan.config_path + ": size does not match " +
                                 "the manifest's " + std::to_string(plan.config_size));
  }
  FJORD_ASSIGN_OR_RETURN(ParsedConfig parsed, ParseImageConfig(*text, plan.config_path));
  if (!parsed.os.empty() && parsed.os != "linux") {
    return base::InvalidArgument(plan.config_path + ": the image is for `" + parsed.os +
                                 "`; fjord runs linux images");
  }
  if (parsed.diff_ids.size() != plan.layers.size()) {
    return base::InvalidArgument(
        plan.config_path + ": rootfs.diff_ids lists " + std::to_string(parsed.diff_ids.size()) +
        " layers but the manifest has " + std::to_string(plan.layers.size()));
  }
  IndexEntry entry;
  entry.id = id;
  entry.layers = parsed.diff_ids;
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    FJORD_ASSIGN_OR_RETURN(uint64_t size, EnsureLayer(dir_fd, plan.layers[i], parsed.diff_ids[i]));
    entry.size_bytes += size;
  }
  fs::path blob = paths_.Blob(id);
  if (::access(blob.c_str(), F_OK) != 0) FJORD_RETURN_IF_ERROR(WriteFileAtomic(blob, *text));
  entry.created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                           base::Clock::Real().WallNow().time_since_epoch())
                           .count();
  return entry;
}

// Adds `entry` under `names`; a name moves from whatever image had it before (docker's retag).
void Merge(std::vector<IndexEntry>& index, IndexEntry entry,
           const std::vector<std::string>& names) {
  for (auto& e : index) {
    std::erase_if(e.names, [&](const std::string& n) {
      return std::find(names.begin(), names.end(), n) != names.end();
    });
  }
  auto it = std::find_if(index.begin(), index.end(), [&](auto& e) { return e.id == entry.id; });
  if (it == index.end()) {
    entry.names = names;
    index.push_back(std::move(entry));
    return;
  }
  for (const auto& n : names) it->names.push_back(n);
}

Result<Image> LocalImageStore::Import(const fs::path& source, std::optional<std::string> name) {
  std::optional<std::string> canonical;
  if (name) {
    FJORD_ASSIGN_OR_RETURN(Reference ref, ParseReference(*name));
    canonical = ref.String();
  }
  struct stat st;
  if (::stat(source.c_str(), &st) < 0) return ErrnoStatus("image source " + source.string());
  FJORD_ASSIGN_OR_RETURN(FileLock lock, LockAndSweep());
  std::optional<TempDirGuard> staging;
  fs::path dir = source;
  if (!S_ISDIR(st.st_mode)) {
    // An image tar is staged whole: docker-save archives list files in any order.
    FJORD_ASSIGN_OR_RETURN(fs::path tmp, MakeTempDir(paths_.tmp, "source-"));
    staging.emplace(tmp);
    UniqueFd in(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return ErrnoStatus("open " + source.string());
    FJORD_ASSIGN_OR_RETURN(UniqueFd out, OpenDir(tmp));
    auto r = Unpack(in.get(), out.get(), UnpackOptions{.layer = false});
    if (!r.ok()) return r.status().Wrap("read image archive " + source.string());
    dir = tmp;
  }
  FJORD_ASSIGN_OR_RETURN(UniqueFd dir_fd, OpenDir(dir));
  FJORD_ASSIGN_OR_RETURN(auto plans, ReadSource(dir_fd.get(), source.string()));
  if (canonical && plans.size() != 1) {
    return base::InvalidArgument(source.string() + " holds " + std::to_string(plans.size()) +
                                 " images; --name can only name one");
  }
  FJORD_ASSIGN_OR_RETURN(auto index, LoadIndex());
  std::string first_id;
  for (const auto& plan : plans) {
    auto entry = ImportOne(dir_fd.get(), plan);
    if (!entry.ok()) return entry.status().Wrap(source.string());
    if (first_id.empty()) first_id = entry->id;
    Merge(index, std::move(*entry), canonical ? std::vector{*canonical} : plan.names);
  }
  FJORD_RETURN_IF_ERROR(SaveIndex(index));
  auto it = std::find_if(index.begin(), index.end(), [&](auto& e) { return e.id == first_id; });
  return ToImage(*it);
}

Status LocalImageStore::Remove(std::string_view ref) {
  FJORD_ASSIGN_OR_RETURN(FileLock lock, LockAndSweep());
  FJORD_ASSIGN_OR_RETURN(auto index, LoadIndex());
  FJORD_ASSIGN_OR_RETURN(Match m, Find(index, ref));
  auto& names = index[m.index].names;
  if (!m.name.empty()) std::erase(names, m.name);
  // By id the image goes with all its names; by name only when it was the last one.
  if (m.name.empty() || names.empty()) index.erase(index.begin() + static_cast<long>(m.index));
  FJORD_RETURN_IF_ERROR(SaveIndex(index));
  return CollectGarbage(index);
}

Status LocalImageStore::CollectGarbage(const std::vector<IndexEntry>& index) {
  std::set<std::string> layers, blobs;
  for (const auto& e : index) {
    blobs.insert(std::string(DigestHex(e.id)));
    for (const auto& l : e.layers) layers.insert(std::string(DigestHex(l)));
  }
  for (const auto& hex : DirNames(paths_.layers)) {
    if (layers.count(hex)) continue;
    // Renamed away first, so a crash mid-delete never leaves a half layer under its name.
    fs::path doomed = paths_.tmp / ("deleting-" + hex);
    if (::rename((paths_.layers / hex).c_str(), doomed.c_str()) < 0) {
      return ErrnoStatus("move layer " + hex + " out of the store");
    }
    FJORD_RETURN_IF_ERROR(RemoveTree(doomed));
  }
  for (const auto& hex : DirNames(paths_.blobs)) {
    if (!blobs.count(hex) && ::unlink((paths_.blobs / hex).c_str()) < 0 && errno != ENOENT) {
      return ErrnoStatus("remove blob " + hex);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<ImageStore>> ImageStore::Open(const fs::path& root) {
  StorePaths paths(root);
  for (const auto& dir : {paths.blobs, paths.layers, paths.tmp}) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return base::ErrnoStatus("create image store directory " + dir.string(), ec.value());
  }
  return std::unique_ptr<ImageStore>(std::make_unique<LocalImageStore>(root));
}

}  // namespace fjord::image

namespace fjord::image {

std::filesystem::path ImageStoreDir(const std::filesystem::path& fjord_root) {
  return base::StateRoot(fjord_root) / "images";
}

}  // namespace fjord::image
