#include "image/digest.h"

#include <gtest/gtest.h>

namespace fjord::image {
namespace {

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Digest(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Digest("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, IncrementalEqualsOneShot) {
  Sha256 h;
  h.Update("a", 1);
  h.Update("bc", 2);
  EXPECT_EQ(h.Finish(), Sha256Digest("abc"));
}

TEST(ValidateDigestTest, Table) {
  const std::string good = Sha256Digest("x");
  struct Case {
    std::string digest;
    bool ok;
  } cases[] = {
      {good, true},
      {"sha256:" + std::string(63, 'a'), false},
      {"sha256:" + std::string(65, 'a'), false},
      {"sha256:" + std::string(64, 'A'), false},
      {"sha256:" + std::string(63, 'a') + "g", false},
      {"sha512:" + std::string(64, 'a'), false},
      {std::string(64, 'a'), false},
      {"", false},
      {"sha256:../../etc/passwd", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ValidateDigest(c.digest, "layers[0].digest").ok(), c.ok) << c.digest;
  }
  auto st = ValidateDigest("md5:abc", "layers[0].digest");
  EXPECT_NE(st.message().find("layers[0].digest"), std::string::npos) << st.message();
}

TEST(ShortIdTest, TwelveHexDigits) {
  EXPECT_EQ(ShortId("sha256:0123456789abcdef0123"), "0123456789ab");
  EXPECT_EQ(ShortId("0123456789abcdef"), "0123456789ab");
}

}  // namespace
}  // namespace fjord::image
