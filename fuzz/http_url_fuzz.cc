// Fuzzes the request-target parsing the server applies to every request: path splitting with
// percent-decoding, query strings, and base URLs.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http/server.h"
#include "http/url.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  using namespace fjord::http;
  size_t q = in.find('?');
  (void)SplitPath(in.substr(0, q));
  if (q != std::string_view::npos) (void)QueryParams::Parse(in.substr(q + 1));
  if (auto d = PercentDecode(in); d.ok()) {
    if (*PercentDecode(PercentEncode(*d)) != *d) std::abort();
  }
  (void)BaseUrl::Parse(in);
  return 0;
}
