// Server: opens the store, loads the view, starts the reconciler, long-polls and the listener.
#include "server/server.h"

#include <spdlog/spdlog.h>

#include <system_error>

#include "server/impl.h"

namespace fjord::server {

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(); }

std::string Server::url() const { return impl_->http->url(); }
uint16_t Server::port() const { return impl_->http->port(); }

void Server::Stop() {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> l(s.stop_mu);
  if (s.stopped) return;
  s.stopped = true;
  if (s.http) s.http->Stop();
  if (s.polls) s.polls->Stop();
  if (s.reconciler) s.reconciler->Stop();
  if (s.own_store && s.store) {
    if (base::Status st = s.store->Close(); !st.ok()) {  // completes pending writes
      spdlog::error("close the store: {}", st.ToString());
    }
  }
  std::unique_lock<std::mutex> l2(s.inflight_mu);
  s.inflight_cv.wait(l2, [&s] { return s.inflight == 0; });
}

void Server::Impl::Write(store::TxnRequest txn,
                         std::function<void(base::Result<store::TxnResponse>)> done) {
  {
    std::lock_guard<std::mutex> l(inflight_mu);
    ++inflight;
  }
  store->TxnAsync(std::move(txn),
                  [this, done = std::move(done)](base::Result<store::TxnResponse> r) {
                    done(std::move(r));
                    std::lock_guard<std::mutex> l(inflight_mu);
                    if (--inflight == 0) inflight_cv.notify_all();
                  });
}

base::Status Server::Impl::LoadView() {
  auto now = clock->Now();
  int64_t wall = UnixMs(clock->WallNow());
  std::lock_guard<std::mutex> l(view.mu);
  // Unit contents first, then the units naming them.
  auto files = store->Range({std::string(kUnitFilesPrefix), store::PrefixEnd(kUnitFilesPrefix)});
  if (!files.ok()) return files.status().Wrap("read unit files");
  std::unordered_map<std::string, api::UnitFile> stored_files;  // by hash
  for (auto& kv : files->kvs) {
    auto file = api::UnitFileFromJson(kv.value);
    if (!file.ok() || UnitFileKey(file->hash) != kv.key) {
      spdlog::error("skipping unreadable {}: {}", kv.key,
                    file.ok() ? "hash differs from the key" : file.status().ToString());
      continue;
    }
    std::string hash = file->hash;
    stored_files.emplace(std::move(hash), std::move(*file));
  }
  auto units = store->Range({std::string(kUnitsPrefix), store::PrefixEnd(kUnitsPrefix)});
  if (!units.ok()) return units.status().Wrap("read units");
  store::TxnRequest unused;  // deletes of unit files no unit names any more
  for (const auto& kv : units->kvs) {
    auto rec = api::ScheduledUnitFromJson(kv.value);
    if (!rec.ok()) {
      spdlog::error("skipping unreadable {}: {}", kv.key, rec.status().ToString());
      continue;
    }
    UnitEntry e;
    e.desired_state = rec->desired_state;
    if (BodyPtr body = view.FindBodyLocked(rec->hash)) {
      e.body = std::move(body);
    } else if (auto f = stored_files.find(rec->hash); f != stored_files.end()) {
      e.body = view.InternLocked(rec->hash, std::move(f->second.options));
      e.body->file_stored = true;
    } else if (!rec->options.empty()) {  // content of its own, inline
      e.body = view.InternLocked(rec->hash, std::move(rec->options));
    } else {
      spdlog::error("skipping {}: its unit file {} is missing", kv.key, UnitFileKey(rec->hash));
      continue;
    }
    e.mod_revision = kv.mod_revision;
    view.units.emplace_hint(view.units.end(), kv.key.substr(kUnitsPrefix.size()), std::move(e));
  }
  // Unit files of destroyed units are collected here, at start, where no write races them.
  for (const auto& [hash, file] : stored_files) {
    if (!view.FindBodyLocked(hash)) unused.success.push_back(store::Op::Delete(UnitFileKey(hash)));
  }
  if (!unused.success.empty()) {
    size_t n = unused.success.size();
    auto r = store->Txn(std::move(unused));
    if (!r.ok()) return r.status().Wrap("delete " + std::to_string(n) + " unused unit files");
  }
  auto machines = store->Range({std::string(kMachinesPrefix), store::PrefixEnd(kMachinesPrefix)});
  if (!machines.ok()) return machines.status().Wrap("read machines");
  for (const auto& kv : machines->kvs) {
    auto reg = api::MachineRegistrationFromJson(kv.value);
    if (!reg.ok()) {
      spdlog::error("skipping unreadable {}: {}", kv.key, reg.status().ToString());
      continue;
    }
    // A fresh grace period for every registered machine: no reschedule storm on restart.
    MachineEntry e;
    e.reg = std::move(*reg);
    e.last_seen = now;
    e.last_seen_unix_ms = wall;
    view.machines.emplace(kv.key.substr(kMachinesPrefix.size()), std::move(e));
  }
  // Metadata set through PATCH /fleet/v1/machines, merged over the registrations.
  auto overrides =
      store->Range({std::string(kMachineMetaPrefix), store::PrefixEnd(kMachineMetaPrefix)});
  if (!overrides.ok()) return overrides.status().Wrap("read machine metadata overrides");
  for (const auto& kv : overrides->kvs) {
    auto it = view.machines.find(std::string_view(kv.key).substr(kMachineMetaPrefix.size()));
    auto md = MetadataOverridesFromJson(kv.value);
    if (it == view.machines.end() || !md.ok()) {
      spdlog::error("skipping {}: {}", kv.key,
                    md.ok() ? "no such machine" : md.status().ToString());
      continue;
    }
    it->second.overrides = std::move(*md);
    it->second.overrides_revision = kv.mod_revision;
  }
  auto states = store->Range({std::string(kStatesPrefix), store::PrefixEnd(kStatesPrefix)});
  if (!states.ok()) return states.status().Wrap("read unit states");
  for (const auto& kv : states->kvs) {
    std::string machine, unit;
    if (!SplitMachineUnitKey(kv.key, kStatesPrefix, &machine, &unit)) continue;
    auto report = api::UnitStatusReportFromJson(kv.value);
    if (!report.ok()) continue;
    view.states[machine][unit] = StateEntry{std::move(*report), kv.value};
  }
  spdlog::info("loaded {} units, {} machines from the store at revision {}", view.units.size(),
               view.machines.size(), units->revision);
  return base::Status::Ok();
}

base::Status Server::Impl::AddRoutes(http::Router& router) {
  FJORD_RETURN_IF_ERROR(AddFleetRoutes(router));
  FJORD_RETURN_IF_ERROR(AddNativeRoutes(router));
  FJORD_RETURN_IF_ERROR(AddAgentRoutes(router));
  return base::Status::Ok();
}

base::Result<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  auto impl = std::make_unique<Impl>();
  Impl& s = *impl;
  s.options = options;
  s.clock = options.clock != nullptr ? options.clock : &base::Clock::Real();
  if (options.store) {
    s.store = options.store;
  } else {
    if (options.data_dir.empty()) {
      return base::InvalidArgument("server: no data directory given (set --data-dir)");
    }
    std::error_code ec;
    std::filesystem::create_directories(options.data_dir, ec);
    if (ec) {
      return base::InvalidArgument("create data directory " + options.data_dir.string() + ": " +
                                   ec.message());
    }
    auto st = store::OpenSqliteStore(options.data_dir / "state.db");
    if (!st.ok()) return st.status().Wrap("open the store");
    s.store = std::shared_ptr<store::Store>(std::move(*st));
    s.own_store = true;
  }
  FJORD_RETURN_IF_ERROR(s.LoadView().Wrap("load the state"));

  Reconciler::Options ro;
  ro.grace = options.heartbeat_grace;
  ro.rate = {options.reschedule_per_second, options.reschedule_burst};
  ro.rate_per_machine = options.reschedule_per_machine;
  ro.seed = options.scheduler_seed;
  s.reconciler = std::make_unique<Reconciler>(ro, s.store.get(), &s.view, s.clock);
  FJORD_RETURN_IF_ERROR(s.reconciler->Recover());
  s.polls = std::make_unique<LongPolls>(s.store.get(), s.clock);

  http::Router router;
  FJORD_RETURN_IF_ERROR(s.AddRoutes(router));
  http::HttpServer::Options ho;
  ho.address = options.address;
  ho.port = options.port;
  ho.worker_threads = options.http_worker_threads;
  s.http = std::make_unique<http::HttpServer>(ho, std::move(router));

  s.reconciler->Start();
  s.polls->Start();
  if (base::Status st = s.http->Start(); !st.ok()) {
    s.polls->Stop();
    s.reconciler->Stop();
    if (s.own_store) (void)s.store->Close();
    s.stopped = true;
    return st;
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

}  // namespace fjord::server
