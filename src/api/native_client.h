// NativeClient: the client library for fjord's native API (/v1, docs/PROTOCOL.md), used by the
// CLI (units, machines, explain, scale, status, journal) and by agents (register, heartbeat,
// schedule long-poll, state reports).
//
// Errors follow FleetClient's rules (StatusFromHttp): 400 kInvalidArgument, 404 kNotFound, 409
// kAlreadyExists, 503 kUnavailable; a 400 carrying unit-file diagnostics lists them in the
// message, one "file:line: severity: message" per line. A connection failure is kUnavailable or
// kDeadlineExceeded from the HTTP layer and names the endpoint.
//
// Status and journal are served by the agent running the unit: the server answers 307 and this
// client follows the Location to the agent (a new connection for that request only).
//
// Not thread-safe (like http::HttpClient): one client per thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/protocol.h"
#include "base/status.h"
#include "http/client.h"

namespace fjord::api {

class NativeClient {
 public:
  // `endpoint`: "http://127.0.0.1:7777".
  static base::Result<std::unique_ptr<NativeClient>> Create(
      std::string_view endpoint, http::HttpClient::Options options = http::HttpClient::Options());
  explicit NativeClient(std::unique_ptr<http::HttpClient> http);
  ~NativeClient();

  const http::BaseUrl& base_url() const;

  // --- units
  // Creates (201) or changes the desired state of (200) a unit; the server's view after it.
  base::Result<UnitView> PutUnit(std::string_view name, const PutUnitRequest& request);
  base::Result<std::vector<UnitView>> ListUnits();  // follows nextPageToken
  base::Result<UnitView> GetUnit(std::string_view name);
  base::Status DestroyUnit(std::string_view name);
  base::Result<std::string> Explain(std::string_view name);
  base::Result<ScaleReply> Scale(std::string_view template_name, const ScaleRequest& request);
  base::Result<std::vector<MachineView>> ListMachines();
  base::Result<std::vector<UnitStatusReport>> ListStates(std::string_view machine_id = {},
                                                         std::string_view unit_name = {});

  // --- through the agent running the unit (307)
  // `json`: the UnitStatusReport JSON instead of the systemctl-like text. `machine_id` picks one
  // machine of a global unit (empty: the server's choice).
  base::Result<std::string> UnitStatus(std::string_view name, bool json = false,
                                       std::string_view machine_id = {});
  // Passes the journal to `sink` as it arrives; with `follow` until `sink` returns false or the
  // agent ends the stream.
  base::Status Journal(std::string_view name, int64_t lines, bool follow,
                       const std::function<bool(std::string_view)>& sink,
                       std::string_view machine_id = {});

  // --- agent protocol
  base::Result<RegistrationReply> Register(const MachineRegistration& machine);
  // kNotFound when the server does not know the machine (register again).
  base::Status Heartbeat(std::string_view machine_id);
  // Without `wait_index` answers at once; with it, long-polls up to `timeout`.
  base::Result<Schedule> GetSchedule(std::string_view machine_id,
                                     std::optional<int64_t> wait_index = std::nullopt,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(30));
  base::Status ReportStates(std::string_view machine_id, const StateReport& report);

 private:
  base::Result<http::ClientResponse> Call(std::string_view context, std::string_view method,
                                          const std::string& target, std::string_view body = {});
  // Resolves the server's 307 for status/journal: the agent URL's base and target.
  base::Result<std::pair<std::string, std::string>> AgentLocation(std::string_view context,
                                                                  const std::string& target);

  std::unique_ptr<http::HttpClient> http_;
};

// StatusFromHttp plus the diagnostics of a 400 for an invalid unit, one per line.
base::Status NativeStatusFromHttp(std::string_view context, int http_status, std::string_view body);

// "http://10.0.0.5:4001/agent/v1/units/a.service/status" -> {"http://10.0.0.5:4001",
// "/agent/v1/units/a.service/status"}.
base::Result<std::pair<std::string, std::string>> SplitUrl(std::string_view url);

}  // namespace fjord::api
