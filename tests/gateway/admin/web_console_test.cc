// The web console's JSON and pages in process (gateway/admin/web_console.h):
// who may use them, their headers, bad input named by parameter, and what a
// role may not see withheld from a kept message. The real-browser test is
// tests/gateway/e2e/console_browser_e2e_test.cc.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "gateway/common/clock.h"
#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/mllp_test_kit.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

namespace fs = std::filesystem;
using test::InProcessGateway;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string header(const test::ClientResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}

TEST(WebConsole, EachPageIsForItsRolesOnlyWithTheSecurityHeaders) {
  InProcessGateway gw;
  struct Case {
    const char* role;
    int dashboard, console;
  };
  for (auto c : {Case{"commissioner", 200, 403}, Case{"integration", 403, 200}, Case{"admin", 200, 200},
                 Case{"gp", 403, 403}, Case{"local-authority", 403, 403}, Case{"unscheduled-care", 403, 403}}) {
    auto client = gw.client(c.role);
    EXPECT_EQ(client.request("GET", "/dashboard")->status, c.dashboard) << c.role;
    EXPECT_EQ(client.request("GET", "/dashboard/api/status")->status, c.dashboard) << c.role;
    EXPECT_EQ(client.request("GET", "/console")->status, c.console) << c.role;
    EXPECT_EQ(client.request("GET", "/console/api/messages")->status, c.console) << c.role;
    EXPECT_EQ(client.request("POST", "/console/api/messages/1/replay")->status == 403, c.console == 403) << c.role;
    EXPECT_EQ(client.request("GET", "/web/console.js")->status, c.dashboard == 200 || c.console == 200 ? 200 : 403)
        << c.role;
  }
  auto admin = gw.client("admin");
  for (const char* target : {"/dashboard", "/console", "/web/dashboard.js", "/console/api/status",
                             "/console/api/messages"}) {
    auto r = admin.request("GET", target);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(header(*r, "cache-control"), "no-store") << target;
    EXPECT_EQ(header(*r, "x-content-type-options"), "nosniff") << target;
    std::string csp = header(*r, "content-security-policy");
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << target;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << target;
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << target;
  }
  // The pages carry no inline script: every <script> names a file of /web.
  std::string page = admin.request("GET", "/console")->body;
  EXPECT_NE(page.find("<script type=\"module\" src=\"/web/console.js\"></script>"), std::string::npos);
  EXPECT_EQ(page.find("<script>"), std::string::npos);
  EXPECT_EQ(admin.request("GET", "/web/../profiles/policy/access.json")->status, 404);
  EXPECT_EQ(admin.request("GET", "/web/nope.js")->status, 404);
}

TEST(WebConsole, BadFiltersAreRefusedNamingTheParameter) {
  InProcessGateway gw;
  auto c = gw.client("integration");
  for (auto [query, param] : {std::pair<const char*, const char*>{"_count=0", "_count"}, {"_count=201", "_count"},
                              {"from=yesterday", "from"}, {"status=lost", "status"}, {"sender=a%27b", "sender"},
                              {"before=-1", "before"}, {"nhs=9434765919", "nhs"},
                              {"from=2026-12-02&to=2026-12-01", "to"}}) {
    auto r = c.request("GET", std::string("/console/api/messages?") + query);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 400) << query;
    EXPECT_NE(r->body.find(std::string("\"") + param), std::string::npos) << query << ": " << r->body;
  }
  EXPECT_EQ(c.request("GET", "/console/api/messages/abc")->status, 400);
  EXPECT_EQ(c.request("GET", "/console/api/messages/999")->status, 404);
  EXPECT_EQ(c.request("DELETE", "/console/api/messages/1")->status, 405);
}

TEST(WebConsole, AMessageShowsWhatItBecameAndWithholdsWhatTheRoleMayNotSee) {
  InProcessGateway gw;
  // An HL7 message the integration team may read in full.
  auto integration = gw.client("integration");
  auto sent = integration.request("POST", "/ingest/systmone", test::systmone_a28("9434765919", "WEB-1"));
  ASSERT_EQ(sent->status, 200) << sent->body;
  // A CASH/GUM file: sexual-health content (label STD), which only the
  // sexual-health service may see.
  auto clinic = gw.client("sexual-health");
  auto file = clinic.request("POST", "/ingest/cashgum",
                             read_file(fs::path(GW_SOURCE_DIR) / "tests/fixtures/cashgum/gumcad_sample.csv"),
                             {{"Content-Type", "text/csv"}});
  ASSERT_EQ(file->status, 200) << file->body;

  auto list = json::parse(integration.request("GET", "/console/api/messages?status=accepted")->body);
  ASSERT_TRUE(list.has_value());
  int64_t hl7 = 0, gum = 0;
  for (const auto& m : (*list)["messages"].GetArray()) {
    std::string adapter = m["adapter"].GetString();
    if (adapter == "systmone") hl7 = m["id"].GetInt64();
    if (adapter == "cashgum") gum = m["id"].GetInt64();
    EXPECT_FALSE(m.HasMember("raw")) << "the list carries no message bodies";
  }
  ASSERT_GT(hl7, 0);
  ASSERT_GT(gum, 0);
  // The filters narrow the list.
  auto only = json::parse(integration.request("GET", "/console/api/messages?status=all&adapter=cashgum")->body);
  ASSERT_EQ((*only)["count"].GetInt(), 1);

  auto shown = json::parse(integration.request("GET", "/console/api/messages/" + std::to_string(hl7))->body);
  ASSERT_TRUE(shown.has_value());
  EXPECT_NE(std::string((*shown)["raw"].GetString()).find("WEB-1"), std::string::npos);
  EXPECT_EQ(std::string((*shown)["kind"].GetString()), "ADT^A28");
  bool patient = false;
  for (const auto& b : (*shown)["became"].GetArray())
    if (std::string(b["type"].GetString()) == "Patient" && b.HasMember("resource")) patient = true;
  EXPECT_TRUE(patient) << "the Patient the message became is not shown";

  auto gum_shown = integration.request("GET", "/console/api/messages/" + std::to_string(gum));
  ASSERT_EQ(gum_shown->status, 200);
  auto g = json::parse(gum_shown->body);
  ASSERT_TRUE(g.has_value());
  EXPECT_FALSE(g->HasMember("raw")) << "the raw CASH/GUM file reached a role that may not see it";
  EXPECT_FALSE(g->HasMember("raw_base64"));
  EXPECT_TRUE(g->HasMember("raw_withheld"));
  ASSERT_GT((*g)["became"].Size(), 0u);
  // Every labelled version is withheld; what is shown carries no sexual-health label.
  size_t withheld = 0;
  for (const auto& b : (*g)["became"].GetArray()) {
    if (b.HasMember("withheld")) {
      ++withheld;
      EXPECT_FALSE(b.HasMember("resource"));
      continue;
    }
    ASSERT_TRUE(b.HasMember("resource"));
    std::string body = json::to_string(b["resource"]);
    for (const char* label : {"\"STD\"", "\"HIV\"", "\"SEX\""})
      EXPECT_EQ(body.find(label), std::string::npos) << b["type"].GetString() << " shown with " << label;
  }
  EXPECT_GT(withheld, 0u);
}

TEST(WebConsole, FlowsByDayAddUpToTheReport) {
  InProcessGateway gw;
  auto gp = gw.client("gp");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(gp.request("GET", "/fhir/Patient?_count=1")->status, 200);
  auto c = gw.client("commissioner");
  // 366 days ending the day after tomorrow: the reads above are in.
  const int64_t day = 86'400'000;
  const std::string to = clock::iso_ms(clock::now_ms() + 2 * day).substr(0, 10);
  const std::string from = clock::iso_ms(clock::now_ms() + 2 * day - 366 * day).substr(0, 10);
  auto r = c.request("GET", "/audit/flows?from=" + from + "&to=" + to + "&by=day");
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200) << r->body;
  auto d = json::parse(r->body);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ((*d)["days"].Size(), 366u);  // every day of the period, empty ones included
  int64_t by_day = 0, flows = 0;
  for (const auto& day : (*d)["days"].GetArray()) by_day += day["events"].GetInt64();
  for (const auto& f : (*d)["flows"].GetArray()) flows += f["events"].GetInt64();
  EXPECT_EQ(by_day, flows);
  EXPECT_GE(flows, 3);
  EXPECT_EQ(c.request("GET", "/audit/flows?from=2026-01-01&to=2026-02-01&by=week")->status, 400);
  EXPECT_EQ(c.request("GET", "/audit/flows?from=2026-01-01&to=2026-02-01&by=day&format=csv")->status, 400);
}

}  // namespace
}  // namespace gw

namespace gw {
namespace {

TEST(WebConsole, DeadLetterReplayIsForTheConsoleRolesAndAudited) {
  test::InProcessGateway gw;
  EXPECT_EQ(gw.client("gp").request("POST", "/console/api/dead-letters/gp-hl7:B86001/replay")->status, 403);
  auto c = gw.client("integration");
  EXPECT_EQ(c.request("GET", "/console/api/dead-letters/gp-hl7:B86001/replay")->status, 405);
  EXPECT_EQ(c.request("POST", "/console/api/dead-letters/a%27b/replay")->status, 400);
  auto r = c.request("POST", "/console/api/dead-letters/gp-hl7:B86001/replay");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->body, "{\"replayed\":0}");
  // Who asked is in the trail (the read queue rides the next group commit).
  store::AuditQuery q;
  q.actions = {"replay"};
  q.entities = {"dead-letters/gp-hl7:B86001"};
  int64_t found = 0;
  for (int i = 0; i < 50 && found == 0; ++i) {
    auto page = gw.store().search_audit(q);
    ASSERT_TRUE(page.has_value()) << page.error().message;
    found = page->total.value_or(0);
    if (!found) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(found, 1);
}

}  // namespace
}  // namespace gw
