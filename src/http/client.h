// HttpClient: a small synchronous HTTP/1.1 client for the CLI and agents.
//
// One client owns at most one keep-alive connection to its base URL and reuses it across
// requests; a connection the server closed while idle is noticed and replaced. Every failure is
// a Status naming the request: "GET http://127.0.0.1:7777/v1/units: connection refused — is
// `fjord server` running? set --endpoint or FJORD_ENDPOINT". An HTTP error status (4xx, 5xx) is
// not a failure here: the caller reads ClientResponse::status.
//
// Not thread-safe: use one client per thread. Beast/Asio stay inside client.cc.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "http/server.h"  // Headers, FindHeader
#include "http/url.h"

namespace fjord::http {

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;

  std::string_view Header(std::string_view name) const { return FindHeader(headers, name); }
};

class HttpClient {
 public:
  struct Options {
    std::chrono::milliseconds connect_timeout{5'000};
    // For the whole exchange of one request (a long-poll needs more than its server-side wait).
    std::chrono::milliseconds request_timeout{60'000};
    // Appended to "connection refused" errors to tell people what to check.
    std::string unreachable_hint = "is `fjord server` running? set --endpoint or FJORD_ENDPOINT";
    size_t max_response_bytes = 64 << 20;
  };

  // `base_url`: "http://127.0.0.1:7777" (an optional path prefix is prepended to every path).
  static base::Result<std::unique_ptr<HttpClient>> Create(std::string_view base_url,
                                                          Options options);
  static base::Result<std::unique_ptr<HttpClient>> Create(std::string_view base_url) {
    return Create(base_url, Options());
  }
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // `target` is the path and query, already escaped: "/v1/units/" + PercentEncode(name).
  // A non-empty body is sent with `content_type`.
  base::Result<ClientResponse> Do(std::string_view method, std::string_view target,
                                  std::string_view body = {},
                                  std::string_view content_type = "application/json",
                                  const Headers& headers = {});
  base::Result<ClientResponse> Get(std::string_view target) { return Do("GET", target); }
  base::Result<ClientResponse> Delete(std::string_view target) { return Do("DELETE", target); }
  base::Result<ClientResponse> Put(std::string_view target, std::string_view json) {
    return Do("PUT", target, json);
  }
  base::Result<ClientResponse> Post(std::string_view target, std::string_view json) {
    return Do("POST", target, json);
  }

  // GET whose body arrives over time (chunked `journal -f`). For a 2xx answer each piece of
  // body is passed to `on_data` as it arrives (chunk boundaries are not preserved); return
  // false from it to stop reading and drop the connection. A non-2xx answer's body is returned
  // in ClientResponse::body instead. `idle_timeout` bounds the wait for the next piece
  // (zero: wait forever).
  base::Result<ClientResponse> GetStream(std::string_view target,
                                         const std::function<bool(std::string_view)>& on_data,
                                         std::chrono::milliseconds idle_timeout = {});

  const BaseUrl& base_url() const;
  // Connections opened so far (tests check keep-alive reuse with it).
  int connections_opened() const;

 private:
  struct Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fjord::http
