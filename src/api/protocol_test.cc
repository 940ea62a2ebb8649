#include "api/protocol.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace fjord::api {
namespace {

template <typename T, typename Decode>
void ExpectRoundTrip(const T& value, Decode decode) {
  auto back = decode(ToJson(value));
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << ToJson(value);
  EXPECT_EQ(*back, value) << ToJson(value);
}

MachineRegistration SampleMachine() {
  return {"m1",
          "10.0.0.2",
          {{"region", "no-oslo"}, {"disk", "nvme"}},
          {2000, 8 << 30, 0},
          "http://10.0.0.2:7778",
          "fjord 0.1"};
}

UnitStatusReport SampleReport() {
  UnitStatusReport r;
  r.state = {"web@1.service", "abc", "m1", "loaded", "failed", "failed"};
  r.result = "exit-code";
  r.reason = "ExecStart=/nope: No such file or directory";
  r.main_pid = 0;
  r.exit_status = 203;
  r.restarts = 2;
  r.since_unix_ms = 1700000000000;
  return r;
}

TEST(Protocol, RoundTrips) {
  ExpectRoundTrip(SampleMachine(), MachineRegistrationFromJson);
  ExpectRoundTrip(RegistrationReply{500, 3000}, RegistrationReplyFromJson);
  ScheduledUnit su{
      "a.service", "h", UnitStateName::kLaunched, {{"Service", "ExecStart", "/bin/sleep 100"}}};
  ExpectRoundTrip(su, ScheduledUnitFromJson);
  ExpectRoundTrip(UnitFile{su.hash, su.options}, UnitFileFromJson);
  ExpectRoundTrip(Schedule{42, {su, su}}, ScheduleFromJson);
  ExpectRoundTrip(Schedule{7, {}}, ScheduleFromJson);
  ExpectRoundTrip(SampleReport(), UnitStatusReportFromJson);
  ExpectRoundTrip(StateReport{{SampleReport()}}, StateReportFromJson);
  ErrorBody err{
      {400, "invalid unit", "options"},
      {{"warning", "a.service", 9, 1, "Service", "ExecStartPRE", "unknown key", "ExecStartPre"}}};
  ExpectRoundTrip(err, ErrorBodyFromJson);
  ExpectRoundTrip(PutUnitRequest{UnitStateName::kLoaded, "[Service]\nExecStart=/bin/true\n", {}},
                  PutUnitRequestFromJson);
  UnitView view{"a.service",
                "h",
                UnitStateName::kLaunched,
                UnitStateName::kLaunched,
                "m1",
                false,
                "",
                {SampleReport()},
                su.options};
  ExpectRoundTrip(view, UnitViewFromJson);
  UnitView pending{"b.service",
                   "",
                   UnitStateName::kLaunched,
                   std::nullopt,
                   "",
                   true,
                   "MachineMetadata region: 3 machines rejected",
                   {},
                   {}};
  ExpectRoundTrip(UnitViewPage{{view, pending}, "tok"}, UnitViewPageFromJson);
  MachineView mv{SampleMachine(), true, 1700000000000, {1500, 1 << 30, 0}, 3};
  ExpectRoundTrip(mv, MachineViewFromJson);
  ExpectRoundTrip(MachineViewPage{{mv}, ""}, MachineViewPageFromJson);
  ExpectRoundTrip(ScaleRequest{50, UnitStateName::kLaunched}, ScaleRequestFromJson);
  ExpectRoundTrip(ScaleReply{{"w@1.service"}, {"w@9.service"}, {"w@2.service: no room"}},
                  ScaleReplyFromJson);
}

TEST(Protocol, PlainFleetErrorIsAnErrorBody) {
  auto body = ErrorBodyFromJson(R"({"error":{"code":404,"message":"unit not found"}})");
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(body->error.code, 404);
  EXPECT_TRUE(body->diagnostics.empty());
}

void ExpectFieldError(const base::Status& s, std::string_view field) {
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(FieldOfDecodeError(s), field) << s.ToString();
}

TEST(Protocol, DecodingErrorsNameTheField) {
  ExpectFieldError(MachineRegistrationFromJson(R"({"capacity":{"cpuMillis":"2"}})").status(),
                   "capacity.cpuMillis");
  ExpectFieldError(MachineRegistrationFromJson(R"({"capacity":{"memoryBytes":-1}})").status(),
                   "capacity.memoryBytes");
  ExpectFieldError(MachineRegistrationFromJson(R"({"metadata":{"a":1}})").status(), "metadata.a");
  ExpectFieldError(ScheduleFromJson(R"({"revision":1,"units":[{"name":"a.service"}]})").status(),
                   "units[0].desiredState");
  ExpectFieldError(ScheduleFromJson(R"({"units":[{"name":"a","desiredState":"runnin"}]})").status(),
                   "units[0].desiredState");
  ExpectFieldError(StateReportFromJson(R"({"states":[{"mainPID":"x"}]})").status(),
                   "states[0].mainPID");
  ExpectFieldError(PutUnitRequestFromJson(R"({"unitFile":"x","options":[{"section":"S",)"
                                          R"("name":"N","value":"v"}]})")
                       .status(),
                   "unitFile");
  ExpectFieldError(ScaleRequestFromJson(R"({})").status(), "instances");
  ExpectFieldError(ScaleRequestFromJson(R"({"instances":-3})").status(), "instances");
  ExpectFieldError(ScaleReplyFromJson(R"({"added":[1]})").status(), "added[0]");
  ExpectFieldError(UnitViewFromJson(R"({"global":"yes"})").status(), "global");
}

TEST(Protocol, RejectsNonObjects) {
  EXPECT_FALSE(ScheduleFromJson("[]").ok());
  EXPECT_FALSE(StateReportFromJson("not json").ok());
  EXPECT_FALSE(MachineViewPageFromJson("").ok());
  EXPECT_FALSE(ErrorBodyFromJson(R"({"error":{"code":400,"diagnostics":[3]}})").ok());
}

// A reference encoding of a UnitView through nlohmann's DOM (whose dump escapes strings and
// replaces invalid UTF-8), against which the hand-written JSON writer is checked.
nlohmann::json DomUnitView(const UnitView& u) {
  using nlohmann::json;
  auto put = [](json& j, const char* key, const std::string& v) {
    if (!v.empty()) j[key] = v;
  };
  auto put_int = [](json& j, const char* key, int64_t v) {
    if (v != 0) j[key] = v;
  };
  json j = json::object();
  put(j, "name", u.name);
  put(j, "hash", u.hash);
  j["desiredState"] = std::string(ToString(u.desired_state));
  if (u.current_state) j["currentState"] = std::string(ToString(*u.current_state));
  put(j, "machineID", u.machine_id);
  if (u.global) j["global"] = true;
  put(j, "reason", u.reason);
  for (const auto& r : u.states) {
    json s = json::object();
    put(s, "name", r.state.name);
    put(s, "hash", r.state.hash);
    put(s, "machineID", r.state.machine_id);
    put(s, "systemdLoadState", r.state.systemd_load_state);
    put(s, "systemdActiveState", r.state.systemd_active_state);
    put(s, "systemdSubState", r.state.systemd_sub_state);
    put(s, "result", r.result);
    put(s, "reason", r.reason);
    put_int(s, "mainPID", r.main_pid);
    put_int(s, "exitStatus", r.exit_status);
    put_int(s, "restarts", r.restarts);
    put_int(s, "sinceUnixMs", r.since_unix_ms);
    put(s, "containerID", r.container_id);
    j["states"].push_back(s);
  }
  for (const auto& o : u.options) {
    j["options"].push_back({{"section", o.section}, {"name", o.name}, {"value", o.value}});
  }
  return j;
}

// Unit JSON is written without nlohmann's DOM: it must mean the same as the DOM's, for any
// bytes in the strings (control characters, quotes, invalid UTF-8).
TEST(Protocol, UnitListWriterMatchesTheDomEncoder) {
  const std::vector<std::string> strings = {
      "plain.service",     "quote\" back\\slash",    "ctl\x01\x1f\t\n\r\b\f",
      "é ü 日本 🚀",        "bad \xff byte",          "trunc \xe6\x97",
      "overlong \xc0\xaf", "surrogate \xed\xa0\x80", "del\x7f"};
  UnitViewPage page;
  for (const auto& s : strings) {
    UnitView u{s, s, UnitStateName::kLoaded, UnitStateName::kInactive, s, true, s, {}, {}};
    UnitStatusReport r = SampleReport();
    r.reason = s;
    r.state.name = s;
    u.states = {r, SampleReport()};
    u.options = {{s, s, s}, {"Service", "ExecStart", "/bin/true"}};
    page.units.push_back(u);
  }
  page.next_page_token = "tok\xff";
  const std::string fast = ToJson(page);
  auto parsed = nlohmann::json::parse(fast);  // throws (fails the test) if not valid JSON
  nlohmann::json dom_units = nlohmann::json::array();
  for (const auto& u : page.units) dom_units.push_back(DomUnitView(u));
  // Through dump and parse, so the DOM's own replacement of invalid UTF-8 applies.
  const std::string dom_text =
      dom_units.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  EXPECT_EQ(parsed["units"], nlohmann::json::parse(dom_text));
  EXPECT_EQ(parsed["nextPageToken"], "tok\xef\xbf\xbd");
  auto back = UnitViewPageFromJson(fast);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->units.size(), page.units.size());
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(back->units[i], page.units[i]);  // valid UTF-8 ones
}

TEST(Protocol, EmptyFieldsAreOmitted) {
  EXPECT_EQ(ToJson(Resources{}), "{}");
  EXPECT_EQ(ToJson(StateReport{}), R"({"states":[]})");
  EXPECT_EQ(ToJson(PutUnitRequest{}), "{}");
}

}  // namespace
}  // namespace fjord::api
