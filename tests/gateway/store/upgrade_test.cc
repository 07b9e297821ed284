// Upgrade in place (issue 12): a data directory written by the release before
// the write-path rebuild (tests/fixtures/store/release-0.1.sql, schema 5,
// made by make-release-fixture.sh) opens with the current store and nothing
// is lost: every resource, every version, every index entry, the NHS-number
// keys, the change feed's numbers and cursors, the subscription events, the
// kept messages and the audit trail — and the real binary serves it.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "gateway/common/json.h"
#include "gateway/store/sqlite/audit_trail.h"
#include "gateway/store/sqlite/schema.h"
#include "gateway/store/store.h"
#include "tests/support/gateway_process.h"
#include "tests/support/https_client.h"
#include "tests/support/test_gateway.h"

namespace gw::store {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Rows of a query on a connection of its own, as an auditor with sqlite3 would.
std::vector<std::vector<std::string>> rows(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(h);
  std::vector<std::vector<std::string>> out;
  while (st && sqlite3_step(st) == SQLITE_ROW) {
    std::vector<std::string> r;
    for (int i = 0; i < sqlite3_column_count(st); ++i) {
      const auto* t = sqlite3_column_text(st, i);
      r.emplace_back(t ? reinterpret_cast<const char*>(t) : "");
    }
    out.push_back(std::move(r));
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

class StoreUpgrade : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.path() + "/gateway.db";
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &h), SQLITE_OK);
    std::string dump = read_file(fs::path(GW_SOURCE_DIR) / "tests/fixtures/store/release-0.1.sql");
    ASSERT_FALSE(dump.empty());
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(h, dump.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_close(h);
    ASSERT_EQ(rows(path_, "SELECT MAX(version) FROM schema_version")[0][0], "5");
  }

  test::TempDir dir_;
  std::string path_;
};

TEST_F(StoreUpgrade, AStoreTheReleaseWroteOpensWithNothingLost) {
  // What the release wrote, read straight from its tables.
  auto current = rows(path_, "SELECT type, id, version, deleted, body FROM resources");
  auto history = rows(path_, "SELECT type, id, version, deleted, body FROM resource_history");
  auto index = rows(path_, "SELECT type, id, param, system, value FROM search_index WHERE param != '_security'");
  auto labelled = rows(path_, "SELECT DISTINCT type, id FROM search_index WHERE param = '_security'");
  auto keys = rows(path_, "SELECT key, id FROM patient_key");
  auto changes = rows(path_, "SELECT seq, type, id, version, interaction FROM changes ORDER BY seq");
  auto cursors = rows(path_, "SELECT name, seq FROM cursors ORDER BY name");
  auto events = rows(path_, "SELECT subscription, number, change_seq, status FROM sub_events ORDER BY 1, 2");
  auto inbound = rows(path_, "SELECT id, status, length(raw) FROM inbound ORDER BY id");
  auto audit = rows(path_, "SELECT count(*) FROM audit");
  ASSERT_GE(current.size(), 40u);
  ASSERT_GT(history.size(), current.size());  // some resources have several versions
  ASSERT_FALSE(labelled.empty());
  ASSERT_FALSE(keys.empty());
  ASSERT_FALSE(events.empty());

  SqliteOptions so;
  so.path = path_;
  auto s = open_sqlite(so);
  EXPECT_EQ(rows(path_, "SELECT MAX(version) FROM schema_version")[0][0],
            std::to_string(sqlite::migrations().back().version));

  for (const auto& r : current) {
    auto got = s->read(r[0], r[1]);
    if (r[3] == "1") {
      EXPECT_EQ(got.error().code, Errc::gone) << r[0] << "/" << r[1];
      continue;
    }
    ASSERT_TRUE(got.has_value()) << r[0] << "/" << r[1] << ": " << got.error().message;
    EXPECT_EQ(std::to_string(got->version), r[2]);
    EXPECT_EQ(got->body, r[4]) << r[0] << "/" << r[1];
  }
  std::map<std::pair<std::string, std::string>, size_t> versions;
  for (const auto& h : history) {
    ++versions[{h[0], h[1]}];
    auto v = s->vread(h[0], h[1], std::stoll(h[2]));
    if (h[3] == "1") {
      EXPECT_EQ(v.error().code, Errc::gone);
      continue;
    }
    ASSERT_TRUE(v.has_value()) << h[0] << "/" << h[1] << " v" << h[2];
    EXPECT_EQ(v->body, h[4]);
  }
  for (const auto& [k, n] : versions) EXPECT_EQ(s->history(k.first, k.second)->size(), n) << k.first << "/" << k.second;
  // Every index entry still finds its resource.
  for (const auto& e : index) {
    SearchQuery q;
    q.type = e[0];
    q.params.push_back(ParamConstraint{e[2], {{e[3], e[4]}}});
    q.count = 100;
    auto page = s->search(q);
    ASSERT_TRUE(page.has_value());
    bool found = false;
    for (const auto& it : page->items) found = found || it.id == e[1];
    EXPECT_TRUE(found) << e[0] << "/" << e[1] << " by " << e[2];
  }
  // Labelled content is still left out for a caller that may not see it.
  for (const auto& l : labelled) {
    SearchQuery q;
    q.type = l[0];
    q.ids = {l[1]};
    q.exclude_security = {"STD", "HIV", "SEX", "PSY", "SUD"};
    EXPECT_EQ(s->search(q)->total, 0) << l[0] << "/" << l[1];
  }
  for (const auto& k : keys) EXPECT_EQ(s->find_by_unique_key(k[0])->value_or(""), k[1]);
  // The change feed keeps its numbers, so the cursors and events mean what they meant.
  auto feed = s->changes_after(0, 100000);
  ASSERT_TRUE(feed.has_value());
  ASSERT_EQ(feed->size(), changes.size());
  for (size_t i = 0; i < changes.size(); ++i) {
    EXPECT_EQ(std::to_string((*feed)[i].seq), changes[i][0]);
    EXPECT_EQ((*feed)[i].type, changes[i][1]);
    EXPECT_EQ((*feed)[i].id, changes[i][2]);
    EXPECT_EQ(std::to_string((*feed)[i].version), changes[i][3]);
    EXPECT_EQ((*feed)[i].interaction, changes[i][4]);
  }
  for (const auto& c : cursors) EXPECT_EQ(std::to_string(*s->cursor(c[0])), c[1]);
  EXPECT_EQ(rows(path_, "SELECT subscription, number, change_seq, status FROM sub_events ORDER BY 1, 2"), events);
  EXPECT_EQ(rows(path_, "SELECT id, status, length(raw) FROM inbound ORDER BY id"), inbound);
  EXPECT_EQ(rows(path_, "SELECT count(*) FROM audit"), audit);

  // New writes land after what was there.
  WriteOp op;
  op.kind = OpKind::create;
  op.type = "Organization";
  op.id = "after-upgrade";
  op.body = R"({"resourceType":"Organization","id":"after-upgrade"})";
  std::promise<Result<CommitOutcome>> p;
  UnitOfWork u;
  u.ops.push_back(op);
  AuditRow row;
  row.actor_ods = "RXX";
  row.action = "create";
  row.entity = "Organization/after-upgrade";
  row.outcome = "success";
  u.audit.push_back(row);
  ASSERT_TRUE(s->commit(std::move(u), [&p](Result<CommitOutcome> r) { p.set_value(std::move(r)); }).has_value());
  ASSERT_TRUE(p.get_future().get().has_value());
  auto after = s->changes_after(std::stoll(changes.back()[0]), 10);
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].id, "after-upgrade");
  s->close();

  // The audit rows older than the chain are covered by the migration's
  // checkpoint, and the new row chains on from them: the trail verifies.
  auto trail = sqlite::verify_audit_file(path_);
  ASSERT_TRUE(trail.has_value()) << trail.error().message;
  EXPECT_TRUE(trail->findings.empty()) << trail->findings.front().what;
  EXPECT_EQ(std::to_string(trail->records - 1), audit[0][0]);
  EXPECT_EQ(rows(path_, "SELECT count(*) FROM audit_checkpoint WHERE signer = 'migration'")[0][0], "1");
  // And an edit of an old row is caught like any other.
  {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &h), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(h, "UPDATE audit SET detail = 'edited' WHERE seq = 3", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(h);
  }
  auto edited = sqlite::verify_audit_file(path_);
  ASSERT_TRUE(edited.has_value());
  ASSERT_FALSE(edited->findings.empty());
  EXPECT_EQ(edited->findings.front().seq, 3);
}

TEST_F(StoreUpgrade, TheRealBinaryServesAnUpgradedDataDirectory) {
  auto child = rows(path_, "SELECT id FROM patient_key WHERE key = '9990237573'");
  ASSERT_EQ(child.size(), 1u);
  test::GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir_.path())) << gw.log();
  auto c = test::HttpsClient::for_role(gw.port(), "gp");
  auto r = c.request("GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9990237573");
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200) << r->body;
  auto d = json::parse(r->body);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ((*d)["total"].GetInt(), 1) << r->body;
  EXPECT_NE(r->body.find(child[0][0]), std::string::npos) << r->body;
  // Sexual-health content written by the release is still withheld from a GP.
  auto hidden = c.request("GET", "/fhir/Encounter?_count=100");
  ASSERT_TRUE(hidden.has_value());
  EXPECT_EQ(hidden->body.find("\"STD\""), std::string::npos) << hidden->body;
  EXPECT_EQ(gw.terminate(), 0) << gw.log();
}

}  // namespace
}  // namespace gw::store
