// The SystmOne HL7 pipeline end to end (adapter -> FHIR transaction -> store)
// against the real SQLite store: every ACK checked against what was committed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

#include "gateway/common/json.h"
#include "gateway/hl7/er7.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"

namespace gw {
namespace {

namespace fs = std::filesystem;
using ingest::IngestResult;
using ingest::Outcome;
using test::InProcessGateway;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path fixtures() { return fs::path(GW_SOURCE_DIR) / "tests/fixtures/systmone"; }

// MSA-1 and MSA-2 of an ACK.
std::pair<std::string, std::string> msa(const std::string& ack) {
  auto m = hl7::Message::parse(std::string_view(ack));
  if (!m) return {"?", "?"};
  auto s = m->segment("MSA");
  return {std::string(s.field(1).raw()), std::string(s.field(2).raw())};
}

class Hl7IngestTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { gw_ = new InProcessGateway(); }
  static void TearDownTestSuite() {
    delete gw_;
    gw_ = nullptr;
  }

  static IngestResult ingest(const std::string& raw, const std::string& ods = "RXX") {
    std::promise<IngestResult> p;
    auto f = p.get_future();
    ingest::Source src;
    src.channel = "test";
    src.principal = security::Principal{ods, "integration", "test-feed"};
    gw_->systmone().handle(raw, src, [&p](IngestResult r) { p.set_value(std::move(r)); });
    return f.get();
  }

  static json::Document get(const std::string& target, const std::string& role = "gp") {
    auto c = gw_->client(role);
    auto r = c.request("GET", target);
    EXPECT_TRUE(r.has_value());
    auto d = json::parse(r ? r->body : "{}");
    return d ? std::move(*d) : json::Document();
  }

  static int total(const std::string& target) {
    auto d = get(target);
    return d.IsObject() && d.HasMember("total") ? d["total"].GetInt() : -1;
  }

  static std::string patient_search(const std::string& nhs) {
    return "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs;
  }

  // Makes a message unique to the test: a new MSH-10 and the given NHS numbers.
  static std::string variant(std::string raw, const std::string& control_id,
                             const std::vector<std::pair<std::string, std::string>>& replace = {}) {
    auto m = hl7::Message::parse(std::string_view(raw));
    std::string old(m->control_id());
    raw.replace(raw.find(old), old.size(), control_id);
    for (const auto& [from, to] : replace)
      for (size_t p; (p = raw.find(from)) != std::string::npos;) raw.replace(p, from.size(), to);
    return raw;
  }

  static InProcessGateway* gw_;
};
InProcessGateway* Hl7IngestTest::gw_ = nullptr;

TEST_F(Hl7IngestTest, EveryGoldenMessageIsAcceptedAndReadableAsFhir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(fixtures())) {
    if (e.path().extension() != ".hl7" || !fs::exists(fs::path(e.path()).replace_extension(".fhir.json"))) continue;
    ++n;
    std::string raw = read_file(e.path());
    IngestResult r = ingest(raw);
    auto [code, ctl] = msa(r.ack);
    EXPECT_EQ(code, "AA") << e.path().filename() << ": " << r.ack;
    EXPECT_EQ(r.outcome, Outcome::accepted) << e.path().filename();
    auto m = hl7::Message::parse(std::string_view(raw));
    if (m) {
      EXPECT_EQ(ctl, std::string(m->control_id())) << e.path().filename();
    }
  }
  EXPECT_GE(n, 10);
  // The child of adt_a28_child.hl7, with what the message said about her.
  auto child = get(patient_search("9990237573"));
  ASSERT_EQ(child["total"].GetInt(), 1);
  std::string pid(json::get_string(child["entry"][0]["resource"], "id").value_or(""));
  EXPECT_GE(total("/fhir/CareTeam?patient=" + pid), 1);
  EXPECT_GE(total("/fhir/Consent?patient=" + pid), 1);
  EXPECT_GE(total("/fhir/RelatedPerson?patient=" + pid), 1);
}

TEST_F(Hl7IngestTest, EveryBrokenMessageIsRefusedWithItsFieldAndQuarantined) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(fixtures() / "broken")) {
    if (e.path().extension() != ".hl7") continue;
    ++n;
    auto expect = json::parse(read_file(fs::path(e.path()).replace_extension(".expect.json")));
    ASSERT_TRUE(expect.has_value()) << e.path();
    IngestResult r = ingest(read_file(e.path()));
    auto [code, ctl] = msa(r.ack);
    EXPECT_TRUE(code == "AE" || code == "AR") << e.path().filename() << ": " << r.ack;
    EXPECT_NE(r.inbound_id, 0) << e.path().filename() << " was not kept";
    EXPECT_NE(r.ack.find("\rERR|"), std::string::npos) << e.path().filename() << ": no ERR segment\n" << r.ack;
    std::string where;
    if (const json::Value* is = json::member(*expect, "issue")) where = std::string(json::get_string(*is, "expression").value_or(""));
    else where = std::string(json::get_string(*expect, "error").value_or(""));
    // The ERR segment names the segment (and field) the expectation names.
    std::string seg = where.substr(0, 3);
    // v2.3/2.4: ERR-1 is segment^sequence^field; v2.5+: ERR-2 holds the location.
    bool named = r.ack.find("ERR|" + seg) != std::string::npos || r.ack.find("ERR||" + seg) != std::string::npos;
    EXPECT_TRUE(named) << e.path().filename() << " expected " << where << "\n" << r.ack;
  }
  EXPECT_GE(n, 20);
  auto admin = gw_->client("admin");
  auto list = admin.request("GET", "/admin/quarantine?_count=500");
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->status, 200) << list->body;
  auto d = json::parse(list->body);
  EXPECT_GE((*d)["count"].GetInt(), n);
}

TEST_F(Hl7IngestTest, TheSameMessageTwiceIsAcknowledgedTwiceAndStoredOnce) {
  std::string raw = variant(read_file(fixtures() / "adt_a31_update.hl7"), "DUP-0001");
  auto a = ingest(raw);
  auto b = ingest(raw);
  EXPECT_EQ(msa(a.ack).first, "AA");
  EXPECT_EQ(msa(b.ack).first, "AA");
  EXPECT_EQ(b.outcome, Outcome::duplicate);
  EXPECT_EQ(msa(b.ack).second, "DUP-0001");
  // From another sender the same control id is a different message.
  auto c = ingest(raw, "Y99999");
  EXPECT_EQ(c.outcome, Outcome::accepted);
}

TEST_F(Hl7IngestTest, AnOlderMessageDoesNotOverwriteNewerDemographics) {
  std::string base = read_file(fixtures() / "adt_a31_update.hl7");
  auto m = hl7::Message::parse(std::string_view(base));
  std::string nhs(m->segment("PID").field(3).repetition(0).component(1).raw());
  std::string ts(m->msh().field(7).raw());
  const std::string fresh_nhs = "9434765870";
  std::string newer = variant(base, "OOO-NEW", {{nhs, fresh_nhs}, {ts, "20270101120000+0000"}});
  std::string older = variant(base, "OOO-OLD", {{nhs, fresh_nhs}, {ts, "20250101120000+0000"}});
  // The older one says a different family name.
  auto pid = hl7::Message::parse(std::string_view(older))->segment("PID");
  std::string family(pid.field(5).component(1).raw());
  older.replace(older.find(family), family.size(), "OLDNAME");
  ASSERT_EQ(ingest(newer).outcome, Outcome::accepted);
  auto r = ingest(older);
  EXPECT_EQ(r.outcome, Outcome::accepted);
  auto p = get(patient_search(fresh_nhs));
  ASSERT_EQ(p["total"].GetInt(), 1);
  std::string stored = json::to_string(p["entry"][0]["resource"]);
  EXPECT_EQ(stored.find("OLDNAME"), std::string::npos) << stored;
}

TEST_F(Hl7IngestTest, AfterAMergeMessagesForTheOldNumberReachTheSurvivor) {
  ASSERT_EQ(ingest(variant(read_file(fixtures() / "adt_a40_merge.hl7"), "MRG-T1")).outcome, Outcome::accepted);
  auto survivor = get(patient_search("9990395950"));
  ASSERT_EQ(survivor["total"].GetInt(), 1);
  std::string sid(json::get_string(survivor["entry"][0]["resource"], "id").value_or(""));
  auto old = get(patient_search("9990316767"));
  ASSERT_EQ(old["total"].GetInt(), 1);
  std::string old_json = json::to_string(old["entry"][0]["resource"]);
  EXPECT_NE(old_json.find("replaced-by"), std::string::npos) << old_json;
  EXPECT_NE(old_json.find("Patient/" + sid), std::string::npos) << old_json;

  // An attendance for the old number arrives afterwards.
  std::string a04 = read_file(fixtures() / "adt_a04_ed_adult_overdose.hl7");
  auto m = hl7::Message::parse(std::string_view(a04));
  std::string nhs(m->segment("PID").field(3).repetition(0).component(1).raw());
  ASSERT_EQ(ingest(variant(a04, "MRG-T2", {{nhs, "9990316767"}})).outcome, Outcome::accepted);
  EXPECT_GE(total("/fhir/Encounter?subject=Patient/" + sid), 1);
  std::string oid(json::get_string(old["entry"][0]["resource"], "id").value_or(""));
  EXPECT_EQ(total("/fhir/Encounter?subject=Patient/" + oid), 0);
}

// Issue 12: a demographic message naming a number merged away used to be
// acknowledged AA while neither record changed (its Patient entry was dropped).
TEST_F(Hl7IngestTest, AfterAMergeANewerDemographicMessageForTheOldNumberUpdatesTheSurvivor) {
  const std::string retired = "9434766028", kept = "9434766036";
  std::string a28 = read_file(fixtures() / "adt_a31_update.hl7");
  std::string a28_nhs(hl7::Message::parse(std::string_view(a28))->segment("PID").field(3).repetition(0).component(1).raw());
  std::string a28_ts(hl7::Message::parse(std::string_view(a28))->msh().field(7).raw());
  ASSERT_EQ(ingest(variant(a28, "SRV-A28", {{a28_nhs, retired}, {a28_ts, "20261101090000+0000"}})).outcome,
            Outcome::accepted);
  // The A40 (MSH-7 2026-11-06) merges the retired number into the kept one.
  std::string a40 = read_file(fixtures() / "adt_a40_merge.hl7");
  ASSERT_EQ(ingest(variant(a40, "SRV-A40", {{"9990395950", kept}, {"9990316767", retired}})).outcome,
            Outcome::accepted);
  auto survivor = get(patient_search(kept));
  ASSERT_EQ(survivor["total"].GetInt(), 1);
  std::string sid(json::get_string(survivor["entry"][0]["resource"], "id").value_or(""));
  std::string before = json::to_string(survivor["entry"][0]["resource"]);
  ASSERT_EQ(before.find("NEWFAMILY"), std::string::npos);

  // A newer A31 that still names the retired number, with a new family name.
  std::string a31 = read_file(fixtures() / "adt_a31_update.hl7");
  auto pid = hl7::Message::parse(std::string_view(a31))->segment("PID");
  std::string nhs(pid.field(3).repetition(0).component(1).raw());
  std::string family(pid.field(5).component(1).raw());
  std::string ts(hl7::Message::parse(std::string_view(a31))->msh().field(7).raw());
  IngestResult r = ingest(variant(a31, "SRV-A31", {{nhs, retired}, {family, "NEWFAMILY"}, {ts, "20261120100000+0000"}}));
  ASSERT_EQ(r.outcome, Outcome::accepted) << r.ack;
  EXPECT_NE(r.ack.find("surviving record"), std::string::npos) << r.ack;

  // The survivor carries the new demographics and keeps its own NHS number.
  survivor = get(patient_search(kept));
  ASSERT_EQ(survivor["total"].GetInt(), 1);
  EXPECT_EQ(std::string(json::get_string(survivor["entry"][0]["resource"], "id").value_or("")), sid);
  std::string after = json::to_string(survivor["entry"][0]["resource"]);
  EXPECT_NE(after.find("NEWFAMILY"), std::string::npos) << after;
  EXPECT_NE(after.find(kept), std::string::npos) << after;
  EXPECT_EQ(after.find("\"value\":\"" + retired + "\""), std::string::npos) << "the survivor took the retired number\n"
                                                                            << after;
  // The retired record is still merged away and unchanged in name.
  auto old = get(patient_search(retired));
  ASSERT_EQ(old["total"].GetInt(), 1);
  std::string old_json = json::to_string(old["entry"][0]["resource"]);
  EXPECT_NE(old_json.find("replaced-by"), std::string::npos) << old_json;
  EXPECT_EQ(old_json.find("NEWFAMILY"), std::string::npos) << old_json;

  // An older message for the retired number changes nothing.
  r = ingest(variant(a31, "SRV-A31-OLD", {{nhs, retired}, {family, "OLDERNAME"}, {ts, "20261102100000+0000"}}));
  ASSERT_EQ(r.outcome, Outcome::accepted) << r.ack;
  after = json::to_string(get(patient_search(kept))["entry"][0]["resource"]);
  EXPECT_EQ(after.find("OLDERNAME"), std::string::npos) << after;
  EXPECT_NE(after.find("NEWFAMILY"), std::string::npos) << after;
}

TEST_F(Hl7IngestTest, AFamilyLinkFromBothRecordsIsOneLink) {
  ingest(variant(read_file(fixtures() / "adt_a28_child.hl7"), "FAM-1"));
  ingest(variant(read_file(fixtures() / "adt_a28_parent.hl7"), "FAM-2"));
  auto d = get("/fhir/RelatedPerson?identifier=https://cpis-gateway.nhs.uk/Id/family-link%7C9990237573-9990079196");
  EXPECT_EQ(d["total"].GetInt(), 1);
}

TEST_F(Hl7IngestTest, AQuarantinedMessageIsReplayedOnceItsMappingWorks) {
  // A message quarantined under an earlier mapping: kept as it arrived.
  std::string good = variant(read_file(fixtures() / "adt_a28_child.hl7"), "REPLAY-1",
                             {{"9990237573", "9434765919"}});
  store::UnitOfWork u;
  store::InboundRow m;
  m.adapter = "systmone";
  m.channel = "mllp";
  m.sender_ods = "RXX";
  m.sender_system = "test-feed";
  m.control_id = "REPLAY-1";
  m.status = "quarantined";
  m.reason = "ZCT-1: unknown role (mapping since fixed)";
  m.issues_json = "[]";
  m.raw = good;
  u.inbound.push_back(m);
  std::promise<int64_t> p;
  auto f = p.get_future();
  ASSERT_TRUE(gw_->store().commit(std::move(u), [&p](Result<store::CommitOutcome> r) {
    p.set_value(r ? r->inbound_ids.at(0) : -1);
  }).has_value());
  int64_t id = f.get();
  ASSERT_GT(id, 0);

  auto gp = gw_->client("gp");
  EXPECT_EQ(gp.request("POST", "/admin/quarantine/" + std::to_string(id) + "/replay")->status, 403);
  auto admin = gw_->client("admin");
  auto r = admin.request("POST", "/admin/quarantine/" + std::to_string(id) + "/replay");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(total(patient_search("9434765919")), 1);
  auto row = admin.request("GET", "/admin/quarantine/" + std::to_string(id));
  ASSERT_EQ(row->status, 200);
  EXPECT_NE(row->body.find("\"status\":\"replayed\""), std::string::npos) << row->body;
  EXPECT_NE(row->body.find("\"raw_base64\""), std::string::npos);
  // Replaying again: it is no longer quarantined.
  EXPECT_EQ(admin.request("POST", "/admin/quarantine/" + std::to_string(id) + "/replay")->status, 409);

  // A message that still fails stays quarantined.
  IngestResult bad = ingest(read_file(fixtures() / "broken/bad_nhs_checksum.hl7"));
  ASSERT_GT(bad.inbound_id, 0);
  auto again = admin.request("POST", "/admin/quarantine/" + std::to_string(bad.inbound_id) + "/replay");
  EXPECT_EQ(again->status, 422) << again->body;
  EXPECT_NE(admin.request("GET", "/admin/quarantine/" + std::to_string(bad.inbound_id))->body.find("\"status\":\"quarantined\""),
            std::string::npos);

  // Who asked for each replay is in the trail (committed before the answer),
  // and the replayed message's own rows say it came through replay.
  auto replays = [&](const std::string& entity, const std::string& outcome) {
    store::AuditQuery q;
    q.actions = {"replay"};
    q.entities = {entity};
    q.outcomes = {outcome};
    q.agents = {"RXX"};  // the admin certificate's organisation
    auto page = gw_->store().search_audit(q);
    EXPECT_TRUE(page.has_value());
    return page ? page->total.value_or(-1) : -1;
  };
  EXPECT_EQ(replays("inbound/" + std::to_string(id), "success"), 1);
  EXPECT_EQ(replays("inbound/" + std::to_string(bad.inbound_id), "failure"), 1);
  store::AuditQuery by_channel;
  by_channel.channels = {"replay"};
  by_channel.actions = {"transaction"};
  EXPECT_GE(gw_->store().search_audit(by_channel)->total.value_or(0), 1);
}

TEST_F(Hl7IngestTest, HttpBatchFileAnswersPerMessage) {
  std::string a = variant(read_file(fixtures() / "adt_a31_update.hl7"), "BATCH-1");
  std::string b = read_file(fixtures() / "broken/bad_nhs_checksum.hl7");
  std::string c = variant(read_file(fixtures() / "adt_a08_update.hl7"), "BATCH-3");
  auto trim = [](std::string s) {
    while (!s.empty() && (s.back() == '\r' || s.back() == '\n')) s.pop_back();
    return s + "\r";
  };
  std::string file = "FHS|^~\\&|SYSTMONE|RXX\rBHS|^~\\&|SYSTMONE|RXX\r" + trim(a) + trim(b) + trim(c) + "BTS|3\rFTS|1\r";
  auto integ = gw_->client("integration");
  auto r = integ.request("POST", "/ingest/systmone", file, {{"Content-Type", "application/hl7-v2"}});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200) << r->body;  // two of three accepted: the body says which one was not
  auto d = json::parse(r->body);
  ASSERT_TRUE(d.has_value()) << r->body;
  EXPECT_EQ((*d)["messages"].GetInt(), 3);
  EXPECT_EQ((*d)["accepted"].GetInt(), 2);
  const auto& res = (*d)["results"];
  EXPECT_EQ(std::string(json::get_string(res[0], "ack_code").value_or("")), "AA");
  EXPECT_EQ(std::string(json::get_string(res[1], "ack_code").value_or("")), "AE");
  EXPECT_NE(json::to_string(res[1]["issues"]).find("PID-3"), std::string::npos) << r->body;
  EXPECT_EQ(std::string(json::get_string(res[2], "ack_code").value_or("")), "AA");

  auto bad_count = integ.request("POST", "/ingest/systmone", "FHS|^~\\&|X\rBHS|^~\\&|X\r" + trim(a) + "BTS|7\rFTS|1\r");
  EXPECT_EQ(bad_count->status, 400) << bad_count->body;
  EXPECT_NE(bad_count->body.find("kept as inbound message"), std::string::npos) << bad_count->body;

  auto gp = gw_->client("gp");
  EXPECT_EQ(gp.request("POST", "/ingest/systmone", a)->status, 403);
  EXPECT_EQ(integ.request("POST", "/ingest/nosuch", a)->status, 404);
}

}  // namespace
}  // namespace gw
