#include "sim/durable.h"

#include <stdlib.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <system_error>

namespace fjord::sim {

namespace fs = std::filesystem;

namespace {
constexpr const char* kDbName = "state.db";
}  // namespace

std::string MachineKey(std::string_view machine_id) {
  return std::string(kMachinesPrefix) + std::string(machine_id);
}

std::string UnitKey(std::string_view unit) { return std::string(kUnitsPrefix) + std::string(unit); }

std::string ScheduleKey(std::string_view machine_id, std::string_view unit) {
  std::string k;
  k.reserve(kSchedulePrefix.size() + machine_id.size() + 1 + unit.size());
  k.append(kSchedulePrefix).append(machine_id).append("/").append(unit);
  return k;
}

std::string MachineValue(const scheduler::MachineSpec& m) {
  nlohmann::json md = nlohmann::json::object();
  for (const auto& [k, v] : m.metadata) md[k] = v;
  nlohmann::json j = {{"id", m.id},
                      {"metadata", std::move(md)},
                      {"capacity",
                       {{"cpu_millis", m.capacity.cpu_millis},
                        {"memory_bytes", m.capacity.memory_bytes},
                        {"disk_bytes", m.capacity.disk_bytes}}}};
  return j.dump();
}

std::string UnitValue(const scheduler::TaskRequest& r) {
  nlohmann::json j = {{"name", r.name},
                      {"group", r.group},
                      {"cpu_millis", r.resources.cpu_millis},
                      {"memory_bytes", r.resources.memory_bytes},
                      {"disk_bytes", r.resources.disk_bytes},
                      {"priority", r.priority}};
  if (r.global) j["global"] = true;
  if (!r.ports.empty()) j["ports"] = r.ports;
  if (!r.machine_of.empty()) j["machine_of"] = r.machine_of;
  if (!r.constraints.empty()) j["constraints"] = r.constraints.size();
  return j.dump();
}

base::Result<std::unique_ptr<DurableSchedule>> DurableSchedule::Open(
    const DurableOptions& options) {
  std::unique_ptr<DurableSchedule> d(new DurableSchedule());
  d->options_ = options;
  if (d->options_.batch == 0) d->options_.batch = 1;
  if (d->options_.max_in_flight == 0) d->options_.max_in_flight = 1;
  if (options.dir.empty()) {
    std::string tmpl = "/var/tmp/fjord-sim-store.XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) return base::ErrnoStatus("mkdtemp " + tmpl);
    d->dir_ = tmpl;
    d->created_dir_ = true;
  } else {
    std::error_code ec;
    fs::create_directories(options.dir, ec);
    if (ec) {
      return base::InvalidArgument("--store-dir " + options.dir.string() + ": " + ec.message());
    }
    if (fs::exists(options.dir / kDbName)) {
      return base::AlreadyExists("--store-dir " + options.dir.string() + " already holds " +
                                 kDbName + "; give an empty directory or remove it");
    }
    d->dir_ = options.dir;
  }
  store::Options so;
  so.sync = options.sync;
  auto opened = store::OpenSqliteStore(d->dir_ / kDbName, so);
  if (!opened.ok()) return opened.status().Wrap("open store in " + d->dir_.string());
  d->store_ = std::move(*opened);
  return d;
}

DurableSchedule::~DurableSchedule() {
  if (store_) {
    (void)Drain();
    (void)store_->Close();
    store_.reset();
  }
  if (options_.keep || dir_.empty()) return;
  std::error_code ec;
  if (created_dir_) {
    fs::remove_all(dir_, ec);
  } else {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      fs::remove(dir_ / (std::string(kDbName) + suffix), ec);
    }
  }
}

base::Status DurableSchedule::Add(std::string key, std::string value) {
  pending_.success.push_back(store::Op::Put(std::move(key), std::move(value)));
  if (pending_.success.size() >= options_.batch) Send();
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void DurableSchedule::Send() {
  if (pending_.success.empty()) return;
  size_t n = pending_.success.size();
  size_t index;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return in_flight_ < options_.max_in_flight; });
    ++in_flight_;
    index = txn_rev_.size();
    txn_rev_.push_back(0);
  }
  txn_first_.push_back(added_);
  added_ += n;
  ++sent_txns_;
  store::TxnRequest req = std::move(pending_);
  pending_ = {};
  pending_.success.reserve(options_.batch);
  store_->TxnAsync(std::move(req), [this, n, index](base::Result<store::TxnResponse> r) {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
    if (r.ok()) {
      durable_ += n;
      txn_rev_[index] = r->revision;
    } else if (error_.ok()) {
      error_ = r.status().Wrap("store transaction");
    }
    cv_.notify_all();
  });
}

base::Status DurableSchedule::Drain() {
  Send();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return in_flight_ == 0; });
  return error_;
}

store::Revision DurableSchedule::RevisionOfPut(size_t n) const {
  auto it = std::upper_bound(txn_first_.begin(), txn_first_.end(), n);
  if (it == txn_first_.begin()) return 0;
  std::lock_guard<std::mutex> lock(mu_);
  return txn_rev_[static_cast<size_t>(it - txn_first_.begin()) - 1];
}

size_t DurableSchedule::durable_puts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return durable_;
}

base::Result<std::vector<std::string>> DurableSchedule::Keys(std::string_view prefix) {
  std::vector<std::string> keys;
  store::RangeRequest req;
  req.key = std::string(prefix);
  req.range_end = store::PrefixEnd(prefix);
  req.limit = 100'000;
  req.keys_only = true;
  while (true) {
    FJORD_ASSIGN_OR_RETURN(store::RangeResponse resp, store_->Range(req));
    // Later pages read at the first page's revision, so the listing is one consistent snapshot.
    req.revision = resp.revision;
    for (store::KeyValue& kv : resp.kvs) keys.push_back(std::move(kv.key));
    if (!resp.more || resp.kvs.empty()) break;
    req.key = keys.back() + std::string(1, '\0');
  }
  return keys;
}

base::Result<int64_t> DurableSchedule::Count(std::string_view prefix) {
  store::RangeRequest req;
  req.key = std::string(prefix);
  req.range_end = store::PrefixEnd(prefix);
  req.limit = 1;
  req.keys_only = true;
  FJORD_ASSIGN_OR_RETURN(store::RangeResponse resp, store_->Range(req));
  return resp.count;
}

base::Result<uint64_t> DurableSchedule::CloseAndMeasure() {
  FJORD_RETURN_IF_ERROR(Drain());
  FJORD_RETURN_IF_ERROR(store_->Close());
  store_.reset();
  uint64_t bytes = 0;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ec;
    uint64_t s = fs::file_size(dir_ / (std::string(kDbName) + suffix), ec);
    if (!ec) bytes += s;
  }
  return bytes;
}

}  // namespace fjord::sim
