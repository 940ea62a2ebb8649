// store_durability_writer DB ROUND THREADS full|normal
// Writes until killed: each thread puts keys r<ROUND>/t<T>/<I> alone or three at a time in one
// txn, and after each acknowledgement prints "<key> <revision>\n" with one write(2), so a line
// on stdout means the store acknowledged that write as durable.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "durability_shared.h"
#include "store/store.h"

namespace {

void Emit(const std::string& key, fjord::store::Revision rev) {
  std::string line = key + " " + std::to_string(rev) + "\n";
  if (write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    std::_Exit(3);
  }
}

void Writer(fjord::store::Store& store, const std::string& prefix) {
  using fjord::store::durability::ValueFor;
  for (long i = 0;; i += 3) {
    std::vector<std::string> keys;
    for (long j = i; j < i + ((i / 3) % 2 == 0 ? 1 : 3); ++j) {
      keys.push_back(prefix + std::to_string(j));
    }
    fjord::store::TxnRequest txn;
    for (const auto& k : keys) txn.success.push_back(fjord::store::Op::Put(k, ValueFor(k)));
    auto r = store.Txn(std::move(txn));
    if (!r.ok()) {
      std::fprintf(stderr, "txn failed: %s\n", r.status().ToString().c_str());
      std::_Exit(2);
    }
    for (const auto& k : keys) Emit(k, r->revision);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s DB ROUND THREADS full|normal\n", argv[0]);
    return 64;
  }
  fjord::store::Options opts;
  opts.sync = std::string(argv[4]) == "full" ? fjord::store::Options::Sync::kFull
                                             : fjord::store::Options::Sync::kNormal;
  auto store = fjord::store::OpenSqliteStore(argv[1], opts);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < std::atoi(argv[3]); ++t) {
    std::string prefix = "r" + std::string(argv[2]) + "/t" + std::to_string(t) + "/";
    threads.emplace_back([&store, prefix] { Writer(**store, prefix); });
  }
  for (auto& t : threads) t.join();  // never: the test kills us
  return 0;
}
