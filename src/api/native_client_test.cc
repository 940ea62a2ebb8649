// NativeClient against small servers on the real HttpServer: the 307 to an agent for status
// and journal, diagnostics in a 400, paging, and errors naming the endpoint.
#include "api/native_client.h"

#include <gtest/gtest.h>

#include "http/server.h"

namespace fjord::api {
namespace {

std::unique_ptr<http::HttpServer> Serve(http::Router router) {
  auto server = std::make_unique<http::HttpServer>(http::HttpServer::Options(), std::move(router));
  EXPECT_TRUE(server->Start().ok());
  return server;
}

struct Cluster {
  Cluster() {
    http::Router agent;
    EXPECT_TRUE(agent
                    .AddSync("GET", "/agent/v1/units/{name}/status",
                             [](const http::Request& r) {
                               if (r.query.Get("format") == "json") {
                                 UnitStatusReport s;
                                 s.state.name = std::string(r.Param("name"));
                                 s.main_pid = 42;
                                 return http::Response::Json(200, ToJson(s));
                               }
                               return http::Response::Text(200,
                                                           "● " + std::string(r.Param("name")));
                             })
                    .ok());
    EXPECT_TRUE(agent
                    .Add("GET", "/agent/v1/units/{name}/journal",
                         [](const http::Request& r, http::Responder out) {
                           out.StartStream(200);
                           int n = std::stoi(r.query.Get("lines").value_or("1"));
                           for (int i = 0; i < n; i++)
                             out.Write("line " + std::to_string(i) + "\n");
                           out.Finish();
                         })
                    .ok());
    agent_ = Serve(std::move(agent));

    http::Router server;
    std::string agent_url = agent_->url();
    auto redirect = [agent_url](std::string_view what) {
      return [agent_url, what = std::string(what)](const http::Request& r) {
        std::string name(r.Param("name"));
        if (name == "gone.service") return http::JsonError(404, "unit `gone.service` not found");
        if (name == "idle.service")
          return http::JsonError(409, "unit `idle.service` is not scheduled");
        http::Response resp = http::Response::Empty(307);
        std::string q =
            r.target.find('?') == std::string::npos ? "" : r.target.substr(r.target.find('?'));
        resp.headers.push_back({"Location", agent_url + "/agent/v1/units/" +
                                                http::PercentEncode(name) + "/" + what + q});
        return resp;
      };
    };
    EXPECT_TRUE(server.AddSync("GET", "/v1/units/{name}/status", redirect("status")).ok());
    EXPECT_TRUE(server.AddSync("GET", "/v1/units/{name}/journal", redirect("journal")).ok());
    EXPECT_TRUE(server
                    .AddSync("PUT", "/v1/units/{name}",
                             [](const http::Request&) {
                               ErrorBody e;
                               e.error = {400, "invalid unit", ""};
                               e.diagnostics.push_back({"error", "a.service", 3, 9, "Service",
                                                        "Restart", "bad value", ""});
                               return http::Response::Json(400, ToJson(e));
                             })
                    .ok());
    EXPECT_TRUE(server
                    .AddSync("GET", "/v1/units",
                             [](const http::Request& r) {
                               UnitViewPage page;
                               auto token = r.query.Get("nextPageToken");
                               page.units.push_back({});
                               page.units.back().name = token ? "b.service" : "a.service";
                               if (!token) page.next_page_token = "t1";
                               return http::Response::Json(200, ToJson(page));
                             })
                    .ok());
    server_ = Serve(std::move(server));
  }
  std::unique_ptr<http::HttpServer> agent_, server_;
};

TEST(NativeClient, StatusAndJournalFollowTheRedirectToTheAgent) {
  Cluster c;
  auto client = NativeClient::Create(c.server_->url());
  ASSERT_TRUE(client.ok());
  auto text = (*client)->UnitStatus("web@1.service");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, "● web@1.service");
  auto json = (*client)->UnitStatus("web@1.service", true);
  ASSERT_TRUE(json.ok());
  auto report = UnitStatusReportFromJson(*json);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->main_pid, 42);

  std::string got;
  ASSERT_TRUE((*client)
                  ->Journal("web@1.service", 3, false,
                            [&](std::string_view d) {
                              got += d;
                              return true;
                            })
                  .ok());
  EXPECT_EQ(got, "line 0\nline 1\nline 2\n");

  auto gone = (*client)->UnitStatus("gone.service");
  EXPECT_EQ(gone.status().code(), base::Code::kNotFound);
  auto idle = (*client)->UnitStatus("idle.service");
  EXPECT_EQ(idle.status().code(), base::Code::kAlreadyExists);
  EXPECT_NE(idle.status().message().find("not scheduled"), std::string_view::npos);
}

TEST(NativeClient, DiagnosticsOfAnInvalidUnitAreListed) {
  Cluster c;
  auto client = NativeClient::Create(c.server_->url());
  ASSERT_TRUE(client.ok());
  PutUnitRequest req;
  req.unit_file = "[Service]\n";
  auto put = (*client)->PutUnit("a.service", req);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), base::Code::kInvalidArgument);
  EXPECT_NE(put.status().message().find("a.service:3:9: error: bad value"), std::string_view::npos)
      << put.status().message();
}

TEST(NativeClient, ListsFollowPages) {
  Cluster c;
  auto client = NativeClient::Create(c.server_->url());
  ASSERT_TRUE(client.ok());
  auto units = (*client)->ListUnits();
  ASSERT_TRUE(units.ok()) << units.status().ToString();
  ASSERT_EQ(units->size(), 2u);
  EXPECT_EQ((*units)[1].name, "b.service");
}

TEST(NativeClient, ServerDownNamesTheEndpoint) {
  auto client = NativeClient::Create("http://127.0.0.1:1");
  ASSERT_TRUE(client.ok());
  auto units = (*client)->ListUnits();
  ASSERT_FALSE(units.ok());
  EXPECT_EQ(units.status().code(), base::Code::kUnavailable);
  EXPECT_NE(units.status().message().find("http://127.0.0.1:1"), std::string_view::npos);
  EXPECT_NE(units.status().message().find("FJORD_ENDPOINT"), std::string_view::npos);
}

TEST(SplitUrl, Pieces) {
  auto p = SplitUrl("http://10.0.0.5:4001/agent/v1/units/a.service/status?x=1");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->first, "http://10.0.0.5:4001");
  EXPECT_EQ(p->second, "/agent/v1/units/a.service/status?x=1");
  EXPECT_EQ(SplitUrl("http://h:1")->second, "/");
  EXPECT_FALSE(SplitUrl("https://h/x").ok());
}

}  // namespace
}  // namespace fjord::api
