#include "image/image_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <set>
#include <thread>

#include "image/paths.h"
#include "image/testing.h"

namespace fjord::image {
namespace {

using testing::Compression;
using testing::MakeTar;

const std::string kBase = MakeTar({{.path = "bin/", .type = 'd', .mode = 0755},
                                   {.path = "bin/sh", .data = "shell", .mode = 0755},
                                   {.path = "etc/gone", .data = "bye"}});
const std::string kTop = MakeTar({{.path = "etc/.wh.gone"}, {.path = "etc/new", .data = "hi"}});

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    paths_ = std::make_unique<StorePaths>(tmp_.path() / "store");
    auto store = ImageStore::Open(paths_->root);
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(*store);
  }

  std::filesystem::path Layout(const std::string& dir, const std::string& name,
                               const std::string& env = "X=1", Compression c = Compression::kGzip) {
    auto p = tmp_.path() / dir;
    id_ = testing::WriteOciLayout(p, {kBase, kTop}, c, name, env).id;
    return p;
  }

  size_t Count(const std::filesystem::path& dir) {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
    return n;
  }

  testing::TempDir tmp_;
  std::unique_ptr<StorePaths> paths_;
  std::unique_ptr<ImageStore> store_;
  std::string id_;
};

TEST_F(ImageStoreTest, ImportOciLayoutAndResolve) {
  auto image = store_->Import(Layout("oci", "example.com/app:v1"), std::nullopt);
  ASSERT_TRUE(image.ok()) << image.status().message();
  EXPECT_EQ(image->id, id_);
  EXPECT_EQ(image->names, std::vector<std::string>{"example.com/app:v1"});
  ASSERT_EQ(image->layers.size(), 2u);
  EXPECT_EQ(testing::ReadFileOrDie(image->layers[0] / "bin/sh"), "shell");
  EXPECT_EQ(image->size_bytes, 5u + 3u + 2u);
  EXPECT_EQ(image->config.entrypoint, std::vector<std::string>{"/bin/entry"});
  EXPECT_EQ(image->config.working_dir, "/work");
  EXPECT_EQ(image->config.user, "1000:1000");
  EXPECT_EQ(image->config.stop_signal, "SIGQUIT");
  EXPECT_EQ(image->config.env, (std::vector<std::string>{"PATH=/bin", "X=1"}));

  for (const std::string& ref :
       std::vector<std::string>{"example.com/app:v1", id_, id_.substr(7, 12), id_.substr(0, 10)}) {
    auto r = store_->Resolve(ref);
    ASSERT_TRUE(r.ok()) << ref << ": " << r.status().message();
    EXPECT_EQ(r->id, id_);
  }
  auto missing = store_->Resolve("example.com/app");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            "no image named `example.com/app:latest`; `fjord image ls` lists them");
  auto bad = store_->Resolve("Not Valid");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("invalid image reference"), std::string::npos);
}

TEST_F(ImageStoreTest, DockerSaveUsesDiffIdsAndSharesLayers) {
  auto oci = store_->Import(Layout("oci", "", "X=1", Compression::kZstd), "a:1");
  ASSERT_TRUE(oci.ok()) << oci.status().message();
  auto docker_dir = tmp_.path() / "docker";
  std::string id = testing::WriteDockerSave(docker_dir, {kBase, kTop}, "b:2", "X=2");
  auto docker = store_->Import(docker_dir, std::nullopt);
  ASSERT_TRUE(docker.ok()) << docker.status().message();
  EXPECT_EQ(docker->id, id);
  EXPECT_NE(docker->id, oci->id);
  EXPECT_EQ(docker->layers, oci->layers);  // same diff_ids: unpacked once
  EXPECT_EQ(Count(paths_->layers), 2u);
  EXPECT_EQ(Count(paths_->blobs), 2u);

  ASSERT_TRUE(store_->Remove("a:1").ok());
  EXPECT_EQ(Count(paths_->layers), 2u);  // still used by b:2
  EXPECT_EQ(Count(paths_->blobs), 1u);
  ASSERT_TRUE(store_->Remove("b:2").ok());
  EXPECT_EQ(Count(paths_->layers), 0u);
  EXPECT_EQ(Count(paths_->blobs), 0u);
  EXPECT_EQ(Count(paths_->tmp), 0u);
}

TEST_F(ImageStoreTest, RetagMovesNameAndRemoveByNameKeepsOtherNames) {
  ASSERT_TRUE(store_->Import(Layout("one", ""), "x:1").ok());
  ASSERT_TRUE(store_->Import(tmp_.path() / "one", "x:2").ok());
  auto image = store_->Resolve("x:1");
  ASSERT_TRUE(image.ok());
  EXPECT_EQ(image->names, (std::vector<std::string>{"x:1", "x:2"}));
  ASSERT_TRUE(store_->Remove("x:1").ok());
  EXPECT_FALSE(store_->Resolve("x:1").ok());
  EXPECT_TRUE(store_->Resolve("x:2").ok());
  // A different image taking the name x:2 leaves the first one nameless but present.
  std::string first = id_;
  ASSERT_TRUE(store_->Import(Layout("two", "", "X=other"), "x:2").ok());
  auto old = store_->Resolve(first);
  ASSERT_TRUE(old.ok());
  EXPECT_TRUE(old->names.empty());
  ASSERT_TRUE(store_->Remove(first.substr(7, 8)).ok());  // by id prefix: the image goes
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].names, std::vector<std::string>{"x:2"});
}

TEST_F(ImageStoreTest, AmbiguousIdPrefix) {
  // Import images with different configs until two ids share their first hex digit.
  std::map<char, std::string> by_first;
  std::string a, b;
  for (int i = 0; a.empty(); ++i) {
    auto image = store_->Import(Layout("img" + std::to_string(i), "", "N=" + std::to_string(i)),
                                "img:" + std::to_string(i));
    ASSERT_TRUE(image.ok()) << image.status().message();
    char first = image->id[7];
    if (by_first.count(first)) {
      a = by_first[first];
      b = image->id;
    }
    by_first[first] = image->id;
  }
  auto r = store_->Resolve(a.substr(7, 1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("is ambiguous"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(a.substr(7, 12)), std::string::npos);
  EXPECT_NE(r.status().message().find(b.substr(7, 12)), std::string::npos);
  EXPECT_FALSE(store_->Remove(a.substr(7, 1)).ok());
  EXPECT_TRUE(store_->Resolve(a).ok());
}

TEST_F(ImageStoreTest, CorruptedBlobLeavesNothing) {
  auto dir = Layout("oci", "c:1");
  auto layout = testing::WriteOciLayout(dir, {kBase, kTop}, Compression::kGzip, "c:1", "X=1");
  auto blob = dir / layout.layer_blobs[1];
  std::string data = testing::ReadFileOrDie(blob);
  data[data.size() / 2] ^= 0x01;
  testing::WriteFile(blob, data);
  auto r = store_->Import(dir, std::nullopt);
  ASSERT_FALSE(r.ok());
  std::string msg(r.status().message());
  EXPECT_NE(msg.find("digest mismatch"), std::string::npos) << msg;
  EXPECT_NE(msg.find(layout.layer_blobs[1]), std::string::npos) << msg;
  // The good lower layer may stay (it is complete and verified); the bad one must not.
  EXPECT_LE(Count(paths_->layers), 1u);
  EXPECT_EQ(Count(paths_->tmp), 0u);
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_F(ImageStoreTest, BadSourcesGetOneClearError) {
  auto empty = tmp_.path() / "empty";
  std::filesystem::create_directories(empty);
  struct Case {
    std::filesystem::path source;
    std::string want;
  } cases[] = {
      {tmp_.path() / "nope", "No such file or directory"},
      {empty, "no oci-layout or manifest.json in " + empty.string()},
  };
  for (const auto& c : cases) {
    auto r = store_->Import(c.source, std::nullopt);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find(c.want), std::string::npos) << r.status().message();
  }
  auto bad_name = store_->Import(Layout("oci", ""), "UPPER:case");
  ASSERT_FALSE(bad_name.ok());
  EXPECT_NE(bad_name.status().message().find("lowercase"), std::string::npos);

  auto dir = Layout("broken", "");
  testing::WriteFile(dir / "index.json", R"({"manifests": 3})");
  auto broken = store_->Import(dir, std::nullopt);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("index.json: field `manifests` must be an array"),
            std::string::npos)
      << broken.status().message();
}

TEST_F(ImageStoreTest, ConcurrentImportsFromSeparateHandles) {
  std::vector<std::filesystem::path> dirs;
  for (int i = 0; i < 4; ++i) {
    dirs.push_back(Layout("c" + std::to_string(i), "", "N=" + std::to_string(i)));
  }
  std::vector<std::thread> threads;
  std::vector<base::Status> results(dirs.size());
  for (size_t i = 0; i < dirs.size(); ++i) {
    threads.emplace_back([&, i] {
      auto store = ImageStore::Open(paths_->root);  // like a separate process: own handle
      if (!store.ok()) {
        results[i] = store.status();
        return;
      }
      auto r = (*store)->Import(dirs[i], "c:" + std::to_string(i));
      results[i] = r.ok() ? base::Status::Ok() : r.status();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& st : results) EXPECT_TRUE(st.ok()) << st.message();
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 4u);
  EXPECT_EQ(Count(paths_->layers), 2u);
}

TEST_F(ImageStoreTest, CrashLeftoversInTmpAreSwept) {
  std::filesystem::create_directories(paths_->tmp / "layer-crashed" / "fs" / "half");
  ASSERT_TRUE(store_->Import(Layout("oci", "s:1"), std::nullopt).ok());
  EXPECT_EQ(Count(paths_->tmp), 0u);
}

TEST_F(ImageStoreTest, RepeatedLayerListedOnceAtItsLastPosition) {
  auto dir = tmp_.path() / "repeat";
  testing::WriteOciLayout(dir, {kBase, kTop, kBase}, Compression::kNone, "", "X=1");
  auto image = store_->Import(dir, "r:1");
  ASSERT_TRUE(image.ok()) << image.status().message();
  ASSERT_EQ(image->layers.size(), 2u);
  EXPECT_TRUE(std::filesystem::exists(image->layers[0] / "etc/new"));
  EXPECT_TRUE(std::filesystem::exists(image->layers[1] / "bin/sh"));
  EXPECT_EQ(Count(paths_->layers), 2u);
}

TEST(ImageStoreDirTest, RootPrecedence) {
  ::setenv("FJORD_ROOT", "/env-root", 1);
  EXPECT_EQ(ImageStoreDir("/x"), std::filesystem::path("/x/images"));
  EXPECT_EQ(ImageStoreDir(), std::filesystem::path("/env-root/images"));
  ::unsetenv("FJORD_ROOT");
  EXPECT_EQ(ImageStoreDir(), std::filesystem::path("/var/lib/fjord/images"));
}

}  // namespace
}  // namespace fjord::image
