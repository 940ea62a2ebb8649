// Random operation sequences run against the memory and SQLite backends must give identical
// answers: every txn response, every range (at random revisions, limits), errors, compaction and
// the watch streams. Catches divergence the hand-written conformance cases miss.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "store/store.h"
#include "store/store_test_util.h"

namespace fjord::store {
namespace {

class Generator {
 public:
  explicit Generator(unsigned seed) : rng_(seed) {}

  int Int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  std::string Key() {
    static const char* kPrefixes[] = {"a/", "b/", "", "a/x/"};
    return kPrefixes[Int(0, 3)] + std::string(1, static_cast<char>('k' + Int(0, 5)));
  }
  std::string Value() { return std::string(Int(0, 8), static_cast<char>('a' + Int(0, 3))); }
  std::string End(const std::string& key) {
    switch (Int(0, 3)) {
      case 0:
        return "";
      case 1:
        return PrefixEnd(key.substr(0, Int(1, static_cast<int>(key.size()))));
      case 2:
        return std::string(1, '\0');
      default:
        return key + "\x01";
    }
  }
  Op RandomOp() {
    std::string key = Key();
    if (Int(0, 3) == 0) return Op::Delete(key, End(key));
    return Op::Put(key, Value());
  }
  Compare RandomCompare(Revision current) {
    Compare c;
    c.key = Key();
    c.target = static_cast<Compare::Target>(Int(0, 3));
    c.result = static_cast<Compare::Result>(Int(0, 3));
    c.number = Int(0, static_cast<int>(current) + 1);
    c.value = Value();
    return c;
  }

 private:
  std::mt19937 rng_;
};

void ExpectSame(const base::Status& a, const base::Status& b, const std::string& what) {
  EXPECT_EQ(a.code(), b.code()) << what << ": memory `" << a.ToString() << "` vs sqlite `"
                                << b.ToString() << "`";
}

class StoreDifferentialTest : public ::testing::TestWithParam<unsigned> {};

TEST_P(StoreDifferentialTest, BackendsAgree) {
  Options opts;
  opts.retain_revisions = 0;  // compaction only where the test asks for it
  opts.watch_ring_events = 16;
  testing::MemoryBackend mem_backend;
  testing::SqliteBackend sql_backend;
  auto mem = mem_backend.Open(opts);
  auto sql = sql_backend.Open(opts);
  ASSERT_TRUE(mem && sql);
  Generator gen(GetParam());
  const std::string zero(1, '\0');
  auto mem_watch = mem->Watch(WatchRequest{"a/", PrefixEnd("a/"), 0});
  auto sql_watch = sql->Watch(WatchRequest{"a/", PrefixEnd("a/"), 0});
  ASSERT_TRUE(mem_watch.ok() && sql_watch.ok());

  for (int step = 0; step < 400; ++step) {
    std::string what = "seed " + std::to_string(GetParam()) + " step " + std::to_string(step);
    int kind = gen.Int(0, 29);
    if (kind <= 17) {  // a transaction
      TxnRequest txn;
      for (int i = gen.Int(0, 2); i > 0; --i) {
        txn.compare.push_back(gen.RandomCompare(mem->CurrentRevision()));
      }
      for (int i = gen.Int(0, 3); i > 0; --i) txn.success.push_back(gen.RandomOp());
      for (int i = gen.Int(0, 2); i > 0; --i) txn.failure.push_back(gen.RandomOp());
      auto a = mem->Txn(txn);
      auto b = sql->Txn(txn);
      ExpectSame(a.status(), b.status(), what + " txn");
      if (a.ok() && b.ok()) {
        EXPECT_EQ(a->succeeded, b->succeeded) << what;
        EXPECT_EQ(a->revision, b->revision) << what;
        EXPECT_EQ(a->deleted, b->deleted) << what;
      }
    } else if (kind <= 28) {  // a range, maybe at an older revision
      std::string key = gen.Int(0, 4) == 0 ? zero : gen.Key();
      RangeRequest req{key, gen.End(key), gen.Int(0, 3), 0, gen.Int(0, 3) == 0};
      // Mostly readable revisions, sometimes compacted ones.
      int oldest = gen.Int(0, 4) == 0 ? 0 : static_cast<int>(mem->CompactedRevision());
      if (gen.Int(0, 1) == 0)
        req.revision = gen.Int(oldest, static_cast<int>(mem->CurrentRevision()));
      auto a = mem->Range(req);
      auto b = sql->Range(req);
      ExpectSame(a.status(), b.status(), what + " range");
      if (a.ok() && b.ok()) {
        EXPECT_EQ(a->kvs, b->kvs) << what;
        EXPECT_EQ(a->more, b->more) << what;
        EXPECT_EQ(a->count, b->count) << what;
        EXPECT_EQ(a->revision, b->revision) << what;
      }
    } else if (mem->CurrentRevision() > mem->CompactedRevision() + 20) {  // compaction
      Revision to = gen.Int(static_cast<int>(mem->CompactedRevision()) + 1,
                            static_cast<int>(mem->CurrentRevision()) - 10);
      ExpectSame(mem->Compact(to), sql->Compact(to), what + " compact");
    }
    ASSERT_EQ(mem->CurrentRevision(), sql->CurrentRevision()) << what;
    ASSERT_EQ(mem->CompactedRevision(), sql->CompactedRevision()) << what;
    if (HasFailure()) return;
  }
  auto drain = [](Watcher& w) {
    std::vector<Event> all;
    while (true) {
      auto r = w.Next(std::chrono::steady_clock::now());
      if (!r.ok() || r->empty()) return all;
      all.insert(all.end(), r->begin(), r->end());
    }
  };
  std::vector<Event> a = drain(**mem_watch), b = drain(**sql_watch);
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, b);
}

INSTANTIATE_TEST_SUITE_P(Seeds, StoreDifferentialTest, ::testing::Values(1u, 2u, 3u, 4u, 5u, 6u));

}  // namespace
}  // namespace fjord::store
