// Issue 15 benchmarks (tests/bench/README.md):
//   flows_bench chronology [--patients N] [--events E] [--calls C]
//     a child with E significant events among N other patients (each with an
//     ED attendance), seeded straight into the store; the time of
//     $chronology's work (store reads, visibility per entry, the List) as a
//     health visitor, C calls: p50 / p99.
//   flows_bench fanout [--subscribers S] [--messages M]
//     S subscriptions spread over the dev PKI's organisations on
//     pregnancy-notification, adult-attendance-with-children and
//     child-ed-attendance; M SystmOne bookings, then M ED attendances (half
//     adults with a linked child, half children) committed through the HL7
//     pipeline; then the fan-out (Dispatcher::run_once until drained) timed
//     per message for each kind — what deciding and deriving costs, without
//     delivery.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/common/log.h"
#include "gateway/events/dispatcher.h"
#include "gateway/events/relations.h"
#include "gateway/events/topics.h"
#include "gateway/model/resource_text.h"
#include "gateway/safeguarding/chronology.h"
#include "gateway/security/policy.h"
#include "gateway/security/visibility.h"
#include "tests/support/bench_stats.h"
#include "tests/support/fixtures.h"
#include "tests/support/flows_kit.h"
#include "tests/support/test_gateway.h"

using namespace gw;
using Clock = std::chrono::steady_clock;

namespace {

int arg(int argc, char** argv, const char* name, int fallback) {
  for (int i = 2; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  return fallback;
}

store::WriteOp op(const std::string& type, const std::string& id, const std::string& text, const std::string& key = {}) {
  auto doc = json::parse(text).value();
  store::WriteOp w;
  w.kind = store::OpKind::create;
  w.type = type;
  w.id = id;
  w.index = model::index_entries(type, doc);
  w.body = model::storage_text(doc, type, doc.GetAllocator());
  if (!key.empty()) w.unique_key = key;
  return w;
}

std::string patient(const std::string& nhs) {
  return R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + nhs +
         R"("}],"birthDate":"2015-03-04","generalPractitioner":[{"type":"Organization","identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"B86001"}}]})";
}

std::string ed(const std::string& pid, int day) {
  char date[16];
  std::snprintf(date, sizeof date, "20%02d-%02d-%02d", 20 + day / 300, 1 + (day / 28) % 12, 1 + day % 28);
  return R"({"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"EMER"},"subject":{"reference":"Patient/)" +
         pid + R"("},"period":{"start":")" + date + R"(T10:00:00+00:00"},"serviceProvider":{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"RXX"}}})";
}

bool commit_all(store::Store& st, std::vector<store::UnitOfWork> units) {
  std::vector<std::future<bool>> done;
  for (auto& u : units) {
    auto p = std::make_shared<std::promise<bool>>();
    done.push_back(p->get_future());
    if (!st.commit(std::move(u), [p](Result<store::CommitOutcome> r) { p->set_value(r.has_value()); })) return false;
  }
  bool ok = true;
  for (auto& f : done) ok = f.get() && ok;
  return ok;
}

int chronology_bench(int argc, char** argv) {
  const int patients = arg(argc, argv, "--patients", 100000), events = arg(argc, argv, "--events", 500),
            calls = arg(argc, argv, "--calls", 200);
  test::InProcessGateway gw;
  auto t0 = Clock::now();
  std::vector<store::UnitOfWork> units;
  for (int base = 0; base < patients; base += 500) {
    store::UnitOfWork u;
    for (int i = base; i < std::min(patients, base + 500); ++i) {
      std::string nhs = test::nhs_number_for(static_cast<uint32_t>(100000 + i)), pid = "p-" + std::to_string(i);
      u.ops.push_back(op("Patient", pid, patient(nhs), nhs));
      u.ops.push_back(op("Encounter", "e-" + std::to_string(i), ed(pid, i % 600)));
    }
    units.push_back(std::move(u));
    if (units.size() == 20 && !commit_all(gw.store(), std::exchange(units, {}))) return 1;
  }
  store::UnitOfWork child;
  const std::string nhs = test::nhs_number_for(7), pid = "child";
  child.ops.push_back(op("Patient", pid, patient(nhs), nhs));
  for (int i = 0; i < events; ++i) {
    if (i % 10 == 9)
      child.ops.push_back(op("Flag", "f-" + std::to_string(i),
                             R"({"resourceType":"Flag","status":"active","code":{"text":"concern"},"subject":{"reference":"Patient/child"},"period":{"start":"2025-0)" +
                                 std::to_string(1 + i % 9) + R"(-01"}})"));
    else
      child.ops.push_back(op("Encounter", "ce-" + std::to_string(i), ed(pid, i)));
  }
  units.push_back(std::move(child));
  if (!commit_all(gw.store(), std::move(units))) return 1;
  double seed_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const std::string profiles = std::string(GW_SOURCE_DIR) + "/profiles";
  auto policy = security::Policy::load(profiles).value();
  security::Visibility vis(policy, gw.store());
  auto rules = safeguarding::ChronologyRules::load(profiles).value();
  auto area = gw.flow_context()->area;
  security::Principal who{"RXX02", "health-visiting", "bench"};
  std::vector<double> ms;
  size_t entries = 0;
  for (int i = 0; i < calls; ++i) {
    std::promise<Result<safeguarding::ChronologyResult>> p;
    auto f = p.get_future();
    auto t = Clock::now();
    (void)gw.store().run_read([&] { p.set_value(safeguarding::chronology(gw.store(), vis, who, pid, rules, *area, "https://x/fhir")); });
    auto r = f.get();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
    if (!r) {
      std::fprintf(stderr, "chronology failed: %s\n", r.error().message.c_str());
      return 1;
    }
    entries = r->entries;
  }
  std::printf("{\"bench\":\"chronology\",\"patients\":%d,\"events\":%d,\"entries\":%zu,\"calls\":%d,\"seed_s\":%.1f,"
              "\"p50_ms\":%.2f,\"p99_ms\":%.2f}\n",
              patients, events, entries, calls, seed_s, test::percentile(ms, 0.5), test::percentile(ms, 0.99));
  return 0;
}

std::string booking(const std::string& nhs, int i) {
  return "MSH|^~\\&|SYSTMONE|RXX03|ROUTE|CPISGW|20261208094500+0000||ORU^R01^ORU_R01|BB-" + std::to_string(i) +
         "|P|2.4\rPID|1||" + nhs + "^^^NHS^NH||MOTHER^M||19960212|F\rZPN|20270514|14|20261208|Y|None\r";
}

double fanout(test::InProcessGateway& gw, events::Dispatcher& d, int messages) {
  auto t = Clock::now();
  int changes = 0;
  for (;;) {
    auto n = d.run_once();
    if (!n || *n == 0) break;
    changes += *n;
  }
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  (void)gw;
  (void)changes;
  return ms / messages;
}

int fanout_bench(int argc, char** argv) {
  const int subscribers = arg(argc, argv, "--subscribers", 60), messages = arg(argc, argv, "--messages", 100);
  test::InProcessGateway gw;
  auto topics = events::Topics::load(std::string(GW_SOURCE_DIR) + "/profiles").value();
  auto policy = security::Policy::load(std::string(GW_SOURCE_DIR) + "/profiles").value();
  events::SubscriptionSet set;
  const std::vector<std::pair<std::string, std::string>> orgs = {{"health-visiting", "RXX02"}, {"midwifery", "RXX03"},
                                                                {"gp", "B86001"},             {"paediatric-liaison", "RXX05"},
                                                                {"school-nursing", "RXX04"}};
  int made = 0;
  for (int i = 0; made < subscribers; ++i) {
    for (const char* name : {"pregnancy-notification", "adult-attendance-with-children", "child-ed-attendance"}) {
      const auto& [role, ods] = orgs[static_cast<size_t>(i) % orgs.size()];
      const events::Topic* t = topics.by_name(name);
      if (!t->allows_role(role) || made >= subscribers) continue;
      events::SubscriptionSpec s;
      s.id = "bench-" + std::to_string(made++);
      s.status = "active";
      s.topic_url = t->url;
      s.content = "id-only";
      s.owner = security::Principal{ods, role, "bench"};
      s.has_owner = true;
      set.put(std::move(s));
    }
  }
  metrics::Registry reg;
  events::DispatcherOptions o;
  o.flows = gw.flow_context();
  o.cursor_name = "bench";
  events::Dispatcher d(gw.store(), topics, policy, set, reg, o, {});
  (void)d.run_once();  // nothing yet: positions the cursor
  auto integ = gw.client("integration");
  auto send = [&](const std::string& m) {
    auto r = integ.request("POST", "/ingest/systmone", m, {{"Content-Type", "application/hl7-v2"}});
    return r && r->status == 200;
  };
  for (int i = 0; i < messages; ++i)
    if (!send(booking(test::nhs_number_for(static_cast<uint32_t>(20000 + i)), i))) return 1;
  double booking_ms = fanout(gw, d, messages);
  for (int i = 0; i < messages; ++i) {
    std::string adult = test::nhs_number_for(static_cast<uint32_t>(30000 + i)),
                child = test::nhs_number_for(static_cast<uint32_t>(40000 + i));
    bool is_child = i % 2 == 1;
    if (!is_child &&
        !send(test::a28(child, "C", "20200101", "B86001",
                        {"NK1|1|P^A|MTH" + std::string(30, '|') + adult + "^^^NHS^NH", "ZCT|HV|RXX02^HV|20200101|"})))
      return 1;
    if (!send(test::ed_a04(is_child ? child : adult, is_child ? "20150101" : "19900101", "RXX01", "20261201",
                           "EDB" + std::to_string(i), {"1149222004^Overdose^SCT"})))
      return 1;
  }
  auto t = Clock::now();
  double ed_ms = fanout(gw, d, messages);
  (void)t;
  auto counts = [&] {
    int64_t n = 0;
    for (const auto& s : set.all()) n += gw.store().event_counts(s->id).value().events;
    return n;
  };
  std::printf("{\"bench\":\"fanout\",\"subscribers\":%d,\"messages\":%d,\"booking_ms_per_message\":%.2f,"
              "\"ed_ms_per_message\":%.2f,\"events\":%lld}\n",
              subscribers, messages, booking_ms, ed_ms, static_cast<long long>(counts()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  log::set_level(log::Level::warn);
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "chronology") return chronology_bench(argc, argv);
  if (mode == "fanout") return fanout_bench(argc, argv);
  std::fprintf(stderr, "usage: flows_bench chronology [--patients N] [--events E] [--calls C]\n"
                       "       flows_bench fanout [--subscribers S] [--messages M]\n");
  return 2;
}
