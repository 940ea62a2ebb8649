// record.json: what a unit is and what of it runs, so a later agent can re-adopt it.
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "agent/internal.h"

namespace fjord::agent {

using json = nlohmann::json;

namespace {

Phase PhaseFromName(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(Phase::kReload); ++i) {
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
  if (!notify_.address.empty()) j["notify"] = notify_.address;
  if (!status_text_.empty()) j["status_text"] = status_text_;
  if (main_pid_override_ > 0) j["main_pid_override"] = main_pid_override_;
  if (int64_t d = StartDeadlineUnixMs(); d > 0) j["start_deadline_ms"] = d;
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
    r.notify_address = j.value("notify", "");
    r.status_text = j.value("status_text", "");
    r.main_pid_override = j.value("main_pid_override", 0);
    r.start_deadline_ms = j.value("start_deadline_ms", int64_t{0});
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
  status_text_ = r.status_text;
  bool notify_start =
      phase_ == Phase::kStart && unit_->Type() == unit::ServiceType::kNotify && r.main_shim != 0;
  if (notify_start) {
    AdoptNotifyStart(r);
    return;
  }
  switch (phase_) {
    default:
      // Caught half-way through a start or stop: finish the stop with a clean slate, then
      // Restart= (or the next Apply) decides.
      if (!cgroup_.empty()) (void)env_.cgroups->KillAll(cgroup_);
      EnterSignal(Phase::kFinalSigterm, false);
      return;
    case Phase::kRunning:
    case Phase::kExited:
    case Phase::kReload:
    case Phase::kStartPost: {
      if (r.main_shim == 0) {  // oneshot with RemainAfterExit=, or nothing ran
        if (phase_ == Phase::kStartPost) phase_ = Phase::kExited;
        return;
      }
      AdoptMainShim(r);
      phase_ = Phase::kRunning;
      changed = true;
      AdoptNotify(r);
      if (r.main_pid_override > 0 && ::kill(r.main_pid_override, 0) == 0) {
        main_pid_override_ = r.main_pid_override;
      }
      if (main_->done) {
        OnMainExit();
      } else {
        ArmWatchdog();  // the watchdog starts over: WatchdogSec= from the re-adoption
      }
      return;
    }
    case Phase::kDead:
    case Phase::kFailed:
      return;
    case Phase::kAutoRestart:
      deadline_ = Clock::now();
      return;
  }
}

// The main process's shim from the record; one that died while nobody watched left its status
// file to say how (or it was SIGKILLed).
void Service::AdoptMainShim(const Record& r) {
  main_ = AdoptShim(r.main_shim, r.main_shim_start, r.main_status_file);
  if (!main_) {
    main_ = std::make_unique<Proc>();
    main_->status_file = r.main_status_file;
    PollProc(*main_, true);
  }
  main_->key = "ExecStart";
  main_->cmd.path = r.main_cmd;
}

// Type=notify caught waiting for READY=1: keep waiting (with what is left of TimeoutStartSec=)
// on the same socket, whose queue holds what the service sent while no agent listened.
void Service::AdoptNotifyStart(const Record& r) {
  AdoptMainShim(r);
  changed = true;
  if (r.start_deadline_ms > 0) {
    int64_t left = r.start_deadline_ms - std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count();
    deadline_ = Clock::now() + std::chrono::milliseconds(std::max<int64_t>(0, left));
  } else {
    auto t = unit_->TimeoutStartSec();
    deadline_ = t == unit::kInfiniteTime ? Clock::time_point::max() : Clock::now() + t;
  }
  AdoptNotify(r);
  if (main_->done) {
    OnMainExit();
  } else if (notify_.fd) {
    OnNotify();
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
