#include "gateway/store/sqlite/backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>

namespace gw::store::sqlite {

namespace {

struct CloseDb {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, CloseDb>;

Error failed(const std::string& what, sqlite3* db) {
  return make_error(Errc::store_failure, what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

Result<Db> open(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) return failed("cannot open " + path, db.get());
  sqlite3_busy_timeout(db.get(), 5000);
  return db;
}

Result<void> exec(sqlite3* db, const char* sql, const std::string& what) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) == SQLITE_OK) return {};
  std::string msg = err ? err : sqlite3_errmsg(db);
  sqlite3_free(err);
  return make_error(Errc::store_failure, what + ": " + msg);
}

// "ok", or the first problem integrity_check reports.
Result<std::string> integrity(sqlite3* db, const std::string& path) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr) != SQLITE_OK)
    return failed("cannot check " + path, db);
  std::string first;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) first = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW) return failed("cannot check " + path, db);
  return first;
}

Result<void> fsync_path(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return make_error(Errc::store_failure, "cannot open " + path + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) return make_error(Errc::store_failure, "cannot fsync " + path + ": " + std::strerror(e));
  return {};
}

}  // namespace

Result<BackupReport> backup_database(const std::string& db_path, const std::string& to) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_regular_file(db_path, ec))
    return make_error(Errc::not_found, "no gateway store at " + db_path);
  if (fs::exists(to, ec))
    return make_error(Errc::conflict, to + " already exists; a backup never overwrites a file");
  const std::string partial = to + ".partial";
  fs::remove(partial, ec);  // left by an interrupted run: never a backup

  // Read-write without CREATE: a mistyped path is an error, not a new empty
  // store; nothing below writes to the source.
  auto src = open(db_path, SQLITE_OPEN_READWRITE);
  if (!src) return src.error();
  auto dst = open(partial, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!dst) return dst.error();

  sqlite3_backup* b = sqlite3_backup_init(dst->get(), "main", src->get(), "main");
  if (b == nullptr) return failed("cannot start the backup into " + partial, dst->get());
  // All pages in one step, so in one read transaction of the source: with WAL
  // the gateway's writer goes on committing, and the copy is the snapshot at
  // the step's start. Copying in slices would let a commit in between restart
  // the copy, forever under steady load.
  int rc = SQLITE_OK;
  for (int attempt = 0; attempt < 50; ++attempt) {
    rc = sqlite3_backup_step(b, -1);
    if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // WAL recovery by another process
  }
  BackupReport rep;
  rep.pages = sqlite3_backup_pagecount(b);
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    dst->reset();
    fs::remove(partial, ec);
    return make_error(Errc::store_failure, "backup of " + db_path + " failed: " + sqlite3_errstr(rc));
  }
  src->reset();

  auto fail_partial = [&](Error e) -> Result<BackupReport> {
    dst->reset();
    fs::remove(partial, ec);
    return e;
  };
  // The copy carries the source's WAL flag; one file is what an operator
  // copies around, so make it a rollback-journal database. The gateway turns
  // WAL back on when it opens a restored copy.
  if (auto r = exec(dst->get(), "PRAGMA journal_mode=DELETE", "cannot finish " + partial); !r)
    return fail_partial(r.error());
  auto ok = integrity(dst->get(), partial);
  if (!ok) return fail_partial(ok.error());
  if (*ok != "ok")
    return fail_partial(make_error(Errc::store_failure, "the copy failed its integrity check: " + *ok));
  dst->reset();

  if (auto r = fsync_path(partial, O_RDONLY); !r) return fail_partial(r.error());
  fs::rename(partial, to, ec);
  if (ec) return fail_partial(make_error(Errc::store_failure, "cannot rename " + partial + " to " + to + ": " + ec.message()));
  fs::path dir = fs::absolute(to, ec).parent_path();
  if (auto r = fsync_path(dir.string(), O_RDONLY | O_DIRECTORY); !r) return r.error();
  rep.bytes = static_cast<int64_t>(fs::file_size(to, ec));
  return rep;
}

}  // namespace gw::store::sqlite
