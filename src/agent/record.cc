// record.json: what a unit is and what of it runs, so a later agent can re-adopt it.
#include <fstream>
#include <nlohmann/json.hpp>

#include "agent/internal.h"

namespace fjord::agent {

using json = nlohmann::json;

namespace {

Phase PhaseFromName(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(Phase::kCondition); ++i) {
    if (SubStateName(static_cast<Phase>(i)) == name) return static_cast<Phase>(i);
  }
  return Phase::kDead;
}

}  // namespace

void Service::SaveRecord() const {
  if (load_state_ == "error") return;  // an invalid name has no directory
  json j;
  j["name"] = a_.name;
  j["hash"] = a_.hash;
  j["desired"] = std::string(api::ToString(a_.desired));
  json opts = json::array();
  for (const auto& o : a_.options) opts.push_back({o.section, o.name, o.value});
  j["options"] = opts;
  j["phase"] = std::string(SubStateName(phase_));
  j["result"] = result_;
  j["restarts"] = restarts_;
  j["since_ms"] = since_ms_;
  j["launched_hash"] = launched_hash;
  if (main_ && !main_->done) {
    j["main_shim"] = main_->shim_pid;
    j["main_shim_start"] = main_->shim_start;
    j["main_status"] = main_->status_file.string();
    j["main_cmd"] = main_->cmd.path;
  }
  json cg = json::object();
  for (const auto& [c, d] : cgroup_) cg[c] = d.string();
  j["cgroup"] = cg;
  j["container_id"] = container_id_;
  fs::path dir = UnitDir(env_.opts->state_dir, a_.name);
  std::error_code ec;
  fs::create_directories(dir, ec);
  fs::path tmp = dir / "record.json.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump();
  }
  fs::rename(tmp, dir / "record.json", ec);
}

base::Result<Record> ReadRecord(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return base::ErrnoStatus("read " + file.string());
  try {
    json j = json::parse(in);
    Record r;
    r.a.name = j.at("name").get<std::string>();
    r.a.hash = j.at("hash").get<std::string>();
    auto desired = api::ParseUnitStateName(j.at("desired").get<std::string>());
    if (!desired.ok()) return desired.status();
    r.a.desired = *desired;
    for (const auto& o : j.at("options")) {
      r.a.options.push_back(
          {o.at(0).get<std::string>(), o.at(1).get<std::string>(), o.at(2).get<std::string>()});
    }
    r.phase = j.value("phase", "dead");
    r.result = j.value("result", "success");
    r.restarts = j.value("restarts", 0u);
    r.since_ms = j.value("since_ms", int64_t{0});
    r.launched_hash = j.value("launched_hash", "");
    r.main_shim = j.value("main_shim", 0);
    r.main_shim_start = j.value("main_shim_start", uint64_t{0});
    r.main_status_file = j.value("main_status", "");
    r.main_cmd = j.value("main_cmd", "");
    if (auto it = j.find("cgroup"); it != j.end() && it->is_object()) {
      for (auto c = it->begin(); c != it->end(); ++c) r.cgroup[c.key()] = c->get<std::string>();
    }
    r.container_id = j.value("container_id", "");
    return r;
  } catch (const json::exception& e) {
    return base::InvalidArgument("parse " + file.string() + ": " + e.what());
  }
}

void Service::Adopt(const Record& r) {
  phase_ = PhaseFromName(r.phase);
  result_ = r.result;
  restarts_ = r.restarts;
  since_ms_ = r.since_ms;
  launched_hash = r.launched_hash;
  cgroup_ = r.cgroup;
  container_id_ = r.container_id;
  if (!unit_) {
    phase_ = Phase::kDead;
    return;
  }
  if (unit_->IsContainer()) {
    if (phase_ == Phase::kDead || phase_ == Phase::kFailed) {
      container_id_.clear();
    } else if (phase_ == Phase::kAutoRestart) {
      deadline_ = Clock::now();
    } else {
      AdoptContainer();
    }
    return;
  }
  switch (phase_) {
    case Phase::kRunning:
    case Phase::kExited:
    case Phase::kStartPost: {
      if (r.main_shim == 0) {  // oneshot with RemainAfterExit=, or nothing ran
        if (phase_ == Phase::kStartPost) phase_ = Phase::kExited;
        return;
      }
      main_ = AdoptShim(r.main_shim, r.main_shim_start, r.main_status_file);
      if (!main_) {
        // Died while nobody watched: its status file says how (or it was SIGKILLed).
        main_ = std::make_unique<Proc>();
        main_->status_file = r.main_status_file;
        PollProc(*main_, true);
      }
      main_->key = "ExecStart";
      main_->cmd.path = r.main_cmd;
      phase_ = Phase::kRunning;
      changed = true;
      if (main_->done) OnMainExit();
      return;
    }
    case Phase::kDead:
    case Phase::kFailed:
      return;
    case Phase::kAutoRestart:
      deadline_ = Clock::now();
      return;
    default:
      // Caught half-way through a start or stop: finish the stop with a clean slate, then
      // Restart= (or the next Apply) decides.
      if (!cgroup_.empty()) (void)env_.cgroups->KillAll(cgroup_);
      EnterSignal(Phase::kFinalSigterm, false);
      return;
  }
}

void Service::RemoveFiles() {
  if (!cgroup_.empty()) {
    (void)env_.cgroups->Remove(cgroup_);
    cgroup_.clear();
  }
  if (load_state_ == "error") return;
  std::error_code ec;
  fs::remove_all(UnitDir(env_.opts->state_dir, a_.name), ec);
}

}  // namespace fjord::agent
