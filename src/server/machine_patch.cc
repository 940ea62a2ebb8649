// PATCH /fleet/v1/machines: operators' metadata on machines, kept apart from the agents'.
//
// fleet (api/machines.go) takes a JSON Patch list of {"op":"add"|"remove"|"replace",
// "path":"/<machine-id>/metadata/<name>","value":"..."}, checks every op, path and value first,
// then writes each key to its registry, where such "dynamic" metadata lives beside the
// machine's own and wins over it (a removal hides the key). fjord does the same, except that it
// refuses unknown machines and writes the whole patch in one transaction (all or nothing).
#include <spdlog/spdlog.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <set>

#include "server/impl.h"

namespace fjord::server {

std::string MetadataOverridesJson(std::string_view machine, const MetadataOverrides& overrides) {
  nlohmann::json md = nlohmann::json::object();
  for (const auto& [key, value] : overrides) {
    md[key] = value ? nlohmann::json(*value) : nlohmann::json(nullptr);
  }
  return nlohmann::json{{"id", machine}, {"metadata", std::move(md)}}.dump();
}

base::Result<MetadataOverrides> MetadataOverridesFromJson(std::string_view json) {
  try {
    nlohmann::json doc = nlohmann::json::parse(json);
    if (!doc.is_object()) return base::InvalidArgument("metadata overrides: not a JSON object");
    MetadataOverrides out;
    auto md = doc.find("metadata");
    if (md == doc.end()) return out;
    if (!md->is_object())
      return base::InvalidArgument("metadata overrides: `metadata` not an object");
    for (const auto& [key, value] : md->items()) {
      if (value.is_null()) {
        out[key] = std::nullopt;
      } else if (value.is_string()) {
        out[key] = value.get<std::string>();
      } else {
        return base::InvalidArgument("metadata overrides: `" + key +
                                     "` is neither a string nor null");
      }
    }
    return out;
  } catch (const nlohmann::json::exception& e) {
    return base::InvalidArgument(std::string("metadata overrides: ") + e.what());
  }
}

std::map<std::string, std::string> EffectiveMetadata(const MachineEntry& machine) {
  std::map<std::string, std::string> md = machine.reg.metadata;
  for (const auto& [key, value] : machine.overrides) {
    if (value) {
      md[key] = *value;
    } else {
      md.erase(key);
    }
  }
  return md;
}

// One operation of a patch, checked.
struct MetadataOp {
  std::string machine;
  std::string key;
  std::optional<std::string> value;  // nullopt: remove
};

struct Server::Impl::MetadataPatch {
  std::vector<MetadataOp> ops;
  http::Responder responder;
  int attempts = 0;
};

namespace {

constexpr int kMaxWriteAttempts = 8;

// fleet's metadata names: [A-Za-z0-9_.-]+.
bool ValidName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// "/<machine-id>/metadata/<name>"
bool SplitPath(std::string_view path, std::string* machine, std::string* key) {
  constexpr std::string_view kMiddle = "/metadata/";
  if (path.size() < 2 || path[0] != '/') return false;
  size_t slash = path.find('/', 1);
  if (slash == std::string_view::npos || slash == 1) return false;
  std::string_view rest = path.substr(slash);
  if (rest.substr(0, kMiddle.size()) != kMiddle) return false;
  std::string_view name = rest.substr(kMiddle.size());
  if (!ValidName(name)) return false;
  *machine = std::string(path.substr(1, slash - 1));
  *key = std::string(name);
  return true;
}

// The operations of the body, or a 400 naming the bad element ("[2].path").
std::optional<http::Response> ParseOps(std::string_view body, std::vector<MetadataOp>* ops) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    return ErrorResponse(400, std::string("machine patch: the body is not JSON: ") + e.what());
  }
  if (!doc.is_array()) {
    return ErrorResponse(400,
                         "machine patch: the body must be a JSON array of operations "
                         "{\"op\":\"add|remove|replace\",\"path\":\"/<machine-id>/metadata/"
                         "<name>\",\"value\":\"...\"}");
  }
  for (size_t i = 0; i < doc.size(); ++i) {
    const nlohmann::json& el = doc[i];
    const std::string at = "[" + std::to_string(i) + "]";
    auto bad = [&](const std::string& field, const std::string& message) {
      return ErrorResponse(400, "machine patch " + at + "." + field + ": " + message,
                           at + "." + field);
    };
    if (!el.is_object()) {
      return ErrorResponse(400, "machine patch " + at + ": an operation must be an object", at);
    }
    auto op = el.find("op");
    if (op == el.end() || !op->is_string()) {
      return bad("op", "missing or not a string: give add, remove or replace");
    }
    const std::string name = op->get<std::string>();
    if (name != "add" && name != "remove" && name != "replace") {
      return bad("op", "`" + name + "` is not add, remove or replace");
    }
    auto path = el.find("path");
    if (path == el.end() || !path->is_string()) {
      return bad("path", "missing or not a string: give /<machine-id>/metadata/<name>");
    }
    MetadataOp out;
    const std::string p = path->get<std::string>();
    if (!SplitPath(p, &out.machine, &out.key)) {
      return bad("path", "`" + p +
                             "` is not /<machine-id>/metadata/<name> (a name is letters, digits, "
                             "'_', '.' or '-')");
    }
    if (name != "remove") {
      auto value = el.find("value");
      if (value == el.end() || !value->is_string() || value->get<std::string>().empty()) {
        return bad("value", name + " needs a non-empty string value");
      }
      out.value = value->get<std::string>();
    }
    ops->push_back(std::move(out));
  }
  return std::nullopt;
}

// The scheduler indexes at most this many distinct metadata names (hostname included); a patch
// going past it would be stored but could not be applied.
constexpr size_t kMaxMetadataNames = 254;

std::optional<http::Response> CheckNameLimitLocked(const View& view,
                                                   const std::vector<MetadataOp>& ops) {
  std::set<std::string, std::less<>> names;
  bool adds = false;
  for (const MetadataOp& op : ops) adds |= op.value.has_value();
  if (!adds) return std::nullopt;
  names.insert("hostname");
  for (const auto& [id, m] : view.machines) {
    for (const auto& [key, value] : m.reg.metadata) names.insert(key);
    for (const auto& [key, value] : m.overrides) names.insert(key);
  }
  for (size_t i = 0; i < ops.size(); ++i) {
    if (!ops[i].value || !names.insert(ops[i].key).second || names.size() <= kMaxMetadataNames) {
      continue;
    }
    std::string at = "[" + std::to_string(i) + "].path";
    return ErrorResponse(400,
                         "machine patch " + at + ": `" + ops[i].key + "` would be name " +
                             std::to_string(names.size()) + " of the cluster's metadata; at most " +
                             std::to_string(kMaxMetadataNames) + " are supported",
                         at);
  }
  return std::nullopt;
}

}  // namespace

base::Status Server::Impl::AddMachinePatchRoute(http::Router& router) {
  return router.Add(
      "PATCH", "/fleet/v1/machines", [this](const http::Request& req, http::Responder resp) {
        std::vector<MetadataOp> ops;
        if (auto err = ParseOps(req.body, &ops)) {
          resp.Respond(std::move(*err));
          return;
        }
        PatchMachines(std::make_shared<MetadataPatch>(MetadataPatch{std::move(ops), resp, 0}));
      });
}

// Optimistic like PutUnit: each machine's /machinemeta key is compared with the revision the
// new overrides were computed from; a lost race runs again against the winner's write.
void Server::Impl::PatchMachines(std::shared_ptr<MetadataPatch> patch) {
  if (++patch->attempts > kMaxWriteAttempts) {
    patch->responder.Respond(
        ErrorResponse(503, "machine metadata is being changed concurrently; try again"));
    return;
  }
  struct Change {
    MetadataOverrides overrides;
    store::Revision revision = 0;
  };
  auto changes = std::make_shared<std::map<std::string, Change>>();
  {
    std::lock_guard<std::mutex> l(view.mu);
    for (size_t i = 0; i < patch->ops.size(); ++i) {
      const MetadataOp& op = patch->ops[i];
      auto it = view.machines.find(op.machine);
      if (it == view.machines.end()) {
        std::string at = "[" + std::to_string(i) + "].path";
        patch->responder.Respond(
            ErrorResponse(400,
                          "machine patch " + at + ": no machine `" + op.machine +
                              "` (GET /fleet/v1/machines lists them); nothing was changed",
                          at));
        return;
      }
      auto [c, added] = changes->try_emplace(op.machine);
      if (added) {
        c->second.overrides = it->second.overrides;
        c->second.revision = it->second.overrides_revision;
      }
      c->second.overrides[op.key] = op.value;
    }
    if (auto err = CheckNameLimitLocked(view, patch->ops)) {
      patch->responder.Respond(std::move(*err));
      return;
    }
  }
  if (changes->empty()) {
    patch->responder.Respond(http::Response::Empty(204));
    return;
  }
  store::TxnRequest txn;
  for (const auto& [id, c] : *changes) {
    std::string key = MachineMetaKey(id);
    txn.compare.push_back(c.revision == 0 ? store::Compare::Missing(key)
                                          : store::Compare::ModRevisionIs(key, c.revision));
    txn.success.push_back(store::Op::Put(key, MetadataOverridesJson(id, c.overrides)));
  }
  Write(std::move(txn), [this, patch, changes](base::Result<store::TxnResponse> r) {
    if (!r.ok()) {
      patch->responder.Respond(
          ErrorResponse(503, "store machine metadata: " + r.status().ToString()));
      return;
    }
    if (!r->succeeded) {
      PatchMachines(patch);
      return;
    }
    {
      std::lock_guard<std::mutex> l(view.mu);
      for (auto& [id, c] : *changes) {
        auto it = view.machines.find(id);
        if (it == view.machines.end()) continue;  // machines are never removed
        it->second.overrides = std::move(c.overrides);
        it->second.overrides_revision = r->revision;
      }
    }
    // Answered once the reconciler applied every machine's new metadata and its schedule is
    // written (units that no longer fit wait for the rescheduling rate limit).
    auto remaining = std::make_shared<std::atomic<size_t>>(changes->size());
    http::Responder responder = patch->responder;
    for (const auto& [id, c] : *changes) {
      spdlog::info("machine {}: metadata patched", id);
      reconciler->MachineChanged(id, [remaining, responder]() mutable {
        if (--*remaining == 0) responder.Respond(http::Response::Empty(204));
      });
    }
  });
}

}  // namespace fjord::server
