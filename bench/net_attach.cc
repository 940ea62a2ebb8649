// Times BridgeNetwork::Attach and Detach on a sandboxed bridge and namespace, with and without
// a published port. Usage: bench_net_attach [iterations=50]. Needs root; prints a skip otherwise.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "net/bridge.h"
#include "net/net_testing.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void Report(const char* what, std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  std::printf("%-28s n=%zu median=%.2f ms p90=%.2f ms max=%.2f ms\n", what, ms.size(),
              ms[ms.size() / 2], ms[ms.size() * 9 / 10], ms.back());
}

int Run(int iterations) {
  fjord::net::testing::Sandbox sandbox;
  auto t0 = Clock::now();
  auto net = fjord::net::BridgeNetwork::Open(sandbox.Config());
  if (!net.ok()) {
    std::fprintf(stderr, "open: %s\n", net.status().ToString().c_str());
    return 1;
  }
  std::printf("%-28s %.2f ms\n", "Open (new bridge)", Ms(Clock::now() - t0));
  {
    // What each `fjord run` process pays before its first Attach.
    std::vector<double> reopen;
    for (int i = 0; i < std::min(iterations, 20); ++i) {
      auto a = Clock::now();
      auto again = fjord::net::BridgeNetwork::Open(sandbox.Config());
      reopen.push_back(Ms(Clock::now() - a));
      if (!again.ok()) {
        std::fprintf(stderr, "reopen: %s\n", again.status().ToString().c_str());
        return 1;
      }
    }
    Report("Open (existing bridge)", reopen);
  }
  auto pid = sandbox.AddNetns("bench");
  if (!pid.ok()) {
    std::fprintf(stderr, "netns: %s\n", pid.status().ToString().c_str());
    return 1;
  }
  uint16_t port = fjord::net::testing::FreeLoopbackPort();
  for (bool publish : {false, true}) {
    std::vector<double> attach, detach;
    std::vector<fjord::net::PortMapping> ports;
    if (publish) ports.push_back({port, 80, "tcp"});
    for (int i = 0; i < iterations; ++i) {
      auto a = Clock::now();
      auto att = (*net)->Attach("bench", *pid, ports);
      auto b = Clock::now();
      if (!att.ok()) {
        std::fprintf(stderr, "attach: %s\n", att.status().ToString().c_str());
        return 1;
      }
      auto st = (*net)->Detach("bench");
      auto c = Clock::now();
      if (!st.ok()) {
        std::fprintf(stderr, "detach: %s\n", st.ToString().c_str());
        return 1;
      }
      attach.push_back(Ms(b - a));
      detach.push_back(Ms(c - b));
    }
    Report(publish ? "Attach (1 published port)" : "Attach (no ports)", attach);
    Report(publish ? "Detach (1 published port)" : "Detach (no ports)", detach);
  }
  {
    // The usual order in a runtime: the container exits (its namespace and veth die with it),
    // then it is detached.
    std::vector<double> attach, detach;
    for (int i = 0; i < iterations; ++i) {
      auto child = sandbox.SpawnInNewNetns();
      if (!child.ok()) {
        std::fprintf(stderr, "spawn: %s\n", child.status().ToString().c_str());
        return 1;
      }
      auto a = Clock::now();
      auto att = (*net)->Attach("exited", *child, {});
      attach.push_back(Ms(Clock::now() - a));
      if (!att.ok()) {
        std::fprintf(stderr, "attach: %s\n", att.status().ToString().c_str());
        return 1;
      }
      sandbox.Kill(*child);
      auto b = Clock::now();
      auto st = (*net)->Detach("exited");
      detach.push_back(Ms(Clock::now() - b));
      if (!st.ok()) {
        std::fprintf(stderr, "detach: %s\n", st.ToString().c_str());
        return 1;
      }
    }
    Report("Attach (fresh netns)", attach);
    Report("Detach (after exit)", detach);
  }
  auto st = (*net)->RemoveBridgeIfUnused();
  if (!st.ok()) std::fprintf(stderr, "remove bridge: %s\n", st.ToString().c_str());
  return st.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::printf("bench_net_attach: skipped (needs root)\n");
    return 0;
  }
  return Run(argc > 1 ? std::max(1, std::atoi(argv[1])) : 50);
}
