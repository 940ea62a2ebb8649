#include "image/unpack.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/fd.h"
#include "image/digest.h"
#include "image/testing.h"

namespace fjord::image {
namespace {

using testing::Compression;
using testing::MakeTar;
using testing::TarEntry;

class UnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path() / "root";
    std::filesystem::create_directories(root_);
    root_fd_.reset(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_fd_.valid());
  }

  // Unpacks `blob` (written to a file first) into root_.
  base::Result<UnpackResult> Run(const std::string& blob, bool layer = true) {
    auto path = tmp_.path() / "blob";
    testing::WriteFile(path, blob);
    base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    return Unpack(fd.get(), root_fd_.get(), UnpackOptions{.layer = layer});
  }

  struct stat Lstat(const std::string& rel) {
    struct stat st {};
    EXPECT_EQ(::lstat((root_ / rel).c_str(), &st), 0) << rel;
    return st;
  }

  bool Exists(const std::filesystem::path& p) {
    struct stat st;
    return ::lstat(p.c_str(), &st) == 0;
  }

  testing::TempDir tmp_;
  std::filesystem::path root_;
  base::UniqueFd root_fd_;
};

TEST(CleanEntryPathTest, Table) {
  struct Case {
    std::string raw, clean;
    bool ok;
  } cases[] = {
      {"./", "", true},           {".", "", true},
      {"./a/b/", "a/b", true},    {"a//b/./c", "a/b/c", true},
      {"a/..b", "a/..b", true},   {"../x", "", false},
      {"a/../../x", "", false},   {"a/..", "", false},
      {"/etc/passwd", "", false}, {"", "", true},
  };
  for (const auto& c : cases) {
    auto r = CleanEntryPath(c.raw);
    EXPECT_EQ(r.ok(), c.ok) << c.raw;
    if (r.ok()) {
      EXPECT_EQ(*r, c.clean) << c.raw;
    }
  }
}

TEST_F(UnpackTest, FilesDirsLinksAndMetadata) {
  std::string tar = MakeTar({
      {.path = "./", .type = 'd', .mode = 0755},
      {.path = "bin/", .type = 'd', .mode = 0750, .uid = 12, .gid = 34},
      {.path = "bin/tool",
       .data = "#!/bin/sh\n",
       .mode = 04755,
       .uid = 1000,
       .gid = 1000,
       .xattrs = {{"user.note", "hi"}, {"trusted.overlay.redirect", "/etc"}}},
      {.path = "bin/alias", .type = 'l', .link = "tool", .uid = 5},
      {.path = "bin/hard", .type = 'h', .link = "bin/tool"},
      {.path = "deep/implicit/file", .data = "x"},
      {.path = "dev/null", .type = 'c', .mode = 0666, .major = 1, .minor = 3},
      {.path = "dev/fifo", .type = 'p', .mode = 0600},
  });
  auto r = Run(tar);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->raw_digest, Sha256Digest(tar));
  EXPECT_EQ(r->diff_digest, Sha256Digest(tar));  // uncompressed: blob digest == diff_id
  EXPECT_EQ(r->raw_size, tar.size());
  EXPECT_EQ(r->file_bytes, 11u);

  auto tool = Lstat("bin/tool");
  EXPECT_EQ(tool.st_mode & 07777, 04755u);  // setuid survives because chown came first
  EXPECT_EQ(tool.st_uid, 1000u);
  EXPECT_EQ(tool.st_mtime, 1000000000);
  EXPECT_EQ(testing::ReadFileOrDie(root_ / "bin/tool"), "#!/bin/sh\n");
  char buf[16];
  EXPECT_EQ(::getxattr((root_ / "bin/tool").c_str(), "user.note", buf, sizeof(buf)), 2);
  // Overlay attributes from a tar could redirect lookups into other layers; they are dropped.
  EXPECT_LT(::getxattr((root_ / "bin/tool").c_str(), "trusted.overlay.redirect", buf, 16), 0);

  auto bin = Lstat("bin");
  EXPECT_EQ(bin.st_mode & 07777, 0750u);
  EXPECT_EQ(bin.st_uid, 12u);
  EXPECT_EQ(bin.st_mtime, 1000000000);  // set after its children were created
  EXPECT_TRUE(S_ISLNK(Lstat("bin/alias").st_mode));
  EXPECT_EQ(Lstat("bin/alias").st_uid, 5u);
  EXPECT_EQ(Lstat("bin/hard").st_ino, tool.st_ino);
  EXPECT_TRUE(S_ISDIR(Lstat("deep/implicit").st_mode));
  auto dev = Lstat("dev/null");
  EXPECT_TRUE(S_ISCHR(dev.st_mode));
  EXPECT_EQ(dev.st_rdev, makedev(1, 3));
  EXPECT_EQ(dev.st_mode & 0777, 0666u);
  EXPECT_TRUE(S_ISFIFO(Lstat("dev/fifo").st_mode));
}

TEST_F(UnpackTest, WhiteoutsBecomeOverlayForm) {
  auto r = Run(MakeTar({
      {.path = "etc/", .type = 'd', .mode = 0755},
      {.path = "etc/.wh.passwd"},
      {.path = "var/cache/.wh..wh..opq"},
      {.path = "var/cache/keep", .data = "k"},
      {.path = ".wh..wh.plnk"},  // aufs hard-link metadata: ignored
  }));
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto wh = Lstat("etc/passwd");
  EXPECT_TRUE(S_ISCHR(wh.st_mode));
  EXPECT_EQ(wh.st_rdev, makedev(0, 0));
  EXPECT_FALSE(Exists(root_ / "etc/.wh.passwd"));
  char v[4] = {};
  ASSERT_EQ(::getxattr((root_ / "var/cache").c_str(), "trusted.overlay.opaque", v, sizeof(v)), 1);
  EXPECT_EQ(v[0], 'y');
  EXPECT_FALSE(Exists(root_ / "var/cache/.wh..wh..opq"));
  EXPECT_TRUE(Exists(root_ / "var/cache/keep"));
  EXPECT_FALSE(Exists(root_ / ".wh..wh.plnk"));
}

TEST_F(UnpackTest, ArchiveModeKeepsWhiteoutsAsFilesAndRejectsDevices) {
  ASSERT_TRUE(Run(MakeTar({{.path = "a/.wh.x"}}), /*layer=*/false).ok());
  EXPECT_TRUE(S_ISREG(Lstat("a/.wh.x").st_mode));
  auto r = Run(MakeTar({{.path = "null", .type = 'c', .major = 1, .minor = 3}}), false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("device nodes"), std::string::npos);
}

TEST_F(UnpackTest, CompressedLayersHashBothSides) {
  std::string tar = MakeTar({{.path = "f", .data = std::string(100000, 'z')}});
  for (auto c : {Compression::kGzip, Compression::kZstd}) {
    std::string blob = testing::Compress(tar, c);
    auto r = Run(blob);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->raw_digest, Sha256Digest(blob));
    EXPECT_EQ(r->diff_digest, Sha256Digest(tar));
    EXPECT_EQ(testing::ReadFileOrDie(root_ / "f").size(), 100000u);
  }
}

TEST_F(UnpackTest, TraversalIsRejected) {
  struct Case {
    std::vector<TarEntry> entries;
    std::string want;
  } cases[] = {
      {{{.path = "../escape", .data = "x"}}, "leave the archive root"},
      {{{.path = "a/../../escape", .data = "x"}}, "leave the archive root"},
      {{{.path = "/escape", .data = "x"}}, "absolute"},
      {{{.path = "up", .type = 'l', .link = ".."}, {.path = "up/escape", .data = "x"}},
       "leads outside its root"},
      {{{.path = "abs", .type = 'l', .link = "/tmp"}, {.path = "abs/escape", .data = "x"}},
       "leads outside its root"},
      {{{.path = "hl", .type = 'h', .link = "../outside"}}, "leave the archive root"},
      {{{.path = "dir/.wh.x"},
        {.path = "up", .type = 'l', .link = "../"},
        {.path = "up/.wh.escape"}},
       "leads outside its root"},
  };
  for (const auto& c : cases) {
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
    root_fd_.reset(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    auto r = Run(MakeTar(c.entries));
    ASSERT_FALSE(r.ok()) << c.entries.back().path;
    EXPECT_NE(r.status().message().find(c.want), std::string::npos) << r.status().message();
    EXPECT_FALSE(Exists(tmp_.path() / "escape"));
  }
}

TEST_F(UnpackTest, HardLinkTargetMustBeInTheArchive) {
  auto r = Run(MakeTar({{.path = "link", .type = 'h', .link = "missing"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("hard link to `missing`"), std::string::npos)
      << r.status().message();
}

TEST_F(UnpackTest, LaterEntryReplacesEarlier) {
  auto r = Run(MakeTar({{.path = "x", .type = 'd'},
                        {.path = "x/y", .data = "1"},
                        {.path = "x", .data = "file now"}}));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(testing::ReadFileOrDie(root_ / "x"), "file now");
}

TEST_F(UnpackTest, CorruptedInputsFailCleanly) {
  std::string tar = MakeTar({{.path = "f", .data = std::string(5000, 'q')}});
  std::string gz = testing::Compress(tar, Compression::kGzip);
  gz[gz.size() / 2] ^= 0x55;
  EXPECT_FALSE(Run(gz).ok());
  // The second header's name field: its checksum no longer matches.
  std::string bad_header =
      MakeTar({{.path = "f", .data = std::string(5000, 'q')}, {.path = "g", .data = "x"}});
  bad_header[512 + 5120 + 10] ^= 0x55;
  auto r = Run(bad_header);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("corrupted tar"), std::string::npos) << r.status().message();
  EXPECT_FALSE(Run("this is not an archive at all, just some text").ok());
  EXPECT_FALSE(Run(tar.substr(0, 700)).ok());  // truncated mid-file
}

TEST_F(UnpackTest, DigestBlobAndRawDigest) {
  std::string tar = MakeTar({{.path = "f", .data = "abc"}});
  std::string gz = testing::Compress(tar, Compression::kGzip);
  auto path = tmp_.path() / "b";
  testing::WriteFile(path, gz);
  base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  auto d = DigestBlob(fd.get());
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->diff_digest, Sha256Digest(tar));
  ASSERT_EQ(::lseek(fd.get(), 0, SEEK_SET), 0);
  auto raw = RawDigest(fd.get());
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(*raw, Sha256Digest(gz));
}

}  // namespace
}  // namespace fjord::image
