// The unit write path (shared by /fleet/v1 and /v1) and fleet's API v1 handlers.
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "server/impl.h"

namespace fjord::server {

namespace {

constexpr size_t kFleetPageSize = 100;
constexpr int kMaxWriteAttempts = 8;

bool IsActiveState(std::string_view s) {
  return s == "active" || s == "activating" || s == "reloading" || s == "deactivating";
}

}  // namespace

// ---- Views

// Where a unit runs and fleet's currentState: launched when its machine reports it active,
// loaded when reported otherwise, inactive when not placed or not reported.
static void PlacementLocked(const View& view, const std::string& name, const UnitEntry& e,
                            std::string* machine, api::UnitStateName* current) {
  *current = api::UnitStateName::kInactive;
  const PlacementView& p = e.placement;
  if (!p.placed() || p.global) return;
  *machine = p.first;
  auto ms = view.states.find(*machine);
  if (ms == view.states.end()) return;
  auto st = ms->second.find(name);
  if (st == ms->second.end()) return;
  *current = IsActiveState(st->second.report.state.systemd_active_state)
                 ? api::UnitStateName::kLaunched
                 : api::UnitStateName::kLoaded;
}

api::Unit Server::Impl::FleetUnitLocked(const std::string& name, const UnitEntry& e) const {
  api::Unit u;
  u.name = name;
  u.options = e.body->options;
  u.desired_state = e.desired_state;
  api::UnitStateName current;
  PlacementLocked(view, name, e, &u.machine_id, &current);
  u.current_state = current;
  return u;
}

api::UnitView Server::Impl::UnitViewLocked(const std::string& name, const UnitEntry& e,
                                           bool with_options) const {
  api::UnitView v;
  v.name = name;
  v.hash = e.body->hash;
  v.desired_state = e.desired_state;
  api::UnitStateName current;
  PlacementLocked(view, name, e, &v.machine_id, &current);
  v.current_state = current;
  if (e.placement.published) {
    v.global = e.placement.global;
    v.reason = e.placement.reason;
  } else if (e.desired_state != api::UnitStateName::kInactive) {
    v.reason = "waiting for the scheduler";
  }
  if (with_options) v.options = e.body->options;
  return v;
}

// ---- Writes: acknowledged only once durable; a lost race re-runs against the new state.

void Server::Impl::PutUnit(std::shared_ptr<PutCall> call) {
  if (++call->attempts > kMaxWriteAttempts) {
    call->responder.Respond(
        ErrorResponse(503, "unit `" + call->name + "` is being changed concurrently; try again"));
    return;
  }
  // The existing unit's content, desired state and revision; or the content if another unit
  // already has it.
  std::optional<UnitEntry> existing;
  BodyPtr shared;
  bool file_stored = false;  // /unitfiles/<hash> is in the store
  {
    std::lock_guard<std::mutex> l(view.mu);
    auto it = view.units.find(call->name);
    if (it != view.units.end()) {
      existing.emplace();
      existing->desired_state = it->second.desired_state;
      existing->body = it->second.body;
      existing->mod_revision = it->second.mod_revision;
      file_stored = it->second.body->file_stored;
    } else if (!call->hash.empty()) {
      shared = view.FindBodyLocked(call->hash);
      file_stored = shared && shared->file_stored;
    }
  }
  const std::string key = UnitKey(call->name);
  store::TxnRequest txn;
  std::string value;  // of /units/<name>
  bool writes_file = false;
  api::UnitStateName desired{};
  int status = 0;
  if (!existing) {
    if (call->options.empty()) {
      call->responder.Respond(ErrorResponse(
          409, "unit `" + call->name + "` does not exist and options field empty", "options"));
      return;
    }
    desired = call->desired.value_or(api::UnitStateName::kInactive);
    txn.compare.push_back(store::Compare::Missing(key));
    if (!shared) {
      value = UnitRecordJson(call->name, call->hash, desired, &call->options);
    } else {
      if (!file_stored) {  // the second unit with this content: store it once for both
        txn.success.push_back(store::Op::Put(
            UnitFileKey(call->hash), api::ToJson(api::UnitFile{call->hash, call->options})));
        writes_file = true;
      }
      value = UnitRecordJson(call->name, call->hash, desired);
    }
    status = 201;
  } else {
    if (!call->options.empty() && call->hash != existing->body->hash) {
      call->responder.Respond(ErrorResponse(
          409, "unit `" + call->name + "` already exists with different options; destroy it first",
          "options"));
      return;
    }
    if (!call->desired && !call->native) {
      call->responder.Respond(ErrorResponse(
          409, "unit `" + call->name + "` exists: give desiredState to change it", "desiredState"));
      return;
    }
    if (!call->desired || *call->desired == existing->desired_state) {
      // Nothing changes: no write.
      if (call->native) {
        std::lock_guard<std::mutex> l(view.mu);
        auto it = view.units.find(call->name);
        const UnitEntry& current = it != view.units.end() ? it->second : *existing;
        call->responder.Respond(
            http::Response::Json(200, api::ToJson(UnitViewLocked(call->name, current, false))));
      } else {
        call->responder.Respond(http::Response::Empty(204));
      }
      return;
    }
    desired = *call->desired;
    txn.compare.push_back(store::Compare::ModRevisionIs(key, existing->mod_revision));
    const UnitBody& b = *existing->body;
    value = UnitRecordJson(call->name, b.hash, desired, file_stored ? nullptr : &b.options);
    status = call->native ? 200 : 204;
  }
  BodyPtr body = existing ? existing->body : shared;
  txn.success.push_back(store::Op::Put(key, std::move(value)));
  Write(std::move(txn), [this, call, desired, body = std::move(body), writes_file,
                         status](base::Result<store::TxnResponse> r) mutable {
    if (!r.ok()) {
      call->responder.Respond(
          ErrorResponse(503, "store unit `" + call->name + "`: " + r.status().ToString()));
      return;
    }
    if (!r->succeeded) {
      PutUnit(call);  // changed meanwhile: the view already holds the winner's write
      return;
    }
    http::Response response = http::Response::Empty(status);
    {
      std::lock_guard<std::mutex> l(view.mu);
      UnitEntry& slot = view.units[call->name];
      if (status == 201) slot = UnitEntry{};  // a new unit: no placement yet
      slot.desired_state = desired;
      slot.body = body ? std::move(body) : view.InternLocked(call->hash, call->options);
      if (writes_file) slot.body->file_stored = true;
      slot.mod_revision = r->revision;
      if (call->native) {
        response =
            http::Response::Json(status, api::ToJson(UnitViewLocked(call->name, slot, false)));
      }
    }
    reconciler->UnitChanged(call->name);
    if (status == 201) {
      spdlog::debug("unit {} submitted", call->name);
    }
    call->responder.Respond(std::move(response));
  });
}

void Server::Impl::DeleteUnit(std::string name, bool native, http::Responder responder,
                              int attempts) {
  if (attempts > kMaxWriteAttempts) {
    responder.Respond(ErrorResponse(503, "unit `" + name + "` is being changed concurrently"));
    return;
  }
  store::Revision rev = 0;
  {
    std::lock_guard<std::mutex> l(view.mu);
    auto it = view.units.find(name);
    if (it != view.units.end()) rev = it->second.mod_revision;
  }
  if (rev == 0) {
    responder.Respond(ErrorResponse(404, "unit `" + name + "` does not exist"));
    return;
  }
  store::TxnRequest txn;
  std::string key = UnitKey(name);
  txn.compare.push_back(store::Compare::ModRevisionIs(key, rev));
  txn.success.push_back(store::Op::Delete(key));
  Write(std::move(txn),
        [this, name, native, responder, attempts](base::Result<store::TxnResponse> r) {
          if (!r.ok()) {
            responder.Respond(
                ErrorResponse(503, "destroy unit `" + name + "`: " + r.status().ToString()));
            return;
          }
          if (!r->succeeded) {
            DeleteUnit(name, native, responder, attempts + 1);
            return;
          }
          {
            std::lock_guard<std::mutex> l(view.mu);
            view.units.erase(name);
          }
          reconciler->UnitChanged(name);
          spdlog::info("unit {} destroyed", name);
          responder.Respond(http::Response::Empty(204));
        });
}

// ---- /fleet/v1

base::Status Server::Impl::AddFleetRoutes(http::Router& router) {
  FJORD_RETURN_IF_ERROR(router.AddSync(
      "GET", "/fleet/v1/units",
      [this](const http::Request& req) {
        std::string after;
        if (auto err = PageAfter(req, &after)) return std::move(*err);
        api::UnitPage page;
        {
          std::lock_guard<std::mutex> l(view.mu);
          auto it = after.empty() ? view.units.begin() : view.units.upper_bound(after);
          for (; it != view.units.end() && page.units.size() < kFleetPageSize; ++it) {
            page.units.push_back(FleetUnitLocked(it->first, it->second));
          }
          if (it != view.units.end())
            page.next_page_token = EncodePageToken(page.units.back().name);
        }
        return http::Response::Json(200, api::ToJson(page));
      },
      http::Dispatch::kWorker));

  FJORD_RETURN_IF_ERROR(
      router.AddSync("GET", "/fleet/v1/units/{name}", [this](const http::Request& req) {
        std::string name(req.Param("name"));
        std::lock_guard<std::mutex> l(view.mu);
        auto it = view.units.find(name);
        if (it == view.units.end()) return ErrorResponse(404, "unit `" + name + "` does not exist");
        return http::Response::Json(200, api::ToJson(FleetUnitLocked(it->first, it->second)));
      }));

  FJORD_RETURN_IF_ERROR(router.Add(
      "PUT", "/fleet/v1/units/{name}", [this](const http::Request& req, http::Responder resp) {
        std::string name(req.Param("name"));
        auto unit = api::UnitFromJson(req.body);
        if (!unit.ok()) {
          resp.Respond(ErrorResponse(400, "unit `" + name + "`: " + unit.status().ToString(),
                                     api::FieldOfDecodeError(unit.status())));
          return;
        }
        if (!unit->name.empty() && unit->name != name) {
          resp.Respond(ErrorResponse(400,
                                     "name in URL `" + name +
                                         "` differs from unit name in request body `" + unit->name +
                                         "`",
                                     "name"));
          return;
        }
        auto call = std::make_shared<PutCall>(
            PutCall{name, unit->desired_state, std::move(unit->options), "", false, resp, 0});
        if (!call->options.empty()) {
          if (auto err = ValidateUnit(name, call->options, &call->hash)) {
            resp.Respond(std::move(*err));
            return;
          }
        } else if (auto err = ValidateName(name)) {
          resp.Respond(std::move(*err));
          return;
        }
        PutUnit(call);
      }));

  FJORD_RETURN_IF_ERROR(router.Add("DELETE", "/fleet/v1/units/{name}",
                                   [this](const http::Request& req, http::Responder resp) {
                                     DeleteUnit(std::string(req.Param("name")), false, resp);
                                   }));

  FJORD_RETURN_IF_ERROR(router.AddSync(
      "GET", "/fleet/v1/state",
      [this](const http::Request& req) {
        std::string machine = req.query.Get("machineID").value_or("");
        std::string unit = req.query.Get("unitName").value_or("");
        std::string after;
        if (auto err = PageAfter(req, &after)) return std::move(*err);
        // Ordered by (unit, machine); the token is the last "unit\0machine".
        std::map<std::string, const api::UnitStatusReport*> ordered;
        std::lock_guard<std::mutex> l(view.mu);
        for (const auto& [m, states] : view.states) {
          if (!machine.empty() && m != machine) continue;
          for (const auto& [u, e] : states) {
            if (!unit.empty() && u != unit) continue;
            std::string k = u + std::string(1, '\0') + m;
            if (!after.empty() && k <= after) continue;
            ordered.emplace(std::move(k), &e.report);
          }
        }
        api::UnitStatePage page;
        std::string last;
        for (const auto& [k, report] : ordered) {
          if (page.states.size() == kFleetPageSize) {
            page.next_page_token = EncodePageToken(last);
            break;
          }
          page.states.push_back(report->state);
          last = k;
        }
        return http::Response::Json(200, api::ToJson(page));
      },
      http::Dispatch::kWorker));

  FJORD_RETURN_IF_ERROR(router.AddSync("GET", "/fleet/v1/machines", [this](const http::Request&) {
    api::MachinePage page;
    std::lock_guard<std::mutex> l(view.mu);
    for (const auto& [id, m] : view.machines) {
      if (!m.alive) continue;  // fleet lists the machines whose presence has not expired
      page.machines.push_back({m.reg.id, m.reg.primary_ip, EffectiveMetadata(m)});
    }
    return http::Response::Json(200, api::ToJson(page));
  }));

  FJORD_RETURN_IF_ERROR(router.AddSync("GET", "/fleet/v1/discovery", [](const http::Request&) {
    nlohmann::json doc = {
        {"kind", "discovery#restDescription"},
        {"discoveryVersion", "v1"},
        {"id", "fleet:v1"},
        {"name", "fleet"},
        {"version", "v1"},
        {"title", "fleet API (served by fjord)"},
        {"protocol", "rest"},
        {"servicePath", "fleet/v1/"},
        {"resources",
         {{"Units",
           {{"methods",
             {{"List", {{"httpMethod", "GET"}, {"path", "units"}}},
              {"Get", {{"httpMethod", "GET"}, {"path", "units/{unitName}"}}},
              {"Set", {{"httpMethod", "PUT"}, {"path", "units/{unitName}"}}},
              {"Delete", {{"httpMethod", "DELETE"}, {"path", "units/{unitName}"}}}}}}},
          {"UnitState", {{"methods", {{"List", {{"httpMethod", "GET"}, {"path", "state"}}}}}}},
          {"Machines",
           {{"methods",
             {{"List", {{"httpMethod", "GET"}, {"path", "machines"}}},
              {"Patch", {{"httpMethod", "PATCH"}, {"path", "machines"}}}}}}}}},
    };
    return http::Response::Json(200, doc.dump());
  }));
  return AddMachinePatchRoute(router);
}

}  // namespace fjord::server
