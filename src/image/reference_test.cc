#include "image/reference.h"

#include <gtest/gtest.h>

namespace fjord::image {
namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');

TEST(ReferenceTest, ValidReferences) {
  struct Case {
    std::string text, repository, tag, digest, canonical;
  } cases[] = {
      {"busybox", "busybox", "latest", "", "busybox:latest"},
      {"busybox:1.36", "busybox", "1.36", "", "busybox:1.36"},
      {"registry:5000/a/b:tag", "registry:5000/a/b", "tag", "", "registry:5000/a/b:tag"},
      {"registry:5000/a/b", "registry:5000/a/b", "latest", "", "registry:5000/a/b:latest"},
      {"localhost/app", "localhost/app", "latest", "", "localhost/app:latest"},
      {"docker.io/library/busybox:latest", "docker.io/library/busybox", "latest", "",
       "docker.io/library/busybox:latest"},
      {"a/b@" + kDigest, "a/b", "", kDigest, "a/b@" + kDigest},
      {"a/b:v1@" + kDigest, "a/b", "v1", kDigest, "a/b:v1@" + kDigest},
      {"my-app__x/y.z_w", "my-app__x/y.z_w", "latest", "", "my-app__x/y.z_w:latest"},
      {"Registry.Example.com/x:V_1", "Registry.Example.com/x", "V_1", "",
       "Registry.Example.com/x:V_1"},
  };
  for (const auto& c : cases) {
    auto ref = ParseReference(c.text);
    ASSERT_TRUE(ref.ok()) << c.text << ": " << ref.status().message();
    EXPECT_EQ(ref->repository, c.repository) << c.text;
    EXPECT_EQ(ref->tag, c.tag) << c.text;
    EXPECT_EQ(ref->digest, c.digest) << c.text;
    EXPECT_EQ(ref->String(), c.canonical) << c.text;
  }
}

TEST(ReferenceTest, InvalidReferencesSayWhy) {
  struct Case {
    std::string text, why;
  } cases[] = {
      {"", "empty"},
      {"Busybox", "lowercase"},
      {"a/Busybox", "lowercase"},
      {"busybox:", "tag"},
      {":tag", "repository name is empty"},
      {"a//b", "name component"},
      {"a/-b", "name component"},
      {"busybox:-x", "tag"},
      {"busybox:a$b", "tag"},
      {"busybox@sha256:123", "after `@`"},
      {"bad_host_:5000/x", "registry `bad_host_:5000`"},
      {"my-app__x.y/z", "registry"},
      {"host:99999999/x", "registry"},
      {std::string(300, 'a'), "255"},
  };
  for (const auto& c : cases) {
    auto ref = ParseReference(c.text);
    ASSERT_FALSE(ref.ok()) << c.text;
    EXPECT_NE(ref.status().message().find(c.why), std::string::npos)
        << c.text << ": " << ref.status().message();
  }
}

TEST(ReferenceTest, LooksLikeId) {
  EXPECT_TRUE(LooksLikeId("abc123"));
  EXPECT_TRUE(LooksLikeId("sha256:abc"));
  EXPECT_TRUE(LooksLikeId(std::string(64, 'f')));
  EXPECT_FALSE(LooksLikeId(std::string(65, 'f')));
  EXPECT_FALSE(LooksLikeId("busybox"));
  EXPECT_FALSE(LooksLikeId(""));
  EXPECT_FALSE(LooksLikeId("sha256:"));
}

}  // namespace
}  // namespace fjord::image
