// Drives a real HttpServer on 127.0.0.1:0 with the client and with raw sockets.
#include "http/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "http/client.h"
#include "http/test_util.h"

namespace fjord::http {
namespace {

using testing::RawConn;
using testing::WaitFor;
using namespace std::chrono_literals;

// A Responder parked by a long-poll handler, for the test to complete later.
struct Parked {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Responder> responders;
  std::atomic<int> cancelled{0};

  void Park(Responder r) {
    r.OnCancel([this] { ++cancelled; });
    std::lock_guard lock(mu);
    responders.push_back(std::move(r));
    cv.notify_all();
  }
  Responder WaitOne() {
    std::unique_lock lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, 10s, [&] { return !responders.empty(); }));
    return responders.front();
  }
  void Clear() {
    std::lock_guard lock(mu);
    responders.clear();
  }
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Check(router_.AddSync("GET", "/v1/ping",
                          [](const Request&) { return Response::Json(200, R"({"ok":true})"); }));
    Check(router_.AddSync("GET", "/v1/units/{name}", [](const Request& r) {
      return Response::Json(200, nlohmann::json{{"name", r.Param("name")}}.dump());
    }));
    Check(router_.AddSync("PUT", "/v1/units/{name}", [](const Request& r) {
      return Response::Json(
          201, nlohmann::json{{"name", r.Param("name")}, {"bytes", r.body.size()}}.dump());
    }));
    Check(router_.AddSync("GET", "/v1/echo", [](const Request& r) {
      nlohmann::json q = nlohmann::json::array();
      for (const auto& [k, v] : r.query.items()) q.push_back({k, v});
      return Response::Json(200, nlohmann::json{{"path", r.path}, {"query", q}}.dump());
    }));
    Check(router_.Add("GET", "/v1/watch",
                      [this](const Request&, Responder r) { parked_.Park(std::move(r)); }));
  }
  void TearDown() override {
    parked_.Clear();
    if (server_) server_->Stop();
  }

  static void Check(const base::Status& st) { ASSERT_TRUE(st.ok()) << st.ToString(); }

  void Start(HttpServer::Options options = {}) {
    server_ = std::make_unique<HttpServer>(options, std::move(router_));
    auto st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_NE(server_->port(), 0);
  }

  std::unique_ptr<HttpClient> NewClient(HttpClient::Options o = {}) {
    auto c = HttpClient::Create(server_->url(), o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(*c);
  }

  static nlohmann::json Json(const std::string& body) { return nlohmann::json::parse(body); }
  static std::string BodyOf(const std::string& raw) {
    size_t p = raw.find("\r\n\r\n");
    return p == std::string::npos ? "" : raw.substr(p + 4);
  }

  Router router_;
  Parked parked_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(ServerTest, RoutesAndDecodesUnitNames) {
  Start();
  auto c = NewClient();
  auto r = c->Get("/v1/units/hello%401.service");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("content-type"), "application/json");
  EXPECT_EQ(Json(r->body)["name"], "hello@1.service");

  r = c->Get("/v1/units/" + PercentEncode("a b/c.service"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Json(r->body)["name"], "a b/c.service");

  r = c->Put("/v1/units/x.service", R"({"desiredState":"launched"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(Json(r->body)["bytes"], 27);
}

TEST_F(ServerTest, ParsesQueryStrings) {
  Start();
  auto c = NewClient();
  auto r = c->Get("/v1/echo?nextPageToken=a%20b%26c&x=1&x=2&flag&sp=a+b");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->status, 200);
  auto q = Json(r->body)["query"];
  EXPECT_EQ(q, nlohmann::json::parse(
                   R"([["nextPageToken","a b&c"],["x","1"],["x","2"],["flag",""],["sp","a b"]])"));

  r = c->Get("/v1/echo?bad=%zz");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(Json(r->body)["error"]["message"].get<std::string>().find("query parameter `bad`"),
            std::string::npos);
}

TEST_F(ServerTest, UnknownRouteIs404AndWrongMethodIs405WithAllow) {
  Start();
  auto c = NewClient();
  auto r = c->Get("/v1/nope");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  auto err = Json(r->body)["error"];
  EXPECT_EQ(err["code"], 404);
  EXPECT_EQ(err["message"], "no such endpoint: GET /v1/nope");

  r = c->Delete("/v1/units/a.service");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->Header("Allow"), "GET, PUT");
  EXPECT_EQ(Json(r->body)["error"]["code"], 405);

  r = c->Get("/v1/units/%zz");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  // Error answers keep the connection: all of the above used one.
  EXPECT_EQ(c->connections_opened(), 1);
}

TEST_F(ServerTest, MalformedRequestIs400) {
  Start();
  for (const char* bad : {"GARBAGE\r\n\r\n", "GET /v1/ping HTTP/9.9\r\n\r\n",
                          "GET /v1/ping HTTP/1.1\r\nBad Header\r\n\r\n",
                          "GET /v1/ping HTTP/1.1\r\nContent-Length: x\r\n\r\n"}) {
    RawConn conn(server_->port());
    ASSERT_TRUE(conn.connected());
    ASSERT_TRUE(conn.Send(bad));
    std::string raw = conn.ReadUntilClose();
    EXPECT_TRUE(raw.starts_with("HTTP/1.1 400 Bad Request\r\n")) << bad << " -> " << raw;
    EXPECT_EQ(Json(BodyOf(raw))["error"]["code"], 400) << raw;
    EXPECT_NE(raw.find("malformed HTTP request"), std::string::npos) << raw;
  }
  // A target that is not a path is well-formed HTTP but not ours.
  RawConn conn(server_->port());
  ASSERT_TRUE(conn.Send("GET nopath HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(conn.ReadResponse().starts_with("HTTP/1.1 400 "));
}

TEST_F(ServerTest, OversizedBodyIs413WithoutReadingIt) {
  HttpServer::Options o;
  o.max_body_bytes = 1024;
  Start(o);
  RawConn conn(server_->port());
  // Announce 100 MB and send none of it: the answer must not wait for the body.
  ASSERT_TRUE(
      conn.Send("PUT /v1/units/a.service HTTP/1.1\r\nHost: x\r\n"
                "Content-Length: 100000000\r\n\r\n"));
  std::string raw = conn.ReadResponse();
  EXPECT_TRUE(raw.starts_with("HTTP/1.1 413 Payload Too Large\r\n")) << raw;
  EXPECT_NE(raw.find("Connection: close"), std::string::npos) << raw;
  auto err = Json(BodyOf(raw))["error"];
  EXPECT_EQ(err["code"], 413);
  EXPECT_EQ(err["message"], "request body larger than the limit of 1024 bytes");
  EXPECT_TRUE(conn.WaitClosed());

  // Through the client, with the body actually sent; and a chunked body over the limit.
  auto c = NewClient();
  auto r = c->Put("/v1/units/a.service", std::string(64 << 10, 'x'));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 413);
  r = c->Put("/v1/units/a.service", std::string(1024, 'x'));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 201);

  RawConn chunked(server_->port());
  ASSERT_TRUE(
      chunked.Send("PUT /v1/units/a.service HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "800\r\n" +
                   std::string(0x800, 'y') + "\r\n0\r\n\r\n"));
  EXPECT_TRUE(chunked.ReadResponse().starts_with("HTTP/1.1 413 "));
}

TEST_F(ServerTest, OversizedHeaderIs431) {
  HttpServer::Options o;
  o.max_header_bytes = 1024;
  Start(o);
  RawConn conn(server_->port());
  ASSERT_TRUE(conn.Send("GET /v1/ping HTTP/1.1\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n"));
  EXPECT_TRUE(conn.ReadResponse().starts_with("HTTP/1.1 431 "));
}

TEST_F(ServerTest, KeepAliveAndPipelining) {
  Start();
  auto c = NewClient();
  for (int i = 0; i < 20; ++i) {
    auto r = c->Get("/v1/ping");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->status, 200);
  }
  EXPECT_EQ(c->connections_opened(), 1);

  // Two requests in one write: answered in order on the same connection.
  RawConn conn(server_->port());
  ASSERT_TRUE(
      conn.Send("GET /v1/units/a HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /v1/units/b HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(Json(BodyOf(conn.ReadResponse()))["name"], "a");
  EXPECT_EQ(Json(BodyOf(conn.ReadResponse()))["name"], "b");
  // HTTP/1.0 without keep-alive: answered, then closed.
  ASSERT_TRUE(conn.Send("GET /v1/ping HTTP/1.0\r\n\r\n"));
  std::string raw = conn.ReadUntilClose();
  EXPECT_TRUE(raw.starts_with("HTTP/1.0 200 OK") || raw.starts_with("HTTP/1.1 200 OK")) << raw;
}

TEST_F(ServerTest, ExpectContinue) {
  Start();
  RawConn conn(server_->port());
  ASSERT_TRUE(
      conn.Send("PUT /v1/units/a HTTP/1.1\r\nContent-Length: 2\r\n"
                "Expect: 100-continue\r\n\r\n"));
  EXPECT_TRUE(conn.ReadResponse().starts_with("HTTP/1.1 100 Continue"));
  ASSERT_TRUE(conn.Send("{}"));
  EXPECT_TRUE(conn.ReadResponse().starts_with("HTTP/1.1 201 Created"));
}

TEST_F(ServerTest, LongPollCompletedFromAnotherThread) {
  Start();
  std::thread completer([this] {
    Responder r = parked_.WaitOne();
    std::this_thread::sleep_for(100ms);  // the watch "fires" 100 ms later
    EXPECT_TRUE(r.Respond(Response::Json(200, R"({"changed":true})")));
    EXPECT_FALSE(r.Respond(Response::Json(200, "{}")));  // the first answer wins
  });
  auto c = NewClient();
  auto t0 = std::chrono::steady_clock::now();
  auto r = c->Get("/v1/watch");
  auto elapsed = std::chrono::steady_clock::now() - t0;
  completer.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"changed":true})");
  EXPECT_GE(elapsed, 100ms);
  EXPECT_EQ(parked_.cancelled, 0);
  // The connection is reusable after a long-poll.
  ASSERT_TRUE(c->Get("/v1/ping").ok());
  EXPECT_EQ(c->connections_opened(), 1);
}

TEST_F(ServerTest, LongPollTimesOutWithFallback) {
  Check(router_.Add("GET", "/v1/wait", [](const Request&, Responder r) {
    r.SetTimeout(50ms, Response::Json(200, R"({"changed":false})"));
  }));
  Start();
  auto c = NewClient();
  auto r = c->Get("/v1/wait");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, R"({"changed":false})");
}

TEST_F(ServerTest, StopAnswersOpenLongPollsAndCancelsThem) {
  Start();
  std::thread client_thread([this, url = server_->url()] {
    auto c = HttpClient::Create(url);
    ASSERT_TRUE(c.ok());
    auto r = (*c)->Get("/v1/watch");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 503);
    EXPECT_NE(r->body.find("shutting down"), std::string::npos);
    EXPECT_EQ(r->Header("Connection"), "close");
  });
  Responder r = parked_.WaitOne();
  server_->Stop();
  client_thread.join();
  EXPECT_EQ(parked_.cancelled, 1);
  EXPECT_TRUE(r.cancelled());
  EXPECT_FALSE(r.Respond(Response::Json(200, "{}")));
  // The listener is closed.
  RawConn conn(server_->port());
  EXPECT_FALSE(conn.connected());
}

TEST_F(ServerTest, ClientHangupCancelsLongPoll) {
  Start();
  RawConn conn(server_->port());
  ASSERT_TRUE(conn.Send("GET /v1/watch HTTP/1.1\r\nHost: x\r\n\r\n"));
  Responder r = parked_.WaitOne();
  EXPECT_FALSE(r.cancelled());
  conn.Close();
  EXPECT_TRUE(WaitFor([&] { return parked_.cancelled == 1; }));
  EXPECT_TRUE(r.cancelled());
  EXPECT_FALSE(r.Respond(Response::Json(200, "{}")));
}

TEST_F(ServerTest, ChunkedStreaming) {
  std::vector<std::thread> producers;
  Check(router_.Add("GET", "/v1/units/{name}/logs", [&producers](const Request&, Responder r) {
    ASSERT_TRUE(r.StartStream(200, "text/plain"));
    producers.emplace_back([r] {
      for (int i = 0; i < 5; ++i) {
        EXPECT_TRUE(r.Write("line " + std::to_string(i) + "\n"));
        std::this_thread::sleep_for(5ms);  // lines arrive over time
      }
      r.Finish();
    });
  }));
  Start();
  auto c = NewClient();
  std::string got;
  int pieces = 0;
  auto r = c->GetStream("/v1/units/a.service/logs", [&](std::string_view piece) {
    got += piece;
    ++pieces;
    return true;
  });
  for (auto& t : producers) t.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("Transfer-Encoding"), "chunked");
  EXPECT_EQ(got, "line 0\nline 1\nline 2\nline 3\nline 4\n");
  EXPECT_GE(pieces, 2);  // delivered as it came, not all at the end
  // Keep-alive survives a finished stream.
  ASSERT_TRUE(c->Get("/v1/ping").ok());
  EXPECT_EQ(c->connections_opened(), 1);
}

TEST_F(ServerTest, StreamStopsWhenClientLeaves) {
  std::atomic<bool> write_failed{false};
  std::vector<std::thread> producers;
  Check(router_.Add("GET", "/v1/follow", [&](const Request&, Responder r) {
    r.StartStream(200);
    producers.emplace_back([r, &write_failed] {
      auto deadline = std::chrono::steady_clock::now() + 10s;
      while (std::chrono::steady_clock::now() < deadline) {
        if (!r.Write("tick\n")) {
          write_failed = true;
          return;
        }
        std::this_thread::sleep_for(1ms);
      }
    });
  }));
  Start();
  auto c = NewClient();
  auto r = c->GetStream("/v1/follow", [](std::string_view) { return false; });  // leave at once
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(WaitFor([&] { return write_failed.load(); }));
  for (auto& t : producers) t.join();
}

TEST_F(ServerTest, StopEndsOpenStreams) {
  Check(router_.Add("GET", "/v1/follow", [this](const Request&, Responder r) {
    r.StartStream(200);
    r.Write("first\n");
    parked_.Park(std::move(r));
  }));
  Start();
  std::thread stopper([this] {
    parked_.WaitOne();
    server_->Stop();
  });
  auto c = NewClient();
  std::string got;
  auto r = c->GetStream("/v1/follow", [&](std::string_view p) {
    got += p;
    return true;
  });
  stopper.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(got, "first\n");
  EXPECT_EQ(parked_.cancelled, 1);
}

TEST_F(ServerTest, DroppedResponderAnswers500AndThrowingHandlerToo) {
  Check(router_.Add("GET", "/v1/drop", [](const Request&, Responder) {}));
  Check(router_.Add("GET", "/v1/throw",
                    [](const Request&, Responder) -> void { throw std::runtime_error("boom"); }));
  Check(router_.AddSync("GET", "/v1/badstatus",
                        [](const Request&) { return Response::Json(42, "{}"); }));
  Start();
  auto c = NewClient();
  auto r = c->Get("/v1/drop");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 500);
  EXPECT_NE(r->body.find("dropped the request"), std::string::npos);
  r = c->Get("/v1/throw");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 500);
  EXPECT_NE(r->body.find("boom"), std::string::npos);
  r = c->Get("/v1/badstatus");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(c->connections_opened(), 1);
}

// A blocking handler on the worker pool must not stall the loop: it waits for a request that
// only the loop can serve.
TEST_F(ServerTest, WorkerHandlersDoNotBlockTheLoop) {
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  Check(router_.AddSync(
      "GET", "/v1/slow",
      [&](const Request&) {
        std::unique_lock lock(mu);
        bool ok = cv.wait_for(lock, 10s, [&] { return released; });
        return Response::Json(ok ? 200 : 504, "{}");
      },
      Dispatch::kWorker));
  Check(router_.AddSync("POST", "/v1/release", [&](const Request&) {
    std::lock_guard lock(mu);
    released = true;
    cv.notify_all();
    return Response::Empty(204);
  }));
  Start();
  std::thread slow([url = server_->url()] {
    auto c = HttpClient::Create(url);
    auto r = (*c)->Get("/v1/slow");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200);
  });
  auto c = NewClient();
  auto r = c->Post("/v1/release", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 204);
  EXPECT_TRUE(r->body.empty());
  slow.join();
}

TEST_F(ServerTest, ConcurrentClients) {
  Start();
  constexpr int kThreads = 50;
  constexpr int kRequests = 100;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t, url = server_->url()] {
      auto c = HttpClient::Create(url);
      if (!c.ok()) return;
      for (int i = 0; i < kRequests; ++i) {
        std::string name = "u" + std::to_string(t) + "@" + std::to_string(i) + ".service";
        auto r = (*c)->Get("/v1/units/" + PercentEncode(name));
        if (r.ok() && r->status == 200 && Json(r->body)["name"] == name) ++ok;
      }
      EXPECT_EQ((*c)->connections_opened(), 1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, kThreads * kRequests);
}

TEST_F(ServerTest, StartFailsOnBusyPortNamingIt) {
  Start();
  HttpServer::Options o;
  o.port = server_->port();
  HttpServer second(o, Router());
  auto st = second.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("listen on 127.0.0.1:" + std::to_string(o.port)), std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find("in use"), std::string::npos) << st.ToString();

  HttpServer::Options bad;
  bad.address = "not-an-ip";
  auto st2 = HttpServer(bad, Router()).Start();
  EXPECT_NE(st2.message().find("`not-an-ip` is not an IP address"), std::string::npos)
      << st2.ToString();
}

TEST_F(ServerTest, IdleKeepAliveConnectionIsClosedAndClientReconnects) {
  HttpServer::Options o;
  o.idle_timeout = 100ms;
  Start(o);
  RawConn conn(server_->port());
  ASSERT_TRUE(conn.Send("GET /v1/ping HTTP/1.1\r\n\r\n"));
  ASSERT_FALSE(conn.ReadResponse().empty());
  EXPECT_TRUE(conn.WaitClosed(5s));

  auto c = NewClient();
  ASSERT_TRUE(c->Get("/v1/ping").ok());
  std::this_thread::sleep_for(300ms);  // let the server drop the idle connection
  auto r = c->Get("/v1/ping");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(c->connections_opened(), 2);
}

}  // namespace
}  // namespace fjord::http
