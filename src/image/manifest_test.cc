#include "image/manifest.h"

#include <gtest/gtest.h>

#include "image/digest.h"

namespace fjord::image {
namespace {

const std::string kD = "sha256:" + std::string(64, 'b');

TEST(ImageConfigTest, ParsesRuntimeFields) {
  std::string json = R"({"os":"linux","architecture":"amd64","config":{
      "Entrypoint":["/bin/app"],"Cmd":["-v"],"Env":["A=1","PATH=/bin"],"WorkingDir":"/srv",
      "User":"nobody","StopSignal":"SIGQUIT","Labels":{"x":"y"}},
      "rootfs":{"type":"layers","diff_ids":[")" +
                     kD + R"("]}})";
  auto c = ParseImageConfig(json, "config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->config.entrypoint, std::vector<std::string>{"/bin/app"});
  EXPECT_EQ(c->config.cmd, std::vector<std::string>{"-v"});
  EXPECT_EQ(c->config.env, (std::vector<std::string>{"A=1", "PATH=/bin"}));
  EXPECT_EQ(c->config.working_dir, "/srv");
  EXPECT_EQ(c->config.user, "nobody");
  EXPECT_EQ(c->config.stop_signal, "SIGQUIT");
  EXPECT_EQ(c->diff_ids, std::vector<std::string>{kD});
  EXPECT_EQ(c->architecture, "amd64");
}

TEST(ImageConfigTest, NullFieldsAreEmpty) {
  auto c = ParseImageConfig(R"({"config":{"Cmd":null,"Env":null},"rootfs":{"type":"layers",
      "diff_ids":[]}})",
                            "c.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(c->config.cmd.empty());
}

TEST(ImageConfigTest, ErrorsNameFileAndField) {
  struct Case {
    std::string json, want;
  } cases[] = {
      {"{", "c.json: not valid JSON"},
      {"[]", "c.json: field `(top level)` must be an object"},
      {R"({"config":{"Env":"A=1"},"rootfs":{"type":"layers"}})",
       "c.json: field `config.Env` must be an array of strings"},
      {R"({"config":{"Env":["A"]},"rootfs":{"type":"layers"}})",
       "c.json: field `config.Env[0]` must be KEY=VALUE"},
      {R"({"config":{"Cmd":[1]},"rootfs":{"type":"layers"}})", "field `config.Cmd`"},
      {R"({"config":{"WorkingDir":5},"rootfs":{"type":"layers"}})", "field `config.WorkingDir`"},
      {R"({"config":{}})", "field `rootfs` is missing"},
      {R"({"rootfs":{"type":"x"}})", "field `rootfs.type`"},
      {R"({"rootfs":{"type":"layers","diff_ids":["sha256:12"]}})", "rootfs.diff_ids[0]"},
  };
  for (const auto& c : cases) {
    auto r = ParseImageConfig(c.json, "c.json");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_NE(r.status().message().find(c.want), std::string::npos)
        << c.json << " -> " << r.status().message();
  }
}

TEST(OciManifestTest, ParsesDescriptors) {
  std::string json = R"({"schemaVersion":2,"config":{"mediaType":"m","digest":")" + kD +
                     R"(","size":7},"layers":[{"mediaType":"l","digest":")" + kD +
                     R"(","size":9,"annotations":{"a":"b"}}]})";
  auto m = ParseOciManifest(json, "blobs/sha256/x");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->config.size, 7);
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].annotations.at("a"), "b");
}

TEST(OciManifestTest, BadDescriptorNamed) {
  std::string json = R"({"config":{"digest":")" + kD + R"(","size":-1},"layers":[]})";
  auto m = ParseOciManifest(json, "m.json");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("m.json: field `config.size`"), std::string::npos)
      << m.status().message();
  auto bad =
      ParseOciManifest(R"({"config":{"digest":"sha256:../x","size":1},"layers":[]})", "m.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("config.digest"), std::string::npos);
}

TEST(OciIndexTest, PlatformAndAnnotations) {
  std::string json = R"({"manifests":[{"digest":")" + kD + R"(","size":1,"platform":
      {"os":"linux","architecture":"arm64"},"annotations":{"org.opencontainers.image.ref.name":"v1"}}]})";
  auto idx = ParseOciIndex(json, "index.json");
  ASSERT_TRUE(idx.ok()) << idx.status().message();
  EXPECT_EQ((*idx)[0].architecture, "arm64");
  EXPECT_FALSE(ParseOciIndex(R"({"manifests":{}})", "index.json").ok());
}

TEST(DockerManifestTest, ParsesAndRejects) {
  auto m = ParseDockerManifest(
      R"([{"Config":"c.json","RepoTags":["a:b"],"Layers":["1/layer.tar","2/layer.tar"]}])",
      "manifest.json");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ((*m)[0].layers.size(), 2u);
  auto bad = ParseDockerManifest(R"([{"RepoTags":["a"]}])", "manifest.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("field `[0].Config` is missing"), std::string::npos);
}

TEST(StoreIndexTest, RoundTrip) {
  std::vector<IndexEntry> in = {{kD, {"a:latest", "b:v1"}, {kD}, 1234, 1700000000}};
  auto out = ParseStoreIndex(SerializeStoreIndex(in), "index.json");
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].names, in[0].names);
  EXPECT_EQ((*out)[0].size_bytes, 1234u);
  EXPECT_EQ((*out)[0].created_unix, 1700000000);
}

}  // namespace
}  // namespace fjord::image
