// Issue 17 part 2 (tests/bench/README.md): the coverage report on a
// realistic cohort.
//   coverage_bench [--patients N] [--runs R]
// N children seeded straight into the store, as an area's feeds would leave
// them: each with a Patient (95 % with a practice) and a caseload care team
// (90 % with a health visitor or school nurse by age); 10 % on a CP-IS plan
// (4 in 5 CPP, 1 in 5 LAC, started months ago so that LAC assessments are
// overdue); one family in 50 with a parent's PSY-labelled relapse-prevention
// plan and two linked children; one adult ED attendance in 50 with the
// children-at-home questionnaire answered yes, half of them with a linked
// child. Then, R times each, in the same run:
//   report — events::find_coverage_gaps as the commissioner, 1000 lines kept;
//   scan   — the plain scan of the same rows: the same store pages (plan
//            CareTeams, CarePlans, questionnaire Observations) read and
//            parsed, no per-child reads;
//   patients — every Patient read a page at a time (the population).
// Prints one JSON line per run and the medians.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/events/coverage.h"
#include "gateway/model/resource_text.h"
#include "gateway/model/search_decl.h"
#include "gateway/security/policy.h"
#include "tests/support/bench_stats.h"
#include "tests/support/fixtures.h"
#include "tests/support/test_gateway.h"

using namespace gw;
using Clock = std::chrono::steady_clock;

namespace {

int arg(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  return fallback;
}

const model::SearchParamTable* g_params = nullptr;

store::WriteOp op(const std::string& type, const std::string& id, const std::string& text, const std::string& key = {}) {
  auto doc = json::parse(text).value();
  store::WriteOp w;
  w.kind = store::OpKind::create;
  w.type = type;
  w.id = id;
  w.index = model::index_entries(type, doc, *g_params);
  w.body = model::storage_text(doc, type, doc.GetAllocator());
  if (!key.empty()) w.unique_key = key;
  return w;
}

const std::string kOds = R"("system":"https://fhir.nhs.uk/Id/ods-organization-code")";

std::string patient(const std::string& nhs, const std::string& dob, bool gp) {
  std::string s = R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" +
                  nhs + R"("}],"birthDate":")" + dob + "\"";
  if (gp) s += R"(,"generalPractitioner":[{"type":"Organization","identifier":{)" + kOds + R"(,"value":"B86001"}}])";
  return s + "}";
}

std::string care_team(const std::string& pid, const std::string& role, const std::string& ods) {
  return R"({"resourceType":"CareTeam","status":"active","category":[{"coding":[{"system":"https://cpis-gateway.nhs.uk/CodeSystem/care-team-category","code":"caseload"}]}],"subject":{"reference":"Patient/)" +
         pid + R"("},"participant":[{"role":[{"coding":[{"system":"https://cpis-gateway.nhs.uk/CodeSystem/care-team-role","code":")" +
         role + R"("}]}],"member":{"type":"Organization","identifier":{)" + kOds + R"(,"value":")" + ods + R"("}}}]})";
}

std::string plan(const std::string& pid, bool lac) {
  return R"({"resourceType":"CareTeam","status":"active","category":[{"coding":[{"system":"http://snomed.info/sct","code":")" +
         std::string(lac ? "764841000000100" : "342191000000101") +
         R"("}]}],"subject":{"reference":"Patient/)" + pid +
         R"("},"period":{"start":"2026-03-02"},"managingOrganization":[{"type":"Organization","identifier":{)" + kOds +
         R"(,"value":"L0001"}}],"telecom":[{"system":"phone","value":"01709 336080"}]})";
}

std::string link(const std::string& child, const std::string& parent_nhs) {
  return R"({"resourceType":"RelatedPerson","active":true,"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" +
         parent_nhs + R"("}],"patient":{"reference":"Patient/)" + child + R"("}})";
}

std::string relapse(const std::string& parent) {
  return R"({"resourceType":"CarePlan","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"PSY"}]},"status":"active","intent":"plan","category":[{"coding":[{"system":"https://cpis-gateway.nhs.uk/CodeSystem/care-plan-category","code":"relapse-prevention"}]}],"subject":{"reference":"Patient/)" +
         parent + R"("}})";
}

std::string encounter(const std::string& pid) {
  return R"({"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"EMER"},"subject":{"reference":"Patient/)" +
         pid + R"("},"period":{"start":"2026-11-20T10:00:00+00:00"},"serviceProvider":{"identifier":{)" + kOds +
         R"(,"value":"RXX01"}}})";
}

std::string questionnaire(const std::string& pid, const std::string& enc) {
  return R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"urn:cpis-gateway:local-code:RXX01","code":"SAFEQ-CHILDREN"}]},"valueCodeableConcept":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0136","code":"Y"}]},"subject":{"reference":"Patient/)" +
         pid + R"("},"encounter":{"reference":"Encounter/)" + enc + R"("}})";
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

// The same store pages the report reads, parsed, nothing else.
store::SearchQuery of_type(const char* type) {
  store::SearchQuery q;
  q.type = type;
  return q;
}

size_t plain_scan(store::Store& s, bool patients_only) {
  size_t n = 0;
  auto each = [&](store::SearchQuery q) {
    q.count = 500;
    q.want_total = false;
    for (int64_t off = 0;; off += 500) {
      q.offset = off;
      auto page = s.search(q).value();
      for (const auto& r : page.items)
        if (json::parse(r.body)) ++n;
      if (page.items.size() < 500) break;
    }
  };
  if (patients_only) {
    each(of_type("Patient"));
    return n;
  }
  store::SearchQuery plans = of_type("CareTeam");
  plans.params.push_back(store::ParamConstraint{
      "category", {{"http://snomed.info/sct", "342191000000101"}, {"http://snomed.info/sct", "764841000000100"}}});
  each(plans);
  each(of_type("CarePlan"));
  store::SearchQuery q = of_type("Observation");
  q.params.push_back(store::ParamConstraint{"code", {{"", "SAFEQ-CHILDREN"}}});
  each(q);
  return n;
}

template <typename Fn>
double timed_read(store::Store& s, Fn fn) {
  std::promise<void> p;
  auto f = p.get_future();
  auto t = Clock::now();
  (void)s.run_read([&] {
    fn();
    p.set_value();
  });
  f.get();
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int patients = arg(argc, argv, "--patients", 100000), runs = arg(argc, argv, "--runs", 3);
  const std::string profiles = std::string(GW_SOURCE_DIR) + "/profiles";
  auto params = model::SearchParamTable::load(profiles).value();
  g_params = &params;
  test::InProcessGateway gw;
  gw.set_today("2026-12-07");
  auto t0 = Clock::now();
  std::vector<store::UnitOfWork> units;
  store::UnitOfWork u;
  int plans = 0, families = 0, ed = 0;
  for (int i = 0; i < patients; ++i) {
    std::string nhs = test::nhs_number_for(static_cast<uint32_t>(200000 + i)), pid = "c-" + std::to_string(i);
    int age = i % 18;
    std::string dob = std::to_string(2026 - age) + "-03-04";
    u.ops.push_back(op("Patient", pid, patient(nhs, dob, i % 20 != 7), nhs));
    if (i % 10 != 3) u.ops.push_back(op("CareTeam", "ct-" + std::to_string(i), care_team(pid, age < 5 ? "HV" : "SN", age < 5 ? "RXX02" : "RXX03")));
    if (i % 20 == 0 || i % 20 == 11) {
      u.ops.push_back(op("CareTeam", "plan-" + std::to_string(i), plan(pid, plans % 5 == 4)));
      ++plans;
    }
    if (i % 50 == 25) {  // a family: parent with a relapse plan, two linked children (this one and the next)
      std::string pnhs = test::nhs_number_for(static_cast<uint32_t>(700000 + i)), parent = "parent-" + std::to_string(i);
      u.ops.push_back(op("Patient", parent, patient(pnhs, "1990-01-01", true), pnhs));
      u.ops.push_back(op("CarePlan", "rp-" + std::to_string(i), relapse(parent)));
      u.ops.push_back(op("RelatedPerson", "fl-" + std::to_string(i), link(pid, pnhs)));
      u.ops.push_back(op("RelatedPerson", "fl2-" + std::to_string(i), link("c-" + std::to_string(i + 1), pnhs)));
      ++families;
    }
    if (i % 50 == 40) {  // an adult ED attendance, children at home; half linked to this child
      std::string anhs = test::nhs_number_for(static_cast<uint32_t>(800000 + i)), adult = "adult-" + std::to_string(i);
      u.ops.push_back(op("Patient", adult, patient(anhs, "1985-01-01", true), anhs));
      u.ops.push_back(op("Encounter", "ed-" + std::to_string(i), encounter(adult)));
      u.ops.push_back(op("Observation", "q-" + std::to_string(i), questionnaire(adult, "ed-" + std::to_string(i))));
      if (i % 100 == 40) u.ops.push_back(op("RelatedPerson", "fl3-" + std::to_string(i), link(pid, anhs)));
      ++ed;
    }
    if (u.ops.size() >= 1000) {
      units.push_back(std::exchange(u, {}));
      if (units.size() == 10 && !commit_all(gw.store(), std::exchange(units, {}))) return 1;
    }
  }
  units.push_back(std::move(u));
  if (!commit_all(gw.store(), std::move(units))) return 1;
  double seed_s = std::chrono::duration<double>(Clock::now() - t0).count();

  auto policy = security::Policy::load(profiles).value();
  auto ctx = gw.flow_context();
  events::CoverageQuery q;
  q.view = policy.label_view(security::Principal{"X1", "commissioner", "bench"});
  std::vector<double> report_ms, scan_ms, patients_ms;
  int64_t lines = 0, withheld = 0;
  size_t scanned = 0, population = 0;
  for (int r = 0; r < runs; ++r) {
    report_ms.push_back(timed_read(gw.store(), [&] {
      auto rep = events::find_coverage_gaps(gw.store(), *ctx, *ctx->coverage, q);
      if (!rep) {
        std::fprintf(stderr, "report failed: %s\n", rep.error().message.c_str());
        std::exit(1);
      }
      lines = rep->total_lines;
      withheld = 0;
      for (const auto& c : rep->counts) withheld += c.withheld;
    }));
    scan_ms.push_back(timed_read(gw.store(), [&] { scanned = plain_scan(gw.store(), false); }));
    patients_ms.push_back(timed_read(gw.store(), [&] { population = plain_scan(gw.store(), true); }));
    std::printf("{\"bench\":\"coverage\",\"patients\":%d,\"plans\":%d,\"families\":%d,\"ed\":%d,\"run\":%d,"
                "\"report_ms\":%.0f,\"scan_ms\":%.0f,\"patients_scan_ms\":%.0f,\"lines\":%lld,\"withheld\":%lld,"
                "\"scanned\":%zu,\"population\":%zu}\n",
                patients, plans, families, ed, r, report_ms.back(), scan_ms.back(), patients_ms.back(),
                static_cast<long long>(lines), static_cast<long long>(withheld), scanned, population);
  }
  double rep = test::median(report_ms), scan = test::median(scan_ms), pop = test::median(patients_ms);
  std::printf("coverage --patients %d: seeded in %.1f s; report median %.0f ms; plain scan of the same rows %.0f ms "
              "(report/scan %.1fx); every Patient %.0f ms (report/population %.2fx)\n",
              patients, seed_s, rep, scan, rep / scan, pop, rep / pop);
  return 0;
}
