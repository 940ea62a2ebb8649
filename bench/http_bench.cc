// bench_http [threads] [seconds]: requests/s for a trivial JSON GET served by HttpServer,
// driven by `threads` HttpClient threads (keep-alive, one connection each) on loopback.
// A plain binary rather than Google Benchmark: the figure is throughput across threads.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "http/client.h"
#include "http/server.h"

int main(int argc, char** argv) {
  using namespace fjord::http;
  int threads = argc > 1 ? std::atoi(argv[1]) : 8;
  double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  if (threads < 1 || seconds <= 0) {
    std::fprintf(stderr, "usage: bench_http [threads>=1] [seconds>0]\n");
    return 2;
  }
  Router router;
  auto st = router.AddSync("GET", "/v1/ping",
                           [](const Request&) { return Response::Json(200, R"({"ok":true})"); });
  HttpServer server(HttpServer::Options{}, std::move(router));
  if (st.ok()) st = server.Start();
  if (!st.ok()) {
    std::fprintf(stderr, "bench_http: %s\n", st.ToString().c_str());
    return 1;
  }
  std::atomic<bool> stop{false};
  std::atomic<long> done{0}, failed{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      auto c = HttpClient::Create(server.url());
      if (!c.ok()) return;
      while (!stop) {
        auto r = (*c)->Get("/v1/ping");
        if (r.ok() && r->status == 200) {
          ++done;
        } else {
          ++failed;
        }
      }
    });
  }
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& w : workers) w.join();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "bench_http: %d keep-alive client threads, %.1f s: %.0f requests/s (%ld ok, %ld failed)\n",
      threads, elapsed, static_cast<double>(done) / elapsed, done.load(), failed.load());
  return failed == 0 ? 0 : 1;
}
