// Cost of the sensitivity filter on a search that returns 1 000 resources:
// the same store search (Observation?patient=..., _count=1000, with total)
// without the filter and with a GP's hidden labels (profiles/policy/access.json),
// which the store applies in SQL (NOT IN the labelled ids) so that totals and
// paging stay honest. Two data sets on a real SQLite file:
//   plain  - 1 000 unlabelled Observations about one Patient: both searches
//            return the same 1 000; the difference is the filter alone.
//   mixed  - the same plus 1 000 STD/SEX/R-labelled Observations about the same
//            Patient: the filtered search returns the 1 000 unlabelled ones,
//            the unfiltered one 1 000 of the 2 000.
//   crowded - mixed plus 50 000 labelled Observations about 50 other
//            Patients (a clinic's store): the filter must not cost in
//            proportion to every labelled resource of the type.
// Median of 200 searches each, interleaved.
// Run: build/bin/sensitivity_filter
#include <chrono>
#include <cstdio>
#include <future>
#include <string>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/model/resource_text.h"
#include "gateway/security/policy.h"
#include "tests/support/bench_stats.h"
#include "tests/support/test_gateway.h"

namespace {

using Clock = std::chrono::steady_clock;

const std::string kLabels =
    R"("meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"R"},)"
    R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"STD"},)"
    R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"SEX"}]},)";

gw::store::WriteOp observation(int i, bool labelled, const std::string& patient) {
  std::string text = R"({"resourceType":"Observation",)" + (labelled ? kLabels : std::string()) +
                     R"("status":"final","code":{"text":"attendance )" + std::to_string(i) +
                     R"("},"subject":{"reference":"Patient/)" + patient + R"("}})";
  auto doc = gw::json::parse(text);
  gw::store::WriteOp op;
  op.kind = gw::store::OpKind::create;
  op.type = "Observation";
  op.id = gw::model::new_uuid();
  op.index = gw::model::index_entries("Observation", *doc);
  op.body = gw::model::storage_text(*doc, "Observation", doc->GetAllocator());
  return op;
}

void load(gw::store::Store& s, int n, bool labelled, const std::string& patient = "p1") {
  gw::store::UnitOfWork u;
  for (int i = 0; i < n; ++i) u.ops.push_back(observation(i, labelled, patient));
  std::promise<bool> done;
  auto f = done.get_future();
  if (!s.commit(std::move(u), [&](gw::Result<gw::store::CommitOutcome> r) { done.set_value(r.has_value()); }) ||
      !f.get()) {
    std::fprintf(stderr, "load failed\n");
    std::exit(1);
  }
}

double search_ms(gw::store::Store& s, const std::vector<std::string>& hidden, size_t* returned) {
  gw::store::SearchQuery q;
  q.type = "Observation";
  q.params.push_back({"patient", {{"", "Patient/p1"}}});
  q.exclude_security = hidden;
  q.count = 1000;
  auto t0 = Clock::now();
  auto page = s.search(q);
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (!page) std::exit(1);
  *returned = page->items.size();
  return ms;
}

void measure(gw::store::Store& s, const std::vector<std::string>& hidden, const char* name) {
  std::vector<double> plain, filtered;
  size_t n_plain = 0, n_filtered = 0;
  for (int i = 0; i < 200; ++i) {
    plain.push_back(search_ms(s, {}, &n_plain));
    filtered.push_back(search_ms(s, hidden, &n_filtered));
  }
  double a = gw::test::median(plain), b = gw::test::median(filtered);
  std::printf("%-7s unfiltered %.3f ms (%zu returned)  filtered %.3f ms (%zu returned)  overhead %+.1f %%\n", name, a,
              n_plain, b, n_filtered, 100.0 * (b - a) / a);
}

}  // namespace

int main() {
  auto policy = gw::security::Policy::load(GW_SOURCE_DIR "/profiles");
  if (!policy) return 1;
  std::vector<std::string> hidden = policy->hidden_labels(gw::security::Principal{"B86001", "gp", "bench"});
  std::printf("gp hidden labels:");
  for (const auto& h : hidden) std::printf(" %s", h.c_str());
  std::printf("\n");
  gw::test::TempDir dir;
  auto store = gw::store::open_sqlite(gw::store::SqliteOptions{.path = dir.path() + "/bench.db"});
  load(*store, 1000, false);
  measure(*store, hidden, "plain");
  load(*store, 1000, true);
  measure(*store, hidden, "mixed");
  for (int p = 0; p < 50; ++p) load(*store, 1000, true, "other" + std::to_string(p));
  measure(*store, hidden, "crowded");
  store->close();
  return 0;
}
