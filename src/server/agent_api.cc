// The agent protocol under /v1/machines/{id}: register, heartbeat, schedule long-poll, states.
#include <spdlog/spdlog.h>

#include <charconv>

#include "server/impl.h"

namespace fjord::server {

namespace {

constexpr int64_t kDefaultPollMs = 30000;
constexpr int64_t kMaxPollMs = 60000;

bool ValidMachineId(std::string_view id) {
  if (id.empty() || id.size() > 255) return false;
  for (char c : id) {
    if (c == '/' || c == '\0' || static_cast<unsigned char>(c) < 0x20) return false;
  }
  return true;
}

// {"revision":R,"units":[...]}: each stored value ({"name","hash","desiredState"}) with the
// options of the unit's body spliced in. A value whose body no unit holds any more (the unit was
// destroyed or its content replaced; the reconciler is about to rewrite the key) is left out.
http::Response ScheduleResponse(store::Store& store, const View& view, const std::string& machine) {
  std::string prefix = SchedulePrefix(machine);
  auto range = store.Range({prefix, store::PrefixEnd(prefix)});
  if (!range.ok()) {
    return ErrorResponse(503,
                         "read the schedule of `" + machine + "`: " + range.status().ToString());
  }
  // Decoded outside the view's lock; only the body lookups hold it.
  struct Entry {
    const std::string* value;
    std::string hash;  // empty: serve the value as stored (its options are inline)
    BodyPtr body;
  };
  std::vector<Entry> units;
  units.reserve(range->kvs.size());
  for (const auto& kv : range->kvs) {
    auto rec = api::ScheduledUnitFromJson(kv.value);
    if (!rec.ok()) {
      spdlog::error("skipping unreadable {}: {}", kv.key, rec.status().ToString());
      continue;
    }
    units.push_back({&kv.value, rec->options.empty() ? std::move(rec->hash) : std::string(), {}});
  }
  {
    std::lock_guard<std::mutex> l(view.mu);
    for (auto& e : units) {
      if (!e.hash.empty()) e.body = view.FindBodyLocked(e.hash);
    }
  }
  // A value naming content no unit holds any more is left out.
  std::erase_if(units, [](const Entry& e) { return !e.hash.empty() && !e.body; });
  std::string body = "{\"revision\":" + std::to_string(range->revision) + ",\"units\":[";
  for (size_t i = 0; i < units.size(); ++i) {
    const std::string& value = *units[i].value;
    if (i > 0) body += ',';
    if (!units[i].body || value.empty() || value.back() != '}') {
      body += value;
      continue;
    }
    body.append(value, 0, value.size() - 1);
    body += ",\"options\":";
    body += units[i].body->options_json;
    body += '}';
  }
  body += "]}";
  return http::Response::Json(200, std::move(body));
}

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

base::Status Server::Impl::AddAgentRoutes(http::Router& router) {
  // Register (idempotent): answered once the registration is durable and the machine's
  // schedule holds only what is placed on it now.
  FJORD_RETURN_IF_ERROR(router.Add(
      "PUT", "/v1/machines/{id}", [this](const http::Request& req, http::Responder resp) {
        std::string id(req.Param("id"));
        if (!ValidMachineId(id)) {
          resp.Respond(ErrorResponse(400, "invalid machine id `" + id + "`", "id"));
          return;
        }
        auto reg = api::MachineRegistrationFromJson(req.body);
        if (!reg.ok()) {
          resp.Respond(ErrorResponse(400,
                                     "register machine `" + id + "`: " + reg.status().ToString(),
                                     api::FieldOfDecodeError(reg.status())));
          return;
        }
        if (reg->id.empty()) reg->id = id;
        if (reg->id != id) {
          resp.Respond(ErrorResponse(
              400, "machine id in URL `" + id + "` differs from the body's `" + reg->id + "`",
              "id"));
          return;
        }
        const auto& c = reg->capacity;
        if (c.cpu_millis < 0 || c.memory_bytes < 0 || c.disk_bytes < 0) {
          resp.Respond(ErrorResponse(400, "machine `" + id + "`: negative capacity", "capacity"));
          return;
        }
        store::TxnRequest txn;
        txn.success.push_back(store::Op::Put(MachineKey(id), api::ToJson(*reg)));
        Write(std::move(txn), [this, id, reg = std::move(*reg),
                               resp](base::Result<store::TxnResponse> r) {
          if (!r.ok()) {
            resp.Respond(
                ErrorResponse(503, "register machine `" + id + "`: " + r.status().ToString()));
            return;
          }
          {
            std::lock_guard<std::mutex> l(view.mu);
            MachineEntry& e = view.machines[id];
            e.reg = reg;
            e.last_seen = clock->Now();
            e.last_seen_unix_ms = UnixMs(clock->WallNow());
            e.alive = true;
          }
          api::RegistrationReply reply;
          reply.heartbeat_interval_ms = options.heartbeat_interval.count();
          reply.grace_ms = options.heartbeat_grace.count();
          reconciler->MachineChanged(
              id, [resp, reply] { resp.Respond(http::Response::Json(200, api::ToJson(reply))); });
        });
      }));

  FJORD_RETURN_IF_ERROR(
      router.AddSync("POST", "/v1/machines/{id}/heartbeat", [this](const http::Request& req) {
        std::string id(req.Param("id"));
        std::lock_guard<std::mutex> l(view.mu);
        auto it = view.machines.find(id);
        // A lost machine registers again: that is how it comes back.
        if (it == view.machines.end() || !it->second.alive) {
          return ErrorResponse(404, "machine `" + id + "` is not registered: register again");
        }
        it->second.last_seen = clock->Now();
        it->second.last_seen_unix_ms = UnixMs(clock->WallNow());
        return http::Response::Empty(204);
      }));

  FJORD_RETURN_IF_ERROR(router.Add(
      "GET", "/v1/machines/{id}/schedule",
      [this](const http::Request& req, http::Responder resp) {
        std::string id(req.Param("id"));
        {
          std::lock_guard<std::mutex> l(view.mu);
          if (!view.machines.count(id)) {
            resp.Respond(ErrorResponse(404, "machine `" + id + "` is not registered"));
            return;
          }
        }
        auto wait = req.query.Get("waitIndex");
        if (!wait) {
          resp.Respond(ScheduleResponse(*store, view, id));
          return;
        }
        auto wait_index = ParseInt(*wait);
        if (!wait_index || *wait_index < 0) {
          resp.Respond(ErrorResponse(400, "waitIndex must be a revision (>= 0)", "waitIndex"));
          return;
        }
        int64_t timeout_ms = kDefaultPollMs;
        if (auto t = req.query.Get("timeoutMs")) {
          auto v = ParseInt(*t);
          if (!v || *v < 0) {
            resp.Respond(ErrorResponse(400, "timeoutMs must be >= 0", "timeoutMs"));
            return;
          }
          timeout_ms = std::min(*v, kMaxPollMs);
        }
        std::string prefix = SchedulePrefix(id);
        auto watcher = store->Watch({prefix, store::PrefixEnd(prefix), *wait_index + 1});
        if (!watcher.ok()) {
          // Compacted past waitIndex (or a future one): answer at once with the full schedule.
          resp.Respond(ScheduleResponse(*store, view, id));
          return;
        }
        polls->Add(std::move(*watcher), clock->Now() + std::chrono::milliseconds(timeout_ms), resp,
                   [this, id](store::Store& s, std::vector<store::Event>) {
                     return ScheduleResponse(s, view, id);
                   });
      },
      http::Dispatch::kWorker));

  // The agent's complete state: write what changed, delete what it no longer reports.
  FJORD_RETURN_IF_ERROR(router.Add(
      "PUT", "/v1/machines/{id}/states", [this](const http::Request& req, http::Responder resp) {
        std::string id(req.Param("id"));
        auto report = api::StateReportFromJson(req.body);
        if (!report.ok()) {
          resp.Respond(
              ErrorResponse(400, "states of machine `" + id + "`: " + report.status().ToString(),
                            api::FieldOfDecodeError(report.status())));
          return;
        }
        auto changes = std::make_shared<std::map<std::string, std::optional<StateEntry>>>();
        {
          std::lock_guard<std::mutex> l(view.mu);
          if (!view.machines.count(id)) {
            resp.Respond(
                ErrorResponse(404, "machine `" + id + "` is not registered: register again"));
            return;
          }
          const auto& current = view.states[id];
          std::set<std::string> reported;
          for (auto& s : report->states) {
            if (s.state.name.empty()) continue;
            s.state.machine_id = id;
            std::string json = api::ToJson(s);
            auto it = current.find(s.state.name);
            reported.insert(s.state.name);
            if (it == current.end() || it->second.json != json) {
              (*changes)[s.state.name] = StateEntry{s, std::move(json)};
            }
          }
          for (const auto& [unit, e] : current) {
            if (!reported.count(unit)) (*changes)[unit] = std::nullopt;
          }
        }
        if (changes->empty()) {
          resp.Respond(http::Response::Empty(204));
          return;
        }
        store::TxnRequest txn;
        for (const auto& [unit, e] : *changes) {
          txn.success.push_back(e ? store::Op::Put(StateKey(id, unit), e->json)
                                  : store::Op::Delete(StateKey(id, unit)));
        }
        Write(std::move(txn), [this, id, changes, resp](base::Result<store::TxnResponse> r) {
          if (!r.ok()) {
            resp.Respond(
                ErrorResponse(503, "store states of `" + id + "`: " + r.status().ToString()));
            return;
          }
          {
            std::lock_guard<std::mutex> l(view.mu);
            auto& states = view.states[id];
            for (auto& [unit, e] : *changes) {
              if (e) {
                states[unit] = std::move(*e);
              } else {
                states.erase(unit);
              }
            }
          }
          resp.Respond(http::Response::Empty(204));
        });
      }));
  return base::Status::Ok();
}

}  // namespace fjord::server
