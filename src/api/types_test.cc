#include "api/types.h"

#include <gtest/gtest.h>

#include "http/client.h"
#include "http/server.h"

namespace fjord::api {
namespace {

Unit SampleUnit() {
  Unit u;
  u.name = "hello@1.service";
  u.options = {{"Service", "ExecStart", "/bin/sleep 1000"}, {"X-Fleet", "Conflicts", "hello@*"}};
  u.desired_state = UnitStateName::kLaunched;
  u.current_state = UnitStateName::kLoaded;
  u.machine_id = "2c9f8c5e";
  return u;
}

TEST(ApiTypesTest, UnitJsonIsFleetShaped) {
  EXPECT_EQ(ToJson(SampleUnit()),
            R"({"currentState":"loaded","desiredState":"launched","machineID":"2c9f8c5e",)"
            R"("name":"hello@1.service","options":[{"name":"ExecStart","section":"Service",)"
            R"("value":"/bin/sleep 1000"},{"name":"Conflicts","section":"X-Fleet",)"
            R"("value":"hello@*"}]})");
  EXPECT_EQ(ToJson(Unit{}), "{}");  // empty fields are omitted, as fleet does
}

TEST(ApiTypesTest, RoundTrips) {
  EXPECT_EQ(*UnitFromJson(ToJson(SampleUnit())), SampleUnit());
  UnitState s{"a.service", "abc123", "m1", "loaded", "active", "running"};
  EXPECT_EQ(ToJson(s),
            R"({"hash":"abc123","machineID":"m1","name":"a.service","systemdActiveState":"active",)"
            R"("systemdLoadState":"loaded","systemdSubState":"running"})");
  EXPECT_EQ(*UnitStateFromJson(ToJson(s)), s);
  Machine m{"m1", "10.0.0.1", {{"region", "us-west"}, {"disk", "ssd"}}};
  EXPECT_EQ(ToJson(m), R"({"id":"m1","metadata":{"disk":"ssd","region":"us-west"},)"
                       R"("primaryIP":"10.0.0.1"})");
  EXPECT_EQ(*MachineFromJson(ToJson(m)), m);

  UnitPage up{{SampleUnit(), Unit{"b.service", {}, UnitStateName::kInactive, {}, ""}}, "tok"};
  EXPECT_EQ(*UnitPageFromJson(ToJson(up)), up);
  EXPECT_EQ(ToJson(UnitPage{}), R"({"units":[]})");
  UnitStatePage sp{{s, s}, ""};
  EXPECT_EQ(*UnitStatePageFromJson(ToJson(sp)), sp);
  MachinePage mp{{m}, "next"};
  EXPECT_EQ(*MachinePageFromJson(ToJson(mp)), mp);
  Error e{409, "unit `a.service` exists with different options", "options"};
  EXPECT_EQ(*ErrorFromJson(ToJson(e)), e);
}

TEST(ApiTypesTest, FleetInputQuirks) {
  // Unknown fields are ignored, null means absent, "" desiredState means not given.
  auto u = UnitFromJson(R"({"name":"a.service","desiredState":"","extra":1,"machineID":null})");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_FALSE(u->desired_state.has_value());
  EXPECT_TRUE(u->machine_id.empty());
  auto opt = UnitFromJson(R"({"options":[{"section":"Unit","name":"Description","value":""}]})");
  ASSERT_TRUE(opt.ok()) << opt.status().ToString();
  EXPECT_EQ(opt->options[0].value, "");
}

TEST(ApiTypesTest, DecodeErrorsNameTheField) {
  struct Case {
    const char* json;
    const char* message;
  } cases[] = {
      {R"({"desiredState":"runnin"})",
       R"(field `desiredState`: must be one of inactive, loaded, launched, got "runnin")"},
      {R"({"currentState":7})", "field `currentState`: must be a string, got a number"},
      {R"({"name":["a"]})", "field `name`: must be a string, got an array"},
      {R"({"options":{}})", "field `options`: must be an array, got an object"},
      {R"({"options":["x"]})",
       "field `options[0]`: must be an object with section, name and value, got a string"},
      {R"({"options":[{"section":"Service","name":"ExecStart","value":"x"},{"name":"A","value":"b"}]})",
       "field `options[1].section`: required"},
      {R"({"options":[{"section":"","name":"A","value":"b"}]})",
       "field `options[0].section`: must not be empty"},
      {R"({"options":[{"section":"S","name":"A"}]})", "field `options[0].value`: required"},
      {R"({"options":[{"section":"S","name":"A","value":false}]})",
       "field `options[0].value`: must be a string, got a boolean"},
      {R"([1])", "body must be a JSON object, got an array"},
      {R"({"name":"a.service")",
       "body is not valid JSON: parse error at line 1, column 20: syntax error while parsing "
       "object - unexpected end of input; expected '}'"},
      {"",
       "body is not valid JSON: parse error at line 1, column 1: syntax error while parsing "
       "value - unexpected end of input; expected '[', '{', or a literal"},
      // Found by the fuzzer: nlohmann throws out_of_range, not parse_error, for this number.
      {R"({"name":1E999999})", "body is not valid JSON: number overflow parsing '1E999999'"},
  };
  for (const auto& c : cases) {
    auto u = UnitFromJson(c.json);
    ASSERT_FALSE(u.ok()) << c.json;
    EXPECT_EQ(u.status().code(), base::Code::kInvalidArgument);
    EXPECT_EQ(u.status().message(), c.message) << c.json;
  }

  auto m = MachineFromJson(R"({"metadata":{"region":1}})");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(), "field `metadata.region`: must be a string, got a number");
  auto page = UnitPageFromJson(R"({"units":[{"name":"a"},{"desiredState":"up"}]})");
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(
      page.status().message(),
      R"(field `units[1].desiredState`: must be one of inactive, loaded, launched, got "up")");
  EXPECT_EQ(FieldOfDecodeError(page.status()), "units[1].desiredState");
  EXPECT_EQ(FieldOfDecodeError(UnitFromJson("nope").status()), "");
  auto err = ErrorFromJson(R"({"error":{"message":"x"}})");
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.status().message(), "field `error.code`: must be an integer");
}

// A PUT handler in fleet's style, decoding with these types, served by the real HTTP server:
// bad JSON comes back as 400 with a fleet error body naming the field.
TEST(ApiTypesTest, ServerHandlerAnswers400ForBadBodies) {
  http::Router router;
  ASSERT_TRUE(router
                  .AddSync("PUT", "/fleet/v1/units/{name}",
                           [](const http::Request& req) {
                             auto u = UnitFromJson(req.body);
                             if (!u.ok()) {
                               return http::JsonError(400, u.status().message(),
                                                      FieldOfDecodeError(u.status()));
                             }
                             return http::Response::Empty(201);
                           })
                  .ok());
  http::HttpServer server(http::HttpServer::Options{}, std::move(router));
  ASSERT_TRUE(server.Start().ok());
  auto client = http::HttpClient::Create(server.url());
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Put("/fleet/v1/units/a.service", R"({"desiredState":"runnin"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 400);
  auto e = ErrorFromJson(r->body);
  ASSERT_TRUE(e.ok()) << r->body;
  EXPECT_EQ(
      *e, (Error{400,
                 R"(field `desiredState`: must be one of inactive, loaded, launched, got "runnin")",
                 "desiredState"}));
  r = (*client)->Put("/fleet/v1/units/a.service", "{not json");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(ErrorFromJson(r->body)->field, "");
  r = (*client)->Put("/fleet/v1/units/a.service", ToJson(SampleUnit()));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 201);
}

}  // namespace
}  // namespace fjord::api
