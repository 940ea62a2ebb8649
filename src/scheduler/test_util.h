// Builders shared by the scheduler's tests (scheduler_test.cc, update_test.cc).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "scheduler/scheduler.h"

namespace fjord::scheduler::test {

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kGiB = int64_t{1} << 30;

// A machine with metadata `md`, `cpu` millicores, `mem` bytes and 100 GiB of disk.
inline MachineSpec M(std::string id, std::vector<std::pair<std::string, std::string>> md,
                     int64_t cpu = 4000, int64_t mem = 8 * kGiB) {
  return MachineSpec{std::move(id), std::move(md), {cpu, mem, 100 * kGiB}};
}

// A task asking for `cpu` millicores and `mem` bytes, no disk.
inline TaskRequest T(std::string name, int64_t cpu = 100, int64_t mem = 64 * kMiB) {
  TaskRequest t;
  t.name = std::move(name);
  t.resources = {cpu, mem, 0};
  return t;
}

}  // namespace fjord::scheduler::test
