// The real binary takes the CP-IS upload: the sample file from its local
// authority (LA372) is answered per record, and the plans it acknowledged
// survive a kill -9 (the answer came after the durable commit).
#include <gtest/gtest.h>

#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/https_client.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using test::GatewayProcess;
using test::HttpsClient;

TEST(CpisUploadE2e, TheSampleIsAnsweredPerRecordAndItsPlansSurviveKillNine) {
  test::TempDir dir;
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path())) << gw.log();
  auto la = HttpsClient::for_role(gw.port(), "local-authority-2");  // O=LA372
  auto r = la.request("POST", "/ingest/cpis-upload", test::fixture("cpis/upload_sample.csv"),
                      {{"Content-Type", "text/csv"}});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200) << r->body;
  auto d = json::parse(r->body);
  ASSERT_TRUE(d.has_value());
  std::vector<std::string> codes;
  for (const auto& i : (*d)["issue"].GetArray())
    if (const json::Value* det = json::member(i, "details")) codes.emplace_back(json::as_view((*det)["coding"][0]["code"]));
  EXPECT_EQ(codes, (std::vector<std::string>{"CPR06", "CPR06", "CPR06", "CPR07"}));
  gw.kill9();

  GatewayProcess again;
  ASSERT_TRUE(again.start(dir.path())) << again.log();
  auto la2 = HttpsClient::for_role(again.port(), "local-authority-2");
  const std::pair<const char*, const char*> plans[] = {{"RMBC-0001", "CPP"}, {"RMBC-0002", "LAC"}, {"RMBC-0003", "UCPP"}};
  for (const auto& [id, type] : plans) {
    auto s = la2.request("GET", std::string("/fhir/CareTeam?identifier=https://cpis-gateway.nhs.uk/Id/cpis-plan%7CLA372%5C%7C") +
                                    id + "%5C%7C" + type);
    ASSERT_TRUE(s.has_value());
    auto b = json::parse(s->body);
    ASSERT_TRUE(b.has_value()) << s->body;
    EXPECT_EQ((*b)["entry"].Size(), 1u) << id << ": " << s->body;
  }
}

}  // namespace
}  // namespace gw
