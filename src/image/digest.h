// sha256 digests in the OCI form "sha256:<64 lowercase hex>", computed with OpenSSL's EVP.
// Sha256 objects are not thread-safe; the free functions are.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.h"

struct evp_md_ctx_st;

namespace fjord::image {

inline constexpr std::string_view kSha256Prefix = "sha256:";

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  // "sha256:<hex>"; the object must not be updated afterwards.
  std::string Finish();

 private:
  evp_md_ctx_st* ctx_;
};

std::string Sha256Digest(std::string_view data);

// Checks "sha256:<64 lowercase hex>"; the error names `what` (e.g. "layers[0].digest").
base::Status ValidateDigest(std::string_view digest, std::string_view what);

// The hex part of a valid digest.
inline std::string_view DigestHex(std::string_view digest) {
  return digest.substr(kSha256Prefix.size());
}

// The 12-hex-digit short form docker shows.
std::string ShortId(std::string_view digest);

bool IsLowerHex(std::string_view s);

}  // namespace fjord::image
