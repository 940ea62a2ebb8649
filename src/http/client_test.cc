#include "http/client.h"

#include <gtest/gtest.h>

#include "http/server.h"
#include "http/test_util.h"

namespace fjord::http {
namespace {

using namespace std::chrono_literals;

// A port that nothing listens on: bound by a server that is then stopped.
uint16_t ClosedPort() {
  HttpServer s(HttpServer::Options{}, Router{});
  EXPECT_TRUE(s.Start().ok());
  uint16_t port = s.port();
  s.Stop();
  return port;
}

TEST(ClientTest, ConnectionRefusedNamesTheUrlAndTheFix) {
  uint16_t port = ClosedPort();
  auto c = HttpClient::Create("http://127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(c.ok());
  auto r = (*c)->Get("/v1/units");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), base::Code::kUnavailable);
  EXPECT_EQ(r.status().message(),
            "GET http://127.0.0.1:" + std::to_string(port) +
                "/v1/units: connection refused — is `fjord server` running? set --endpoint or "
                "FJORD_ENDPOINT");
}

TEST(ClientTest, BadBaseUrlAndTarget) {
  auto c = HttpClient::Create("127.0.0.1:7777");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("must start with http://"), std::string::npos);
  auto ok = HttpClient::Create("http://127.0.0.1:1");
  ASSERT_TRUE(ok.ok());
  auto r = (*ok)->Get("v1/units");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("must start with '/'"), std::string::npos);
}

TEST(ClientTest, TimesOutOnASilentServer) {
  std::vector<Responder> parked;  // never answered until the server stops
  Router router;
  ASSERT_TRUE(
      router.Add("GET", "/hang", [&](const Request&, Responder r) { parked.push_back(r); }).ok());
  HttpServer server(HttpServer::Options(), std::move(router));
  ASSERT_TRUE(server.Start().ok());
  HttpClient::Options o;
  o.request_timeout = 200ms;
  auto c = HttpClient::Create(server.url(), o);
  ASSERT_TRUE(c.ok());
  auto r = (*c)->Get("/hang");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), base::Code::kDeadlineExceeded);
  EXPECT_EQ(r.status().message(), "GET " + server.url() + "/hang: timed out after 200ms");
  server.Stop();
}

TEST(ClientTest, PrefixAndHeadersAndErrorBodyOfStream) {
  Router router;
  ASSERT_TRUE(router
                  .AddSync("GET", "/api/v1/who",
                           [](const Request& r) {
                             return Response::Text(200, std::string(r.Header("x-who")));
                           })
                  .ok());
  ASSERT_TRUE(router
                  .AddSync("GET", "/api/v1/logs",
                           [](const Request&) {
                             return JsonError(404, "unit `a.service` not found", "name");
                           })
                  .ok());
  HttpServer server(HttpServer::Options(), std::move(router));
  ASSERT_TRUE(server.Start().ok());
  auto c = HttpClient::Create(server.url() + "/api/");
  ASSERT_TRUE(c.ok());
  auto r = (*c)->Do("GET", "/v1/who", "", "", {{"X-Who", "agent-7"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "agent-7");

  bool called = false;
  auto s = (*c)->GetStream("/v1/logs", [&](std::string_view) { return called = true; });
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_FALSE(called);
  EXPECT_EQ(s->status, 404);
  EXPECT_EQ(s->body,
            R"({"error":{"code":404,"field":"name","message":"unit `a.service` not found"}})");
}

}  // namespace
}  // namespace fjord::http
