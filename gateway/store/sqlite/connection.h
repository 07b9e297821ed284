#pragma once
// Thin RAII over the sqlite3 C API: one Connection owns a sqlite3* and its
// cached prepared statements; a Statement resets itself when it goes out of
// scope so a cached statement never keeps a read transaction open.
// Not thread-safe: a Connection belongs to one thread at a time.
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/common/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace gw::store::sqlite {

class Statement {
 public:
  Statement() = default;
  // owned=false: a cached statement, reset (not finalised) on destruction.
  Statement(sqlite3_stmt* s, bool owned) : stmt_(s), owned_(owned) {}
  Statement(Statement&& o) noexcept : stmt_(o.stmt_), owned_(o.owned_) { o.stmt_ = nullptr; }
  Statement& operator=(Statement&& o) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in sqlite3_bind_*.
  Statement& bind(int i, std::string_view v);
  Statement& bind(int i, int64_t v);
  Statement& bind_blob(int i, std::string_view v);  // an empty value is a zero-length blob, never NULL
  Statement& bind_null(int i);

  // true: a row is available; false: done. Errors carry sqlite's message.
  Result<bool> step();
  // Runs a statement that returns no rows of interest.
  Result<void> run();

  std::string text(int col) const;
  std::string blob(int col) const;
  int64_t int64(int col) const;
  bool is_null(int col) const;

 private:
  void release() noexcept;
  sqlite3_stmt* stmt_ = nullptr;
  bool owned_ = true;
};

class Connection {
 public:
  enum class Mode { read_write_create, read_only };

  // Opens the file; the error message names the path and sqlite's reason.
  static Result<std::unique_ptr<Connection>> open(const std::string& path, Mode mode, int busy_timeout_ms);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Executes one or more statements without parameters (schema, PRAGMA, BEGIN).
  Result<void> exec(const std::string& sql);
  // A statement kept prepared for the life of the connection (fixed SQL only).
  Result<Statement> cached(const char* sql);
  // A one-off statement (SQL whose shape varies, e.g. search).
  Result<Statement> prepare(const std::string& sql);
  // A statement kept prepared by its text, for SQL built at run time whose
  // shapes recur (searches): preparing costs more than most searches run.
  // Bounded: past kMaxShapes distinct texts the oldest is finalised.
  Result<Statement> cached_text(const std::string& sql);

  int64_t changes() const;
  std::string last_error() const;
  sqlite3* raw() { return db_; }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
  std::map<const char*, sqlite3_stmt*> cache_;  // keyed by the literal's address
  static constexpr size_t kMaxShapes = 256;
  std::map<std::string, sqlite3_stmt*> text_cache_;
  std::deque<std::string> text_order_;  // insertion order, for eviction
};

}  // namespace gw::store::sqlite
