// fjord's native API under /v1 (the agent protocol is in agent_api.cc).
#include <spdlog/spdlog.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "scheduler/scheduler.h"
#include "server/impl.h"

namespace fjord::server {

namespace {

constexpr int64_t kDefaultPage = 1000;
constexpr int64_t kMaxPage = 100000;

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Parses ?limit= and ?nextPageToken=; an error response on bad values.
std::optional<http::Response> PageParams(const http::Request& req, int64_t* limit,
                                         std::string* after) {
  *limit = kDefaultPage;
  if (auto l = req.query.Get("limit")) {
    auto v = ParseInt(*l);
    if (!v || *v <= 0) return ErrorResponse(400, "limit must be a positive integer", "limit");
    *limit = std::min(*v, kMaxPage);
  }
  return PageAfter(req, after);
}

}  // namespace

base::Status Server::Impl::AddNativeRoutes(http::Router& router) {
  // ---- units
  FJORD_RETURN_IF_ERROR(router.AddSync(
      "GET", "/v1/units",
      [this](const http::Request& req) {
        int64_t limit;
        std::string after;
        if (auto err = PageParams(req, &limit, &after)) return std::move(*err);
        api::UnitViewPage page;
        {  // Copy under the lock, serialize outside it: writers wait only for the copy.
          std::lock_guard<std::mutex> l(view.mu);
          // Reported states by unit, gathered once.
          std::map<std::string_view, std::vector<const api::UnitStatusReport*>> reports;
          for (const auto& [m, states] : view.states) {
            for (const auto& [u, e] : states) reports[u].push_back(&e.report);
          }
          auto it = after.empty() ? view.units.begin() : view.units.upper_bound(after);
          page.units.reserve(std::min<size_t>(limit, view.units.size()));
          for (; it != view.units.end() && static_cast<int64_t>(page.units.size()) < limit; ++it) {
            api::UnitView v = UnitViewLocked(it->first, it->second, false);
            auto r = reports.find(it->first);
            if (r != reports.end()) {
              for (const auto* rep : r->second) v.states.push_back(*rep);
            }
            page.units.push_back(std::move(v));
          }
          if (it != view.units.end()) {
            page.next_page_token = EncodePageToken(page.units.back().name);
          }
        }
        return http::Response::Json(200, api::ToJson(page));
      },
      http::Dispatch::kWorker));

  FJORD_RETURN_IF_ERROR(router.AddSync("GET", "/v1/units/{name}", [this](const http::Request& req) {
    std::string name(req.Param("name"));
    std::lock_guard<std::mutex> l(view.mu);
    auto it = view.units.find(name);
    if (it == view.units.end()) return ErrorResponse(404, "unit `" + name + "` does not exist");
    api::UnitView v = UnitViewLocked(it->first, it->second, true);
    for (const auto& [m, states] : view.states) {
      auto s = states.find(name);
      if (s != states.end()) v.states.push_back(s->second.report);
    }
    return http::Response::Json(200, api::ToJson(v));
  }));

  FJORD_RETURN_IF_ERROR(
      router.Add("PUT", "/v1/units/{name}", [this](const http::Request& req, http::Responder resp) {
        std::string name(req.Param("name"));
        auto put = api::PutUnitRequestFromJson(req.body);
        if (!put.ok()) {
          resp.Respond(ErrorResponse(400, "unit `" + name + "`: " + put.status().ToString(),
                                     api::FieldOfDecodeError(put.status())));
          return;
        }
        if (!put->unit_file.empty() && !put->options.empty()) {
          resp.Respond(ErrorResponse(400, "unit `" + name + "`: give unitFile or options, not both",
                                     "unitFile"));
          return;
        }
        auto call = std::make_shared<PutCall>(
            PutCall{name, put->desired_state, std::move(put->options), "", true, resp, 0});
        std::optional<http::Response> err;
        if (!put->unit_file.empty()) {
          err = ParseUnitText(name, put->unit_file, &call->options, &call->hash);
        } else if (!call->options.empty()) {
          err = ValidateUnit(name, call->options, &call->hash);
        } else {
          err = ValidateName(name);
        }
        if (err) {
          resp.Respond(std::move(*err));
          return;
        }
        PutUnit(call);
      }));

  FJORD_RETURN_IF_ERROR(router.Add("DELETE", "/v1/units/{name}",
                                   [this](const http::Request& req, http::Responder resp) {
                                     DeleteUnit(std::string(req.Param("name")), true, resp);
                                   }));

  FJORD_RETURN_IF_ERROR(router.Add(
      "GET", "/v1/units/{name}/explain", [this](const http::Request& req, http::Responder resp) {
        std::string name(req.Param("name"));
        {
          std::lock_guard<std::mutex> l(view.mu);
          if (!view.units.count(name)) {
            resp.Respond(ErrorResponse(404, "unit `" + name + "` does not exist"));
            return;
          }
        }
        Reconciler* r = reconciler.get();
        r->Post([r, name, resp] { resp.Respond(http::Response::Text(200, r->Explain(name))); });
      }));

  FJORD_RETURN_IF_ERROR(
      router.Add("PUT", "/v1/units/{name}/scale",
                 [this](const http::Request& req, http::Responder resp) { Scale(req, resp); }));

  // status and journal are served by the agent running the unit.
  for (const char* what : {"status", "journal"}) {
    std::string suffix = what;
    FJORD_RETURN_IF_ERROR(router.AddSync(
        "GET", "/v1/units/{name}/" + suffix, [this, suffix](const http::Request& req) {
          std::string name(req.Param("name"));
          std::lock_guard<std::mutex> l(view.mu);
          auto unit = view.units.find(name);
          if (unit == view.units.end())
            return ErrorResponse(404, "unit `" + name + "` does not exist");
          const PlacementView& placed = unit->second.placement;
          if (!placed.placed()) {
            return ErrorResponse(409, "unit `" + name + "` is not scheduled on any machine");
          }
          std::string machine = placed.first;
          if (auto want = req.query.Get("machineID")) {
            if (!placed.On(*want)) {
              return ErrorResponse(409, "unit `" + name + "` is not scheduled on `" + *want + "`",
                                   "machineID");
            }
            machine = *want;
          }
          auto m = view.machines.find(machine);
          if (m == view.machines.end() || m->second.reg.agent_url.empty()) {
            return ErrorResponse(
                409, "machine `" + machine + "` running `" + name + "` has no agent URL");
          }
          std::string location = m->second.reg.agent_url;
          while (!location.empty() && location.back() == '/') location.pop_back();
          location += "/agent/v1/units/" + http::PercentEncode(name) + "/" + suffix;
          size_t q = req.target.find('?');
          if (q != std::string::npos) location += req.target.substr(q);
          http::Response r = http::Response::Empty(307);
          r.headers.emplace_back("Location", location);
          return r;
        }));
  }

  // ---- machines and state
  FJORD_RETURN_IF_ERROR(router.AddSync("GET", "/v1/machines", [this](const http::Request&) {
    api::MachineViewPage page;
    std::lock_guard<std::mutex> l(view.mu);
    for (const auto& [id, m] : view.machines) {
      api::MachineView v;
      v.machine = m.reg;
      v.machine.metadata = EffectiveMetadata(m);
      v.alive = m.alive;
      v.last_seen_unix_ms = m.last_seen_unix_ms;
      v.free = m.free;
      v.units = m.units;
      page.machines.push_back(std::move(v));
    }
    return http::Response::Json(200, api::ToJson(page));
  }));

  FJORD_RETURN_IF_ERROR(router.AddSync(
      "GET", "/v1/state",
      [this](const http::Request& req) {
        std::string machine = req.query.Get("machineID").value_or("");
        std::string unit = req.query.Get("unitName").value_or("");
        api::StateReport out;
        std::lock_guard<std::mutex> l(view.mu);
        for (const auto& [m, states] : view.states) {
          if (!machine.empty() && m != machine) continue;
          for (const auto& [u, e] : states) {
            if (unit.empty() || u == unit) out.states.push_back(e.report);
          }
        }
        return http::Response::Json(200, api::ToJson(out));
      },
      http::Dispatch::kWorker));

  // ---- events: store changes after waitIndex (long-poll)
  FJORD_RETURN_IF_ERROR(router.Add(
      "GET", "/v1/events",
      [this](const http::Request& req, http::Responder resp) {
        int64_t wait_index = 0, timeout_ms = 30000;
        if (auto w = req.query.Get("waitIndex")) {
          auto v = ParseInt(*w);
          if (!v || *v < 0) {
            resp.Respond(ErrorResponse(400, "waitIndex must be a revision (>= 0)", "waitIndex"));
            return;
          }
          wait_index = *v;
        } else {
          wait_index = store->CurrentRevision();
        }
        if (auto t = req.query.Get("timeoutMs")) {
          auto v = ParseInt(*t);
          if (!v || *v < 0) {
            resp.Respond(ErrorResponse(400, "timeoutMs must be >= 0", "timeoutMs"));
            return;
          }
          timeout_ms = std::min<int64_t>(*v, 60000);
        }
        auto watcher = store->Watch({"/", "0", wait_index + 1});
        if (!watcher.ok()) {
          int code = store::IsCompacted(watcher.status()) ? 410 : 503;
          resp.Respond(ErrorResponse(code, watcher.status().ToString(), "waitIndex"));
          return;
        }
        polls->Add(
            std::move(*watcher), clock->Now() + std::chrono::milliseconds(timeout_ms), resp,
            [wait_index](store::Store&, std::vector<store::Event> events) {
              // Without events nothing changed up to the answer: the client waits on.
              nlohmann::json out = {{"revision", wait_index}, {"events", nlohmann::json::array()}};
              store::Revision last = 0;
              for (const auto& e : events) {
                last = e.kv.mod_revision;
                out["events"].push_back(
                    {{"type", e.type == store::Event::Type::kPut ? "put" : "delete"},
                     {"key", e.kv.key},
                     {"revision", e.kv.mod_revision}});
              }
              if (last != 0) out["revision"] = last;
              return http::Response::Json(200, out.dump());
            });
      },
      http::Dispatch::kWorker));
  return base::Status::Ok();
}

// PUT /v1/units/{template}/scale: writes instance units (the template's options) and destroys
// extra ones; the reply lists which new instances could not be placed.
void Server::Impl::Scale(const http::Request& req, http::Responder resp) {
  std::string name(req.Param("name"));
  auto sr = api::ScaleRequestFromJson(req.body);
  if (!sr.ok()) {
    resp.Respond(ErrorResponse(400, "scale `" + name + "`: " + sr.status().ToString(),
                               api::FieldOfDecodeError(sr.status())));
    return;
  }
  if (sr->instances < 0 || sr->instances > 100000) {
    resp.Respond(ErrorResponse(400, "instances must be between 0 and 100000", "instances"));
    return;
  }
  UnitEntry tmpl;
  bool file_stored = false;  // the template's content is in /unitfiles/<hash>
  std::vector<std::string> existing;
  {
    std::lock_guard<std::mutex> l(view.mu);
    auto it = view.units.find(name);
    if (it == view.units.end()) {
      resp.Respond(ErrorResponse(404, "template `" + name + "` does not exist: submit it first"));
      return;
    }
    tmpl.body = it->second.body;
    file_stored = tmpl.body->file_stored;
    size_t at = name.find("@.");
    if (at == std::string::npos) {
      resp.Respond(ErrorResponse(400, "`" + name + "` is not a template (name@.service)", "name"));
      return;
    }
    std::string prefix = name.substr(0, at + 1), suffix = name.substr(at + 1);
    for (auto u = view.units.lower_bound(prefix); u != view.units.end(); ++u) {
      if (u->first.compare(0, prefix.size(), prefix) != 0) break;
      if (u->first.size() > prefix.size() + suffix.size() && u->first.ends_with(suffix)) {
        existing.push_back(u->first);
      }
    }
  }
  auto plan = scheduler::PlanScale(name, static_cast<uint32_t>(sr->instances), existing);
  if (!plan.ok()) {
    resp.Respond(ErrorResponse(400, "scale `" + name + "`: " + plan.status().ToString()));
    return;
  }
  store::TxnRequest txn;
  tmpl.desired_state = sr->desired_state.value_or(api::UnitStateName::kLaunched);
  // The instances share the template's content: stored once, they name it by hash.
  bool writes_file = !plan->to_add.empty() && !file_stored;
  if (writes_file) {
    const UnitBody& b = *tmpl.body;
    txn.success.push_back(
        store::Op::Put(UnitFileKey(b.hash), api::ToJson(api::UnitFile{b.hash, b.options})));
  }
  for (const auto& inst : plan->to_add) {
    txn.compare.push_back(store::Compare::Missing(UnitKey(inst)));
    txn.success.push_back(
        store::Op::Put(UnitKey(inst), UnitRecordJson(inst, tmpl.body->hash, tmpl.desired_state)));
  }
  for (const auto& inst : plan->to_remove) txn.success.push_back(store::Op::Delete(UnitKey(inst)));
  api::ScaleReply reply;
  reply.added = plan->to_add;
  reply.removed = plan->to_remove;
  if (txn.success.empty()) {
    resp.Respond(http::Response::Json(200, api::ToJson(reply)));
    return;
  }
  Write(std::move(txn), [this, resp, tmpl = std::move(tmpl), reply = std::move(reply), name,
                         writes_file](base::Result<store::TxnResponse> r) mutable {
    if (!r.ok() || !r->succeeded) {
      resp.Respond(ErrorResponse(r.ok() ? 409 : 503,
                                 "scale `" + name + "`: " +
                                     (r.ok() ? std::string("instances changed meanwhile; try again")
                                             : r.status().ToString())));
      return;
    }
    {
      std::lock_guard<std::mutex> l(view.mu);
      if (writes_file) tmpl.body->file_stored = true;
      for (const auto& n : reply.added) {
        UnitEntry& e = view.units[n];
        e = UnitEntry{};
        e.desired_state = tmpl.desired_state;
        e.body = tmpl.body;
        e.mod_revision = r->revision;
      }
      for (const auto& n : reply.removed) view.units.erase(n);
    }
    reconciler->UnitsChanged(reply.added);
    reconciler->UnitsChanged(reply.removed);
    spdlog::info("scaled {}: +{} -{}", name, reply.added.size(), reply.removed.size());
    Reconciler* rec = reconciler.get();
    rec->Post([rec, resp, reply = std::move(reply)]() mutable {
      reply.pending = rec->PendingAmong(reply.added);
      resp.Respond(http::Response::Json(200, api::ToJson(reply)));
    });
  });
}

}  // namespace fjord::server
