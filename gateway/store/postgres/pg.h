#pragma once
// A small libpq seam for the PostgreSQL store: one connection, statements
// prepared once per SQL text, parameters bound as text (or bytes), errors
// turned into the project's Result with the SQLSTATE kept for the caller
// that needs to tell a unique violation from a broken connection.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/result.h"

struct pg_conn;
struct pg_result;

namespace gw::store::pg {

// Statement parameters in $1, $2... order. Text unless added as bytes.
class Params {
 public:
  Params& add(std::string_view v);
  Params& add(const std::string& v) { return add(std::string_view(v)); }
  Params& add(const char* v) { return add(std::string_view(v)); }
  Params& add(int64_t v);
  Params& add_bytes(std::string_view v);
  Params& add_null();
  Params& add(const std::optional<std::string>& v) { return v ? add(std::string_view(*v)) : add_null(); }
  size_t size() const { return values_.size(); }

 private:
  friend class Conn;
  std::vector<std::string> values_;
  std::vector<bool> null_, binary_;
};

// One result set. Column values come back as text; bytes() decodes bytea.
class Rows {
 public:
  Rows() = default;
  explicit Rows(pg_result* r);
  Rows(Rows&& o) noexcept;
  Rows& operator=(Rows&& o) noexcept;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  ~Rows();
  int size() const;
  bool empty() const { return size() == 0; }
  std::string text(int row, int col) const;
  int64_t int64(int row, int col) const;
  bool is_null(int row, int col) const;
  bool boolean(int row, int col) const;  // 't' / 'f'
  std::string bytes(int row, int col) const;
  int64_t affected() const;  // rows an INSERT/UPDATE/DELETE changed

 private:
  pg_result* r_ = nullptr;
};

// SQLSTATEs the store acts on.
inline constexpr std::string_view kUniqueViolation = "23505";

class Conn {
 public:
  // Connects; the error never repeats the conninfo (it may hold a password).
  static Result<std::unique_ptr<Conn>> open(const std::string& conninfo);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // A statement with parameters, prepared on first use of its text.
  Result<Rows> exec(const std::string& sql, const Params& p = {});
  // One or more statements without parameters (schema, BEGIN/COMMIT...).
  Result<void> run(const std::string& sql);
  // The SQLSTATE of the last failed statement ("" when it did not come from the server).
  const std::string& last_state() const { return last_state_; }
  // False once the server went away; reset() reconnects (prepared statements are lost with it).
  bool ok() const;
  bool reset();
  int backend_pid() const;
  int socket() const;
  pg_conn* raw() { return c_; }

 private:
  explicit Conn(pg_conn* c) : c_(c) {}
  Error fail(pg_result* r, const std::string& what);
  pg_conn* c_ = nullptr;
  std::map<std::string, std::string> prepared_;  // SQL text -> statement name
  std::string last_state_;
};

// The conninfo without its password, for logs and messages.
std::string redact_conninfo(const std::string& conninfo);
// Whether the conninfo itself carries a password (better in a passfile or PGPASSWORD).
bool conninfo_has_password(const std::string& conninfo);
// A PostgreSQL text[] literal of these values ({"a","b"}), for binding as one parameter.
std::string text_array(const std::vector<std::string>& values);

}  // namespace gw::store::pg
