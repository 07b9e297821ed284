#include "gateway/store/postgres/pg.h"

#include <libpq-fe.h>

#include <charconv>
#include <cstdlib>

namespace gw::store::pg {

namespace {
constexpr const char* kSessionSetup =
    "SET client_encoding = 'UTF8'; SET TIME ZONE 'UTC'; SET client_min_messages = warning";
}  // namespace

Params& Params::add(std::string_view v) {
  values_.emplace_back(v);
  null_.push_back(false);
  binary_.push_back(false);
  return *this;
}

Params& Params::add(int64_t v) { return add(std::string_view(std::to_string(v))); }

Params& Params::add_bytes(std::string_view v) {
  values_.emplace_back(v);
  null_.push_back(false);
  binary_.push_back(true);
  return *this;
}

Params& Params::add_null() {
  values_.emplace_back();
  null_.push_back(true);
  binary_.push_back(false);
  return *this;
}

Rows::Rows(pg_result* r) : r_(r) {}
Rows::Rows(Rows&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
Rows& Rows::operator=(Rows&& o) noexcept {
  if (this != &o) {
    if (r_) PQclear(r_);
    r_ = o.r_;
    o.r_ = nullptr;
  }
  return *this;
}
Rows::~Rows() {
  if (r_) PQclear(r_);
}
int Rows::size() const { return r_ ? PQntuples(r_) : 0; }
std::string Rows::text(int row, int col) const {
  return std::string(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
}
int64_t Rows::int64(int row, int col) const {
  const char* s = PQgetvalue(r_, row, col);
  int64_t v = 0;
  std::from_chars(s, s + PQgetlength(r_, row, col), v);
  return v;
}
bool Rows::is_null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
bool Rows::boolean(int row, int col) const { return PQgetvalue(r_, row, col)[0] == 't'; }
std::string Rows::bytes(int row, int col) const {
  // bytea in text form is "\x" followed by hex digits.
  const char* s = PQgetvalue(r_, row, col);
  size_t n = static_cast<size_t>(PQgetlength(r_, row, col));
  if (n < 2 || s[0] != '\\' || s[1] != 'x') return std::string(s, n);
  auto hex = [](char c) -> int { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  std::string out;
  out.reserve((n - 2) / 2);
  for (size_t i = 2; i + 1 < n; i += 2) out.push_back(static_cast<char>(hex(s[i]) * 16 + hex(s[i + 1])));
  return out;
}
int64_t Rows::affected() const {
  const char* s = r_ ? PQcmdTuples(r_) : "";
  return *s ? std::strtoll(s, nullptr, 10) : 0;
}

Result<std::unique_ptr<Conn>> Conn::open(const std::string& conninfo) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (!c) return make_error(Errc::store_failure, "postgresql: out of memory connecting");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string why = PQerrorMessage(c);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    PQfinish(c);
    return make_error(Errc::store_failure, "cannot connect to PostgreSQL (" + redact_conninfo(conninfo) + "): " + why);
  }
  auto conn = std::unique_ptr<Conn>(new Conn(c));
  // The store speaks UTC milliseconds and UTF-8 text; nothing may depend on
  // the server's or the role's defaults. Notices ("already exists,
  // skipping") would go to stderr outside the key=value log: warnings only.
  if (auto r = conn->run(kSessionSetup); !r) return r.error();
  return conn;
}

Conn::~Conn() {
  if (c_) PQfinish(c_);
}

bool Conn::ok() const { return c_ && PQstatus(c_) == CONNECTION_OK; }

bool Conn::reset() {
  prepared_.clear();
  PQreset(c_);
  if (!ok()) return false;
  return static_cast<bool>(run(kSessionSetup));
}

int Conn::backend_pid() const { return c_ ? PQbackendPID(c_) : 0; }
int Conn::socket() const { return c_ ? PQsocket(c_) : -1; }

Error Conn::fail(pg_result* r, const std::string& what) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  last_state_ = state ? state : "";
  const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string msg = primary ? primary : PQerrorMessage(c_);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (r) PQclear(r);
  Errc code = last_state_ == kUniqueViolation ? Errc::conflict : Errc::store_failure;
  return make_error(code, what + ": " + msg);
}

Result<Rows> Conn::exec(const std::string& sql, const Params& p) {
  last_state_.clear();
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = "s" + std::to_string(prepared_.size() + 1);
    PGresult* r = PQprepare(c_, name.c_str(), sql.c_str(), 0, nullptr);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) return fail(r, "prepare");
    PQclear(r);
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  const int n = static_cast<int>(p.values_.size());
  std::vector<const char*> values(n);
  std::vector<int> lengths(n), formats(n);
  for (int i = 0; i < n; ++i) {
    values[i] = p.null_[i] ? nullptr : p.values_[i].data();
    lengths[i] = static_cast<int>(p.values_[i].size());
    formats[i] = p.binary_[i] ? 1 : 0;
  }
  PGresult* r = PQexecPrepared(c_, it->second.c_str(), n, values.data(), lengths.data(), formats.data(), 0);
  auto st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return fail(r, "statement");
  return Rows(r);
}

Result<void> Conn::run(const std::string& sql) {
  last_state_.clear();
  PGresult* r = PQexec(c_, sql.c_str());
  auto st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return fail(r, "statement");
  PQclear(r);
  return {};
}

std::string redact_conninfo(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (!opts) {
    if (err) PQfreemem(err);
    return "(unparsable conninfo)";
  }
  std::string out;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (!o->val || std::string_view(o->keyword) == "password") continue;
    if (!out.empty()) out += ' ';
    out += std::string(o->keyword) + "=" + o->val;
  }
  PQconninfoFree(opts);
  return out;
}

bool conninfo_has_password(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (!opts) {
    if (err) PQfreemem(err);
    return false;
  }
  bool has = false;
  for (PQconninfoOption* o = opts; o->keyword; ++o)
    if (o->val && *o->val && std::string_view(o->keyword) == "password") has = true;
  PQconninfoFree(opts);
  return has;
}

std::string text_array(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace gw::store::pg
