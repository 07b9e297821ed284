// No patient identifier and no message body in any log line, whatever comes
// in and whichever way. Every fixture of every format goes through every
// channel of the real binary at log level debug — HL7 over MLLP and over
// HTTPS, the file ingest of CAMHS XML, CASH/GUM CSV and the CP-IS upload,
// FHIR REST writes, reads and searches, a rest-hook subscription with full
// resources, plans out to a GP practice over MLLP, quarantine replays online
// and with the replay command, and every broken fixture's error path — then
// every line the process wrote is searched for the NHS numbers, names, dates
// of birth and postcodes those fixtures hold, and for message bodies.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/net/mllp_server.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/hook_receiver.h"
#include "tests/support/https_client.h"
#include "tests/support/mllp_test_kit.h"
#include "tests/support/subscription_kit.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::GatewayProcess;
using test::HttpsClient;

const std::string kFixtures = std::string(GW_SOURCE_DIR) + "/tests/fixtures";
const std::vector<std::pair<std::string, std::string>> kFhirJson = {{"Content-Type", "application/fhir+json"}};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<fs::path> files(const std::string& dir, const std::string& ext) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().string().ends_with(ext)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// What must never be logged, gathered from the fixtures themselves.
struct Secrets {
  std::set<std::string> values;  // exact strings
  void add(std::string v) {
    // Very short values ("F", "1") are not identifying and would match anything.
    if (v.size() >= 4) values.insert(std::move(v));
  }
  // From FHIR JSON (expected outputs of adapters, and the REST fixtures):
  // identifiers' values, name parts, birth dates, postcodes.
  void from_fhir(const json::Value& v) {
    if (v.IsArray()) {
      for (const auto& e : v.GetArray()) from_fhir(e);
      return;
    }
    if (!v.IsObject()) return;
    for (const auto& m : v.GetObject()) {
      std::string_view k = json::as_view(m.name);
      if ((k == "family" || k == "birthDate" || k == "postalCode") && m.value.IsString()) add(std::string(json::as_view(m.value)));
      if (k == "given" && m.value.IsArray())
        for (const auto& g : m.value.GetArray())
          if (g.IsString()) add(std::string(json::as_view(g)));
      from_fhir(m.value);
    }
  }
  // From any raw text: NHS-number-shaped digits (with or without spaces) and postcodes.
  void from_raw(const std::string& text) {
    static const std::regex nhs(R"((^|[^0-9])([0-9]{3}) ?([0-9]{3}) ?([0-9]{4})($|[^0-9]))");
    static const std::regex postcode(R"(\b[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}\b)");
    for (std::sregex_iterator it(text.begin(), text.end(), nhs), end; it != end; ++it)
      add((*it)[2].str() + (*it)[3].str() + (*it)[4].str());
    for (std::sregex_iterator it(text.begin(), text.end(), postcode), end; it != end; ++it) add(it->str());
  }
  // HL7: PID-5 (name) and PID-7 (birth date) of every PID and NK1-2 names.
  void from_hl7(const std::string& text) {
    std::stringstream ss(text);
    std::string seg;
    while (std::getline(ss, seg, '\r')) {
      for (auto& line : {seg}) {
        std::vector<std::string> f;
        std::stringstream fs2(line);
        std::string x;
        while (std::getline(fs2, x, '|')) f.push_back(x);
        if (f.empty()) continue;
        auto comps = [&](size_t i) {
          if (i >= f.size()) return;
          std::stringstream cs(f[i]);
          std::string c;
          while (std::getline(cs, c, '^')) add(c);
        };
        if (f[0].ends_with("PID")) {
          comps(5);
          if (f.size() > 7 && f[7].size() >= 8) add(f[7].substr(0, 8));
        }
        if (f[0] == "NK1") comps(2);
      }
    }
  }
  // CSV files: the columns that hold names and birth dates.
  void from_csv(const std::string& text) {
    std::stringstream ss(text);
    std::string header, line;
    std::getline(ss, header);
    std::vector<std::string> cols;
    std::stringstream hs(header);
    for (std::string c; std::getline(hs, c, ',');) cols.push_back(c);
    while (std::getline(ss, line)) {
      std::stringstream ls(line);
      size_t i = 0;
      for (std::string v; std::getline(ls, v, ','); ++i) {
        if (i >= cols.size()) break;
        std::string c = cols[i];
        if (c.find("Name") != std::string::npos && c != "LAName") add(v);
        if (c.find("Birth") != std::string::npos) add(v);
      }
    }
  }
};

struct Found {
  std::string value, line;
};

std::vector<Found> leaks(const std::string& log, const Secrets& s) {
  std::vector<Found> out;
  std::stringstream ss(log);
  for (std::string line; std::getline(ss, line);) {
    // NHS numbers are also written "999 023 7573" or "999-023-7573".
    std::string squeezed;
    for (char c : line)
      if (c != ' ' && c != '-') squeezed.push_back(c);
    for (const auto& v : s.values) {
      bool digits = std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (line.find(v) != std::string::npos || (digits && v.size() == 10 && squeezed.find(v) != std::string::npos))
        out.push_back({v, line});
    }
    // Message bodies: the first segment of an HL7 message, a FHIR resource,
    // an XML extract, a CSV header.
    for (const char* body : {"MSH|", "PID|", "\"resourceType\"", "<MHSExtract", "RecordType,", "LocalChildID,"})
      if (line.find(body) != std::string::npos) out.push_back({body, line});
  }
  return out;
}

TEST(LogPrivacy, NoPatientIdentifierOrMessageBodyInAnyLogLineFromAnyChannel) {
  test::TempDir dir;
  // The GP practice the plans go to, and the subscriber's endpoint.
  test::TestPractice practice;
  test::HookReceiver hook;

  std::string config = dir.path() + "/gateway.json";
  std::ofstream(config) << R"({"log_level": "debug",
    "subscriptions": {"first_retry_ms": 200, "poll_ms": 100},
    "gp_hl7": {"poll_ms": 100, "first_retry_ms": 200,
               "practices": [{"ods": "B86001", "address": "127.0.0.1:)" << practice.port << R"("}]}})";
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path() + "/data", {"--config", config, "--mllp-listen", "127.0.0.1:0"})) << gw.log();
  Secrets secrets;
  auto integration = HttpsClient::for_role(gw.port(), "integration");

  // A subscriber for every Patient change, with the full resource.
  auto sub = integration.request(
      "POST", "/fhir/Subscription",
      test::subscription_json({.endpoint = hook.url(), .content = "full-resource"}), kFhirJson);
  ASSERT_TRUE(sub.has_value());
  ASSERT_EQ(sub->status, 201) << sub->body;

  // HL7 v2: every fixture, good and broken, over MLLP and over HTTPS.
  size_t hl7_sent = 0;
  for (const auto& p : files(kFixtures + "/systmone", ".hl7")) {
    std::string raw = slurp(p);
    secrets.from_raw(raw);
    secrets.from_hl7(raw);
    test::RawMllpClient c;
    ASSERT_TRUE(c.connect(gw.mllp_port()));
    ASSERT_TRUE(c.send_message(raw));
    EXPECT_EQ(c.read_frames(1, 10s).size(), 1u) << p;
    auto r = integration.request("POST", "/ingest/systmone", raw, {{"Content-Type", "application/hl7-v2"}});
    ASSERT_TRUE(r.has_value()) << p;
    ++hl7_sent;
  }
  // Files: CAMHS XML, CASH/GUM CSV, CP-IS uploads, good and broken.
  struct Feed {
    std::string dir, ext, route, role, type;
  };
  const Feed feeds[] = {{"camhs", ".xml", "/ingest/camhs", "camhs", "application/xml"},
                        {"cashgum", ".csv", "/ingest/cashgum", "sexual-health", "text/csv"},
                        {"cpis", ".csv", "/ingest/cpis-upload", "local-authority", "text/csv"}};
  size_t files_sent = 0;
  for (const auto& f : feeds) {
    auto c = HttpsClient::for_role(gw.port(), f.role);
    for (const auto& p : files(kFixtures + "/" + f.dir, f.ext)) {
      std::string raw = slurp(p);
      secrets.from_raw(raw);
      if (f.ext == ".csv") secrets.from_csv(raw);
      auto r = c.request("POST", f.route, raw, {{"Content-Type", f.type}});
      ASSERT_TRUE(r.has_value()) << p;
      EXPECT_LT(r->status, 500) << p << ": " << r->body.substr(0, 300);
      ++files_sent;
    }
  }
  // What the adapters make of them, as their golden files say.
  for (const auto& p : files(kFixtures, ".fhir.json")) {
    auto d = json::parse(slurp(p));
    if (d) secrets.from_fhir(*d);
  }

  // FHIR REST: every resource fixture written, then read and searched; an
  // invalid one (an NHS number failing its check) on the error path.
  const std::string nhs = test::nhs_number_for(8801);
  std::string patient_body = test::fixture("fhir/Patient.json", {{"nhs", nhs}});
  secrets.from_raw(patient_body);
  secrets.from_fhir(*json::parse(patient_body));
  auto pr = integration.request("POST", "/fhir/Patient", patient_body, kFhirJson);
  ASSERT_TRUE(pr.has_value());
  ASSERT_EQ(pr->status, 201) << pr->body;
  std::string pid(json::get_string(*json::parse(pr->body), "id").value_or(""));
  std::map<std::string, std::string> vars = {{"patient", pid}, {"nhs", nhs}, {"la", "L0001"}, {"local_id", "LP-1"},
                                             {"la_name", "Leeds"}, {"ods", "L0001"}, {"status", "active"},
                                             {"snomed", "342191000000101"}, {"period", R"({"start":"2026-10-01"})"}};
  for (const auto& p : files(kFixtures + "/fhir", ".json")) {
    std::string name = p.filename().string();
    if (name == "Patient.json" || name == "Subscription.json" || name == "cpis_plan.json") continue;
    std::string body = test::fixture("fhir/" + name, vars);
    auto d = json::parse(body);
    ASSERT_TRUE(d.has_value()) << name;
    std::string type(json::get_string(*d, "resourceType").value_or(""));
    auto c = HttpsClient::for_role(gw.port(), name == "CpisPlan.json" ? "local-authority" : "integration");
    auto r = c.request("POST", "/fhir/" + type, body, kFhirJson);
    ASSERT_TRUE(r.has_value()) << name;
    EXPECT_LT(r->status, 500) << name << ": " << r->body;
  }
  auto gp = HttpsClient::for_role(gw.port(), "gp");
  EXPECT_EQ(gp.request("GET", "/fhir/Patient/" + pid)->status, 200);
  EXPECT_EQ(gp.request("GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs)->status, 200);
  auto ed = HttpsClient::for_role(gw.port(), "unscheduled-care");
  ed.request("GET", "/fhir/CareTeam?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs);
  std::string bad = patient_body;
  bad.replace(bad.find(nhs), nhs.size(), "9990237574");  // fails Modulus 11
  secrets.add("9990237574");
  auto invalid = integration.request("POST", "/fhir/Patient", bad, kFhirJson);
  ASSERT_TRUE(invalid.has_value());
  EXPECT_EQ(invalid->status, 422) << invalid->body;

  // Replays of quarantined messages, online.
  auto admin = HttpsClient::for_role(gw.port(), "admin");
  auto q = admin.request("GET", "/admin/quarantine");
  ASSERT_TRUE(q.has_value());
  auto qd = json::parse(q->body);
  size_t replayed = 0;
  if (qd && qd->IsObject() && json::member(*qd, "messages")) {
    for (const auto& e : json::member(*qd, "messages")->GetArray()) {
      auto id = json::get_int(e, "id");
      if (!id || replayed >= 5) continue;
      admin.request("POST", "/admin/quarantine/" + std::to_string(*id) + "/replay");
      ++replayed;
    }
  }

  // The outbound channels have had their turn.
  EXPECT_TRUE(hook.wait_for([](const auto& posts) { return posts.size() >= 3; }, 15s)) << hook.posts().size();
  auto until = std::chrono::steady_clock::now() + 15s;
  while (practice.handler.received() == 0 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(50ms);
  EXPECT_GE(practice.handler.received(), 1u) << "no plan reached the GP practice";
  EXPECT_GE(replayed, 1u) << "no quarantined message to replay: the error paths did not run";
  EXPECT_EQ(gw.terminate(), 0);

  // The replay command, offline.
  std::string replay_out;
  test::run_gateway_command({"replay", "--data-dir", dir.path() + "/data", "--profiles-dir",
                             std::string(GW_SOURCE_DIR) + "/profiles", "--all"},
                            replay_out);

  ASSERT_GT(secrets.values.size(), 50u) << "the fixtures gave too little to look for";
  // The search itself must be able to fail: values every format carries are
  // among those looked for, and a line holding one is caught.
  for (const char* known : {"9990237573", "THOMPSON", "Ellie", "20190506", "2019-04-12", "LS1 1AA", nhs.c_str()})
    EXPECT_TRUE(secrets.values.count(known)) << known << " is not looked for";
  EXPECT_EQ(leaks("ts=x level=info event=e nhs=\"999 023 7573\"", secrets).size(), 1u) << "spaced NHS numbers count";
  EXPECT_EQ(leaks("ts=x level=info event=e id=9990237573", secrets).size(), 1u);
  EXPECT_EQ(leaks("ts=x level=info event=e raw=MSH|^~\\&|", secrets).size(), 1u);
  std::string all = gw.log() + "\n" + replay_out;
  size_t lines = std::count(all.begin(), all.end(), '\n');
  ASSERT_GT(lines, 200u) << "too few log lines to prove anything";
  auto found = leaks(all, secrets);
  for (const auto& f : found) ADD_FAILURE() << "'" << f.value << "' in a log line: " << f.line.substr(0, 300);
  RecordProperty("log_lines", static_cast<int>(lines));
  RecordProperty("values_searched", static_cast<int>(secrets.values.size()));
  RecordProperty("hl7_fixtures", static_cast<int>(hl7_sent));
  RecordProperty("files", static_cast<int>(files_sent));
}

}  // namespace
}  // namespace gw
