// Golden tests for the CASH/GUM CSV adapter: every tests/fixtures/cashgum/<case>.csv
// is read with parse_rows; <case>.rows.txt holds the expected per-row statuses
// and issues (or the file-level error), <case>.fhir.json the expected
// transaction Bundle (output is deterministic: no urn:uuid normalisation).
// Every emitted resource must pass the project Validator; every resource but
// the safeguarding-concern Flag must carry R + STD + SEX; the Flag must carry
// none of the clinical detail. GW_UPDATE_GOLDEN=1 rewrites the expected files
// (review the diff!).
#include "adapters/cashgum/cashgum_adapter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "adapters/registry.h"
#include "gateway/common/json.h"
#include "gateway/write/validation.h"

namespace gw::adapters::cashgum {
namespace {

namespace fs = std::filesystem;
using namespace gw::adapters::csv;  // the shared reader (adapters/csv) is tested here with its first user
const std::string kFixtures = GW_SOURCE_DIR "/tests/fixtures/cashgum";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool update_golden() { return std::getenv("GW_UPDATE_GOLDEN") != nullptr; }

std::string rows_text(const Result<CsvParseResult>& r) {
  if (!r) return "FILE ERROR " + r.error().expression + ": " + r.error().message + "\n";
  std::string out;
  for (const auto& i : r->file_issues) out += std::string("file ") + severity_name(i.severity) + " " + i.code + ": " + i.message + "\n";
  for (const auto& row : r->rows) {
    out += "row " + std::to_string(row.row) + " " + row_status_name(row.status) + " entries=" +
           std::to_string(row.entries.size()) + (row.concern ? " concern" : "") + "\n";
    for (const auto& i : row.issues)
      out += std::string("  ") + severity_name(i.severity) + " " + i.code + " " + i.expression + ": " + i.message + "\n";
  }
  return out;
}

std::string pretty_json(const std::string& compact) {
  // One entry per line keeps goldens reviewable without a pretty-printer dependency.
  std::string out;
  int depth = 0;
  bool in_str = false;
  for (std::size_t i = 0; i < compact.size(); ++i) {
    char c = compact[i];
    out += c;
    if (in_str) {
      if (c == '\\') out += compact[++i];
      else if (c == '"') in_str = false;
      continue;
    }
    if (c == '"') in_str = true;
    else if (c == '[' || c == '{') ++depth;
    else if (c == ']' || c == '}') --depth;
    else if (c == ',' && depth <= 3) out += '\n';
  }
  return out + "\n";
}

class CashGumTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto a = CashGumAdapter::create(GW_SOURCE_DIR "/profiles");
    ASSERT_TRUE(a) << a.error().message;
    adapter_ = static_cast<CashGumAdapter*>(a->release());
    auto v = write::Validator::load(GW_SOURCE_DIR "/profiles");
    ASSERT_TRUE(v) << v.error().message;
    validator_ = new write::Validator(std::move(*v));
  }
  static void TearDownTestSuite() {
    delete adapter_;
    delete validator_;
  }
  static CashGumAdapter* adapter_;
  static write::Validator* validator_;
};
CashGumAdapter* CashGumTest::adapter_ = nullptr;
write::Validator* CashGumTest::validator_ = nullptr;

std::vector<fs::path> cases() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(kFixtures))
    if (e.path().extension() == ".csv") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

bool has_coding(const json::Value& arr, std::string_view system, std::string_view code) {
  if (!arr.IsArray()) return false;
  for (const auto& c : arr.GetArray())
    if (json::get_string(c, "system") == system && json::get_string(c, "code") == code) return true;
  return false;
}

constexpr std::string_view kConf = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
constexpr std::string_view kAct = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

// Checks every entry of a parsed file: validation, labels, the concern's content.
void check_entries(const CsvParseResult& r, const write::Validator& validator, const std::string& label) {
  for (const auto& row : r.rows) {
    if (row.status == RowStatus::rejected) {
      EXPECT_TRUE(row.entries.empty()) << label << " row " << row.row;
    }
    int flags = 0;
    for (const auto& e : row.entries) {
      auto doc = json::parse(e.json);
      ASSERT_TRUE(doc) << label << " " << e.json;
      const json::Value* res = json::member(*doc, "resource");
      ASSERT_NE(res, nullptr);
      IssueSink s;
      validator.validate(*res, s);
      std::string why;
      for (const auto& i : s.issues()) why += i.expression + ": " + i.message + "\n";
      EXPECT_FALSE(s.has_errors()) << label << " row " << row.row << " " << e.json << "\n" << why;
      EXPECT_EQ(json::get_string(*doc, "fullUrl").value_or(""), e.full_url);
      const json::Value* req = json::member(*doc, "request");
      ASSERT_NE(req, nullptr);
      EXPECT_EQ(json::get_string(*req, "method").value_or(""), "PUT");
      std::string type(json::get_string(*res, "resourceType").value_or(""));
      const json::Value* meta = json::member(*res, "meta");
      ASSERT_NE(meta, nullptr) << label;
      const json::Value* sec = json::member(*meta, "security");
      if (type == "Flag") {
        ++flags;
        // The disclosable part: no label that would hide it, the disclosure tag,
        // and nothing of the clinical record.
        EXPECT_EQ(sec, nullptr) << label << " " << e.json;
        const json::Value* tag = json::member(*meta, "tag");
        ASSERT_NE(tag, nullptr);
        EXPECT_TRUE(has_coding(*tag, "urn:cpis-gateway:disclosure", "safeguarding-concern"));
        std::set<std::string> allowed = {"resourceType", "meta", "extension", "identifier", "status",
                                         "category",     "code", "subject",   "period",     "author"};
        for (auto it = res->MemberBegin(); it != res->MemberEnd(); ++it)
          EXPECT_TRUE(allowed.count(std::string(json::as_view(it->name)))) << json::as_view(it->name);
        for (std::string_view banned : {"shhapt", "snomed.info/sct|", "Encounter", "\"STD\"", "\"SEX\"", "\"HIV\"",
                                        "cashgum-activity", "cashgum-risk-assessment", "SH-RISK-ASSESSMENT", "laboratory",
                                        "procedure", "birthDate", "gender", "E08000018", "MULTIPLE_STI"})
          EXPECT_EQ(json::to_string(*res).find(banned), std::string::npos) << banned << " in " << e.json;
        // Only the one SNOMED CT concept of the concern itself.
        const json::Value* code = json::member(*res, "code");
        for (const auto& c : json::member(*code, "coding")->GetArray())
          if (json::get_string(c, "system") == "http://snomed.info/sct") {
            EXPECT_EQ(json::get_string(c, "code").value_or(""), "836881000000105");
          }
      } else {
        ASSERT_NE(sec, nullptr) << label << " " << e.json;
        EXPECT_TRUE(has_coding(*sec, kConf, "R")) << e.json;
        EXPECT_TRUE(has_coding(*sec, kAct, "STD")) << e.json;
        EXPECT_TRUE(has_coding(*sec, kAct, "SEX")) << e.json;
        EXPECT_EQ(json::member(*meta, "tag") != nullptr && has_coding(*json::member(*meta, "tag"), "urn:cpis-gateway:disclosure", "safeguarding-concern"), false);
      }
    }
    EXPECT_EQ(flags, row.concern ? 1 : 0) << label << " row " << row.row;
  }
}

// No issue may repeat a patient identifier: the fixtures' PatientIDs look like
// GUM-2026-... / SRH-2026-... and NHS numbers are ten digits.
void check_no_identifiers(const std::string& text, const std::string& label) {
  static const std::regex id("(GUM|SRH)-20[0-9]{2}-[0-9]|[0-9]{10}|999 047");
  EXPECT_FALSE(std::regex_search(text, id)) << label << ": an identifier in an issue:\n" << text;
}

TEST_F(CashGumTest, FormatIdAndRegistry) {
  EXPECT_EQ(adapter_->format_id(), "cashgum");
  auto r = make_registry(GW_SOURCE_DIR "/profiles");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_NE((*r)->find("cashgum"), nullptr);
  EXPECT_NE((*r)->find("systmone"), nullptr);
}

TEST_F(CashGumTest, GoldenFixtures) {
  auto all = cases();
  ASSERT_GE(all.size(), 20u);
  for (const auto& csv : all) {
    std::string name = csv.stem().string();
    SCOPED_TRACE(name);
    std::string raw = slurp(csv);
    auto r = adapter_->parse_rows(raw);
    std::string rows = rows_text(r);
    check_no_identifiers(rows, name);
    fs::path rows_file = csv.parent_path() / (name + ".rows.txt");
    fs::path fhir_file = csv.parent_path() / (name + ".fhir.json");
    if (update_golden()) {
      std::ofstream(rows_file, std::ios::binary) << rows;
      if (r) std::ofstream(fhir_file, std::ios::binary) << pretty_json(CashGumAdapter::bundle_of(*r).json);
    }
    ASSERT_TRUE(fs::exists(rows_file)) << rows_file;
    EXPECT_EQ(rows, slurp(rows_file));
    if (!r) {
      EXPECT_FALSE(fs::exists(fhir_file)) << "a file-level error maps nothing";
      continue;
    }
    check_entries(*r, *validator_, name);
    ASSERT_TRUE(fs::exists(fhir_file)) << fhir_file;
    auto want = json::parse(slurp(fhir_file));
    ASSERT_TRUE(want) << want.error().message;
    IssueSink sink;
    auto got = adapter_->parse(raw, sink);
    ASSERT_TRUE(got);
    auto got_doc = json::parse(got->json);
    ASSERT_TRUE(got_doc);
    EXPECT_TRUE(*got_doc == *want) << name << "\n" << got->json;
    // The count the ingest route uses instead of parsing the Bundle again.
    const json::Value* entry = json::member(*got_doc, "entry");
    ASSERT_TRUE(got->entries.has_value());
    EXPECT_EQ(*got->entries, entry ? entry->Size() : 0u) << name;
    std::string all_issues;
    for (const auto& i : sink.issues()) all_issues += i.expression + " " + i.message + "\n";
    check_no_identifiers(all_issues, name);
  }
}

TEST_F(CashGumTest, SampleRowsAndConcerns) {
  auto r = adapter_->parse_rows(slurp(kFixtures + "/gumcad_sample.csv"));
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->rows.size(), 4u);
  EXPECT_EQ(r->kind, FileKind::gumcad);
  // The header is row 1.
  EXPECT_EQ(r->rows[0].row, 2u);
  EXPECT_EQ(r->rows[0].status, RowStatus::unmatched);
  EXPECT_EQ(r->rows[1].status, RowStatus::accepted);
  EXPECT_FALSE(r->rows[0].concern);
  EXPECT_FALSE(r->rows[1].concern);
  // Row 4: CSE_RISK, aged 16, referred to social care -> GP, school nursing and the local authority.
  ASSERT_TRUE(r->rows[2].concern);
  const std::string& flag = r->rows[2].entries.back().json;
  EXPECT_NE(flag.find("\"valueCode\":\"gp\""), std::string::npos);
  EXPECT_NE(flag.find("\"valueCode\":\"school-nursing\""), std::string::npos);
  EXPECT_NE(flag.find("\"valueCode\":\"local-authority\""), std::string::npos);
  EXPECT_NE(flag.find("MISSING_FROM_HOME"), std::string::npos);
  EXPECT_NE(flag.find("\"system\":\"https://fhir.nhs.uk/Id/nhs-number\",\"value\":\"9990475148\""), std::string::npos);
  // Row 5: CONCERN_ADVICE, aged 15 by Age, not referred -> GP and school nursing only.
  ASSERT_TRUE(r->rows[3].concern);
  const std::string& flag5 = r->rows[3].entries.back().json;
  EXPECT_NE(flag5.find("\"valueCode\":\"gp\""), std::string::npos);
  EXPECT_EQ(flag5.find("local-authority"), std::string::npos);
  EXPECT_NE(flag5.find("Smith, Dr K"), std::string::npos);
}

TEST_F(CashGumTest, AdultNoConcernAndUnknownAgeDiscloseNothing) {
  for (const char* f : {"adult_concern.csv", "no_concern.csv", "age_unknown_concern.csv"}) {
    auto r = adapter_->parse_rows(slurp(kFixtures + "/" + f));
    ASSERT_TRUE(r) << f;
    for (const auto& row : r->rows) {
      EXPECT_NE(row.status, RowStatus::rejected) << f;
      EXPECT_FALSE(row.concern) << f << " row " << row.row;
      for (const auto& e : row.entries) EXPECT_EQ(e.json.find("\"Flag\""), std::string::npos);
    }
  }
  auto r = adapter_->parse_rows(slurp(kFixtures + "/age_unknown_concern.csv"));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->rows.size(), 1u);
  bool warned = false;
  for (const auto& i : r->rows[0].issues) warned |= i.expression == "row 2.Age" && i.severity == Severity::warning;
  EXPECT_TRUE(warned);
}

TEST_F(CashGumTest, Under18ByDateOfBirthOnTheDay) {
  // Born 2009-11-03, seen 2026-11-02: 16, a day short of 17 -> under 18; born
  // 2008-11-02 and seen 2026-11-02: 18 that day -> adult.
  auto r = adapter_->parse_rows(slurp(kFixtures + "/under18_concern_not_referred.csv"));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->rows.size(), 2u);
  EXPECT_TRUE(r->rows[0].concern);
  EXPECT_TRUE(r->rows[1].concern);
  EXPECT_EQ(r->rows[1].entries.back().json.find("local-authority"), std::string::npos) << "POLICE is no gateway recipient";
  auto a = adapter_->parse_rows(slurp(kFixtures + "/adult_concern.csv"));
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->rows[0].concern);
}

TEST_F(CashGumTest, HivLabelOnlyOnHivActivity) {
  auto r = adapter_->parse_rows(slurp(kFixtures + "/hiv_activity.csv"));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->rows.size(), 3u);
  auto obs = [&](std::size_t i) { return r->rows[i].entries.back().json; };
  EXPECT_NE(obs(0).find("\"code\":\"HIV\""), std::string::npos);  // P1A
  EXPECT_NE(obs(1).find("\"code\":\"HIV\""), std::string::npos);  // SNOMED 86406008
  EXPECT_EQ(obs(2).find("\"code\":\"HIV\""), std::string::npos);  // C4
  for (const auto& row : r->rows)
    for (const auto& e : row.entries)
      if (e.json.find("\"resourceType\":\"Patient\"") != std::string::npos) {
        EXPECT_EQ(e.json.find("\"code\":\"HIV\""), std::string::npos);
      }
  // One Patient and one Encounter for the three rows of one person on one day.
  auto b = json::parse(CashGumAdapter::bundle_of(*r).json);
  ASSERT_TRUE(b);
  EXPECT_EQ(json::member(*b, "entry")->Size(), 5u);
}

TEST_F(CashGumTest, LineEndingsAndBomDoNotChangeTheResult) {
  std::string crlf = CashGumAdapter::bundle_of(*adapter_->parse_rows(slurp(kFixtures + "/gumcad_sample.csv"))).json;
  EXPECT_EQ(CashGumAdapter::bundle_of(*adapter_->parse_rows(slurp(kFixtures + "/sample_lf_endings.csv"))).json, crlf);
  EXPECT_EQ(CashGumAdapter::bundle_of(*adapter_->parse_rows(slurp(kFixtures + "/sample_bom_crlf.csv"))).json, crlf);
}

TEST_F(CashGumTest, RepostingIsIdempotent) {
  std::string raw = slurp(kFixtures + "/gumcad_sample.csv");
  IssueSink a, b;
  auto x = adapter_->parse(raw, a);
  auto y = adapter_->parse(raw, b);
  ASSERT_TRUE(x && y);
  EXPECT_EQ(x->json, y->json);
  // Every entry is a conditional PUT on an identifier the resource itself carries.
  auto doc = json::parse(x->json);
  for (const auto& e : json::member(*doc, "entry")->GetArray()) {
    std::string url(json::get_string(*json::member(e, "request"), "url").value_or(""));
    EXPECT_NE(url.find("?identifier="), std::string::npos);
  }
  // A changed Practitioner updates the same resources (same keys), it does not add new ones.
  std::string changed = raw;
  changed.replace(changed.find("Nurse A"), 7, "Nurse Z");
  auto z = adapter_->parse_rows(changed);
  auto w = adapter_->parse_rows(raw);
  ASSERT_TRUE(z && w);
  for (std::size_t i = 0; i < w->rows.size(); ++i)
    for (std::size_t k = 0; k < w->rows[i].entries.size(); ++k)
      EXPECT_EQ(z->rows[i].entries[k].full_url, w->rows[i].entries[k].full_url);
}

TEST_F(CashGumTest, PartlyBadFileKeepsTheGoodRows) {
  IssueSink sink;
  auto b = adapter_->parse(slurp(kFixtures + "/broken_rows.csv"), sink);
  ASSERT_TRUE(b);
  auto doc = json::parse(b->json);
  ASSERT_TRUE(doc);
  EXPECT_TRUE(sink.has_errors());
  auto r = adapter_->parse_rows(slurp(kFixtures + "/broken_rows.csv"));
  ASSERT_TRUE(r);
  EXPECT_GE(r->count(RowStatus::rejected), 10u);
  EXPECT_GE(r->count(RowStatus::unmatched), 2u);
  // The invalid NHS number (row 2) is kept as unmatched with a warning, never dropped.
  EXPECT_EQ(r->rows[0].status, RowStatus::unmatched);
  EXPECT_EQ(r->rows[0].issues[0].expression, "row 2.NHSNumber");
  EXPECT_EQ(r->rows[0].issues[0].severity, Severity::warning);
}

TEST(CashGumCsv, Rfc4180Corners) {
  auto f = read_csv("a,b,c\r\n\"x,1\",\"say \"\"hi\"\"\",\"two\r\nlines\"\r\n\r\n  \r\nlast,row,here");
  ASSERT_TRUE(f) << f.error().message;
  ASSERT_EQ(f->records.size(), 3u);
  EXPECT_EQ(f->records[1].fields[0], "x,1");
  EXPECT_EQ(f->records[1].fields[1], "say \"hi\"");
  EXPECT_EQ(f->records[1].fields[2], "two\nlines");
  EXPECT_EQ(f->records[1].line, 2u);
  EXPECT_EQ(f->records[2].line, 6u) << "blank lines count as lines; the record starts on line 6";
  EXPECT_EQ(f->records[2].fields[2], "here") << "no final line break";
}

TEST(CashGumCsv, EncodingDetection) {
  Encoding e{};
  bool bom = false;
  EXPECT_EQ(to_utf8("\xEF\xBB\xBFZo\xC3\xAB", e, bom), "Zo\xC3\xAB");
  EXPECT_TRUE(bom);
  EXPECT_EQ(e, Encoding::utf8);
  EXPECT_EQ(to_utf8("Zo\xEB \x80 \x96 \x81", e, bom), "Zo\xC3\xAB \xE2\x82\xAC \xE2\x80\x93 \xEF\xBF\xBD");
  EXPECT_EQ(e, Encoding::windows1252);
  EXPECT_FALSE(bom);
  // Overlong and surrogate forms are not UTF-8.
  to_utf8("\xC0\xAF", e, bom);
  EXPECT_EQ(e, Encoding::windows1252);
  to_utf8("\xED\xA0\x80", e, bom);
  EXPECT_EQ(e, Encoding::windows1252);
}

TEST(CashGumCsv, SyntaxErrorsNameTheRow) {
  auto u = read_csv("a,b\n1,2\n3,\"open\n4,5\n");
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().expression, "row 3");
  auto s = read_csv("a,b\n1,x\"y\"\n");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().expression, "row 2");
  auto t = read_csv("a,b\n1,\"x\"y\n");
  ASSERT_FALSE(t);
  EXPECT_FALSE(read_csv(std::string("a,b\n1,\0", 7)));
}

TEST(CashGumTables, LoadErrorsNameFileAndKey) {
  fs::path dir = fs::temp_directory_path() / ("cg-profiles-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "adapters");
  std::string t = slurp(GW_SOURCE_DIR "/profiles/adapters/cashgum.json");
  std::string bad = t;
  bad.replace(bad.find("\"hiv\": true"), 11, "\"hiv\": 1");
  std::ofstream(dir / "adapters" / "cashgum.json") << bad;
  auto a = CashGumAdapter::create(dir.string());
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("cashgum.json: shhapt.T4.hiv"), std::string::npos) << a.error().message;
  bad = t;
  bad.replace(bad.find("\"school-nursing\"]"), 16, "\"schools\"");
  std::ofstream(dir / "adapters" / "cashgum.json", std::ios::trunc) << bad;
  a = CashGumAdapter::create(dir.string());
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("concern.discloseTo[1]"), std::string::npos) << a.error().message;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace gw::adapters::cashgum
