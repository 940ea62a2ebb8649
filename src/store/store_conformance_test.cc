// The Store contract, run against every backend (typed tests): revisions, versions, ranges,
// transactions, watches, compaction, concurrency. A new backend (etcd) joins by adding its type.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "store/store.h"
#include "store/store_test_util.h"

namespace fjord::store {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

base::Clock::TimePoint In(milliseconds d) { return steady_clock::now() + d; }

template <typename Backend>
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = Reopen(Options{}); }
  std::unique_ptr<Store> Reopen(const Options& options) { return backend_.Open(options); }

  KeyValue MustGet(std::string_view key, Revision rev = 0) {
    auto r = store_->Get(key, rev);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r.ok() && r->has_value()) << "missing key " << key;
    return r.ok() && r->has_value() ? **r : KeyValue{};
  }
  Revision MustPut(std::string key, std::string value) {
    auto r = store_->Put(std::move(key), std::move(value));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : -1;
  }
  std::vector<std::string> Keys(const RangeRequest& req) {
    auto r = store_->Range(req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::vector<std::string> keys;
    if (r.ok()) {
      for (const auto& kv : r->kvs) keys.push_back(kv.key);
    }
    return keys;
  }
  // Collects events until `n` have arrived or a generous deadline passes.
  std::vector<Event> Collect(Watcher& w, size_t n) {
    std::vector<Event> all;
    auto deadline = In(milliseconds(5000));
    while (all.size() < n && steady_clock::now() < deadline) {
      auto r = w.Next(deadline);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) break;
      all.insert(all.end(), r->begin(), r->end());
    }
    return all;
  }

  Backend backend_;
  std::unique_ptr<Store> store_;
};

using Backends = ::testing::Types<testing::MemoryBackend, testing::SqliteBackend>;
class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return T::kName;
  }
};
TYPED_TEST_SUITE(StoreTest, Backends, BackendNames);

TYPED_TEST(StoreTest, PutAssignsRevisionsAndVersions) {
  Store& s = *this->store_;
  EXPECT_EQ(s.CurrentRevision(), 0);
  EXPECT_EQ(this->MustPut("a", "1"), 1);
  EXPECT_EQ(this->MustPut("a", "2"), 2);
  EXPECT_EQ(this->MustPut("b", "x"), 3);
  EXPECT_EQ(this->MustGet("a"), (KeyValue{"a", "2", 1, 2, 2}));
  EXPECT_EQ(this->MustGet("b"), (KeyValue{"b", "x", 3, 3, 1}));
  EXPECT_EQ(s.CurrentRevision(), 3);
  auto missing = s.Get("c");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TYPED_TEST(StoreTest, DeleteResetsCreateRevisionAndVersion) {
  Store& s = *this->store_;
  this->MustPut("a", "1");
  this->MustPut("a", "2");
  auto deleted = s.Delete("a");
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 1);
  EXPECT_EQ(s.CurrentRevision(), 3);
  EXPECT_EQ(this->MustPut("a", "3"), 4);
  EXPECT_EQ(this->MustGet("a"), (KeyValue{"a", "3", 4, 4, 1}));
}

TYPED_TEST(StoreTest, DeletingNothingDoesNotAdvanceRevision) {
  Store& s = *this->store_;
  this->MustPut("a", "1");
  auto deleted = s.Delete("zzz");
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 0);
  EXPECT_EQ(s.CurrentRevision(), 1);
}

TYPED_TEST(StoreTest, PrefixRangeWithLimitReportsMoreAndCount) {
  for (std::string k : {"/a/3", "/a/1", "/b/1", "/a/2", "/a/4", "/a", "/a0"}) this->MustPut(k, k);
  RangeRequest req{"/a/", PrefixEnd("/a/"), 2, 0, false};
  auto r = this->store_->Range(req);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 2u);
  EXPECT_EQ(r->kvs[0].key, "/a/1");
  EXPECT_EQ(r->kvs[1].key, "/a/2");
  EXPECT_EQ(r->kvs[0].value, "/a/1");
  EXPECT_TRUE(r->more);
  EXPECT_EQ(r->count, 4);
  EXPECT_EQ(r->revision, 7);
  req.limit = 4;
  r = this->store_->Range(req);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->more);
  EXPECT_EQ(r->count, 4);
}

TYPED_TEST(StoreTest, RangeEndSemantics) {
  for (std::string k : {"a", "b", "b\xff", "c", "\xff\xff"}) this->MustPut(k, "v");
  const std::string zero(1, '\0');
  struct Case {
    std::string key, end;
    std::vector<std::string> want;
  };
  std::vector<Case> cases = {
      {"b", "", {"b"}},
      {"a", "c", {"a", "b", "b\xff"}},
      {"b", zero, {"b", "b\xff", "c", "\xff\xff"}},
      {zero, zero, {"a", "b", "b\xff", "c", "\xff\xff"}},
      {"b", PrefixEnd("b"), {"b", "b\xff"}},
      {"\xff", PrefixEnd("\xff"), {"\xff\xff"}},
      {"nope", "", {}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(this->Keys(RangeRequest{c.key, c.end, 0, 0, false}), c.want) << "key=" << c.key;
  }
  EXPECT_EQ(PrefixEnd("a\xff"), "b");
  EXPECT_EQ(PrefixEnd("\xff"), zero);
  auto bad = this->store_->Range(RangeRequest{"c", "a", 0, 0, false});
  EXPECT_EQ(bad.status().code(), base::Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("range_end"), std::string_view::npos);
}

TYPED_TEST(StoreTest, EmptyAndOversizedKeysAreRejected) {
  Store& s = *this->store_;
  EXPECT_EQ(s.Put("", "v").status().code(), base::Code::kInvalidArgument);
  EXPECT_EQ(s.Range(RangeRequest{}).status().code(), base::Code::kInvalidArgument);
  EXPECT_EQ(s.Watch(WatchRequest{}).status().code(), base::Code::kInvalidArgument);
  EXPECT_EQ(s.Put(std::string(kMaxKeyBytes + 1, 'k'), "v").status().code(),
            base::Code::kInvalidArgument);
  auto big = s.Put("k", std::string(kMaxValueBytes + 1, 'v'));
  EXPECT_NE(big.status().message().find("the limit is"), std::string_view::npos);
  TxnRequest txn;
  txn.compare.push_back(Compare::Exists(""));
  EXPECT_EQ(s.Txn(txn).status().code(), base::Code::kInvalidArgument);
  EXPECT_EQ(s.CurrentRevision(), 0);
}

TYPED_TEST(StoreTest, KeysOnlyLeavesValuesEmpty) {
  this->MustPut("k", "value");
  RangeRequest req{"k"};
  req.keys_only = true;
  auto r = this->store_->Range(req);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0], (KeyValue{"k", "", 1, 1, 1}));
}

TYPED_TEST(StoreTest, ReadsAtAnOlderRevision) {
  Store& s = *this->store_;
  this->MustPut("a", "1");          // 1
  this->MustPut("a", "2");          // 2
  ASSERT_TRUE(s.Delete("a").ok());  // 3
  this->MustPut("b", "x");          // 4
  EXPECT_EQ(this->MustGet("a", 1), (KeyValue{"a", "1", 1, 1, 1}));
  EXPECT_EQ(this->MustGet("a", 2), (KeyValue{"a", "2", 1, 2, 2}));
  auto gone = s.Get("a", 3);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  const std::string zero(1, '\0');
  RangeRequest all{zero, zero, 0, 0, false};
  all.revision = 2;
  EXPECT_EQ(this->Keys(all), std::vector<std::string>{"a"});
  all.revision = 4;
  EXPECT_EQ(this->Keys(all), std::vector<std::string>{"b"});
  all.revision = 5;
  EXPECT_EQ(s.Range(all).status().code(), base::Code::kInvalidArgument);
}

TYPED_TEST(StoreTest, TxnCompareThenElse) {
  Store& s = *this->store_;
  auto create = [&](std::string v) {
    TxnRequest t;
    t.compare.push_back(Compare::Missing("lock"));
    t.success.push_back(Op::Put("lock", v));
    t.failure.push_back(Op::Put("lost/" + v, "1"));
    return s.Txn(std::move(t));
  };
  auto first = create("me");
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->succeeded);
  EXPECT_EQ(first->revision, 1);
  auto second = create("you");
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->succeeded);
  EXPECT_EQ(second->revision, 2);
  EXPECT_EQ(this->MustGet("lock").value, "me");
  EXPECT_EQ(this->MustGet("lost/you").value, "1");

  struct Case {
    Compare c;
    bool want;
  };
  std::vector<Case> cases = {
      {Compare::ModRevisionIs("lock", 1), true},
      {Compare::ModRevisionIs("lock", 2), false},
      {Compare::ValueIs("lock", "me"), true},
      {Compare::ValueIs("lock", "you"), false},
      {Compare::Exists("lock"), true},
      {Compare::Missing("nothing"), true},
      {Compare{"lock", Compare::Target::kVersion, Compare::Result::kLess, 2, {}}, true},
      {Compare{"lock", Compare::Target::kCreateRevision, Compare::Result::kGreater, 1, {}}, false},
      {Compare{"lock", Compare::Target::kValue, Compare::Result::kGreater, 0, "ma"}, true},
      {Compare{"lock", Compare::Target::kModRevision, Compare::Result::kNotEqual, 1, {}}, false},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    TxnRequest t;
    t.compare.push_back(cases[i].c);
    auto r = s.Txn(t);  // read-only: no revision change
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->succeeded, cases[i].want) << "case " << i;
    EXPECT_EQ(r->revision, 2);
  }
  EXPECT_EQ(s.CurrentRevision(), 2);
}

TYPED_TEST(StoreTest, TxnWritesShareOneRevision) {
  TxnRequest t;
  t.success = {Op::Put("x/1", "a"), Op::Put("x/2", "b"), Op::Put("y", "c")};
  auto r = this->store_->Txn(t);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revision, 1);
  TxnRequest d;
  d.success = {Op::Delete("x/", PrefixEnd("x/")), Op::Put("y", "d")};
  r = this->store_->Txn(d);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revision, 2);
  EXPECT_EQ(r->deleted, 2);
  EXPECT_EQ(this->MustGet("y"), (KeyValue{"y", "d", 1, 2, 2}));
  EXPECT_TRUE(this->Keys(RangeRequest{"x/", PrefixEnd("x/"), 0, 0, false}).empty());
}

TYPED_TEST(StoreTest, TxnRejectsConflictingOps) {
  TxnRequest twice;
  twice.success = {Op::Put("k", "1"), Op::Put("k", "2")};
  auto r = this->store_->Txn(twice);
  EXPECT_EQ(r.status().code(), base::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("put twice"), std::string_view::npos);
  TxnRequest both;
  both.failure = {Op::Delete("a", "z"), Op::Put("k", "2")};
  EXPECT_EQ(this->store_->Txn(both).status().code(), base::Code::kInvalidArgument);
  EXPECT_EQ(this->store_->CurrentRevision(), 0);
}

TYPED_TEST(StoreTest, WatchSeesOnlyItsPrefixInOrder) {
  Store& s = *this->store_;
  auto w = s.Watch(WatchRequest{"/m/1/", PrefixEnd("/m/1/"), 0});
  ASSERT_TRUE(w.ok());
  auto single = s.Watch(WatchRequest{"/m/2/x", ""});
  ASSERT_TRUE(single.ok());
  this->MustPut("/m/2/x", "other");        // 1
  this->MustPut("/m/1", "not in prefix");  // 2
  // Nothing for /m/1/ yet: the watcher must not wake.
  auto none = (*w)->Next(In(milliseconds(30)));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  this->MustPut("/m/1/a", "A");          // 3
  ASSERT_TRUE(s.Delete("/m/1/a").ok());  // 4
  TxnRequest t;
  t.success = {Op::Put("/m/1/c", "C"), Op::Put("/m/1/b", "B"), Op::Put("/m/3/z", "Z")};
  ASSERT_TRUE(s.Txn(t).ok());  // 5
  auto events = this->Collect(**w, 4);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0], (Event{Event::Type::kPut, KeyValue{"/m/1/a", "A", 3, 3, 1}}));
  EXPECT_EQ(events[1], (Event{Event::Type::kDelete, KeyValue{"/m/1/a", "", 0, 4, 0}}));
  EXPECT_EQ(events[2].kv.key, "/m/1/c");
  EXPECT_EQ(events[3].kv.key, "/m/1/b");
  EXPECT_EQ(events[3].kv.mod_revision, 5);
  auto other = this->Collect(**single, 1);
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0].kv.value, "other");
}

TYPED_TEST(StoreTest, WatchFromOldRevisionCatchesUpFromTheLog) {
  Options small;
  small.watch_ring_events = 4;  // force catch-up reads from the log
  this->store_ = this->Reopen(small);
  Store& s = *this->store_;
  for (int i = 1; i <= 50; ++i) this->MustPut("k/" + std::to_string(i % 7), std::to_string(i));
  auto w = s.Watch(WatchRequest{"k/", PrefixEnd("k/"), 10});
  ASSERT_TRUE(w.ok());
  auto live = std::thread([&] {
    for (int i = 51; i <= 60; ++i) this->MustPut("k/x", std::to_string(i));
  });
  auto events = this->Collect(**w, 51);
  live.join();
  ASSERT_EQ(events.size(), 51u);
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].kv.mod_revision, static_cast<Revision>(10 + i));
    EXPECT_EQ(events[i].kv.value, std::to_string(10 + i));
  }
}

TYPED_TEST(StoreTest, SlowWatcherCatchesUpAfterOverflow) {
  Store& s = *this->store_;
  auto w = s.Watch(WatchRequest{"p/", PrefixEnd("p/"), 0});
  ASSERT_TRUE(w.ok());
  TxnRequest big;
  for (int i = 0; i < 17000; ++i) big.success.push_back(Op::Put("p/" + std::to_string(i), "v"));
  ASSERT_TRUE(s.Txn(big).ok());
  for (int i = 0; i < 5; ++i) this->MustPut("p/tail", std::to_string(i));
  auto events = this->Collect(**w, 17005);
  ASSERT_EQ(events.size(), 17005u);
  EXPECT_EQ(events[16999].kv.mod_revision, 1);
  EXPECT_EQ(events[17004].kv.mod_revision, 6);
  EXPECT_EQ(events[17004].kv.value, "4");
}

TYPED_TEST(StoreTest, WatchNotifyRunsOnNewEvents) {
  auto w = this->store_->Watch(WatchRequest{"n", ""});
  ASSERT_TRUE(w.ok());
  std::atomic<int> calls{0};
  (*w)->SetNotify([&] { ++calls; });
  this->MustPut("other", "x");
  EXPECT_EQ(calls.load(), 0);
  this->MustPut("n", "x");
  auto deadline = In(milliseconds(5000));
  while (calls.load() == 0 && steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_GE(calls.load(), 1);
  auto r = (*w)->Next(steady_clock::now());  // a past deadline polls
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 1u);
}

TYPED_TEST(StoreTest, CompactionKeepsEveryReadAtOrAfterIt) {
  Store& s = *this->store_;
  for (int i = 1; i <= 40; ++i) {
    std::string key = "k" + std::to_string(i % 5);
    if (i % 6 == 0) {
      ASSERT_TRUE(s.Delete(key).ok());
    } else {
      this->MustPut(key, std::to_string(i));
    }
  }
  const std::string zero(1, '\0');
  Revision cur = s.CurrentRevision();
  std::map<Revision, std::vector<KeyValue>> before;
  for (Revision r = 1; r <= cur; ++r) {
    RangeRequest all{zero, zero, 0, r, false};
    before[r] = s.Range(all)->kvs;
  }
  ASSERT_TRUE(s.Compact(20).ok());
  EXPECT_EQ(s.CompactedRevision(), 20);
  ASSERT_TRUE(s.Compact(25).ok());
  for (Revision r = 1; r <= cur; ++r) {
    RangeRequest all{zero, zero, 0, r, false};
    auto got = s.Range(all);
    if (r < 25) {
      EXPECT_TRUE(IsCompacted(got.status())) << r << ": " << got.status().ToString();
    } else {
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      EXPECT_EQ(got->kvs, before[r]) << "revision " << r;
    }
  }
  EXPECT_TRUE(IsCompacted(s.Watch(WatchRequest{"k1", "", 24}).status()));
  auto w = s.Watch(WatchRequest{zero, zero, 25});
  ASSERT_TRUE(w.ok());
  auto events = this->Collect(**w, cur - 25 + 1);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().kv.mod_revision, 25);
  EXPECT_EQ(events.back().kv.mod_revision, cur);
  EXPECT_TRUE(IsCompacted(s.Compact(10)));
}

TYPED_TEST(StoreTest, AutoCompactionBoundsHistory) {
  Options opts;
  opts.retain_revisions = 20;
  this->store_ = this->Reopen(opts);
  for (int i = 0; i < 100; ++i) this->MustPut("k", std::to_string(i));
  // Compaction may run after the last ack, but it had run for every earlier revision by then.
  Revision c = this->store_->CompactedRevision();
  EXPECT_GE(c, 99 - 20 - 2);
  EXPECT_LE(c, 80);
  EXPECT_EQ(this->MustGet("k", 80).value, "79");  // the retained window stays readable
  EXPECT_TRUE(IsCompacted(this->store_->Get("k", 10).status()));
}

TYPED_TEST(StoreTest, ConcurrentWritersLoseNoUpdates) {
  Store& s = *this->store_;
  constexpr int kThreads = 8, kIncrements = 60;
  this->MustPut("counter", "0");
  std::vector<std::thread> threads;
  std::vector<std::vector<Revision>> revs(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIncrements; ++i) {
        while (true) {  // compare-and-swap increment
          auto cur = s.Get("counter");
          ASSERT_TRUE(cur.ok() && cur->has_value());
          TxnRequest txn;
          txn.compare.push_back(Compare::ModRevisionIs("counter", (*cur)->mod_revision));
          txn.success.push_back(Op::Put("counter", std::to_string(std::stoi((*cur)->value) + 1)));
          auto r = s.Txn(txn);
          ASSERT_TRUE(r.ok());
          if (r->succeeded) break;
        }
        auto r = s.Put("t" + std::to_string(t) + "/" + std::to_string(i), "v");
        ASSERT_TRUE(r.ok());
        revs[t].push_back(*r);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(this->MustGet("counter").value, std::to_string(kThreads * kIncrements));
  std::set<Revision> unique;
  for (const auto& v : revs) {
    for (size_t i = 1; i < v.size(); ++i) EXPECT_LT(v[i - 1], v[i]);
    unique.insert(v.begin(), v.end());
  }
  EXPECT_EQ(unique.size(), static_cast<size_t>(kThreads * kIncrements));
  // Every revision is one successful write: 1 + increments + puts.
  EXPECT_EQ(s.CurrentRevision(), 1 + 2 * kThreads * kIncrements);
}

// Watchers created from random past revisions while writers run must each see a gap-free,
// duplicate-free stream, whether served from the ring, the log or both.
TYPED_TEST(StoreTest, WatchersJoiningDuringWritesSeeGapFreeStreams) {
  Options small;
  small.watch_ring_events = 64;
  this->store_ = this->Reopen(small);
  Store& s = *this->store_;
  constexpr int kWrites = 600;
  std::thread writer([&] {
    for (int i = 0; i < kWrites; ++i) ASSERT_TRUE(s.Put("w/" + std::to_string(i % 13), "v").ok());
  });
  const std::string zero(1, '\0');
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&, r] {
      for (int round = 0; round < 5; ++round) {
        Revision from = std::max<Revision>(1, s.CurrentRevision() - 100 + 17 * r);
        auto w = s.Watch(WatchRequest{zero, zero, from});
        ASSERT_TRUE(w.ok()) << w.status().ToString();
        Revision expect = from;
        auto deadline = In(milliseconds(5000));
        while (expect < from + 50 && steady_clock::now() < deadline) {
          auto events = (*w)->Next(deadline);
          ASSERT_TRUE(events.ok());
          for (const Event& ev : *events) ASSERT_EQ(ev.kv.mod_revision, expect++);
        }
        EXPECT_GE(expect, from + 50);
      }
    });
  }
  writer.join();
  for (auto& t : readers) t.join();
}

TYPED_TEST(StoreTest, CloseEndsWatchesAndRejectsCalls) {
  Store& s = *this->store_;
  this->MustPut("a", "1");
  auto w = s.Watch(WatchRequest{"a", ""});
  ASSERT_TRUE(w.ok());
  std::thread waiter([&] {
    auto r = (*w)->Next(In(milliseconds(10000)));
    EXPECT_EQ(r.status().code(), base::Code::kUnavailable);
  });
  ASSERT_TRUE(s.Close().ok());
  waiter.join();
  EXPECT_EQ(s.Put("a", "2").status().code(), base::Code::kUnavailable);
  EXPECT_EQ(s.Range(RangeRequest{"a", ""}).status().code(), base::Code::kUnavailable);
  EXPECT_TRUE(s.Close().ok());
}

}  // namespace
}  // namespace fjord::store
