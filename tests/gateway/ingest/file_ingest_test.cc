// Whole-file ingest (CASH/GUM CSV, CAMHS XML) over HTTPS: per-row answers,
// idempotent re-posting, quarantine of unreadable files, and labelled content
// staying inside the services allowed to see it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gateway/common/json.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

namespace fs = std::filesystem;
using test::InProcessGateway;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path fixtures() { return fs::path(GW_SOURCE_DIR) / "tests/fixtures"; }

int total(InProcessGateway& gw, const std::string& role, const std::string& target) {
  auto c = gw.client(role);
  auto r = c.request("GET", target);
  if (!r || r->status != 200) return -1;
  return (*json::parse(r->body))["total"].GetInt();
}

TEST(FileIngest, CashGumFileIsTakenRowByRowOnceAndStaysInTheService) {
  InProcessGateway gw;
  std::string file = read_file(fixtures() / "cashgum/gumcad_sample.csv");
  auto gp = gw.client("gp");
  EXPECT_EQ(gp.request("POST", "/ingest/cashgum", file, {{"Content-Type", "text/csv"}})->status, 403);

  auto clinic = gw.client("sexual-health");
  auto r = clinic.request("POST", "/ingest/cashgum", file, {{"Content-Type", "text/csv"}});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200) << r->body;
  auto d = json::parse(r->body);
  std::string outcome(json::get_string(*d, "outcome").value_or(""));
  EXPECT_TRUE(outcome == "accepted" || outcome == "partial") << r->body;
  EXPECT_GT((*d)["resources"].GetInt(), 0);

  // Posting the same file again changes nothing and says so: no new version,
  // no new change-feed row (so no notification), no second copy kept.
  auto store_state = [&] {
    auto changes = gw.store().changes_after(0, 100000);
    auto inbound = gw.store().list_inbound("", 1000, 0);
    EXPECT_TRUE(changes && inbound);
    return std::make_pair(changes->size(), inbound->size());
  };
  auto before = store_state();
  EXPECT_GT(before.first, 0u);
  auto again = clinic.request("POST", "/ingest/cashgum", file, {{"Content-Type", "text/csv"}});
  EXPECT_EQ(again->status, 200);
  EXPECT_NE(again->body.find("\"outcome\":\"duplicate\""), std::string::npos) << again->body;
  EXPECT_NE(again->body.find("nothing changed"), std::string::npos) << again->body;
  EXPECT_EQ(store_state(), before) << "the second post changed the store";

  // The clinic sees its attendances; a GP sees none of them, not even in a count.
  EXPECT_GT(total(gw, "sexual-health", "/fhir/Encounter?_count=1"), 0);
  EXPECT_EQ(total(gw, "gp", "/fhir/Encounter?_count=1"), 0);
  EXPECT_EQ(total(gw, "admin", "/fhir/Observation?_count=1") >= 0, true);
  auto obs_admin = total(gw, "admin", "/fhir/Observation?_count=1");
  auto obs_clinic = total(gw, "sexual-health", "/fhir/Observation?_count=1");
  EXPECT_LT(obs_admin, obs_clinic) << "admin must not see sexual-health observations";
}

TEST(FileIngest, CashGumBrokenRowsAreNamedAndAnUnreadableFileIsQuarantined) {
  InProcessGateway gw;
  auto clinic = gw.client("sexual-health");
  auto r = clinic.request("POST", "/ingest/cashgum", read_file(fixtures() / "cashgum/broken_rows.csv"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200) << r->body;  // the good rows are in
  EXPECT_NE(r->body.find("\"outcome\":\"partial\""), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("\"expression\":\"row "), std::string::npos) << r->body;

  auto bad = clinic.request("POST", "/ingest/cashgum", read_file(fixtures() / "cashgum/missing_required_column.csv"));
  EXPECT_EQ(bad->status, 422) << bad->body;
  auto d = json::parse(bad->body);
  int64_t id = (*d)["inbound_id"].GetInt64();
  EXPECT_GT(id, 0);
  auto admin = gw.client("admin");
  auto q = admin.request("GET", "/admin/quarantine/" + std::to_string(id));
  EXPECT_EQ(q->status, 200);
  EXPECT_NE(q->body.find("\"adapter\":\"cashgum\""), std::string::npos);
}

TEST(FileIngest, CamhsExtractIsAcceptedAndBadXmlIsRefusedWithItsLine) {
  InProcessGateway gw;
  auto trust = gw.client("camhs");
  auto r = trust.request("POST", "/ingest/camhs", read_file(fixtures() / "camhs/extract_sample.xml"),
                         {{"Content-Type", "application/xml"}});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_GT((*json::parse(r->body))["resources"].GetInt(), 0);
  // Mental-health content is for the mental-health services.
  EXPECT_GT(total(gw, "camhs", "/fhir/Encounter?_count=1"), 0);
  EXPECT_EQ(total(gw, "gp", "/fhir/Encounter?_count=1"), 0);

  auto bad = trust.request("POST", "/ingest/camhs", "<MHSExtract><Patient></MHSExtract>");
  EXPECT_EQ(bad->status, 422) << bad->body;
  EXPECT_NE(bad->body.find("line"), std::string::npos) << bad->body;
  EXPECT_EQ(gw.client("gp").request("POST", "/ingest/camhs", "<x/>")->status, 403);
}

}  // namespace
}  // namespace gw
