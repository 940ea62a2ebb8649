#include "image/testing.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "image/digest.h"

namespace fjord::image::testing {

namespace {

void Check(int r, archive* a, const char* what) {
  if (r != ARCHIVE_OK) {
    throw std::runtime_error(std::string(what) + ": " +
                             (archive_error_string(a) ? archive_error_string(a) : "?"));
  }
}

struct Writer {
  std::string out;
  static la_ssize_t Write(archive*, void* self, const void* buf, size_t n) {
    static_cast<Writer*>(self)->out.append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  }
};

void AddFilter(archive* a, Compression c) {
  if (c == Compression::kGzip) Check(archive_write_add_filter_gzip(a), a, "gzip");
  if (c == Compression::kZstd) Check(archive_write_add_filter_zstd(a), a, "zstd");
}

std::string Hex(const std::string& data) { return std::string(DigestHex(Sha256Digest(data))); }

}  // namespace

std::string MakeTar(const std::vector<TarEntry>& entries) {
  Writer w;
  archive* a = archive_write_new();
  Check(archive_write_set_format_pax_restricted(a), a, "format");
  archive_write_set_bytes_in_last_block(a, 1);
  Check(archive_write_open2(a, &w, nullptr, &Writer::Write, nullptr, nullptr), a, "open");
  for (const auto& t : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.path.c_str());
    archive_entry_set_perm(e, t.mode);
    archive_entry_set_uid(e, t.uid);
    archive_entry_set_gid(e, t.gid);
    archive_entry_set_mtime(e, 1000000000, 0);
    for (const auto& [k, v] : t.xattrs)
      archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    switch (t.type) {
      case 'd':
        archive_entry_set_filetype(e, AE_IFDIR);
        break;
      case 'l':
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, t.link.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, t.link.c_str());
        break;
      case 'c':
      case 'b':
        archive_entry_set_filetype(e, t.type == 'c' ? AE_IFCHR : AE_IFBLK);
        archive_entry_set_rdev(e, makedev(t.major, t.minor));
        break;
      case 'p':
        archive_entry_set_filetype(e, AE_IFIFO);
        break;
      default:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, static_cast<la_int64_t>(t.data.size()));
    }
    Check(archive_write_header(a, e), a, "header");
    if (t.type == 'f' && !t.data.empty()) archive_write_data(a, t.data.data(), t.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return w.out;
}

std::string Compress(const std::string& data, Compression c) {
  if (c == Compression::kNone) return data;
  Writer w;
  archive* a = archive_write_new();
  Check(archive_write_set_format_raw(a), a, "raw");
  archive_write_set_bytes_in_last_block(a, 1);  // no zero padding after the stream
  AddFilter(a, c);
  Check(archive_write_open2(a, &w, nullptr, &Writer::Write, nullptr, nullptr), a, "open");
  archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
  Check(archive_write_header(a, e), a, "header");
  archive_write_data(a, data.data(), data.size());
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return w.out;
}

void WriteFile(const std::filesystem::path& path, const std::string& data) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  if (!out) throw std::runtime_error("write " + path.string());
}

std::string ReadFileOrDie(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("read " + path.string());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

namespace {

std::string ConfigJson(const std::vector<std::string>& tars, const std::string& env) {
  std::string diff_ids;
  for (const auto& t : tars) diff_ids += (diff_ids.empty() ? "\"" : ",\"") + Sha256Digest(t) + "\"";
  return R"({"architecture":"amd64","os":"linux","config":{"Cmd":["sh"],"Entrypoint":["/bin/entry"],)"
         R"("Env":["PATH=/bin",")" +
         env +
         R"("],"WorkingDir":"/work","User":"1000:1000",)"
         R"("StopSignal":"SIGQUIT"},"rootfs":{"type":"layers","diff_ids":[)" +
         diff_ids + "]}}";
}

}  // namespace

OciLayout WriteOciLayout(const std::filesystem::path& dir, const std::vector<std::string>& tars,
                         Compression c, const std::string& name, const std::string& env) {
  OciLayout out;
  auto blob = [&](const std::string& data) {
    std::string hex = Hex(data);
    WriteFile(dir / "blobs" / "sha256" / hex, data);
    return hex;
  };
  std::string layers;
  for (const auto& t : tars) {
    std::string z = Compress(t, c);
    std::string hex = blob(z);
    out.layer_blobs.push_back("blobs/sha256/" + hex);
    layers += std::string(layers.empty() ? "" : ",") +
              R"({"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:)" + hex +
              R"(","size":)" + std::to_string(z.size()) + "}";
  }
  std::string config = ConfigJson(tars, env);
  out.id = "sha256:" + blob(config);
  std::string manifest =
      R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
      out.id + R"(","size":)" + std::to_string(config.size()) + R"(},"layers":[)" + layers + "]}";
  std::string mhex = blob(manifest);
  std::string ann =
      name.empty() ? "" : R"(,"annotations":{"org.opencontainers.image.ref.name":")" + name + "\"}";
  WriteFile(dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  WriteFile(
      dir / "index.json",
      R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" +
          mhex + R"(","size":)" + std::to_string(manifest.size()) + ann + "}]}");
  return out;
}

std::string WriteDockerSave(const std::filesystem::path& dir, const std::vector<std::string>& tars,
                            const std::string& name, const std::string& env) {
  std::string config = ConfigJson(tars, env);
  std::string hex = Hex(config);
  WriteFile(dir / (hex + ".json"), config);
  std::string layers;
  for (size_t i = 0; i < tars.size(); ++i) {
    std::string rel = "layer" + std::to_string(i) + "/layer.tar";
    WriteFile(dir / rel, tars[i]);
    layers += std::string(layers.empty() ? "\"" : ",\"") + rel + "\"";
  }
  std::string tags = name.empty() ? "" : "\"" + name + "\"";
  WriteFile(dir / "manifest.json", "[{\"Config\":\"" + hex + ".json\",\"RepoTags\":[" + tags +
                                       "],\"Layers\":[" + layers + "]}]");
  return "sha256:" + hex;
}

void TarDirectory(const std::filesystem::path& dir, const std::filesystem::path& out) {
  std::vector<TarEntry> entries;
  for (const auto& ent : std::filesystem::recursive_directory_iterator(dir)) {
    if (!ent.is_regular_file()) continue;
    entries.push_back({.path = std::filesystem::relative(ent.path(), dir).string(),
                       .data = ReadFileOrDie(ent.path())});
  }
  WriteFile(out, MakeTar(entries));
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/fjord-image-test-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace fjord::image::testing
