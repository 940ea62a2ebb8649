// The Supervisor as the agent's UnitHost: converts between the supervisor's types and the
// wire types the agent reports.
#include "agent/agent.h"
#include "agent/supervisor.h"

namespace fjord::agent {
namespace {

api::UnitStatusReport ToReport(const UnitStatus& s) {
  api::UnitStatusReport r;
  r.state.name = s.name;
  r.state.hash = s.hash;
  r.state.systemd_load_state = s.load_state;
  r.state.systemd_active_state = s.active_state;
  r.state.systemd_sub_state = s.sub_state;
  r.result = s.result;
  r.reason = s.reason;
  r.main_pid = s.main_pid;
  r.exit_status = s.exit_status;
  r.restarts = s.restarts;
  r.since_unix_ms = s.since_unix_ms;
  r.container_id = s.container_id;
  return r;
}

class SupervisorHost final : public UnitHost {
 public:
  explicit SupervisorHost(std::unique_ptr<Supervisor> supervisor)
      : supervisor_(std::move(supervisor)) {}

  void Apply(const std::vector<api::ScheduledUnit>& units) override {
    std::vector<UnitAssignment> assignments;
    for (const auto& u : units) {
      assignments.push_back({u.name, u.hash, u.desired_state, u.options});
    }
    supervisor_->Apply(std::move(assignments));
  }
  std::vector<api::UnitStatusReport> List() const override {
    std::vector<api::UnitStatusReport> out;
    for (const UnitStatus& s : supervisor_->List()) out.push_back(ToReport(s));
    return out;
  }
  base::Result<api::UnitStatusReport> Get(std::string_view name) const override {
    FJORD_ASSIGN_OR_RETURN(UnitStatus s, supervisor_->Get(name));
    return ToReport(s);
  }
  std::string StatusText(std::string_view name) const override {
    return supervisor_->StatusText(name);
  }
  base::Status Journal(std::string_view name, size_t lines, bool follow,
                       const std::function<bool(std::string_view)>& sink) const override {
    return supervisor_->Journal(name, lines, follow, sink);
  }
  void Detach() override { supervisor_->Detach(); }
  void StopAll() override { supervisor_->StopAll(); }

 private:
  std::unique_ptr<Supervisor> supervisor_;
};

}  // namespace

UnitHostFactory SupervisorHostFactory() {
  return [](const UnitHostContext& context) -> base::Result<std::unique_ptr<UnitHost>> {
    Supervisor::Options options;
    options.state_dir = context.state_dir;
    options.cgroup_parent =
        context.cgroup_parent.empty() ? "fjord-" + context.machine_id : context.cgroup_parent;
    options.machine_id = context.machine_id;
    options.hostname = context.hostname;
    std::function<void()> on_change = context.on_change;
    options.on_change = [on_change](const UnitStatus&) {
      if (on_change) on_change();
    };
    auto supervisor = Supervisor::Open(std::move(options));
    if (!supervisor.ok()) return supervisor.status().Wrap("open the unit supervisor");
    return std::unique_ptr<UnitHost>(new SupervisorHost(std::move(*supervisor)));
  };
}

}  // namespace fjord::agent
