#include "api/native_client.h"

#include <set>

#include "api/client.h"

namespace fjord::api {
namespace {

std::string UnitPath(std::string_view name) { return "/v1/units/" + http::PercentEncode(name); }
std::string MachinePath(std::string_view id) { return "/v1/machines/" + http::PercentEncode(id); }

std::string Quoted(std::string_view what, std::string_view name) {
  return std::string(what) + " `" + std::string(name) + "`";
}

}  // namespace

base::Status NativeStatusFromHttp(std::string_view context, int http_status,
                                  std::string_view body) {
  base::Status st = StatusFromHttp(context, http_status, body);
  auto err = ErrorBodyFromJson(body);
  if (!err.ok() || err->diagnostics.empty()) return st;
  std::string message(st.message());
  for (const DiagnosticView& d : err->diagnostics) {
    message += "\n" + d.file;
    if (d.line > 0) message += ":" + std::to_string(d.line);
    if (d.column > 0) message += ":" + std::to_string(d.column);
    message += ": " + (d.severity.empty() ? std::string("error") : d.severity) + ": " + d.message;
    if (!d.suggestion.empty()) message += " (did you mean `" + d.suggestion + "`?)";
  }
  return base::Status(st.code(), std::move(message));
}

base::Result<std::pair<std::string, std::string>> SplitUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return base::InvalidArgument("not an http:// URL: " + std::string(url));
  }
  size_t slash = url.find('/', kScheme.size());
  if (slash == std::string_view::npos) return std::make_pair(std::string(url), std::string("/"));
  return std::make_pair(std::string(url.substr(0, slash)), std::string(url.substr(slash)));
}

base::Result<std::unique_ptr<NativeClient>> NativeClient::Create(
    std::string_view endpoint, http::HttpClient::Options options) {
  FJORD_ASSIGN_OR_RETURN(auto http, http::HttpClient::Create(endpoint, std::move(options)));
  return std::make_unique<NativeClient>(std::move(http));
}

NativeClient::NativeClient(std::unique_ptr<http::HttpClient> http) : http_(std::move(http)) {}
NativeClient::~NativeClient() = default;

const http::BaseUrl& NativeClient::base_url() const { return http_->base_url(); }

base::Result<http::ClientResponse> NativeClient::Call(std::string_view context,
                                                      std::string_view method,
                                                      const std::string& target,
                                                      std::string_view body) {
  auto res = http_->Do(method, target, body);
  if (!res.ok()) return res.status().Wrap(context);
  return res;
}

base::Result<UnitView> NativeClient::PutUnit(std::string_view name, const PutUnitRequest& request) {
  std::string context = Quoted("put unit", name);
  FJORD_ASSIGN_OR_RETURN(auto res, Call(context, "PUT", UnitPath(name), ToJson(request)));
  if (res.status != 200 && res.status != 201) {
    return NativeStatusFromHttp(context, res.status, res.body);
  }
  auto view = UnitViewFromJson(res.body);
  if (!view.ok()) return view.status().Wrap(context + ": server answer");
  return view;
}

base::Result<std::vector<UnitView>> NativeClient::ListUnits() {
  std::vector<UnitView> out;
  std::set<std::string> seen;
  std::string token;
  for (;;) {
    std::string target = "/v1/units";
    if (!token.empty()) target += "?nextPageToken=" + http::PercentEncode(token);
    FJORD_ASSIGN_OR_RETURN(auto res, Call("list units", "GET", target));
    if (res.status != 200) return NativeStatusFromHttp("list units", res.status, res.body);
    auto page = UnitViewPageFromJson(res.body);
    if (!page.ok()) return page.status().Wrap("list units: server answer");
    for (auto& u : page->units) out.push_back(std::move(u));
    token = page->next_page_token;
    if (token.empty()) return out;
    if (!seen.insert(token).second) {
      return base::Internal("list units: server repeated nextPageToken " + token);
    }
  }
}

base::Result<UnitView> NativeClient::GetUnit(std::string_view name) {
  std::string context = Quoted("get unit", name);
  FJORD_ASSIGN_OR_RETURN(auto res, Call(context, "GET", UnitPath(name)));
  if (res.status != 200) return NativeStatusFromHttp(context, res.status, res.body);
  auto view = UnitViewFromJson(res.body);
  if (!view.ok()) return view.status().Wrap(context + ": server answer");
  return view;
}

base::Status NativeClient::DestroyUnit(std::string_view name) {
  std::string context = Quoted("destroy unit", name);
  FJORD_ASSIGN_OR_RETURN(auto res, Call(context, "DELETE", UnitPath(name)));
  if (res.status != 204 && res.status != 200) {
    return NativeStatusFromHttp(context, res.status, res.body);
  }
  return base::Status::Ok();
}

base::Result<std::string> NativeClient::Explain(std::string_view name) {
  std::string context = Quoted("explain unit", name);
  FJORD_ASSIGN_OR_RETURN(auto res, Call(context, "GET", UnitPath(name) + "/explain"));
  if (res.status != 200) return NativeStatusFromHttp(context, res.status, res.body);
  return std::move(res.body);
}

base::Result<ScaleReply> NativeClient::Scale(std::string_view template_name,
                                             const ScaleRequest& request) {
  std::string context = Quoted("scale", template_name);
  FJORD_ASSIGN_OR_RETURN(auto res,
                         Call(context, "PUT", UnitPath(template_name) + "/scale", ToJson(request)));
  if (res.status != 200) return NativeStatusFromHttp(context, res.status, res.body);
  auto reply = ScaleReplyFromJson(res.body);
  if (!reply.ok()) return reply.status().Wrap(context + ": server answer");
  return reply;
}

base::Result<std::vector<MachineView>> NativeClient::ListMachines() {
  std::vector<MachineView> out;
  std::set<std::string> seen;
  std::string token;
  for (;;) {
    std::string target = "/v1/machines";
    if (!token.empty()) target += "?nextPageToken=" + http::PercentEncode(token);
    FJORD_ASSIGN_OR_RETURN(auto res, Call("list machines", "GET", target));
    if (res.status != 200) return NativeStatusFromHttp("list machines", res.status, res.body);
    auto page = MachineViewPageFromJson(res.body);
    if (!page.ok()) return page.status().Wrap("list machines: server answer");
    for (auto& m : page->machines) out.push_back(std::move(m));
    token = page->next_page_token;
    if (token.empty()) return out;
    if (!seen.insert(token).second) {
      return base::Internal("list machines: server repeated nextPageToken " + token);
    }
  }
}

base::Result<std::vector<UnitStatusReport>> NativeClient::ListStates(std::string_view machine_id,
                                                                     std::string_view unit_name) {
  http::QueryParams q;
  if (!machine_id.empty()) q.Add("machineID", std::string(machine_id));
  if (!unit_name.empty()) q.Add("unitName", std::string(unit_name));
  std::string target = "/v1/state";
  if (std::string e = q.Encode(); !e.empty()) target += "?" + e;
  FJORD_ASSIGN_OR_RETURN(auto res, Call("list states", "GET", target));
  if (res.status != 200) return NativeStatusFromHttp("list states", res.status, res.body);
  auto report = StateReportFromJson(res.body);
  if (!report.ok()) return report.status().Wrap("list states: server answer");
  return std::move(report->states);
}

base::Result<std::pair<std::string, std::string>> NativeClient::AgentLocation(
    std::string_view context, const std::string& target) {
  FJORD_ASSIGN_OR_RETURN(auto res, Call(context, "GET", target));
  if (res.status != 307 && res.status != 302) {
    if (res.status == 200) {
      return base::Internal(std::string(context) + ": the server answered itself, not with 307");
    }
    return NativeStatusFromHttp(context, res.status, res.body);
  }
  std::string location(res.Header("Location"));
  if (location.empty()) return base::Internal(std::string(context) + ": 307 without Location");
  auto parts = SplitUrl(location);
  if (!parts.ok()) return parts.status().Wrap(std::string(context) + ": agent location");
  return parts;
}

base::Result<std::string> NativeClient::UnitStatus(std::string_view name, bool json,
                                                   std::string_view machine_id) {
  std::string context = Quoted("status of unit", name);
  http::QueryParams q;
  if (json) q.Add("format", "json");
  if (!machine_id.empty()) q.Add("machineID", std::string(machine_id));
  std::string target = UnitPath(name) + "/status";
  if (std::string e = q.Encode(); !e.empty()) target += "?" + e;
  FJORD_ASSIGN_OR_RETURN(auto loc, AgentLocation(context, target));
  http::HttpClient::Options options;
  options.unreachable_hint = "is `fjord agent` running on that machine?";
  auto agent = http::HttpClient::Create(loc.first, options);
  if (!agent.ok()) return agent.status().Wrap(context);
  auto res = (*agent)->Get(loc.second);
  if (!res.ok()) return res.status().Wrap(context);
  if (res->status != 200) return NativeStatusFromHttp(context, res->status, res->body);
  return std::move(res->body);
}

base::Status NativeClient::Journal(std::string_view name, int64_t lines, bool follow,
                                   const std::function<bool(std::string_view)>& sink,
                                   std::string_view machine_id) {
  std::string context = Quoted("journal of unit", name);
  http::QueryParams q;
  q.Add("lines", std::to_string(lines));
  if (follow) q.Add("follow", "true");
  if (!machine_id.empty()) q.Add("machineID", std::string(machine_id));
  FJORD_ASSIGN_OR_RETURN(auto loc,
                         AgentLocation(context, UnitPath(name) + "/journal?" + q.Encode()));
  http::HttpClient::Options options;
  options.unreachable_hint = "is `fjord agent` running on that machine?";
  if (follow) options.request_timeout = std::chrono::hours(24 * 365);
  auto agent = http::HttpClient::Create(loc.first, options);
  if (!agent.ok()) return agent.status().Wrap(context);
  auto res = (*agent)->GetStream(loc.second, sink);
  if (!res.ok()) return res.status().Wrap(context);
  if (res->status != 200) return NativeStatusFromHttp(context, res->status, res->body);
  return base::Status::Ok();
}

base::Result<RegistrationReply> NativeClient::Register(const MachineRegistration& machine) {
  std::string context = Quoted("register machine", machine.id);
  FJORD_ASSIGN_OR_RETURN(auto res, Call(context, "PUT", MachinePath(machine.id), ToJson(machine)));
  if (res.status != 200 && res.status != 201) {
    return NativeStatusFromHttp(context, res.status, res.body);
  }
  auto reply = RegistrationReplyFromJson(res.body);
  if (!reply.ok()) return reply.status().Wrap(context + ": server answer");
  return reply;
}

base::Status NativeClient::Heartbeat(std::string_view machine_id) {
  std::string context = Quoted("heartbeat of machine", machine_id);
  FJORD_ASSIGN_OR_RETURN(auto res, Call(context, "POST", MachinePath(machine_id) + "/heartbeat"));
  if (res.status != 204 && res.status != 200) {
    return NativeStatusFromHttp(context, res.status, res.body);
  }
  return base::Status::Ok();
}

base::Result<Schedule> NativeClient::GetSchedule(std::string_view machine_id,
                                                 std::optional<int64_t> wait_index,
                                                 std::chrono::milliseconds timeout) {
  std::string context = Quoted("schedule of machine", machine_id);
  std::string target = MachinePath(machine_id) + "/schedule";
  if (wait_index) {
    target += "?waitIndex=" + std::to_string(*wait_index) +
              "&timeoutMs=" + std::to_string(timeout.count());
  }
  FJORD_ASSIGN_OR_RETURN(auto res, Call(context, "GET", target));
  if (res.status != 200) return NativeStatusFromHttp(context, res.status, res.body);
  auto schedule = ScheduleFromJson(res.body);
  if (!schedule.ok()) return schedule.status().Wrap(context + ": server answer");
  return schedule;
}

base::Status NativeClient::ReportStates(std::string_view machine_id, const StateReport& report) {
  std::string context = Quoted("report states of machine", machine_id);
  FJORD_ASSIGN_OR_RETURN(auto res,
                         Call(context, "PUT", MachinePath(machine_id) + "/states", ToJson(report)));
  if (res.status != 204 && res.status != 200) {
    return NativeStatusFromHttp(context, res.status, res.body);
  }
  return base::Status::Ok();
}

}  // namespace fjord::api
