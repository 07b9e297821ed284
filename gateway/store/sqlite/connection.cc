#include "gateway/store/sqlite/connection.h"

#include <sqlite3.h>

namespace gw::store::sqlite {

namespace {

Error sqlite_error(sqlite3* db, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : "out of memory";
  return make_error(Errc::store_failure, std::move(msg));
}

}  // namespace

Statement& Statement::operator=(Statement&& o) noexcept {
  if (this != &o) {
    release();
    stmt_ = o.stmt_;
    owned_ = o.owned_;
    o.stmt_ = nullptr;
  }
  return *this;
}

Statement::~Statement() { release(); }

void Statement::release() noexcept {
  if (!stmt_) return;
  if (owned_) {
    sqlite3_finalize(stmt_);
  } else {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  stmt_ = nullptr;
}

Statement& Statement::bind(int i, std::string_view v) {
  // SQLITE_TRANSIENT: callers bind temporaries; the copy is cheap next to I/O.
  sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind_blob(int i, std::string_view v) {
  if (v.empty()) sqlite3_bind_zeroblob(stmt_, i, 0);
  else sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind(int i, int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}

Statement& Statement::bind_null(int i) {
  sqlite3_bind_null(stmt_, i);
  return *this;
}

Result<bool> Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Errc code = Errc::store_failure;
  // A constraint failure is the data's fault, not the disk's; the writer turns
  // the ones it expects into conflicts before they can happen.
  if ((rc & 0xff) == SQLITE_CONSTRAINT) code = Errc::conflict;
  if ((rc & 0xff) == SQLITE_BUSY) code = Errc::unavailable;
  // A query stopped by its time budget (a progress handler): try later, or less.
  if ((rc & 0xff) == SQLITE_INTERRUPT) code = Errc::unavailable;
  return make_error(code, std::string("sqlite step: ") + sqlite3_errmsg(sqlite3_db_handle(stmt_)));
}

Result<void> Statement::run() {
  auto r = step();
  if (!r) return r.error();
  return {};
}

std::string Statement::text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::string Statement::blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  if (!p) return {};
  return std::string(static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

int64_t Statement::int64(int col) const { return sqlite3_column_int64(stmt_, col); }

bool Statement::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

Result<std::unique_ptr<Connection>> Connection::open(const std::string& path, Mode mode, int busy_timeout_ms) {
  // SQLite counts every allocation it makes under one process-wide mutex
  // unless told not to (SQLITE_CONFIG_MEMSTATUS); nothing here reads the
  // counts. Only possible before SQLite initialises: a later call is refused
  // (SQLITE_MISUSE) and changes nothing.
  static const int memstatus_off = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)memstatus_off;
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_NOMUTEX;  // each connection is confined to one thread
  flags |= mode == Mode::read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Error e = sqlite_error(db, "cannot open " + path);
    sqlite3_close_v2(db);
    return e;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  return std::unique_ptr<Connection>(new Connection(db));
}

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  for (auto& [sql, stmt] : text_cache_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Result<void> Connection::exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = "sqlite exec: ";
    msg += err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return make_error(Errc::store_failure, std::move(msg));
  }
  return {};
}

Result<Statement> Connection::cached(const char* sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
      return sqlite_error(db_, "sqlite prepare");
    }
    it = cache_.emplace(sql, s).first;
  }
  return Statement(it->second, false);
}

Result<Statement> Connection::cached_text(const std::string& sql) {
  auto it = text_cache_.find(sql);
  if (it == text_cache_.end()) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &s, nullptr) !=
        SQLITE_OK) {
      return sqlite_error(db_, "sqlite prepare");
    }
    if (text_order_.size() >= kMaxShapes) {
      auto old = text_cache_.find(text_order_.front());
      sqlite3_finalize(old->second);
      text_cache_.erase(old);
      text_order_.pop_front();
    }
    it = text_cache_.emplace(sql, s).first;
    text_order_.push_back(sql);
  }
  return Statement(it->second, false);
}

Result<Statement> Connection::prepare(const std::string& sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &s, nullptr) != SQLITE_OK) {
    return sqlite_error(db_, "sqlite prepare");
  }
  return Statement(s, true);
}

int64_t Connection::changes() const { return sqlite3_changes64(db_); }

std::string Connection::last_error() const { return sqlite3_errmsg(db_); }

}  // namespace gw::store::sqlite
