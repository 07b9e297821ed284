// Relapse notification benchmark (CPIS.md §3): CAMHS extract accepted ->
// test receiver has the derived Communication.
//   relapse_notify [--families N] [--rate EXTRACTS_PER_S] [--runs R]
// The whole stack in this process (InProcessGateway with the subscriptions
// engine, a HookReceiver with mutual TLS). Set-up: two children per family
// registered by SystmOne A28 (GP practice B86001 for both, the health
// visitor RXX02 for the younger); a gp and a health-visiting subscription on
// relapse-indicator. Measured: one extract per family (the parent, a relapse
// signature, two Dependant rows) POSTed to /ingest/camhs at RATE per second;
// latency from the 200 (the durable commit) to the receiver's parse of the
// notification naming that parent, for both subscribers (2 per family).
// Prints one JSON line per run and one line with the medians.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/common/log.h"
#include "gateway/events/subscriptions.h"
#include "tests/support/bench_stats.h"
#include "tests/support/fixtures.h"
#include "tests/support/hook_receiver.h"
#include "tests/support/subscription_kit.h"
#include "tests/support/test_gateway.h"

using namespace gw;
using Clock = std::chrono::steady_clock;

namespace {

std::string child_a28(const std::string& nhs, const std::string& dob, const std::string& zct) {
  return "MSH|^~\\&|SYSTMONE|RFR|ROUTE|CPISGW|20261103091500+0000||ADT^A28^ADT_A05|B-" + nhs +
         "|P|2.4|||||GBR|UNICODE UTF-8\rEVN|A28|20261103091500\rPID|1||" + nhs + "^^^NHS^NH||BENCH^Child||" + dob +
         "|F\rPD1|||Practice^^B86001^^^NHS^ODS\r" + zct;
}

std::string extract(int family, const std::string& parent, const std::string& c1, const std::string& c2) {
  std::string f = std::to_string(family);
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         "<MHSExtract xmlns=\"urn:cpis-gateway:camhs:1\" OrgIDProvider=\"RXE\" ReportingPeriodStart=\"2026-11-01\" "
         "ReportingPeriodEnd=\"2026-11-07\" Created=\"2026-11-08T02:00:00Z\">\n"
         "<Patient LocalPatientID=\"B-" + f + "\" NHSNumber=\"" + parent +
         "\" NHSNumberStatus=\"01\" BirthDate=\"1990-01-01\" Gender=\"2\" Postcode=\"S62 6AA\">\n"
         "<Indicators CPP=\"X\" LACStatus=\"N\" YoungCarer=\"N\"/>\n"
         "<CareCoordinator CareProfLocalID=\"P77\" Name=\"A. Worker\" Team=\"Adult Community MH\" Phone=\"01709 000000\" Start=\"2025-06-01\"/>\n"
         "<Referral ServiceRequestID=\"R-" + f + "\" Received=\"2025-05-20\" Source=\"GP\" TeamType=\"A05\" Priority=\"ROUTINE\" Discharged=\"\"/>\n"
         "<RelapseSignature CarePlanID=\"CP-" + f + "\" Recorded=\"2026-11-03\" ReviewDue=\"2027-02-03\" CareProfLocalID=\"P77\">\n"
         "<Indicator Seq=\"1\" Text=\"Stops taking prescribed medication\" Snomed=\"\"/>\n"
         "<Indicator Seq=\"2\" Text=\"Keeps the children home from school\" Snomed=\"\"/>\n"
         "<Action>Tell the care coordinator the same day</Action>\n"
         "</RelapseSignature>\n"
         "<Dependant NHSNumber=\"" + c1 + "\" LocalName=\"A\" BirthDate=\"2019-05-06\" Relationship=\"CHD\" ParentalResponsibility=\"Y\"/>\n"
         "<Dependant NHSNumber=\"" + c2 + "\" LocalName=\"B\" BirthDate=\"2023-01-11\" Relationship=\"CHD\" ParentalResponsibility=\"Y\"/>\n"
         "</Patient>\n</MHSExtract>\n";
}

// The parent NHS numbers (Communication.subject) of the disclosures in a notification.
std::vector<std::string> parents_in(const std::string& body) {
  std::vector<std::string> out;
  auto b = json::parse(body);
  if (!b || !b->HasMember("entry")) return out;
  for (const auto& e : (*b)["entry"].GetArray()) {
    if (!e.HasMember("resource")) continue;
    const auto& r = e["resource"];
    if (json::get_string(r, "resourceType") != "Communication" || !r.HasMember("subject")) continue;
    if (const json::Value* id = json::member(r["subject"], "identifier"))
      if (auto v = json::get_string(*id, "value")) out.emplace_back(*v);
  }
  return out;
}

struct RunResult {
  double p50 = 0, p99 = 0, max = 0, ack_p50 = 0;
  size_t got = 0, want = 0;
};

RunResult run(int families, int rate, uint32_t seed_base) {
  events::SubscriptionsOptions so;
  so.delivery.workers = 8;
  so.delivery.first_retry = std::chrono::milliseconds(100);
  so.delivery.poll = std::chrono::milliseconds(500);
  so.fanout.poll = std::chrono::milliseconds(500);
  test::InProcessGateway gw(config::Limits{}, so);
  test::HookReceiver rx;
  RunResult out;
  for (const char* role : {"gp", "health-visiting"}) {
    auto c = gw.client(role);
    auto r = c.request("POST", "/fhir/Subscription",
                       test::subscription_json({.topic = "relapse-indicator", .endpoint = rx.url(std::string("/") + role),
                                                .content = "full-resource"}),
                       {{"Content-Type", "application/fhir+json"}});
    if (!r || r->status != 201) {
      std::fprintf(stderr, "subscription refused\n");
      return out;
    }
  }
  if (!rx.wait_for([](auto& p) { return test::count_type(p, "handshake") >= 2; }, std::chrono::seconds(30))) {
    std::fprintf(stderr, "handshakes did not complete\n");
    return out;
  }
  auto feed = gw.client("integration");
  std::vector<std::string> parents, first, second;
  for (int i = 0; i < families; ++i) {
    uint32_t s = seed_base + static_cast<uint32_t>(3 * i);
    parents.push_back(test::nhs_number_for(s));
    first.push_back(test::nhs_number_for(s + 1));
    second.push_back(test::nhs_number_for(s + 2));
    auto a = feed.request("POST", "/ingest/systmone", child_a28(first.back(), "20190506", ""));
    auto b = feed.request("POST", "/ingest/systmone",
                          child_a28(second.back(), "20230111", "ZCT|HV|RXX02^Health Visiting|20230201|\r"));
    if (!a || a->status != 200 || !b || b->status != 200) {
      std::fprintf(stderr, "A28 refused\n");
      return out;
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the set-up's fan-out settles

  std::mutex mu;
  std::map<std::string, Clock::time_point> accepted;  // parent NHS number -> 200 received
  std::vector<std::pair<std::string, Clock::time_point>> arrivals;
  std::atomic<size_t> got{0};
  rx.set_on_post([&](test::ReceivedPost&& p) {
    auto ps = parents_in(p.body);
    std::lock_guard lk(mu);
    for (auto& x : ps) arrivals.emplace_back(std::move(x), p.at);
    got += ps.size();
  });
  std::vector<double> ack_ms;
  auto start = Clock::now();
  for (int i = 0; i < families; ++i) {
    std::this_thread::sleep_until(start + std::chrono::microseconds(static_cast<int64_t>(1e6 * i / rate)));
    auto sent = Clock::now();
    auto r = feed.request("POST", "/ingest/camhs", extract(i, parents[i], first[i], second[i]),
                          {{"Content-Type", "application/xml"}});
    auto done = Clock::now();
    if (!r || r->status != 200) {
      std::fprintf(stderr, "extract refused: %s\n", r ? r->body.c_str() : "no answer");
      return out;
    }
    ack_ms.push_back(std::chrono::duration<double, std::milli>(done - sent).count());
    std::lock_guard lk(mu);
    accepted[parents[i]] = done;
  }
  out.want = static_cast<size_t>(2 * families);
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (got.load() < out.want && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::lock_guard lk(mu);
  std::vector<double> lat;
  for (const auto& [parent, at] : arrivals) {
    auto it = accepted.find(parent);
    // A notification may beat the 200 back to this thread (both follow the
    // same commit): that is zero latency from acceptance, not negative.
    if (it != accepted.end()) lat.push_back(std::max(0.0, std::chrono::duration<double, std::milli>(at - it->second).count()));
  }
  out.got = lat.size();
  out.p50 = test::percentile(lat, 0.5);
  out.p99 = test::percentile(lat, 0.99);
  out.max = test::percentile(lat, 1.0);
  out.ack_p50 = test::median(ack_ms);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int families = 200, rate = 20, runs = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (a == "--families") families = v;
    else if (a == "--rate") rate = v;
    else if (a == "--runs") runs = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  gw::log::set_level(gw::log::Level::error);
  std::vector<double> p50s, p99s;
  bool complete = true;
  for (int r = 0; r < runs; ++r) {
    RunResult res = run(families, rate, 3'000'000 + static_cast<uint32_t>(r) * 100'000);
    complete = complete && res.got == res.want;
    p50s.push_back(res.p50);
    p99s.push_back(res.p99);
    std::printf(
        "{\"bench\":\"relapse_notify\",\"run\":%d,\"families\":%d,\"extracts_per_s\":%d,\"notifications\":%zu,"
        "\"expected\":%zu,\"accepted_to_receiver_p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,\"ingest_ack_p50_ms\":%.2f}\n",
        r + 1, families, rate, res.got, res.want, res.p50, res.p99, res.max, res.ack_p50);
  }
  std::printf("{\"bench\":\"relapse_notify\",\"median_of_runs\":{\"p50_ms\":%.2f,\"p99_ms\":%.2f}}\n",
              test::median(p50s), test::median(p99s));
  return complete ? 0 : 1;
}
