// fjord-sim's synthetic cluster and workload: machines with zones, racks and mixed sizes, and
// groups of template instances with a realistic mix of requests and constraints. Deterministic
// for a seed. Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "scheduler/scheduler.h"

namespace fjord::sim {

struct SimGroup {
  scheduler::TaskRequest tmpl;  // name "svcN@.service"; machine_of may hold "%i"
  uint32_t instances = 0;
  std::string profile;  // "plain", "group_by_zone", ...
};

struct Workload {
  std::vector<scheduler::MachineSpec> machines;
  size_t zones = 0, racks = 0;
  std::vector<scheduler::TaskRequest> globals;
  std::vector<SimGroup> groups;
};

Workload MakeWorkload(size_t machines, size_t tasks, uint64_t seed);

// "svc12@3.service" -> group index 12 and instance 3; false for other names.
bool ParseInstance(const std::string& name, size_t* group, uint32_t* index);
// The instance's name and MachineOf= from its group template.
std::string InstanceNameOf(const SimGroup& g, uint32_t index);
std::string MachineOfFor(const SimGroup& g, uint32_t index);

}  // namespace fjord::sim
