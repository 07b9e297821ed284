#include "gateway/store/postgres/import_sqlite.h"

#include <openssl/evp.h>

#include <map>
#include <memory>

#include "gateway/common/clock.h"
#include "gateway/store/postgres/audit_trail.h"
#include "gateway/store/postgres/pg.h"
#include "gateway/store/postgres/schema.h"
#include "gateway/store/sqlite/connection.h"
#include "gateway/store/sqlite/schema.h"

namespace gw::store::pg {

namespace {

enum class Kind { integer, text, bytes, labels };

struct Column {
  const char* name;
  Kind kind;
};

struct Table {
  const char* name;
  std::vector<Column> columns;
  std::vector<const char*> key;  // resume order: the columns of the primary key
};

// Layouts 6 and 7 (store/sqlite/schema.cc) and steps 1 and 2 of store/postgres/schema.cc
// name the same tables and columns; res.labels is the one change of type
// (a bit set over `labels` there, the codes here).
const std::vector<Table>& tables() {
  using K = Kind;
  static const std::vector<Table> t = {
      {"res",
       {{"rid", K::integer}, {"type", K::text}, {"id", K::text}, {"vid", K::integer}, {"version", K::integer},
        {"ts", K::integer}, {"deleted", K::integer}, {"labels", K::labels}, {"keys", K::bytes}, {"ukey", K::text}},
       {"rid"}},
      {"ver",
       {{"vid", K::integer}, {"rid", K::integer}, {"version", K::integer}, {"ts", K::integer}, {"op", K::integer},
        {"prev", K::integer}, {"body", K::text}, {"src", K::text}},
       {"vid"}},
      {"idx", {{"value", K::text}, {"type", K::text}, {"param", K::text}, {"system", K::text}, {"rid", K::integer}},
       {"value", "type", "param", "system", "rid"}},
      {"pkey", {{"key", K::text}, {"rid", K::integer}}, {"key"}},
      {"audit",
       {{"seq", K::integer}, {"ts", K::text}, {"actor_ods", K::text}, {"actor_role", K::text},
        {"actor_system", K::text}, {"action", K::text}, {"entity", K::text}, {"outcome", K::text},
        {"http_status", K::integer}, {"request_id", K::text}, {"detail", K::text}, {"patient_ref", K::text},
        {"person", K::text}, {"channel", K::text}, {"purpose", K::text}, {"src_ods", K::text},
        {"src_system", K::text}, {"topic", K::text}, {"latency_ms", K::integer}, {"items", K::integer},
        {"chain", K::bytes}},
       {"seq"}},
      {"audit_checkpoint",
       {{"seq", K::integer}, {"ts", K::text}, {"chain", K::bytes}, {"signature", K::bytes}, {"signer", K::text}},
       {"seq"}},
      {"outbox",
       {{"seq", K::integer}, {"topic", K::text}, {"focus", K::text}, {"payload", K::text}, {"created", K::text}},
       {"seq"}},
      {"idempotency", {{"key", K::text}, {"created", K::text}}, {"key"}},
      {"inbound",
       {{"id", K::integer}, {"received", K::text}, {"adapter", K::text}, {"channel", K::text},
        {"sender_ods", K::text}, {"sender_system", K::text}, {"control_id", K::text}, {"status", K::text},
        {"reason", K::text}, {"issues_json", K::text}, {"raw", K::bytes}, {"replay_of", K::integer},
        {"kind", K::text}, {"answer", K::text}, {"written", K::text}},
       {"id"}},
      {"cursors", {{"name", K::text}, {"seq", K::integer}}, {"name"}},
      {"sub_counters", {{"subscription", K::text}, {"events", K::integer}}, {"subscription"}},
      {"sub_events",
       {{"subscription", K::text}, {"number", K::integer}, {"change_seq", K::integer}, {"focus_type", K::text},
        {"focus_id", K::text}, {"focus_version", K::integer}, {"interaction", K::text}, {"patient_ref", K::text},
        {"content", K::text}, {"created", K::text}, {"status", K::text}, {"attempts", K::integer},
        {"first_attempt_ms", K::integer}, {"last_error", K::text}},
       {"subscription", "number"}},
      {"timers",
       {{"key", K::text}, {"kind", K::text}, {"subject", K::text}, {"due", K::text}, {"payload", K::text},
        {"status", K::text}, {"scheduled", K::text}, {"settled", K::text}},
       {"key"}},
  };
  return t;
}

// Sequences to move past the copied ids, so the gateway's next rows follow on.
const std::vector<std::pair<const char*, const char*>>& sequences() {
  static const std::vector<std::pair<const char*, const char*>> s = {
      {"res_rid_seq", "SELECT COALESCE(MAX(rid), 0) FROM res"},
      {"ver_vid", "SELECT COALESCE(MAX(vid), 0) FROM ver"},
      {"audit_seq_seq", "SELECT COALESCE(MAX(seq), 0) FROM audit"},
      {"outbox_seq_seq", "SELECT COALESCE(MAX(seq), 0) FROM outbox"},
      {"inbound_id_seq", "SELECT COALESCE(MAX(id), 0) FROM inbound"},
  };
  return s;
}

constexpr char kSep = '\x1f';  // between the parts of a resume key (never in an id, code or name)

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += kSep;
    out += parts[i];
  }
  return out;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out(1);
  for (char c : s) {
    if (c == kSep) out.emplace_back();
    else out.back() += c;
  }
  return out;
}

std::string select_chunk(const Table& t, bool resume) {
  std::string cols, key, marks;
  for (const auto& c : t.columns) cols += (cols.empty() ? "" : ", ") + std::string(c.name);
  for (size_t i = 0; i < t.key.size(); ++i) {
    key += (i ? ", " : "") + std::string(t.key[i]);
    marks += (i ? ", ?" : "?") + std::to_string(i + 1);
  }
  std::string sql = "SELECT " + cols + " FROM " + t.name;
  if (resume) sql += " WHERE (" + key + ") > (" + marks + ")";
  // The limit follows the key's parameters, which only a resumed chunk has.
  return sql + " ORDER BY " + key + " LIMIT ?" + std::to_string(resume ? t.key.size() + 1 : 1);
}

std::string insert_row(const Table& t) {
  std::string cols, vals;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    cols += (i ? ", " : "") + std::string(t.columns[i].name);
    vals += (i ? ", $" : "$") + std::to_string(i + 1);
  }
  return "INSERT INTO " + std::string(t.name) + "(" + cols + ") VALUES(" + vals + ")";
}

class Digest {
 public:
  Digest() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Digest() { EVP_MD_CTX_free(ctx_); }
  void field(const std::string& v) {
    uint64_t n = v.size();
    EVP_DigestUpdate(ctx_, &n, sizeof n);  // length-prefixed: no two rows hash alike by shifting a boundary
    EVP_DigestUpdate(ctx_, v.data(), v.size());
  }
  std::string hex() {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, d, &n);
    static const char* x = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
      out += x[d[i] >> 4];
      out += x[d[i] & 15];
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

// Every column of the record (the chain is verified on its own, below).
constexpr const char* kAuditColumns =
    "seq, ts, actor_ods, actor_role, actor_system, action, entity, outcome, http_status, request_id, detail, "
    "patient_ref, person, channel, purpose, src_ods, src_system, topic, latency_ms, items";
constexpr int kAuditColumnCount = 20;

Result<std::string> audit_digest_sqlite(sqlite::Connection& c) {
  auto st = c.prepare(std::string("SELECT ") + kAuditColumns + " FROM audit ORDER BY seq");
  if (!st) return st.error();
  Digest d;
  for (;;) {
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) break;
    for (int i = 0; i < kAuditColumnCount; ++i) d.field(st->text(i));
  }
  return d.hex();
}

Result<std::string> audit_digest_pg(Conn& c) {
  Digest d;
  for (int64_t after = 0;;) {
    auto r = c.exec(std::string("SELECT ") + kAuditColumns + " FROM audit WHERE seq > $1 ORDER BY seq LIMIT 10000",
                    Params().add(after));
    if (!r) return r.error();
    for (int i = 0; i < r->size(); ++i)
      for (int col = 0; col < kAuditColumnCount; ++col) d.field(r->text(i, col));
    if (r->size() < 10000) break;
    after = r->int64(r->size() - 1, 0);
  }
  return d.hex();
}

Result<int64_t> count_sqlite(sqlite::Connection& c, const std::string& table) {
  auto st = c.prepare("SELECT count(*) FROM " + table);
  if (!st) return st.error();
  auto row = st->step();
  if (!row) return row.error();
  return st->int64(0);
}

Result<int64_t> count_pg(Conn& c, const std::string& table) {
  auto r = c.exec("SELECT count(*) FROM " + table);
  if (!r) return r.error();
  return r->int64(0, 0);
}

// The embedded store's label bits -> codes.
Result<std::map<int, std::string>> label_codes(sqlite::Connection& c) {
  std::map<int, std::string> out;
  auto st = c.prepare("SELECT bit, code FROM labels");
  if (!st) return st.error();
  for (;;) {
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) break;
    out[static_cast<int>(st->int64(0))] = st->text(1);
  }
  return out;
}

// Copies one table from where the last committed chunk left it. Returns the
// rows copied by this run; false in `go_on` when after_chunk asked to stop.
Result<int64_t> copy_table(const ImportOptions& o, sqlite::Connection& src, Conn& dst, const Table& t,
                           const std::map<int, std::string>& labels, bool& go_on) {
  int64_t copied = 0;
  const std::string insert = insert_row(t);
  for (;;) {
    auto progress = dst.exec("SELECT last_key FROM migrate_progress WHERE tbl = $1", Params().add(t.name));
    if (!progress) return progress.error();
    if (!progress->empty() && progress->is_null(0, 0)) return copied;  // this table is complete
    bool resume = !progress->empty();
    std::vector<std::string> last = resume ? split(progress->text(0, 0)) : std::vector<std::string>{};
    auto st = src.prepare(select_chunk(t, resume));
    if (!st) return st.error();
    int bind = 1;
    for (size_t i = 0; i < last.size() && i < t.key.size(); ++i) {
      bool integer = false;
      for (const auto& c : t.columns)
        if (std::string_view(c.name) == t.key[i]) integer = c.kind == Kind::integer;
      if (integer) st->bind(bind++, static_cast<int64_t>(std::stoll(last[i])));
      else st->bind(bind++, last[i]);
    }
    st->bind(bind, o.chunk_rows);
    if (auto r = dst.run("BEGIN"); !r) return r.error();
    auto fail = [&](Error e) -> Result<int64_t> {
      (void)dst.run("ROLLBACK");
      return e;
    };
    int64_t rows = 0;
    std::vector<std::string> key;
    for (;;) {
      auto row = st->step();
      if (!row) {
        Error e = row.error();
        e.message += " (in: " + select_chunk(t, resume) + ")";
        return fail(e);
      }
      if (!*row) break;
      Params p;
      key.clear();
      for (size_t i = 0; i < t.columns.size(); ++i) {
        const Column& c = t.columns[i];
        int col = static_cast<int>(i);
        switch (c.kind) {
          case Kind::integer:
            p.add(st->int64(col));
            break;
          case Kind::text:
            if (st->is_null(col)) p.add_null();
            else p.add(st->text(col));
            break;
          case Kind::bytes:
            if (st->is_null(col)) p.add_null();
            else p.add_bytes(st->blob(col));
            break;
          case Kind::labels: {
            std::vector<std::string> codes;
            int64_t bits = st->int64(col);
            for (const auto& [bit, code] : labels)
              if (bits & (int64_t{1} << bit)) codes.push_back(code);
            p.add(text_array(codes));
            break;
          }
        }
        for (const char* k : t.key)
          if (std::string_view(k) == c.name) key.push_back(c.kind == Kind::integer ? std::to_string(st->int64(col))
                                                                                   : st->text(col));
      }
      if (auto r = dst.exec(insert, p); !r) return fail(r.error());
      ++rows;
    }
    // Done when the chunk came back short: the key NULL marks the table complete.
    Params mark;
    mark.add(t.name);
    if (rows < o.chunk_rows) mark.add_null();
    else mark.add(join(key));
    if (auto r = dst.exec("INSERT INTO migrate_progress(tbl, last_key) VALUES($1, $2) "
                          "ON CONFLICT (tbl) DO UPDATE SET last_key = $2",
                          mark);
        !r) {
      return fail(r.error());
    }
    if (auto r = dst.run("COMMIT"); !r) return fail(r.error());
    copied += rows;
    if (o.after_chunk && !o.after_chunk(t.name, rows)) {
      go_on = false;
      return copied;
    }
    if (rows < o.chunk_rows) return copied;
  }
}

}  // namespace

Result<ImportReport> import_sqlite(const ImportOptions& o) {
  auto src = sqlite::Connection::open(o.sqlite_path, sqlite::Connection::Mode::read_write_create, 5000);
  if (!src) return src.error();
  // The source at the layout this release copies (what `serve` would do on start).
  if (auto r = sqlite::migrate(**src, clock::iso_now().c_str()); !r) return r.error();
  auto dst = Conn::open(o.conninfo);
  if (!dst) return dst.error();
  if (auto r = (*dst)->run("SET synchronous_commit = on"); !r) return r.error();
  if (auto r = migrate(**dst, clock::iso_now()); !r) return r.error();
  if (auto r = (*dst)->run("CREATE TABLE IF NOT EXISTS migrate_progress(tbl TEXT PRIMARY KEY, last_key TEXT)"); !r)
    return r.error();
  {
    auto started = (*dst)->exec("SELECT count(*) FROM migrate_progress");
    if (!started) return started.error();
    if (started->int64(0, 0) == 0) {
      for (const char* busy : {"res", "audit", "inbound", "cursors"}) {
        auto n = count_pg(**dst, busy);
        if (!n) return n.error();
        if (*n > 0)
          return make_error(Errc::conflict, std::string("the target already holds a gateway's data (table ") + busy +
                                                "); migrate into an empty database or schema");
      }
    }
  }
  auto labels = label_codes(**src);
  if (!labels) return labels.error();
  ImportReport report;
  bool go_on = true;
  for (const auto& t : tables()) {
    TableReport tr;
    tr.table = t.name;
    auto n = copy_table(o, **src, **dst, t, *labels, go_on);
    if (!n) {
      Error e = n.error();
      e.message = std::string("copying ") + t.name + ": " + e.message;
      return e;
    }
    tr.copied_now = *n;
    report.tables.push_back(tr);
    if (!go_on) return report;  // interrupted on purpose (tests): not verified
  }
  for (const auto& [seq, max_sql] : sequences()) {
    auto r = (*dst)->exec(std::string("SELECT setval('") + seq + "', GREATEST((" + max_sql + "), 1))");
    if (!r) return r.error();
  }
  report.verified = true;
  for (auto& tr : report.tables) {
    auto s = count_sqlite(**src, tr.table);
    if (!s) return s.error();
    auto d = count_pg(**dst, tr.table);
    if (!d) return d.error();
    tr.source_rows = *s;
    tr.target_rows = *d;
    if (*s != *d) report.verified = false;
  }
  auto ds = audit_digest_sqlite(**src);
  if (!ds) return ds.error();
  auto dd = audit_digest_pg(**dst);
  if (!dd) return dd.error();
  report.audit_digest_source = *ds;
  report.audit_digest_target = *dd;
  if (*ds != *dd) report.verified = false;
  // The copied chain, recomputed on the target from its rows and checked
  // against its checkpoints: what `audit verify` will say of it.
  auto trail = verify_audit(o.conninfo);
  if (!trail) return trail.error();
  report.audit_chain_records = trail->records;
  if (!trail->findings.empty()) {
    report.verified = false;
    report.audit_chain_finding =
        "record " + std::to_string(trail->findings.front().seq) + ": " + trail->findings.front().what;
  }
  return report;
}

}  // namespace gw::store::pg
