#include "image/digest.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace fjord::image {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  // Allocation or init failure means the process cannot hash at all; nothing sane to return.
  if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) std::abort();
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::Update(const void* data, size_t size) {
  if (size > 0) EVP_DigestUpdate(ctx_, data, size);
}

std::string Sha256::Finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kSha256Prefix);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

std::string Sha256Digest(std::string_view data) {
  Sha256 h;
  h.Update(data.data(), data.size());
  return h.Finish();
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

base::Status ValidateDigest(std::string_view digest, std::string_view what) {
  std::string where = std::string(what) + ": digest `" + std::string(digest.substr(0, 80)) + "`";
  if (digest.substr(0, kSha256Prefix.size()) != kSha256Prefix) {
    return base::InvalidArgument(where + " is not a sha256 digest (want sha256:<64 hex digits>)");
  }
  std::string_view hex = DigestHex(digest);
  if (hex.size() != 64 || !IsLowerHex(hex)) {
    return base::InvalidArgument(where + " must have 64 lowercase hex digits after `sha256:`");
  }
  return base::Status::Ok();
}

std::string ShortId(std::string_view digest) {
  if (digest.substr(0, kSha256Prefix.size()) == kSha256Prefix) digest = DigestHex(digest);
  return std::string(digest.substr(0, 12));
}

}  // namespace fjord::image
