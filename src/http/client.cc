// HttpClient on Boost.Beast. Synchronous to the caller, but each step runs as an async
// operation on a private io_context so that beast::tcp_stream's timeouts apply.
#include "http/client.h"

#include <sys/socket.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cerrno>
#include <limits>
#include <optional>

#include "base/strings.h"

namespace fjord::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

std::string Seconds(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

// Boost 1.74's Beast takes boost::string_view.
beast::string_view Bsv(std::string_view s) { return {s.data(), s.size()}; }

bool IsIdempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" ||
         method == "OPTIONS";
}

}  // namespace

struct HttpClient::Impl {
  BaseUrl url;
  Options options;
  asio::io_context ioc{1};
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  int connections = 0;

  // Runs one async operation to completion on the caller's thread.
  template <typename Start>
  error_code Run(Start start) {
    error_code result = asio::error::would_block;
    start([&result](error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }

  base::Status Error(std::string_view what, const error_code& ec,
                     std::chrono::milliseconds timeout) const {
    if (ec == asio::error::connection_refused) {
      std::string msg = std::string(what) + ": connection refused";
      if (!options.unreachable_hint.empty()) msg += " — " + options.unreachable_hint;
      return base::Unavailable(std::move(msg));
    }
    if (ec == beast::error::timeout) {
      return base::Status(base::Code::kDeadlineExceeded,
                          std::string(what) + ": timed out after " + Seconds(timeout));
    }
    if (ec == bhttp::error::body_limit) {
      return base::Status(base::Code::kResourceExhausted,
                          std::string(what) + ": response larger than " +
                              std::to_string(options.max_response_bytes) + " bytes");
    }
    std::string m = ec.message();
    if (!m.empty()) m[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(m[0])));
    return base::Unavailable(std::string(what) + ": " + m);
  }

  void Close() {
    if (!stream) return;
    error_code ec;
    stream->socket().shutdown(tcp::socket::shutdown_both, ec);
    stream->close();
    stream.reset();
    buffer.clear();
  }

  // A kept-alive connection the server has since closed reads as EOF (or has stray bytes).
  bool Alive() {
    if (!stream || !stream->socket().is_open()) return false;
    char c;
    ssize_t n = ::recv(stream->socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  base::Status Connect(std::string_view what) {
    Close();
    tcp::resolver resolver(ioc);
    error_code ec;
    auto results =
        resolver.resolve(url.host, std::to_string(url.port), tcp::resolver::numeric_service, ec);
    if (ec) {
      return base::Unavailable(std::string(what) + ": resolve host `" + url.host +
                               "`: " + ec.message());
    }
    stream.emplace(ioc);
    stream->expires_after(options.connect_timeout);
    ec = Run([&](auto handler) { stream->async_connect(results, handler); });
    if (ec) {
      stream.reset();
      return Error(what, ec, options.connect_timeout);
    }
    error_code ignored;
    stream->socket().set_option(tcp::no_delay(true), ignored);
    ++connections;
    return base::Status::Ok();
  }

  // Connects if there is no live connection; `reused` says whether an old one is used.
  base::Status EnsureConnected(std::string_view what, bool& reused) {
    reused = Alive();
    if (reused) return base::Status::Ok();
    return Connect(what);
  }

  bhttp::request<bhttp::string_body> MakeRequest(std::string_view method, std::string_view target,
                                                 std::string_view body,
                                                 std::string_view content_type,
                                                 const Headers& headers) const {
    bhttp::request<bhttp::string_body> req;
    req.method_string(Bsv(method));
    req.target(url.prefix + std::string(target));
    req.version(11);
    req.set(bhttp::field::host, url.host + ":" + std::to_string(url.port));
    req.set(bhttp::field::user_agent, "fjord");
    for (const auto& [name, value] : headers) req.insert(name, value);
    if (!body.empty()) {
      req.set(bhttp::field::content_type, Bsv(content_type));
      req.body() = std::string(body);
    }
    req.keep_alive(true);
    req.prepare_payload();
    return req;
  }
};

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() { impl_->Close(); }

base::Result<std::unique_ptr<HttpClient>> HttpClient::Create(std::string_view base_url,
                                                             Options options) {
  FJORD_ASSIGN_OR_RETURN(BaseUrl url, BaseUrl::Parse(base_url));
  auto impl = std::make_unique<Impl>();
  impl->url = std::move(url);
  impl->options = std::move(options);
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

const BaseUrl& HttpClient::base_url() const { return impl_->url; }
int HttpClient::connections_opened() const { return impl_->connections; }

base::Result<ClientResponse> HttpClient::Do(std::string_view method, std::string_view target,
                                            std::string_view body, std::string_view content_type,
                                            const Headers& headers) {
  Impl& d = *impl_;
  const std::string what = std::string(method) + " " + d.url.ToString() + std::string(target);
  if (target.empty() || target.front() != '/') {
    return base::InvalidArgument(what + ": request target must start with '/'");
  }
  auto req = d.MakeRequest(method, target, body, content_type, headers);
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    FJORD_RETURN_IF_ERROR(d.EnsureConnected(what, reused));
    d.stream->expires_after(d.options.request_timeout);
    error_code ec = d.Run([&](auto handler) { bhttp::async_write(*d.stream, req, handler); });
    // A reused connection may have been closed by the server just as we wrote: one retry.
    if (ec && reused && attempt == 0) continue;
    if (ec) {
      d.Close();
      return d.Error(what, ec, d.options.request_timeout);
    }
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(d.options.max_response_bytes);
    ec = d.Run([&](auto handler) { bhttp::async_read(*d.stream, d.buffer, parser, handler); });
    if (ec) {
      d.Close();
      bool nothing_read = ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset;
      if (nothing_read && reused && attempt == 0 && IsIdempotent(method)) continue;
      return d.Error(what, ec, d.options.request_timeout);
    }
    auto res = parser.release();
    ClientResponse out;
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res) {
      out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    out.body = std::move(res.body());
    if (!res.keep_alive()) d.Close();
    return out;
  }
}

base::Result<ClientResponse> HttpClient::GetStream(
    std::string_view target, const std::function<bool(std::string_view)>& on_data,
    std::chrono::milliseconds idle_timeout) {
  Impl& d = *impl_;
  const std::string what = "GET " + d.url.ToString() + std::string(target);
  if (target.empty() || target.front() != '/') {
    return base::InvalidArgument(what + ": request target must start with '/'");
  }
  auto req = d.MakeRequest("GET", target, {}, {}, {});
  bool reused = false;
  FJORD_RETURN_IF_ERROR(d.EnsureConnected(what, reused));
  d.stream->expires_after(d.options.request_timeout);
  error_code ec = d.Run([&](auto handler) { bhttp::async_write(*d.stream, req, handler); });
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(std::numeric_limits<uint64_t>::max());
  std::array<char, 16384> buf;
  // The header read may already parse body bytes that arrived with it: give them a home.
  parser.get().body().data = buf.data();
  parser.get().body().size = buf.size();
  if (!ec) {
    ec = d.Run([&](auto h) { bhttp::async_read_header(*d.stream, d.buffer, parser, h); });
  }
  if (ec) {
    d.Close();
    return d.Error(what, ec, d.options.request_timeout);
  }
  ClientResponse out;
  out.status = static_cast<int>(parser.get().result_int());
  for (const auto& f : parser.get()) {
    out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  }
  const bool success = out.status >= 200 && out.status < 300;
  // Delivers what the parser put into `buf`; false when the caller wants no more.
  auto deliver = [&](std::chrono::milliseconds timeout) -> std::optional<base::Status> {
    std::string_view piece(buf.data(), buf.size() - parser.get().body().size);
    if (piece.empty()) return std::nullopt;
    if (!success) {
      if (out.body.size() + piece.size() > d.options.max_response_bytes) {
        d.Close();
        return d.Error(what, bhttp::error::body_limit, timeout);
      }
      out.body.append(piece);
    } else if (!on_data(piece)) {
      d.Close();  // the rest of the stream is unwanted; the connection cannot be reused
      return base::Status::Ok();
    }
    return std::nullopt;
  };
  if (auto stop = deliver(d.options.request_timeout)) {
    if (!stop->ok()) return *stop;
    return out;
  }
  while (!parser.is_done()) {
    parser.get().body().data = buf.data();
    parser.get().body().size = buf.size();
    std::chrono::milliseconds timeout = success ? idle_timeout : d.options.request_timeout;
    if (timeout.count() > 0) {
      d.stream->expires_after(timeout);
    } else {
      d.stream->expires_never();
    }
    ec = d.Run([&](auto h) { bhttp::async_read_some(*d.stream, d.buffer, parser, h); });
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      d.Close();
      return d.Error(what, ec, timeout);
    }
    if (auto stop = deliver(timeout)) {
      if (!stop->ok()) return *stop;
      return out;
    }
  }
  if (!parser.get().keep_alive()) d.Close();
  return out;
}

}  // namespace fjord::http
