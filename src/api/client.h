// FleetClient: the client library for fleet's API v1 (/fleet/v1), used by the CLI and agents.
//
// Each call is one or more HTTP requests over one keep-alive connection; list calls follow
// nextPageToken until the last page. A non-2xx answer becomes a Status whose code follows the
// HTTP status (400 kInvalidArgument, 404 kNotFound, 409 kAlreadyExists, 503 kUnavailable, other
// kInternal) and whose message is the server's, with context:
//   "put unit `a.service`: unit does not exist and options field empty"
// Not thread-safe (like http::HttpClient): one client per thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/types.h"
#include "base/status.h"

namespace fjord::http {
class HttpClient;
}

namespace fjord::api {

class FleetClient {
 public:
  // `endpoint`: "http://127.0.0.1:7777"; the client talks to <endpoint>/fleet/v1/...
  static base::Result<std::unique_ptr<FleetClient>> Create(std::string_view endpoint);
  explicit FleetClient(std::unique_ptr<http::HttpClient> http);
  ~FleetClient();

  base::Result<std::vector<Unit>> ListUnits();
  base::Result<Unit> GetUnit(std::string_view name);
  // Creates the unit (options required) or changes its desired state (fleet's PUT semantics).
  base::Status PutUnit(const Unit& unit);
  base::Status SetDesiredState(std::string_view name, UnitStateName state);
  base::Status DestroyUnit(std::string_view name);
  // Filters are optional (empty: all): fleet's ?machineID= and ?unitName= query parameters.
  base::Result<std::vector<UnitState>> ListUnitStates(std::string_view machine_id = {},
                                                      std::string_view unit_name = {});
  base::Result<std::vector<Machine>> ListMachines();

 private:
  std::unique_ptr<http::HttpClient> http_;
};

// Maps a non-2xx answer to a Status: code from the HTTP status, message from the error body
// (or the raw body when it is not one), prefixed with `context`.
base::Status StatusFromHttp(std::string_view context, int http_status, std::string_view body);

}  // namespace fjord::api
