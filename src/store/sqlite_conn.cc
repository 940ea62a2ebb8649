#include "store/sqlite_conn.h"

namespace fjord::store::internal {

Stmt::~Stmt() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

base::Result<bool> Stmt::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return conn_->Error(std::string("run `") + sqlite3_sql(stmt_) + "`", rc);
}

base::Status Stmt::Run() {
  FJORD_ASSIGN_OR_RETURN(bool row, Step());
  (void)row;
  return base::Status::Ok();
}

base::Result<std::unique_ptr<SqliteConn>> SqliteConn::Open(const std::string& path, bool create) {
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  std::unique_ptr<SqliteConn> conn(new SqliteConn(path, db));
  if (rc != SQLITE_OK) return conn->Error("open", rc);
  sqlite3_extended_result_codes(db, 1);
  return conn;
}

SqliteConn::~SqliteConn() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

base::Status SqliteConn::Exec(std::string_view sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return Error("run `" + std::string(sql) + "`", rc);
  return base::Status::Ok();
}

base::Result<Stmt> SqliteConn::Prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return Error("prepare `" + sql + "`", rc);
    it = cache_.emplace(sql, stmt).first;
  }
  return Stmt(this, it->second);
}

base::Status SqliteConn::Error(std::string_view what, int rc) const {
  std::string msg = std::string(what) + ": store " + path_ + ": " +
                    (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc)) + " (" + sqlite3_errstr(rc) +
                    ")";
  base::Code code = base::Code::kIo;
  switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      msg += "; the file is damaged or is not a fjord store: move it aside and restore a backup";
      break;
    case SQLITE_FULL:
      code = base::Code::kResourceExhausted;
      msg += "; free disk space on the store's filesystem";
      break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      code = base::Code::kUnavailable;
      msg += "; another process is using the store";
      break;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      msg += "; check that the directory exists and is writable";
      break;
    default:
      break;
  }
  return base::Status(code, std::move(msg));
}

}  // namespace fjord::store::internal
