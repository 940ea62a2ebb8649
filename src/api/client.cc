#include "api/client.h"

#include <set>

#include "http/client.h"

namespace fjord::api {
namespace {

constexpr std::string_view kPrefix = "/fleet/v1";

std::string UnitPath(std::string_view name) {
  return std::string(kPrefix) + "/units/" + http::PercentEncode(name);
}

// Fetches every page of a list endpoint; `decode` turns one page body into (items, token).
template <typename Page, typename Item>
base::Result<std::vector<Item>> FetchAll(http::HttpClient& http, std::string_view context,
                                         std::string_view path, http::QueryParams query,
                                         base::Result<Page> (*decode)(std::string_view),
                                         std::vector<Item> Page::*items) {
  std::vector<Item> out;
  std::set<std::string> seen_tokens;  // a server repeating a token would loop forever
  std::string token;
  for (;;) {
    http::QueryParams q = query;
    if (!token.empty()) q.Add("nextPageToken", token);
    std::string target(path);
    if (std::string encoded = q.Encode(); !encoded.empty()) target += "?" + encoded;
    auto res = http.Get(target);
    if (!res.ok()) return res.status().Wrap(context);
    if (res->status != 200) return StatusFromHttp(context, res->status, res->body);
    auto page = decode(res->body);
    if (!page.ok()) return page.status().Wrap(std::string(context) + ": server answer");
    for (auto& item : (*page).*items) out.push_back(std::move(item));
    token = page->next_page_token;
    if (token.empty()) return out;
    if (!seen_tokens.insert(token).second) {
      return base::Internal(std::string(context) + ": server repeated nextPageToken " + token);
    }
  }
}

}  // namespace

base::Status StatusFromHttp(std::string_view context, int http_status, std::string_view body) {
  base::Code code = base::Code::kInternal;
  switch (http_status) {
    case 400:
      code = base::Code::kInvalidArgument;
      break;
    case 404:
      code = base::Code::kNotFound;
      break;
    case 409:
      code = base::Code::kAlreadyExists;
      break;
    case 503:
      code = base::Code::kUnavailable;
      break;
    default:
      break;
  }
  std::string message;
  if (auto err = ErrorFromJson(body); err.ok() && !err->message.empty()) {
    message = err->message;
  } else {
    message = "HTTP " + std::to_string(http_status);
    if (!body.empty()) message += ": " + std::string(body.substr(0, 200));
  }
  return base::Status(code, std::string(context) + ": " + message);
}

base::Result<std::unique_ptr<FleetClient>> FleetClient::Create(std::string_view endpoint) {
  FJORD_ASSIGN_OR_RETURN(auto http, http::HttpClient::Create(endpoint));
  return std::make_unique<FleetClient>(std::move(http));
}

FleetClient::FleetClient(std::unique_ptr<http::HttpClient> http) : http_(std::move(http)) {}
FleetClient::~FleetClient() = default;

base::Result<std::vector<Unit>> FleetClient::ListUnits() {
  return FetchAll<UnitPage, Unit>(*http_, "list units", std::string(kPrefix) + "/units", {},
                                  &UnitPageFromJson, &UnitPage::units);
}

base::Result<Unit> FleetClient::GetUnit(std::string_view name) {
  std::string context = "get unit `" + std::string(name) + "`";
  auto res = http_->Get(UnitPath(name));
  if (!res.ok()) return res.status().Wrap(context);
  if (res->status != 200) return StatusFromHttp(context, res->status, res->body);
  auto unit = UnitFromJson(res->body);
  if (!unit.ok()) return unit.status().Wrap(context + ": server answer");
  return unit;
}

base::Status FleetClient::PutUnit(const Unit& unit) {
  std::string context = "put unit `" + unit.name + "`";
  auto res = http_->Put(UnitPath(unit.name), ToJson(unit));
  if (!res.ok()) return res.status().Wrap(context);
  if (res->status != 201 && res->status != 204) {
    return StatusFromHttp(context, res->status, res->body);
  }
  return base::Status::Ok();
}

base::Status FleetClient::SetDesiredState(std::string_view name, UnitStateName state) {
  Unit u;
  u.name = std::string(name);
  u.desired_state = state;
  return PutUnit(u);
}

base::Status FleetClient::DestroyUnit(std::string_view name) {
  std::string context = "destroy unit `" + std::string(name) + "`";
  auto res = http_->Delete(UnitPath(name));
  if (!res.ok()) return res.status().Wrap(context);
  if (res->status != 204) return StatusFromHttp(context, res->status, res->body);
  return base::Status::Ok();
}

base::Result<std::vector<UnitState>> FleetClient::ListUnitStates(std::string_view machine_id,
                                                                 std::string_view unit_name) {
  http::QueryParams q;
  if (!machine_id.empty()) q.Add("machineID", std::string(machine_id));
  if (!unit_name.empty()) q.Add("unitName", std::string(unit_name));
  return FetchAll<UnitStatePage, UnitState>(*http_, "list unit states",
                                            std::string(kPrefix) + "/state", std::move(q),
                                            &UnitStatePageFromJson, &UnitStatePage::states);
}

base::Result<std::vector<Machine>> FleetClient::ListMachines() {
  return FetchAll<MachinePage, Machine>(*http_, "list machines", std::string(kPrefix) + "/machines",
                                        {}, &MachinePageFromJson, &MachinePage::machines);
}

}  // namespace fjord::api
