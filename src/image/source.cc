#include "image/source.h"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "image/digest.h"
#include "image/fs.h"
#include "image/manifest.h"
#include "image/reference.h"

namespace fjord::image {

namespace {

constexpr size_t kMaxJsonBytes = 16 << 20;
constexpr int kMaxIndexDepth = 4;

bool Exists(int dir_fd, const char* name) { return ::faccessat(dir_fd, name, F_OK, 0) == 0; }

std::string HostArchitecture() {
  struct utsname u;
  if (::uname(&u) != 0) return "";
  std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  return m;
}

std::string BlobPath(std::string_view digest) {
  return "blobs/sha256/" + std::string(DigestHex(digest));
}

// Reads a blob named by a descriptor and checks its digest and size.
base::Result<std::string> ReadVerifiedBlob(int dir_fd, const Descriptor& d) {
  std::string path = BlobPath(d.digest);
  FJORD_ASSIGN_OR_RETURN(std::string text, ReadFileBeneath(dir_fd, path, kMaxJsonBytes));
  std::string got = Sha256Digest(text);
  if (got != d.digest) {
    return base::InvalidArgument("blob " + path + ": digest mismatch: expected " + d.digest +
                                 ", got " + got + " (the blob is corrupted or was modified)");
  }
  if (d.size >= 0 && static_cast<int64_t>(text.size()) != d.size) {
    return base::InvalidArgument("blob " + path + ": size " + std::to_string(text.size()) +
                                 " does not match the descriptor's " + std::to_string(d.size));
  }
  return text;
}

base::Result<std::string> CanonicalName(std::string_view name, std::string_view where) {
  auto ref = ParseReference(name);
  if (!ref.ok()) return ref.status().Wrap(where);
  return ref->String();
}

base::Result<std::vector<ImagePlan>> ReadDocker(int dir_fd) {
  FJORD_ASSIGN_OR_RETURN(std::string text, ReadFileBeneath(dir_fd, "manifest.json", kMaxJsonBytes));
  FJORD_ASSIGN_OR_RETURN(auto entries, ParseDockerManifest(text, "manifest.json"));
  if (entries.empty()) return base::InvalidArgument("manifest.json lists no images");
  std::vector<ImagePlan> plans;
  for (const auto& e : entries) {
    ImagePlan plan;
    plan.config_path = e.config;
    for (const auto& layer : e.layers) plan.layers.push_back({layer, "", -1});
    for (const auto& tag : e.repo_tags) {
      FJORD_ASSIGN_OR_RETURN(std::string name, CanonicalName(tag, "manifest.json: RepoTags"));
      plan.names.push_back(std::move(name));
    }
    plans.push_back(std::move(plan));
  }
  return plans;
}

// An index entry's names: containerd's full-name annotation, else the OCI ref.name when it is
// a full reference (a bare tag like "latest" names no repository, so it is not used).
base::Result<std::vector<std::string>> OciNames(const Descriptor& d) {
  std::vector<std::string> names;
  for (const char* key : {"io.containerd.image.name", "org.opencontainers.image.ref.name"}) {
    auto it = d.annotations.find(key);
    if (it == d.annotations.end()) continue;
    if (it->second.find_first_of(":/") == std::string::npos) continue;
    FJORD_ASSIGN_OR_RETURN(std::string name,
                           CanonicalName(it->second, std::string("index.json: annotation ") + key));
    names.push_back(std::move(name));
    break;
  }
  return names;
}

bool IsIndexType(std::string_view media_type) {
  return media_type == kOciIndexMediaType || media_type == kDockerListMediaType;
}

// Follows nested indexes (multi-platform images) to the manifest for this host.
base::Result<Descriptor> PickManifest(int dir_fd, Descriptor d, int depth) {
  while (IsIndexType(d.media_type)) {
    if (++depth > kMaxIndexDepth) return base::InvalidArgument("image indexes nest too deeply");
    FJORD_ASSIGN_OR_RETURN(std::string text, ReadVerifiedBlob(dir_fd, d));
    FJORD_ASSIGN_OR_RETURN(auto children, ParseOciIndex(text, BlobPath(d.digest)));
    const Descriptor* pick = nullptr;
    std::string arch = HostArchitecture();
    for (const auto& c : children) {
      if ((c.os.empty() || c.os == "linux") && (c.architecture.empty() || c.architecture == arch)) {
        pick = &c;
        break;
      }
    }
    if (pick == nullptr) {
      return base::InvalidArgument(BlobPath(d.digest) + ": no manifest for linux/" + arch);
    }
    d = *pick;
  }
  return d;
}

base::Result<std::vector<ImagePlan>> ReadOci(int dir_fd) {
  FJORD_ASSIGN_OR_RETURN(std::string text, ReadFileBeneath(dir_fd, "index.json", kMaxJsonBytes));
  FJORD_ASSIGN_OR_RETURN(auto manifests, ParseOciIndex(text, "index.json"));
  if (manifests.empty()) return base::InvalidArgument("index.json lists no manifests");
  std::vector<ImagePlan> plans;
  for (const auto& top : manifests) {
    ImagePlan plan;
    FJORD_ASSIGN_OR_RETURN(plan.names, OciNames(top));
    FJORD_ASSIGN_OR_RETURN(Descriptor d, PickManifest(dir_fd, top, 0));
    FJORD_ASSIGN_OR_RETURN(std::string mtext, ReadVerifiedBlob(dir_fd, d));
    FJORD_ASSIGN_OR_RETURN(OciManifest m, ParseOciManifest(mtext, BlobPath(d.digest)));
    plan.config_path = BlobPath(m.config.digest);
    plan.config_digest = m.config.digest;
    plan.config_size = m.config.size;
    for (const auto& l : m.layers) plan.layers.push_back({BlobPath(l.digest), l.digest, l.size});
    plans.push_back(std::move(plan));
  }
  return plans;
}

}  // namespace

base::Result<std::vector<ImagePlan>> ReadSource(int dir_fd, std::string_view display) {
  base::Result<std::vector<ImagePlan>> plans = base::InvalidArgument("");
  if (Exists(dir_fd, "manifest.json")) {
    plans = ReadDocker(dir_fd);
  } else if (Exists(dir_fd, "oci-layout") && Exists(dir_fd, "index.json")) {
    plans = ReadOci(dir_fd);
  } else {
    return base::InvalidArgument("no oci-layout or manifest.json in " + std::string(display) +
                                 ": not an OCI image layout or `docker save` archive");
  }
  if (!plans.ok()) return plans.status().Wrap(display);
  return plans;
}

}  // namespace fjord::image
