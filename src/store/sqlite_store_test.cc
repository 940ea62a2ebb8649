// SQLite backend specifics: persistence across reopen, bad files, locking, schema versions.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>
#include <vector>

#include "store/store.h"
#include "store/store_test_util.h"

namespace fjord::store {
namespace {

using testing::TempDir;

void RunSql(const std::filesystem::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(h);
}

int64_t CountRows(const std::filesystem::path& db, const std::string& table) {
  sqlite3* h = nullptr;
  EXPECT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  std::string sql = "SELECT COUNT(*) FROM " + table;
  EXPECT_EQ(sqlite3_prepare_v2(h, sql.c_str(), -1, &s, nullptr), SQLITE_OK);
  int64_t n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
  sqlite3_finalize(s);
  sqlite3_close(h);
  return n;
}

TEST(SqliteStoreTest, ReopenKeepsDataRevisionAndHistory) {
  TempDir dir;
  auto path = dir.path() / "state.db";
  {
    auto s = OpenSqliteStore(path);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE((*s)->Put("a", "1").ok());
    ASSERT_TRUE((*s)->Put("a", "2").ok());
    ASSERT_TRUE((*s)->Put(std::string("bin\0\xff", 5), std::string("\0v", 2)).ok());
    ASSERT_TRUE((*s)->Compact(2).ok());
  }
  auto s = OpenSqliteStore(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->CurrentRevision(), 3);
  EXPECT_EQ((*s)->CompactedRevision(), 2);
  auto a = (*s)->Get("a", 2);
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->value, "2");
  auto bin = (*s)->Get(std::string("bin\0\xff", 5));
  ASSERT_TRUE(bin.ok() && bin->has_value());
  EXPECT_EQ((*bin)->value, std::string("\0v", 2));
  auto w = (*s)->Watch(WatchRequest{"a", "", 2});
  ASSERT_TRUE(w.ok());
  auto events = (*w)->Next(std::chrono::steady_clock::now() + std::chrono::seconds(5));
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].kv.value, "2");
  EXPECT_EQ((*s)->Put("a", "3").value_or(-1), 4);
}

TEST(SqliteStoreTest, CorruptFileNamesThePath) {
  TempDir dir;
  auto path = dir.path() / "garbage.db";
  std::ofstream(path) << std::string(8192, 'x');
  auto s = OpenSqliteStore(path);
  ASSERT_FALSE(s.ok());
  std::string msg = s.status().ToString();
  EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a database"), std::string::npos) << msg;
}

// Damage inside a valid file (not just its header) must surface as an error naming the file,
// at open or at the first read that touches it, never as a crash or silently wrong data.
TEST(SqliteStoreTest, DamagedPagesNameThePath) {
  TempDir dir;
  auto path = dir.path() / "state.db";
  {
    auto s = OpenSqliteStore(path);
    ASSERT_TRUE(s.ok());
    TxnRequest txn;
    for (int i = 0; i < 2000; ++i) txn.success.push_back(Op::Put("k" + std::to_string(i), "v"));
    ASSERT_TRUE((*s)->Txn(txn).ok());
  }  // closing checkpoints the WAL into the file
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 * 2);
    std::string junk(4096 * 4, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto s = OpenSqliteStore(path);
  base::Status st = s.status();
  if (s.ok()) {
    const std::string zero(1, '\0');
    st = (*s)->Range(RangeRequest{zero, zero, 0, 0, false}).status();
  }
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.ToString().find(path.string()), std::string::npos) << st.ToString();
  EXPECT_NE(st.ToString().find("damaged"), std::string::npos) << st.ToString();
}

TEST(SqliteStoreTest, NewerSchemaVersionIsRefused) {
  TempDir dir;
  auto path = dir.path() / "state.db";
  ASSERT_TRUE(OpenSqliteStore(path).ok());
  RunSql(path, "UPDATE meta SET value = 7 WHERE name = 'schema_version'");
  auto s = OpenSqliteStore(path);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), base::Code::kFailedPrecondition);
  EXPECT_NE(s.status().ToString().find("schema version 7, newer"), std::string::npos)
      << s.status().ToString();
}

TEST(SqliteStoreTest, ForeignDatabaseIsRefused) {
  TempDir dir;
  auto path = dir.path() / "other.db";
  RunSql(path, "CREATE TABLE t (x)");
  auto s = OpenSqliteStore(path);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().ToString().find("not a fjord store"), std::string::npos)
      << s.status().ToString();
}

TEST(SqliteStoreTest, SecondOpenerIsRefused) {
  TempDir dir;
  auto path = dir.path() / "state.db";
  auto first = OpenSqliteStore(path);
  ASSERT_TRUE(first.ok());
  auto second = OpenSqliteStore(path);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().ToString().find("in use by another process"), std::string::npos);
  ASSERT_TRUE((*first)->Close().ok());
  EXPECT_TRUE(OpenSqliteStore(path).ok());
}

TEST(SqliteStoreTest, MissingDirectoryNamesThePath) {
  TempDir dir;
  auto path = dir.path() / "no" / "such" / "state.db";
  auto s = OpenSqliteStore(path);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().ToString().find(path.string()), std::string::npos);
}

TEST(SqliteStoreTest, AutoCompactionBoundsTheLogTable) {
  TempDir dir;
  auto path = dir.path() / "state.db";
  Options opts;
  opts.retain_revisions = 100;
  {
    auto s = OpenSqliteStore(path, opts);
    ASSERT_TRUE(s.ok());
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE((*s)->Put("k" + std::to_string(i % 10), "v").ok());
  }
  // At most the retained window plus one compaction step, plus one surviving record per key.
  EXPECT_LE(CountRows(path, "log"), 100 + 10 + 10);
  EXPECT_EQ(CountRows(path, "kv"), 10);
}

TEST(SqliteStoreTest, ConcurrentAcksSurviveReopen) {
  TempDir dir;
  auto path = dir.path() / "state.db";
  std::vector<std::vector<std::pair<std::string, Revision>>> acked(8);
  {
    auto s = OpenSqliteStore(path);
    ASSERT_TRUE(s.ok());
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 100; ++i) {
          std::string key = "t" + std::to_string(t) + "/" + std::to_string(i);
          auto r = (*s)->Put(key, key);
          ASSERT_TRUE(r.ok());
          acked[t].emplace_back(key, *r);
        }
      });
    }
    for (auto& th : threads) th.join();
  }
  auto s = OpenSqliteStore(path);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->CurrentRevision(), 800);
  for (const auto& list : acked) {
    for (const auto& [key, rev] : list) {
      auto kv = (*s)->Get(key);
      ASSERT_TRUE(kv.ok() && kv->has_value()) << key;
      EXPECT_EQ((*kv)->mod_revision, rev);
      EXPECT_EQ((*kv)->value, key);
    }
  }
}

// Under steady concurrent writes the WAL must still be rewound (bounded), not grow with history.
TEST(SqliteStoreTest, WalStaysBoundedUnderSteadyWrites) {
  TempDir dir;
  auto path = dir.path() / "state.db";
  auto s = OpenSqliteStore(path);
  ASSERT_TRUE(s.ok());
  std::vector<std::thread> threads;
  uintmax_t max_wal = 0;
  std::atomic<bool> done{false};
  std::thread sampler([&] {
    while (!done.load()) {
      std::error_code ec;
      uintmax_t n = std::filesystem::file_size(path.string() + "-wal", ec);
      if (!ec) max_wal = std::max(max_wal, n);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1250; ++i) {
        ASSERT_TRUE(
            (*s)->Put("t" + std::to_string(t) + "/" + std::to_string(i), std::string(2048, 'v'))
                .ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  done = true;
  sampler.join();
  // 10,000 puts of 2 KiB write ~50 MiB of pages; the WAL is rewound every ~16 MiB.
  EXPECT_LT(max_wal, 32u << 20) << "WAL grew to " << (max_wal >> 20) << " MiB";
}

TEST(SqliteStoreTest, FullSyncWorks) {
  TempDir dir;
  Options opts;
  opts.sync = Options::Sync::kFull;
  auto s = OpenSqliteStore(dir.path() / "state.db", opts);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->Put("k", "v").value_or(-1), 1);
}

}  // namespace
}  // namespace fjord::store
