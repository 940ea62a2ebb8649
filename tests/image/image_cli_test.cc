// Runs the real `fjord image import/ls/rm` against images made by scripts/make-test-image.sh.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "image/testing.h"

namespace fjord::image {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileOrDie;

struct Output {
  int code = -1;
  std::string out, err;
};

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs a shell command line, capturing stdout and stderr through files in `dir`.
Output Shell(const std::string& cmd, const fs::path& dir) {
  auto out = dir / "stdout";
  auto err = dir / "stderr";
  int status = std::system((cmd + " >" + Quote(out) + " 2>" + Quote(err)).c_str());
  Output o;
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  o.out = ReadFileOrDie(out);
  o.err = ReadFileOrDie(err);
  return o;
}

size_t Lines(const std::string& s) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

size_t Count(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

std::string Script() {
  const char* src = std::getenv("FJORD_SOURCE_DIR");
  return std::string(src ? src : ".") + "/scripts/make-test-image.sh";
}

class ImageCliTest : public ::testing::Test {
 protected:
  // Images are built on first use and shared by the tests of this process; each test gets
  // its own store root.
  static void SetUpTestSuite() { images_ = new testing::TempDir(); }
  static void TearDownTestSuite() {
    delete images_;
    images_ = nullptr;
  }

  static fs::path Image(const std::string& file) {
    fs::path path = images_->path() / file;
    if (fs::exists(path)) return path;
    std::string args = file.find("docker") != std::string::npos ? " --format docker" : "";
    auto o = Shell(Script() + " " + Quote(path) + args, images_->path());
    EXPECT_EQ(o.code, 0) << o.err;
    return path;
  }

  Output Fjord(const std::string& args) {
    return Shell(std::string(FJORD_BINARY) + " image " + args + " --root " + Quote(tmp_.path()),
                 tmp_.path());
  }
  fs::path Store() { return tmp_.path() / "images"; }

  static testing::TempDir* images_;
  testing::TempDir tmp_;
};

testing::TempDir* ImageCliTest::images_ = nullptr;

TEST_F(ImageCliTest, ImportListRemoveOciLayout) {
  auto source = Image("oci");
  auto start = std::chrono::steady_clock::now();
  auto o = Fjord("import " + Quote(source));
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(o.code, 0) << o.err;
  std::printf("import of the 2-layer OCI test image: %.0f ms\n", ms);
  EXPECT_EQ(o.out, "Loaded image: fjord-test/busybox:latest\n");

  o = Fjord("ls");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out.rfind("REPOSITORY", 0), 0u) << o.out;
  EXPECT_NE(o.out.find("IMAGE ID"), std::string::npos);
  EXPECT_NE(o.out.find("fjord-test/busybox"), std::string::npos);
  EXPECT_NE(o.out.find("latest"), std::string::npos);
  EXPECT_NE(o.out.find("MB"), std::string::npos);  // busybox is ~2 MB
  EXPECT_EQ(Lines(o.out), 2u);

  o = Fjord("ls -q");
  ASSERT_EQ(o.code, 0);
  ASSERT_EQ(o.out.size(), 13u) << o.out;
  std::string short_id = o.out.substr(0, 12);

  o = Fjord("ls --output json");
  ASSERT_EQ(o.code, 0) << o.err;
  auto j = nlohmann::json::parse(o.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["id"].get<std::string>().substr(7, 12), short_id);
  EXPECT_EQ(j[0]["config"]["cmd"], nlohmann::json::array({"sh"}));
  EXPECT_EQ(j[0]["config"]["working_dir"], "/");
  EXPECT_EQ(j[0]["layers"].size(), 2u);

  o = Fjord("rm fjord-test/busybox");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out, "Untagged: fjord-test/busybox:latest\nDeleted: " +
                       j[0]["id"].get<std::string>() + "\n");
  EXPECT_EQ(Fjord("ls -q").out, "");
  EXPECT_EQ(Count(Store() / "layers" / "sha256"), 0u);
  EXPECT_EQ(Count(Store() / "blobs" / "sha256"), 0u);
}

TEST_F(ImageCliTest, TarFormatsShareLayers) {
  auto o = Fjord("import " + Quote(Image("oci.tar")) + " --name a/oci:1");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out, "Loaded image: a/oci:1\n");
  o = Fjord("import " + Quote(Image("docker.tar")) + " --name registry:5000/b/docker:2");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out, "Loaded image: registry:5000/b/docker:2\n");
  // Both formats carry the same config, so they are one image with two names and 2 layers.
  o = Fjord("ls -q");
  EXPECT_EQ(Lines(o.out), 1u) << o.out;
  o = Fjord("ls");
  EXPECT_NE(o.out.find("registry:5000/b/docker"), std::string::npos) << o.out;
  EXPECT_EQ(Lines(o.out), 3u) << o.out;
  EXPECT_EQ(Count(Store() / "layers" / "sha256"), 2u);
  EXPECT_EQ(Count(Store() / "tmp"), 0u);  // staged archives are gone

  o = Fjord("rm a/oci:1");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out, "Untagged: a/oci:1\n");
  EXPECT_EQ(Count(Store() / "layers" / "sha256"), 2u);
}

TEST_F(ImageCliTest, ConcurrentImportsSerialise) {
  std::string cmd;
  for (int i = 0; i < 3; ++i) {
    cmd += std::string(FJORD_BINARY) + " image import " + Quote(Image("oci.tar")) +
           " --name c:" + std::to_string(i) + " --root " + Quote(tmp_.path()) + " & ";
  }
  auto o = Shell("(" + cmd + "wait)", tmp_.path());
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.err, "");
  o = Fjord("ls");
  EXPECT_EQ(Lines(o.out), 4u) << o.out;
  EXPECT_EQ(Count(Store() / "layers" / "sha256"), 2u);
}

TEST_F(ImageCliTest, BadInputGetsOneLine) {
  auto empty = tmp_.path() / "empty";
  fs::create_directories(empty);
  testing::WriteFile(tmp_.path() / "text.tar", "definitely not a tar archive\n");
  struct Case {
    std::string args, want;
  } cases[] = {
      {"import " + Quote(tmp_.path() / "missing.tar"), "No such file or directory"},
      {"import " + Quote(empty), "no oci-layout or manifest.json in " + empty.string()},
      {"import " + Quote(tmp_.path() / "text.tar"), "read image archive"},
      {"import " + Quote(empty) + " --name Bad:Name", "lowercase"},
      {"rm nothing", "no image named `nothing:latest`; `fjord image ls` lists them"},
      {"ls -o yaml", "--output must be table or json"},
  };
  for (const auto& c : cases) {
    auto o = Fjord(c.args);
    EXPECT_EQ(o.code, 1) << c.args;
    EXPECT_EQ(Lines(o.err), 1u) << c.args << ": " << o.err;
    EXPECT_NE(o.err.find(c.want), std::string::npos) << c.args << ": " << o.err;
  }
  EXPECT_EQ(Fjord("ls -q").out, "");
}

TEST_F(ImageCliTest, CorruptedBlobIsNamed) {
  auto dir = tmp_.path() / "oci";
  fs::copy(Image("oci"), dir, fs::copy_options::recursive);
  // The busybox layer is the largest blob.
  fs::path biggest;
  for (const auto& e : fs::directory_iterator(dir / "blobs" / "sha256")) {
    if (biggest.empty() || e.file_size() > fs::file_size(biggest)) biggest = e.path();
  }
  std::string data = ReadFileOrDie(biggest);
  data[data.size() / 2] ^= 0x20;
  testing::WriteFile(biggest, data);
  auto o = Fjord("import " + Quote(dir));
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(Lines(o.err), 1u) << o.err;
  EXPECT_NE(o.err.find("digest mismatch"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("blobs/sha256/" + biggest.filename().string()), std::string::npos) << o.err;
  EXPECT_EQ(Fjord("ls -q").out, "");
  EXPECT_EQ(Count(Store() / "tmp"), 0u);
  EXPECT_EQ(Count(Store() / "layers" / "sha256"), 0u);  // the bad layer is the lowest one
}

TEST_F(ImageCliTest, PathTraversalIsRefused) {
  // An image archive whose own members try to escape...
  testing::WriteFile(tmp_.path() / "evil.tar",
                     testing::MakeTar({{.path = "oci-layout", .data = "{}"},
                                       {.path = "../../evil-outer", .data = "x"}}));
  auto o = Fjord("import " + Quote(tmp_.path() / "evil.tar"));
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(Lines(o.err), 1u) << o.err;
  EXPECT_NE(o.err.find("leave the archive root"), std::string::npos) << o.err;
  // ...and a well-formed image whose layer writes through a symlink to the host.
  std::string layer = testing::MakeTar(
      {{.path = "etc", .type = 'l', .link = "/etc"}, {.path = "etc/evil-layer", .data = "x"}});
  auto layout = tmp_.path() / "evil-oci";
  testing::WriteOciLayout(layout, {layer}, testing::Compression::kGzip, "evil:1", "X=1");
  o = Fjord("import " + Quote(layout));
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("leads outside its root"), std::string::npos) << o.err;
  EXPECT_FALSE(fs::exists("/etc/evil-layer"));
  EXPECT_FALSE(fs::exists(tmp_.path().parent_path().parent_path() / "evil-outer"));
  EXPECT_EQ(Fjord("ls -q").out, "");
  EXPECT_EQ(Count(Store() / "tmp"), 0u);
}

// Stacks the unpacked layers the way the runtime will and checks the whiteouts work.
class OverlayTest : public ImageCliTest {
 protected:
  void TearDown() override {
    if (mounted_) ::umount2(mnt_.c_str(), MNT_DETACH);
  }
  fs::path mnt_;
  bool mounted_ = false;
};

TEST_F(OverlayTest, TwoLayersStackWithWhiteouts) {
  auto o = Fjord("import " + Quote(Image("docker.tar")));
  ASSERT_EQ(o.code, 0) << o.err;
  auto j = nlohmann::json::parse(Fjord("ls -o json").out);
  ASSERT_EQ(j[0]["layers"].size(), 2u);
  std::string lower = j[0]["layers"][0], upper = j[0]["layers"][1];
  mnt_ = tmp_.path() / "mnt";
  fs::create_directories(mnt_);
  std::string opts = "lowerdir=" + upper + ":" + lower;
  ASSERT_EQ(::mount("overlay", mnt_.c_str(), "overlay", MS_RDONLY, opts.c_str()), 0)
      << "mount overlay " << opts << ": " << std::strerror(errno);
  mounted_ = true;
  EXPECT_TRUE(fs::exists(mnt_ / "bin/busybox"));
  EXPECT_TRUE(fs::is_symlink(mnt_ / "bin/sh"));
  EXPECT_EQ(ReadFileOrDie(mnt_ / "etc/fjord-release"), "fjord test image\n");
  EXPECT_NE(ReadFileOrDie(mnt_ / "etc/passwd").find("root:x:0:0"), std::string::npos);
  EXPECT_FALSE(fs::exists(fs::symlink_status(mnt_ / "removed.txt")));  // whited out
  EXPECT_FALSE(fs::exists(mnt_ / "opaque/old.txt"));                   // hidden by opaque dir
  EXPECT_EQ(ReadFileOrDie(mnt_ / "opaque/new.txt"), "from layer 2\n");
  EXPECT_TRUE(fs::exists(fs::path(lower) / "removed.txt"));  // the lower layer is untouched
  struct stat st;
  ASSERT_EQ(::stat((mnt_ / "tmp").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  // The stacked tree runs: busybox from the image prints the file layer 2 added.
  o = Shell("chroot " + Quote(mnt_) + " /bin/cat /etc/fjord-release", tmp_.path());
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out, "fjord test image\n");
}

}  // namespace
}  // namespace fjord::image
