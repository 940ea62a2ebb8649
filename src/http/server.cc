// HttpServer on Boost.Beast. All socket work happens on one io_context thread; see server.h for
// the threading contract. Sessions serve one request at a time; a Responder::State is the
// thread-safe bridge from handler threads back to the session that owns the socket.
#include "http/server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

namespace fjord::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

// What a Responder needs from the server: the loop to post to and the limits.
struct Core {
  explicit Core(HttpServer::Options o) : options(std::move(o)) {}
  HttpServer::Options options;
  asio::io_context ioc{1};
  std::atomic<bool> stopping{false};
};

class Session;

}  // namespace

struct Responder::State : std::enable_shared_from_this<Responder::State> {
  State(std::shared_ptr<Core> c, std::weak_ptr<Session> s)
      : core(std::move(c)), session(std::move(s)) {}

  enum class Phase { kPending, kStreaming, kDone };

  const std::shared_ptr<Core> core;  // first member: outlives `timer`, which uses its loop
  const std::weak_ptr<Session> session;
  std::atomic<size_t> backlog{0};  // stream bytes queued but not yet written

  std::mutex mu;
  Phase phase = Phase::kPending;                 // guarded by mu
  bool cancelled = false;                        // guarded by mu
  std::vector<std::function<void()>> on_cancel;  // guarded by mu
  // Operations for the session, in call order. Asio does not keep posts from different threads
  // in order (the loop thread's own posts are queued privately), so one request's operations
  // go through this queue and one drain at a time.
  std::vector<std::function<void(Session&)>> ops;  // guarded by mu
  bool drain_posted = false;                       // guarded by mu

  std::optional<asio::steady_timer> timer;  // loop thread only
};

using State = Responder::State;

namespace {

// Marks the request cancelled and runs its OnCancel callbacks (loop thread).
void CancelState(State& st) {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(st.mu);
    if (st.phase == State::Phase::kDone && !st.on_cancel.empty()) {
      st.on_cancel.clear();  // completed normally: callbacks are for cancellation only
    }
    if (st.cancelled) return;
    st.cancelled = true;
    if (st.phase != State::Phase::kDone) callbacks.swap(st.on_cancel);
    st.phase = State::Phase::kDone;
  }
  if (st.timer) st.timer->cancel();
  for (auto& cb : callbacks) {
    try {
      cb();
    } catch (const std::exception& e) {
      spdlog::error("http: OnCancel callback threw: {}", e.what());
    }
  }
}

// Runs the operations queued for `st` on its session, in order (loop thread).
void DrainOps(State& st) {
  std::vector<std::function<void(Session&)>> ops;
  {
    std::lock_guard lock(st.mu);
    ops.swap(st.ops);
    st.drain_posted = false;
  }
  auto session = st.session.lock();
  if (!session) return;
  for (auto& op : ops) op(*session);
}

bool IsQuietCloseError(const error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
         ec == asio::error::eof || ec == asio::error::operation_aborted ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == beast::error::timeout || ec == asio::error::bad_descriptor;
}

bool StatusHasNoBody(int status) { return status < 200 || status == 204 || status == 304; }

struct ServerImpl;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ServerImpl& server);
  ~Session();

  void Start();
  // Loop-thread entry points posted by Responder; `st` identifies the request they belong to.
  void SendResponse(const State* st, Response r);
  void StartStream(const State* st, int status, std::string content_type, Headers headers);
  void WriteChunk(const State* st, std::string chunk);
  void FinishStream(const State* st);
  void Abort(const State* st);
  // Server stopping: answer or end whatever is in flight, then close.
  void Shutdown();

 private:
  enum class Phase { kReading, kHandling, kResponding, kStreaming, kDraining, kClosed };

  void ReadNext();
  void OnHeader(error_code ec);
  void ReadBody();
  void OnRequest(error_code ec);
  void OnReadError(error_code ec);
  void Dispatch(Request req);
  void WriteResponse(Response r, bool close_after);
  void OnWritten(error_code ec, bool keep_alive);
  void WatchDisconnect();
  void PumpStream();
  void DrainAndClose();
  void Close();
  void FinishPending();
  void ReleaseSelf();
  std::chrono::milliseconds WriteTimeout() const;

  beast::tcp_stream stream_;
  ServerImpl& server_;
  const HttpServer::Options& options_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string remote_;
  Phase phase_ = Phase::kReading;
  bool first_request_ = true;
  bool keep_alive_ = true;
  unsigned watch_gen_ = 0;
  std::shared_ptr<State> pending_;  // the request being handled
  // Keeps the session alive while a handler holds the request and no socket operation is
  // outstanding (a pipelined request disables the disconnect watch).
  std::shared_ptr<Session> self_;
  // Streaming state.
  std::deque<std::string> chunks_;
  std::string writing_chunk_;
  bool writing_ = false;
  bool finish_stream_ = false;
  std::array<char, 4096> drain_buf_{};
  size_t drained_ = 0;
};

struct ServerImpl {
  ServerImpl(HttpServer::Options o, Router r)
      : core(std::make_shared<Core>(std::move(o))), router(std::move(r)) {}

  void DoAccept();

  std::shared_ptr<Core> core;
  Router router;
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::thread_pool> workers;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread loop;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // loop thread only
  uint16_t port = 0;
  std::mutex mu;         // guards started/stopped (Start/Stop from user threads)
  bool started = false;  // guarded by mu
  bool stopped = false;  // guarded by mu
};

Session::Session(tcp::socket socket, ServerImpl& server)
    : stream_(std::move(socket)), server_(server), options_(server.core->options) {}

Session::~Session() {
  server_.sessions.erase(this);
  if (pending_) CancelState(*pending_);
}

void Session::Start() {
  error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  stream_.socket().set_option(tcp::no_delay(true), ec);
  ReadNext();
}

std::chrono::milliseconds Session::WriteTimeout() const {
  return server_.core->stopping ? std::chrono::milliseconds(1000) : options_.request_timeout;
}

void Session::ReadNext() {
  if (server_.core->stopping) return Close();
  phase_ = Phase::kReading;
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(options_.max_header_bytes));
  parser_->body_limit(options_.max_body_bytes);
  stream_.expires_after(first_request_ ? options_.request_timeout : options_.idle_timeout);
  first_request_ = false;
  bhttp::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](error_code ec, size_t) { self->OnHeader(ec); });
}

void Session::OnHeader(error_code ec) {
  if (phase_ != Phase::kReading) return;
  if (ec) return OnReadError(ec);
  stream_.expires_after(options_.request_timeout);  // the body must follow promptly
  auto& req = parser_->get();
  if (beast::iequals(req[bhttp::field::expect], "100-continue") && !parser_->is_done()) {
    auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, 11);
    bhttp::async_write(stream_, *cont, [self = shared_from_this(), cont](error_code ec, size_t) {
      if (ec) return self->Close();
      self->ReadBody();
    });
    return;
  }
  ReadBody();
}

void Session::ReadBody() {
  if (parser_->is_done()) return OnRequest({});
  bhttp::async_read(stream_, buffer_, *parser_,
                    [self = shared_from_this()](error_code ec, size_t) { self->OnRequest(ec); });
}

void Session::OnReadError(error_code ec) {
  if (ec == bhttp::error::body_limit) {
    phase_ = Phase::kHandling;
    return WriteResponse(JsonError(413, "request body larger than the limit of " +
                                            std::to_string(options_.max_body_bytes) + " bytes"),
                         /*close_after=*/true);
  }
  if (ec == bhttp::error::header_limit) {
    phase_ = Phase::kHandling;
    return WriteResponse(JsonError(431, "request headers larger than the limit of " +
                                            std::to_string(options_.max_header_bytes) + " bytes"),
                         true);
  }
  // Nothing received at all, or the peer went away mid-request: nobody to answer.
  if (IsQuietCloseError(ec)) return Close();
  phase_ = Phase::kHandling;
  WriteResponse(JsonError(400, "malformed HTTP request: " + ec.message()), true);
}

void Session::OnRequest(error_code ec) {
  if (phase_ != Phase::kReading) return;
  if (ec) return OnReadError(ec);
  auto msg = parser_->release();
  parser_.reset();
  Request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  for (const auto& field : msg) {
    req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  req.body = std::move(msg.body());
  req.remote = remote_;
  keep_alive_ = msg.keep_alive();
  Dispatch(std::move(req));
}

void Session::Dispatch(Request req) {
  phase_ = Phase::kHandling;
  std::string_view target = req.target;
  size_t q = target.find('?');
  auto segments = SplitPath(target.substr(0, q));
  if (!segments.ok()) return WriteResponse(JsonError(400, segments.status().message()), false);
  if (q != std::string_view::npos) {
    auto query = QueryParams::Parse(target.substr(q + 1));
    if (!query.ok()) return WriteResponse(JsonError(400, query.status().message()), false);
    req.query = std::move(*query);
  }
  req.path = "/";
  for (size_t i = 0; i < segments->size(); ++i) req.path += (i ? "/" : "") + (*segments)[i];

  Router::Match match = server_.router.Resolve(req.method, *segments);
  if (match.kind == Router::Match::kNotFound) {
    return WriteResponse(JsonError(404, "no such endpoint: " + req.method + " " + req.path), false);
  }
  if (match.kind == Router::Match::kMethodNotAllowed) {
    std::string allow;
    for (const auto& m : match.allowed) allow += (allow.empty() ? "" : ", ") + m;
    Response r = JsonError(405, "method " + req.method + " is not allowed for " + req.path +
                                    " (allowed: " + allow + ")");
    r.headers.emplace_back("Allow", allow);
    return WriteResponse(std::move(r), false);
  }
  req.params = std::move(match.params);

  pending_ = std::make_shared<State>(server_.core, weak_from_this());
  self_ = shared_from_this();
  stream_.expires_never();  // a long-poll may legitimately take a while
  WatchDisconnect();
  auto run = [handler = match.handler, responder = Responder(pending_)](const Request& r) {
    try {
      (*handler)(r, responder);
    } catch (const std::exception& e) {
      responder.Respond(JsonError(500, std::string("internal error: ") + e.what()));
    }
  };
  if (match.dispatch == Dispatch::kLoop) {
    run(req);
  } else {
    asio::post(*server_.workers,
               [run = std::move(run), req = std::move(req)]() mutable { run(req); });
  }
}

// Notices a client that hangs up while its request is pending, so long-polls and streams are
// cancelled instead of waiting for a watch that may never fire.
void Session::WatchDisconnect() {
  if (buffer_.size() > 0) return;  // a pipelined request is already buffered: cannot tell
  unsigned gen = ++watch_gen_;
  stream_.socket().async_wait(
      tcp::socket::wait_read, [self = shared_from_this(), gen](error_code ec) {
        if (gen != self->watch_gen_) return;
        if (self->phase_ != Phase::kHandling && self->phase_ != Phase::kStreaming) return;
        if (ec) {
          if (ec != asio::error::operation_aborted) self->Close();
          return;
        }
        char c;
        ssize_t n = ::recv(self->stream_.socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0) return;  // the next request is arriving; it is read after this response
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
          return self->WatchDisconnect();
        }
        self->Close();  // EOF or error: the client is gone
      });
}

// Drops the self-reference later, on the loop, so `this` stays valid for the caller.
void Session::ReleaseSelf() {
  if (self_) asio::post(stream_.get_executor(), [s = std::move(self_)] {});
}

void Session::FinishPending() {
  ReleaseSelf();
  if (!pending_) return;
  if (pending_->timer) pending_->timer->cancel();
  {
    std::lock_guard lock(pending_->mu);
    pending_->on_cancel.clear();
  }
  pending_.reset();
}

void Session::SendResponse(const State* st, Response r) {
  if (pending_.get() != st || phase_ != Phase::kHandling) return;
  WriteResponse(std::move(r), false);
}

void Session::WriteResponse(Response r, bool close_after) {
  ++watch_gen_;
  phase_ = Phase::kResponding;
  FinishPending();
  if (r.status < 100 || r.status > 599) {
    r = JsonError(
        500, "internal error: handler returned invalid HTTP status " + std::to_string(r.status));
  }
  auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
  res->version(11);
  res->result(static_cast<unsigned>(r.status));
  res->set(bhttp::field::server, "fjord");
  if (!r.content_type.empty()) res->set(bhttp::field::content_type, r.content_type);
  for (auto& [name, value] : r.headers) res->insert(name, value);
  if (StatusHasNoBody(r.status)) r.body.clear();
  res->body() = std::move(r.body);
  bool keep = keep_alive_ && !close_after && !server_.core->stopping;
  res->keep_alive(keep);
  res->prepare_payload();
  stream_.expires_after(WriteTimeout());
  bhttp::async_write(stream_, *res,
                     [self = shared_from_this(), res, keep, close_after](error_code ec, size_t) {
                       if (close_after && !ec) return self->DrainAndClose();
                       self->OnWritten(ec, keep);
                     });
}

void Session::OnWritten(error_code ec, bool keep_alive) {
  if (phase_ == Phase::kClosed) return;
  if (ec || !keep_alive || server_.core->stopping) return Close();
  ReadNext();
}

void Session::StartStream(const State* st, int status, std::string content_type, Headers headers) {
  if (pending_.get() != st || phase_ != Phase::kHandling) return;
  phase_ = Phase::kStreaming;  // the disconnect watch from Dispatch() stays armed
  if (pending_->timer) pending_->timer->cancel();
  auto res = std::make_shared<bhttp::response<bhttp::empty_body>>();
  res->version(11);
  res->result(status >= 200 && status <= 599 ? static_cast<unsigned>(status) : 500u);
  res->set(bhttp::field::server, "fjord");
  res->set(bhttp::field::content_type, content_type);
  for (auto& [name, value] : headers) res->insert(name, value);
  res->keep_alive(keep_alive_ && !server_.core->stopping);
  res->chunked(true);
  auto sr = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*res);
  writing_ = true;
  stream_.expires_after(WriteTimeout());
  bhttp::async_write_header(stream_, *sr,
                            [self = shared_from_this(), res, sr](error_code ec, size_t) {
                              self->writing_ = false;
                              if (ec) return self->Close();
                              self->PumpStream();
                            });
}

void Session::WriteChunk(const State* st, std::string chunk) {
  if (pending_.get() != st || phase_ != Phase::kStreaming) return;
  chunks_.push_back(std::move(chunk));
  PumpStream();
}

void Session::FinishStream(const State* st) {
  if (pending_.get() != st || phase_ != Phase::kStreaming) return;
  finish_stream_ = true;
  PumpStream();
}

void Session::Abort(const State* st) {
  if (pending_.get() == st) Close();
}

void Session::PumpStream() {
  if (writing_ || phase_ != Phase::kStreaming) return;
  if (!chunks_.empty()) {
    // Coalesce what queued up while the last write was in flight into one chunk.
    writing_chunk_.clear();
    for (auto& c : chunks_) writing_chunk_ += c;
    chunks_.clear();
    writing_ = true;
    stream_.expires_after(WriteTimeout());
    asio::async_write(stream_, bhttp::make_chunk(asio::buffer(writing_chunk_)),
                      [self = shared_from_this()](error_code ec, size_t) {
                        self->writing_ = false;
                        if (self->pending_) self->pending_->backlog -= self->writing_chunk_.size();
                        if (ec) return self->Close();
                        self->PumpStream();
                      });
    return;
  }
  if (finish_stream_) {
    finish_stream_ = false;
    writing_ = true;
    ++watch_gen_;
    phase_ = Phase::kResponding;
    FinishPending();
    stream_.expires_after(WriteTimeout());
    asio::async_write(stream_, bhttp::make_chunk_last(),
                      [self = shared_from_this()](error_code ec, size_t) {
                        self->writing_ = false;
                        self->OnWritten(ec, self->keep_alive_);
                      });
    return;
  }
  stream_.expires_never();  // idle between chunks, e.g. `journal -f` with no new lines
}

// After an error response sent with "Connection: close" the client may still be sending the
// body we refused; reading (and discarding) a little of it before closing keeps the kernel
// from resetting the connection before the client has read our answer.
void Session::DrainAndClose() {
  phase_ = Phase::kDraining;
  error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream_.expires_after(std::chrono::seconds(1));
  stream_.async_read_some(asio::buffer(drain_buf_),
                          [self = shared_from_this()](error_code ec, size_t n) {
                            self->drained_ += n;
                            if (ec || self->drained_ > (1u << 20)) return self->Close();
                            self->DrainAndClose();
                          });
}

void Session::Close() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  ++watch_gen_;
  ReleaseSelf();
  if (pending_) {
    auto st = std::move(pending_);
    CancelState(*st);
  }
  error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.close();
}

void Session::Shutdown() {
  // Apply what the handler already asked for (e.g. a started stream) before deciding.
  if (pending_) DrainOps(*pending_);
  switch (phase_) {
    case Phase::kReading:
    case Phase::kDraining:
      Close();
      break;
    case Phase::kHandling:
      CancelState(*pending_);
      WriteResponse(JsonError(503, "server is shutting down; retry against another server"), false);
      break;
    case Phase::kStreaming:
      CancelState(*pending_);
      finish_stream_ = true;
      PumpStream();
      break;
    case Phase::kResponding:
      stream_.expires_after(std::chrono::seconds(1));  // OnWritten closes once it completes
      break;
    case Phase::kClosed:
      break;
  }
}

void ServerImpl::DoAccept() {
  acceptor->async_accept(core->ioc, [this](error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
    if (ec) {
      // EMFILE and friends: keep serving the connections we have and try again.
      spdlog::warn("http: accept on port {}: {}", port, ec.message());
    } else {
      auto session = std::make_shared<Session>(std::move(socket), *this);
      sessions.emplace(session.get(), session);
      session->Start();
    }
    DoAccept();
  });
}

}  // namespace

// ----- Responder -----

struct Responder::Handle {
  explicit Handle(std::shared_ptr<State> s) : state(std::move(s)) {}
  ~Handle();
  std::shared_ptr<State> state;
};

namespace {

// Queues `fn(session)` for the loop; called with st.mu held, so operations on one request
// reach the session in the order they were made.
template <typename Fn>
void PostToSession(State& st, Fn fn) {
  st.ops.emplace_back(std::move(fn));
  if (st.drain_posted) return;
  st.drain_posted = true;
  asio::post(st.core->ioc, [s = st.shared_from_this()] { DrainOps(*s); });
}

bool DoRespond(State& st, Response r) {
  std::lock_guard lock(st.mu);
  if (st.phase != State::Phase::kPending || st.cancelled) return false;
  st.phase = State::Phase::kDone;
  PostToSession(
      st, [p = &st, r = std::move(r)](Session& s) mutable { s.SendResponse(p, std::move(r)); });
  return true;
}

void DoFinish(State& st) {
  std::lock_guard lock(st.mu);
  if (st.phase != State::Phase::kStreaming || st.cancelled) return;
  st.phase = State::Phase::kDone;
  PostToSession(st, [p = &st](Session& s) { s.FinishStream(p); });
}

}  // namespace

Responder::Handle::~Handle() {
  // The last copy is gone: make sure the client is not left waiting forever.
  DoRespond(*state, JsonError(500,
                              "internal error: the handler dropped the request without "
                              "responding"));
  DoFinish(*state);
}

Responder::Responder(std::shared_ptr<State> state)
    : handle_(std::make_shared<Handle>(std::move(state))) {}

bool Responder::Respond(Response response) const {
  return DoRespond(*handle_->state, std::move(response));
}

bool Responder::StartStream(int status, std::string content_type, Headers headers) const {
  State& st = *handle_->state;
  std::lock_guard lock(st.mu);
  if (st.phase != State::Phase::kPending || st.cancelled) return false;
  st.phase = State::Phase::kStreaming;
  PostToSession(st,
                [p = &st, status, ct = std::move(content_type), h = std::move(headers)](
                    Session& s) mutable { s.StartStream(p, status, std::move(ct), std::move(h)); });
  return true;
}

bool Responder::Write(std::string chunk) const {
  State& st = *handle_->state;
  std::lock_guard lock(st.mu);
  if (st.phase != State::Phase::kStreaming || st.cancelled) return false;
  if (chunk.empty()) return true;  // an empty chunk would end the stream on the wire
  size_t backlog = st.backlog += chunk.size();
  if (backlog > st.core->options.max_stream_backlog_bytes) {
    st.phase = State::Phase::kDone;
    PostToSession(st, [p = &st](Session& s) { s.Abort(p); });
    return false;
  }
  PostToSession(
      st, [p = &st, c = std::move(chunk)](Session& s) mutable { s.WriteChunk(p, std::move(c)); });
  return true;
}

void Responder::Finish() const { DoFinish(*handle_->state); }

void Responder::SetTimeout(std::chrono::milliseconds timeout, Response fallback) const {
  // The timer holds a Handle: a handler may set a timeout and keep no copy of its own.
  auto handle = handle_;
  State& st = *handle->state;
  {
    std::lock_guard lock(st.mu);
    if (st.phase != State::Phase::kPending || st.cancelled) return;
  }
  asio::post(st.core->ioc, [handle, timeout, fallback = std::move(fallback)]() mutable {
    State& st = *handle->state;
    {
      std::lock_guard lock(st.mu);
      if (st.phase != State::Phase::kPending || st.cancelled) return;
    }
    st.timer.emplace(st.core->ioc, timeout);
    st.timer->async_wait([handle, fallback = std::move(fallback)](error_code ec) mutable {
      if (!ec) DoRespond(*handle->state, std::move(fallback));
    });
  });
}

bool Responder::cancelled() const {
  std::lock_guard lock(handle_->state->mu);
  return handle_->state->cancelled;
}

void Responder::OnCancel(std::function<void()> callback) const {
  State& st = *handle_->state;
  {
    std::lock_guard lock(st.mu);
    if (!st.cancelled) {
      if (st.phase != State::Phase::kDone) st.on_cancel.push_back(std::move(callback));
      return;
    }
  }
  callback();
}

// ----- HttpServer -----

struct HttpServer::Impl : ServerImpl {
  using ServerImpl::ServerImpl;
};

HttpServer::HttpServer(Options options, Router router)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(router))) {}

HttpServer::~HttpServer() { Stop(); }

base::Status HttpServer::Start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->started) return base::FailedPrecondition("http server already started");
  const Options& o = impl_->core->options;
  std::string where = "listen on " + o.address + ":" + std::to_string(o.port);
  error_code ec;
  auto address = asio::ip::make_address(o.address, ec);
  if (ec) {
    return base::InvalidArgument(where + ": `" + o.address + "` is not an IP address");
  }
  tcp::endpoint endpoint(address, o.port);
  auto& acceptor = impl_->acceptor.emplace(impl_->core->ioc);
  auto fail = [&](std::string_view step) {
    base::Status st =
        base::Status(base::Code::kUnavailable,
                     where + ": " + std::string(step) + ": " + ec.message())
            .WithErrno(ec.category() == boost::system::system_category() ? ec.value() : 0);
    acceptor.close(ec);
    return st;
  };
  if (acceptor.open(endpoint.protocol(), ec)) return fail("socket");
  if (acceptor.set_option(tcp::acceptor::reuse_address(true), ec)) return fail("SO_REUSEADDR");
  if (acceptor.bind(endpoint, ec)) return fail("bind");
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec)) return fail("listen");
  impl_->port = acceptor.local_endpoint(ec).port();
  impl_->workers.emplace(std::max<size_t>(1, o.worker_threads));
  impl_->work.emplace(impl_->core->ioc.get_executor());
  impl_->DoAccept();
  impl_->loop = std::thread([core = impl_->core] {
    for (;;) {
      try {
        core->ioc.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("http: event loop: {}", e.what());
      }
    }
  });
  impl_->started = true;
  return base::Status::Ok();
}

uint16_t HttpServer::port() const { return impl_->port; }

std::string HttpServer::url() const {
  const std::string& a = impl_->core->options.address;
  std::string host = a.find(':') != std::string::npos ? "[" + a + "]" : a;
  return "http://" + host + ":" + std::to_string(impl_->port);
}

void HttpServer::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (!impl_->started || impl_->stopped) return;
    impl_->stopped = true;
  }
  Impl& impl = *impl_;
  impl.core->stopping = true;
  std::promise<void> closed;
  asio::post(impl.core->ioc, [&impl, &closed] {
    error_code ec;
    impl.acceptor->close(ec);
    std::vector<std::shared_ptr<Session>> live;
    for (auto& [ptr, weak] : impl.sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
    for (auto& s : live) s->Shutdown();
    closed.set_value();
  });
  closed.get_future().wait();
  impl.workers->join();  // blocking handlers finish; their responses are now refused
  impl.work.reset();
  impl.loop.join();  // returns once every connection has closed
}

}  // namespace fjord::http
