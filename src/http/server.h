// HttpServer: the HTTP/1.1 server under fjord's control-plane API (/v1 and /fleet/v1).
//
// Threading (read this before writing a handler):
//  - One event-loop thread accepts connections, parses requests, routes them and writes
//    responses. Handlers registered with Dispatch::kLoop run on that thread and MUST NOT
//    block: no disk sync, no sleeping, no waiting on locks held for long.
//  - Handlers registered with Dispatch::kWorker run on a small worker pool
//    (Options::worker_threads) and may block briefly (e.g. a store transaction).
//  - A handler receives a Responder. It may respond before returning, or keep a copy and
//    respond later from any thread (long-polls: respond when a watch fires). If every copy of a
//    Responder is dropped without a response, the client gets 500.
//  - Streaming (chunked) responses: StartStream(), then Write() chunks over time from any
//    thread, then Finish().
//  - Stop() closes the listener, answers pending long-polls with 503, ends open streams, fires
//    every Responder's OnCancel callbacks and joins the threads. The destructor calls Stop().
//
// One request at a time per connection (keep-alive; pipelined requests are served in order).
// Beast/Asio stay inside server.cc: this header is cheap to include.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "http/url.h"

namespace fjord::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive header lookup; the first match, or empty.
std::string_view FindHeader(const Headers& headers, std::string_view name);

struct Request {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // as sent: "/v1/units/hello%401.service?x=1"
  std::string path;    // percent-decoded path: "/v1/units/hello@1.service"
  QueryParams query;   // percent-decoded query parameters
  std::map<std::string, std::string, std::less<>> params;  // from "{name}" segments, decoded
  Headers headers;
  std::string body;
  std::string remote;  // "127.0.0.1:54321"

  std::string_view Header(std::string_view name) const { return FindHeader(headers, name); }
  // The value captured by "{name}" (or "*" for a prefix route's remainder); empty if none.
  std::string_view Param(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;  // extra headers, e.g. {"Location", "/v1/units/a.service"}

  // A JSON body that the caller already serialized.
  static Response Json(int status, std::string json_body);
  static Response Text(int status, std::string text);
  static Response Empty(int status);  // e.g. 204
};

// {"error":{"code":N,"message":"...","field":"..."}}; "field" is omitted when empty. The shape
// is fleet's error body, extended with the field that was wrong.
std::string JsonErrorBody(int code, std::string_view message, std::string_view field = {});
Response JsonError(int code, std::string_view message, std::string_view field = {});

// The handle through which a handler answers its request. Copyable (all copies share one
// pending response); every method is thread-safe. The first Respond()/StartStream() wins.
class Responder {
 public:
  struct State;  // defined in server.cc
  explicit Responder(std::shared_ptr<State> state);

  // Sends a complete response. False if a response was already started, or the request was
  // cancelled (client gone, server stopping).
  bool Respond(Response response) const;

  // Starts a chunked response (status and content type now, body via Write()).
  bool StartStream(int status, std::string content_type = "text/plain; charset=utf-8",
                   Headers headers = {}) const;
  // Queues one chunk. False when the client is gone, the server is stopping, or the client is
  // so slow that more than Options::max_stream_backlog_bytes are queued (the stream is then
  // dropped): stop producing.
  bool Write(std::string chunk) const;
  // Ends the stream (the terminating zero-size chunk). Idempotent.
  void Finish() const;

  // If no response has started after `timeout`, sends `fallback` (a long-poll's "nothing
  // changed" answer). Call at most once.
  void SetTimeout(std::chrono::milliseconds timeout, Response fallback) const;

  // True once the client disconnected or the server is stopping.
  bool cancelled() const;
  // Runs `callback` once when the request is cancelled: on the event-loop thread, or inline
  // now if already cancelled. Must not block. Not run if the response completes normally.
  void OnCancel(std::function<void()> callback) const;

 private:
  struct Handle;
  std::shared_ptr<Handle> handle_;
};

using Handler = std::function<void(const Request&, Responder)>;
// For handlers that always answer before returning.
using SyncHandler = std::function<Response(const Request&)>;

enum class Dispatch { kLoop, kWorker };

// Routes (method, path) to handlers. Patterns are '/'-separated segments:
//   "/v1/units"          literal
//   "/v1/units/{name}"   {name} matches one non-empty segment, captured percent-decoded
//   "/v1/static/*"       a trailing "*" matches the rest of the path (maybe empty), as "*"
// A literal segment beats {param}, which beats "*", segment by segment from the left.
// Configure before HttpServer::Start(); not thread-safe to modify afterwards.
class Router {
 public:
  Router();
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  // Fails on a malformed pattern or a duplicate (method, pattern).
  base::Status Add(std::string_view method, std::string_view pattern, Handler handler,
                   Dispatch dispatch = Dispatch::kLoop);
  base::Status AddSync(std::string_view method, std::string_view pattern, SyncHandler handler,
                       Dispatch dispatch = Dispatch::kLoop);

  struct Match {
    enum Kind { kFound, kNotFound, kMethodNotAllowed } kind = kNotFound;
    const Handler* handler = nullptr;
    Dispatch dispatch = Dispatch::kLoop;
    std::map<std::string, std::string, std::less<>> params;
    std::vector<std::string> allowed;  // for kMethodNotAllowed, sorted
  };
  // `segments` are the percent-decoded path segments ("/a/b" -> {"a","b"}).
  Match Resolve(std::string_view method, const std::vector<std::string>& segments) const;

 private:
  struct Route;
  std::vector<std::unique_ptr<Route>> routes_;
};

// Splits and percent-decodes a request target's path: "/v1/units/a%40b" -> {"v1","units","a@b"}.
// Rejects a path not starting with '/', bad escapes, and NUL bytes.
base::Result<std::vector<std::string>> SplitPath(std::string_view path);

class HttpServer {
 public:
  struct Options {
    std::string address = "127.0.0.1";
    uint16_t port = 0;                   // 0: the kernel picks one; read it back with port()
    size_t max_body_bytes = 1 << 20;     // larger bodies get 413 without being read
    size_t max_header_bytes = 16 << 10;  // larger headers get 431
    size_t worker_threads = 2;           // for Dispatch::kWorker handlers
    size_t max_stream_backlog_bytes = 8 << 20;
    std::chrono::milliseconds idle_timeout{120'000};    // keep-alive connection with no request
    std::chrono::milliseconds request_timeout{30'000};  // to receive a request / send a response
  };

  HttpServer(Options options, Router router);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the threads. Fails naming the address ("listen on
  // 127.0.0.1:7777: Address already in use").
  base::Status Start();
  // The bound port (after Start()).
  uint16_t port() const;
  // "http://127.0.0.1:PORT".
  std::string url() const;
  // Idempotent; safe from any thread but a handler's.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fjord::http
