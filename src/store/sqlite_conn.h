// SqliteConn: one SQLite connection with a cache of prepared statements, and Stmt, a scoped use of
// one cached statement. Private to the store module.
//
// Thread-safety: a connection is used by one thread at a time (opened with SQLITE_OPEN_NOMUTEX);
// the owner serialises access (the writer thread owns one, readers lease them from a pool).
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/status.h"

namespace fjord::store::internal {

class SqliteConn;

// A prepared statement in use: bind, step, read columns; reset and unbound when it goes away.
class Stmt {
 public:
  Stmt(SqliteConn* conn, sqlite3_stmt* stmt) : conn_(conn), stmt_(stmt) {}
  Stmt(Stmt&& o) noexcept : conn_(o.conn_), stmt_(std::exchange(o.stmt_, nullptr)) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  void BindInt(int index, int64_t v) { sqlite3_bind_int64(stmt_, index, v); }
  // Binds bytes without copying; `v` must outlive the statement's use.
  void BindBlob(int index, std::string_view v) {
    sqlite3_bind_blob64(stmt_, index, v.empty() ? "" : v.data(), v.size(), SQLITE_STATIC);
  }
  void BindText(int index, std::string_view v) {
    sqlite3_bind_text64(stmt_, index, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8);
  }

  // True while there is a row; false when done; errors name the connection's file.
  base::Result<bool> Step();
  // Runs a statement that returns no rows.
  base::Status Run();

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string Blob(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(static_cast<const char*>(p), n) : std::string();
  }
  std::string Text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
  }

 private:
  SqliteConn* conn_;
  sqlite3_stmt* stmt_;
};

class SqliteConn {
 public:
  // Opens `path` (created if missing when `create`). `display` names the store in errors.
  static base::Result<std::unique_ptr<SqliteConn>> Open(const std::string& path, bool create);
  ~SqliteConn();

  // Runs one or more statements that return no rows.
  base::Status Exec(std::string_view sql);
  // A cached prepared statement for `sql`.
  base::Result<Stmt> Prepare(const std::string& sql);

  // A Status for SQLite result code `rc`: "<what>: store <path>: <sqlite message> (<code>)" with
  // the fix for the common cases (corrupt file, disk full, locked).
  base::Status Error(std::string_view what, int rc) const;

  const std::string& path() const { return path_; }
  sqlite3* db() { return db_; }

 private:
  SqliteConn(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

  std::string path_;
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

}  // namespace fjord::store::internal
