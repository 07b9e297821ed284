// The CP-IS upload adapter alone: every row rule, the mapping to the plan
// model, and the answer's shape (no store, no HTTP).
#include "adapters/cpis/cpis_upload_adapter.h"

#include <gtest/gtest.h>

#include <sstream>

#include "gateway/common/json.h"
#include "tests/support/fixtures.h"

namespace gw::adapters::cpis {
namespace {

const std::string kHeader =
    "LocalChildID,NHSNumber,FamilyName,GivenName,DateOfBirth,PlanType,StartDate,EndDate,DeleteDate,LAODS,LAName,"
    "OfficePhone,EmergencyPhone,LACLegalStatus\n";
const std::string kGood = "C-1,9990237573,THOMPSON,Ellie,2019-05-06,CPP,2026-11-04,,,LA372,Rotherham,01709 1,01709 336080,\n";
const UploadContext kLa372{"LA372", "2026-11-27"};

// The sample of formats/README.md §4, as shipped with the format description.
std::string sample() { return test::fixture("cpis/upload_sample.csv"); }

const CpisUploadAdapter& adapter() {
  static AdapterPtr a = std::move(*CpisUploadAdapter::create());
  return static_cast<const CpisUploadAdapter&>(*a);
}

// kGood with one column (by header index) replaced.
std::string row_with(int column, const std::string& value) {
  std::vector<std::string> f;
  std::stringstream ss(kGood.substr(0, kGood.size() - 1));
  std::string x;
  while (std::getline(ss, x, ',')) f.push_back(x);
  while (f.size() < 14) f.emplace_back();
  f[column] = value;
  std::string out;
  for (size_t i = 0; i < f.size(); ++i) out += (i ? "," : "") + f[i];
  return out + "\n";
}

TEST(CpisUploadAdapter, TheSampleFileGivesThreeAcceptedAndRmbc0004RejectedForTheEmergencyNumber) {
  std::string raw = sample();
  ASSERT_FALSE(raw.empty()) << "the shared sample is missing";
  auto parsed = adapter().parse_records(raw, kLa372);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  ASSERT_EQ(parsed->records.size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(parsed->records[i].accepted()) << parsed->records[i].local_child_id;
  const UploadRecord& bad = parsed->records[3];
  EXPECT_EQ(bad.local_child_id, "RMBC-0004");
  EXPECT_EQ(bad.row, 5u);
  // The sample's RMBC-0004 also fails the Modulus 11 check (check digit 0, not 9).
  ASSERT_EQ(bad.problems.size(), 2u);
  EXPECT_EQ(bad.problems[0].column, "NHSNumber");
  EXPECT_EQ(bad.problems[1].column, "EmergencyPhone");
  EXPECT_EQ(bad.problems[1].code, "required");
}

TEST(CpisUploadAdapter, EachRuleRejectsItsRow) {
  struct Case {
    int column;
    std::string value;
    std::string problem_column;
    std::string code;
  };
  const Case cases[] = {
      {1, "", "NHSNumber", "required"},
      {1, "9990237574", "NHSNumber", "value"},            // Modulus 11 fails
      {1, "999023757", "NHSNumber", "value"},             // nine digits
      {5, "XYZ", "PlanType", "code-invalid"},
      {5, "", "PlanType", "required"},
      {6, "", "StartDate", "required"},
      {6, "2026-02-30", "StartDate", "value"},
      {6, "04/11/2026", "StartDate", "value"},
      {7, "2026-11-03", "EndDate", "value"},              // before StartDate
      {8, "yesterday", "DeleteDate", "value"},
      {9, "LA999", "LAODS", "forbidden"},                 // not the certificate's organisation
      {9, "", "LAODS", "required"},
      {12, "", "EmergencyPhone", "required"},
      {12, "call the office", "EmergencyPhone", "value"},
      {11, "n/a", "OfficePhone", "value"},
      {13, "C2", "LACLegalStatus", "value"},              // a CPP row
      {0, "", "LocalChildID", "required"},
      {0, "A|B", "LocalChildID", "value"},
      {4, "2019-13-01", "DateOfBirth", "value"},
  };
  for (const auto& c : cases) {
    auto parsed = adapter().parse_records(kHeader + row_with(c.column, c.value), kLa372);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
    const UploadRecord& r = parsed->records.at(0);
    ASSERT_FALSE(r.accepted()) << c.problem_column << "=" << c.value;
    EXPECT_EQ(r.problems[0].column, c.problem_column) << c.value;
    EXPECT_EQ(r.problems[0].code, c.code) << c.problem_column << "=" << c.value;
    // The answer never repeats a value the row holds.
    if (!c.value.empty()) {
      EXPECT_EQ(r.problems[0].message.find(c.value), std::string::npos) << r.problems[0].message;
    }
  }
  // LAC with an unknown legal status; LAC with a good one passes.
  std::string lac = row_with(5, "LAC");
  auto bad = adapter().parse_records(kHeader + lac.substr(0, lac.size() - 1) + "X9\n", kLa372);
  EXPECT_EQ(bad->records.at(0).problems.at(0).code, "code-invalid");
  auto good = adapter().parse_records(kHeader + lac.substr(0, lac.size() - 1) + "V2\n", kLa372);
  EXPECT_TRUE(good->records.at(0).accepted());
}

TEST(CpisUploadAdapter, AnEndedPlanIsAcceptedAndInactiveAndAWithdrawalIsEnteredInError) {
  auto ended = adapter().parse_records(kHeader + row_with(7, "2026-11-20"), kLa372);
  ASSERT_TRUE(ended->records.at(0).accepted());
  EXPECT_NE(ended->records[0].plan.json.find("\"status\":\"inactive\""), std::string::npos);
  auto future = adapter().parse_records(kHeader + row_with(7, "2027-11-20"), kLa372);
  EXPECT_NE(future->records.at(0).plan.json.find("\"status\":\"active\""), std::string::npos);
  auto withdrawn = adapter().parse_records(kHeader + row_with(8, "2026-11-26"), kLa372);
  ASSERT_TRUE(withdrawn->records.at(0).accepted());
  EXPECT_TRUE(withdrawn->records[0].withdrawal);
  EXPECT_NE(withdrawn->records[0].plan.json.find("\"status\":\"entered-in-error\""), std::string::npos);
}

TEST(CpisUploadAdapter, ARowMapsToAConditionalPatientAndAPlanOnItsIdentifier) {
  auto parsed = adapter().parse_records(kHeader + kGood, kLa372);
  const UploadRecord& r = parsed->records.at(0);
  ASSERT_TRUE(r.accepted());
  EXPECT_EQ(r.plan_identifier, "LA372|C-1|CPP");
  auto plan = json::parse(r.plan.json);
  ASSERT_TRUE(plan.has_value());
  const json::Value& req = (*plan)["request"];
  EXPECT_EQ(json::as_view(req["method"]), "PUT");
  EXPECT_EQ(json::as_view(req["url"]),
            "CareTeam?identifier=https://cpis-gateway.nhs.uk/Id/cpis-plan%7CLA372%5C%7CC-1%5C%7CCPP");
  const json::Value& ct = (*plan)["resource"];
  EXPECT_EQ(json::as_view(ct["category"][0]["coding"][0]["code"]), "342191000000101");
  EXPECT_EQ(json::as_view(ct["managingOrganization"][0]["identifier"]["value"]), "LA372");
  EXPECT_EQ(json::as_view(ct["telecom"][0]["extension"][0]["valueCode"]), "emergency-duty");
  EXPECT_EQ(json::as_view(ct["telecom"][0]["value"]), "01709 336080");
  EXPECT_EQ(json::as_view(ct["telecom"][1]["extension"][0]["valueCode"]), "office-hours");
  EXPECT_EQ(json::as_view(ct["subject"]["reference"]), r.patient.full_url);
  auto patient = json::parse(r.patient.json);
  EXPECT_EQ(json::as_view((*patient)["request"]["ifNoneExist"]),
            "identifier=https://fhir.nhs.uk/Id/nhs-number%7C9990237573");
  EXPECT_EQ(json::as_view((*patient)["resource"]["birthDate"]), "2019-05-06");
}

TEST(CpisUploadAdapter, TwoPlansForOnePersonShareOnePatientEntry) {
  std::string second = row_with(5, "LAC");
  auto parsed = adapter().parse_records(kHeader + kGood + second, kLa372);
  ASSERT_TRUE(parsed->records.at(1).accepted());
  auto bundle = json::parse(CpisUploadAdapter::bundle_of(parsed->records).json);
  const json::Value& e = (*bundle)["entry"];
  ASSERT_EQ(e.Size(), 3u);
  EXPECT_EQ(json::as_view(e[2]["resource"]["subject"]["reference"]), json::as_view(e[0]["fullUrl"]));
}

TEST(CpisUploadAdapter, APlanSentTwiceInOneFileIsRejectedTheSecondTime) {
  auto parsed = adapter().parse_records(kHeader + kGood + row_with(7, "2026-11-20"), kLa372);
  ASSERT_EQ(parsed->records.size(), 2u);
  EXPECT_TRUE(parsed->records[0].accepted());
  ASSERT_FALSE(parsed->records[1].accepted());
  EXPECT_EQ(parsed->records[1].problems[0].code, "duplicate");
  EXPECT_NE(parsed->records[1].problems[0].message.find("row 2"), std::string::npos);
  EXPECT_TRUE(parsed->records[1].plan.json.empty());
  auto bundle = json::parse(CpisUploadAdapter::bundle_of(parsed->records).json);
  EXPECT_EQ((*bundle)["entry"].Size(), 2u);
}

TEST(CpisUploadAdapter, FileLevelProblemsNameTheRow) {
  EXPECT_FALSE(adapter().parse_records("", kLa372).has_value());
  EXPECT_FALSE(adapter().parse_records(kHeader, kLa372).has_value());
  auto missing = adapter().parse_records("LocalChildID,NHSNumber\nX,1\n", kLa372);
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("PlanType"), std::string::npos);
  auto unknown = adapter().parse_records(kHeader.substr(0, kHeader.size() - 1) + ",Colour\n" + kGood, kLa372);
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().expression, "row 1");
  auto short_row = adapter().parse_records(kHeader + "C-9,9990237573\n", kLa372);
  ASSERT_TRUE(short_row.has_value());
  EXPECT_EQ(short_row->records.at(0).local_child_id, "C-9");
  EXPECT_EQ(short_row->records.at(0).problems.at(0).code, "structure");
}

TEST(CpisUploadAdapter, TheAnswerHasOneIssuePerRecordAndASummaryWithoutNhsNumbers) {
  auto parsed = adapter().parse_records(sample(), kLa372);
  ASSERT_TRUE(parsed.has_value());
  auto oo = json::parse(CpisUploadAdapter::outcome(parsed->records, Totals{1, false}));
  ASSERT_TRUE(oo.has_value());
  const json::Value& issues = (*oo)["issue"];
  ASSERT_EQ(issues.Size(), 5u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(json::as_view(issues[i]["severity"]), "information");
    EXPECT_EQ(json::as_view(issues[i]["details"]["coding"][0]["code"]), "CPR06");
  }
  EXPECT_EQ(json::as_view(issues[3]["severity"]), "error");
  EXPECT_EQ(json::as_view(issues[3]["details"]["coding"][0]["code"]), "CPR07");
  ASSERT_EQ(issues[3]["expression"].Size(), 2u);
  EXPECT_EQ(json::as_view(issues[3]["expression"][0]), "row 5.NHSNumber");
  EXPECT_EQ(json::as_view(issues[3]["expression"][1]), "row 5.EmergencyPhone");
  std::string why(json::as_view(issues[3]["diagnostics"]));
  EXPECT_NE(why.find("row 5, LocalChildID RMBC-0004: rejected"), std::string::npos) << why;
  EXPECT_NE(why.find("EmergencyPhone (the emergency-duty, out-of-hours number) is required"), std::string::npos) << why;
  EXPECT_EQ(json::as_view(issues[4]["code"]), "informational");
  std::string summary(json::as_view(issues[4]["diagnostics"]));
  EXPECT_NE(summary.find("1 of 4 (25.0 %)"), std::string::npos) << summary;
  EXPECT_NE(summary.find("below the 95 %"), std::string::npos) << summary;
  std::string text = CpisUploadAdapter::outcome(parsed->records, Totals{4, false});
  EXPECT_EQ(text.find("below the 95"), std::string::npos);
  for (const char* nhs : {"9990237573", "9990554331", "9990079196", "9219068409"})
    EXPECT_EQ(text.find(nhs), std::string::npos) << nhs;
}

}  // namespace
}  // namespace gw::adapters::cpis
