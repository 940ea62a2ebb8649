// An independent re-verification of a schedule, for fjord-sim and the property tests.
//
// It shares only the request/machine types with the scheduler: every rule is re-derived from the
// documented semantics with plain maps, fnmatch(3) and std::regex, so a bug in the scheduler's
// indexes or caches shows up here as a violation. Slow and simple on purpose. Not thread-safe.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "scheduler/scheduler.h"

namespace fjord::sim {

struct CheckedTask {
  const scheduler::TaskRequest* request = nullptr;  // everything but the fields below
  std::string name;        // the instance's name (request->name may be a template's)
  std::string machine_of;  // the instance's MachineOf= (may differ per instance)
  std::string machine;     // machine id it was placed on
};

struct CheckInput {
  std::vector<scheduler::MachineSpec> machines;
  std::set<std::string> lost;                          // machine ids
  std::vector<CheckedTask> placed;                     // every instance, global ones included
  std::vector<const scheduler::TaskRequest*> globals;  // must be on every eligible machine
  bool check_balance = true;  // GROUP_BY evenness (false after arbitrary releases)
};

struct CheckReport {
  size_t violations = 0;
  std::vector<std::string> examples;  // the first few, for the log
  size_t over_capacity_machines = 0;
  double cpu_used = 0;  // fraction of alive capacity
  double mem_used = 0;
  double disk_used = 0;
};

CheckReport CheckSchedule(const CheckInput& input);

}  // namespace fjord::sim
