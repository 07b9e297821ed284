// Issue 17 benchmark (tests/bench/README.md): the escalation scan with many
// outstanding disclosures.
//
//   escalation_scan [--sizes 100000,1000000] [--due 100] [--calls 200]
//
// For each size N (cumulative: the store grows from one size to the next),
// N unacknowledged disclosures each hold their two pending escalation timers
// (store::TimerSet, as the fan-out writes them), due over the coming weeks;
// `due` more disclosures are past their first deadline. Then, each a median
// of 3 runs:
//   scan   Store::due_timers(now, 100) — what each FlowTimers pass asks —
//          through the store (reader pool, statement, rows), per call;
//   select the same SELECT on a connection of its own (sqlite3, the partial
//          index timers_pending_due), per call: the floor under the scan;
//   full   the same predicate on expressions no index serves (a count over
//          every timer row; SQLite 3.40 still used the partial index for
//          NOT INDEXED): what the index saves;
//   fire   one FlowTimers pass that fires the `due` first-stage escalations
//          (re-reads each Communication, writes the escalation Communication,
//          its event and disclosure audit, marks the timer fired — one
//          fsync'd unit each), per escalation.
// The embedded SQLite store only (the PostgreSQL timers use the same index).
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <vector>

#include "gateway/area/area.h"
#include "gateway/common/json.h"
#include "gateway/common/log.h"
#include "gateway/common/metrics.h"
#include "gateway/events/dispatcher.h"
#include "gateway/events/escalation.h"
#include "gateway/events/flow_timers.h"
#include "gateway/events/topics.h"
#include "gateway/model/resource_text.h"
#include "tests/support/bench_stats.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"

using namespace gw;
using Clock = std::chrono::steady_clock;

namespace {

std::string arg(int argc, char** argv, const char* name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}

void commit(store::Store& s, store::UnitOfWork u) {
  std::promise<Result<store::CommitOutcome>> p;
  auto f = p.get_future();
  if (auto r = s.commit(std::move(u), [&p](Result<store::CommitOutcome> res) { p.set_value(std::move(res)); }); !r) {
    std::fprintf(stderr, "commit refused: %s\n", r.error().message.c_str());
    std::exit(1);
  }
  auto r = f.get();
  if (!r) {
    std::fprintf(stderr, "commit failed: %s\n", r.error().message.c_str());
    std::exit(1);
  }
}

// A disclosure as the fan-out derives it (the parts escalation_timers reads).
events::Disclosure disclosure(const std::string& id, const std::string& sent) {
  events::Disclosure d;
  d.id = id;
  d.about = {"p-" + id};
  d.resource = json::parse(R"({"resourceType":"Communication","id":")" + id +
                           R"(","status":"in-progress","category":[{"coding":[{"system":"https://cpis-gateway.nhs.uk/CodeSystem/notification-topic","code":"child-ed-attendance"}]}],"subject":{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9990500002"}},"sent":")" +
                           sent + R"(","recipient":[{"type":"Organization","identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"RXX05"}}],"payload":[{"contentString":"bench"}]})")
                   .value();
  return d;
}

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

}  // namespace

int main(int argc, char** argv) {
  log::set_level(log::Level::error);
  std::vector<int64_t> sizes;
  {
    std::string s = arg(argc, argv, "--sizes", "100000,1000000");
    for (size_t p = 0; p < s.size();) {
      size_t c = s.find(',', p);
      sizes.push_back(std::stoll(s.substr(p, c - p)));
      if (c == std::string::npos) break;
      p = c + 1;
    }
  }
  const int due_n = std::stoi(arg(argc, argv, "--due", "100"));
  const int calls = std::stoi(arg(argc, argv, "--calls", "200"));
  const std::string profiles = std::string(GW_SOURCE_DIR) + "/profiles";

  test::TempDir dir;
  store::SqliteOptions so;
  so.path = dir.path() + "/gateway.db";
  auto st = test::open_store(so);
  metrics::Registry registry;
  auto topics = events::Topics::load(profiles).value();
  const events::Topic* ed = topics.by_name("child-ed-attendance");
  const events::Topic* esc = topics.by_name(events::kEscalationTopic);
  auto area = area::Area::load(profiles, area::parse_date("2027-01-04").value()).value();
  auto flows = std::make_shared<events::FlowContext>();
  flows->area = area;
  flows->today = [] { return std::string("2027-01-15"); };
  events::SubscriptionSet subs;
  events::SubscriptionSpec pl;  // the receiving organisation's subscription on the disclosure's topic
  pl.id = "pl";
  pl.status = "active";
  pl.topic_url = ed->url;
  pl.owner = security::Principal{"RXX05", "paediatric-liaison", "paed-liaison"};
  pl.content = "id-only";
  events::SubscriptionSpec lead = pl;  // its safeguarding lead's, on safeguarding-escalation
  lead.id = "lead";
  lead.topic_url = esc->url;
  subs.put(lead);

  // "now" for the scan and the firing: between the due ones' first deadline
  // (end of 6 January) and their second (end of 8 January).
  const std::string now = "2027-01-08T12:00:00Z";
  auto clock_at = std::chrono::system_clock::time_point(area::parse_date("2027-01-08").value()) + std::chrono::hours(12);
  auto past_clock = std::chrono::system_clock::time_point(area::parse_date("2027-01-01").value());
  std::chrono::system_clock::time_point timer_clock = past_clock;
  events::FlowTimersOptions to;
  to.clock = [&timer_clock] { return timer_clock; };
  events::FlowTimers timers(*st, topics, subs, flows, registry, to, {});

  std::printf("escalation scan (SQLite, %s): due_timers(now, 100) among N outstanding disclosures (2 pending timers "
              "each); medians of 3 runs\n",
              so.path.c_str());
  std::printf("%10s %10s %14s %14s %14s %16s %10s\n", "disclosures", "pending", "scan ms/call", "select ms/call",
              "full ms/call", "fire ms/escal.", "seed s");
  int64_t seeded = 0;
  int rep_id = 0;
  for (int64_t n : sizes) {
    // Outstanding disclosures: sent 8 January .. 6 February 2027, so every deadline is after "now".
    auto seed_start = Clock::now();
    const int per_unit = 5000;
    while (seeded < n) {
      store::UnitOfWork u;
      for (int i = 0; i < per_unit && seeded < n; ++i, ++seeded) {
        int day = 8 + static_cast<int>(seeded % 30);  // 8 January .. 6 February
        auto date = area::parse_date("2027-01-01").value() + std::chrono::days(day - 1);
        std::string sent = area::format_date(date) + "T10:00:00Z";
        auto d = disclosure("o" + std::to_string(seeded), sent);
        auto set = events::escalation_timers(*ed, pl, d, *area);
        if (!set) {
          std::fprintf(stderr, "no escalation timers for %s\n", sent.c_str());
          return 1;
        }
        u.timer_sets.push_back(std::move(*set));
      }
      commit(*st, std::move(u));
    }
    double seed_s = std::chrono::duration<double>(Clock::now() - seed_start).count();

    std::vector<double> scan, select, full, fire;
    sqlite3* raw = nullptr;
    sqlite3_open_v2(so.path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
    for (int run = 0; run < 3; ++run) {
      // The due ones: Communications sent 2027-01-04 (first deadline end of 6 January).
      store::UnitOfWork comms;
      std::vector<store::TimerSet> sets;
      std::vector<std::string> subjects;
      for (int i = 0; i < due_n; ++i) {
        std::string id = "due" + std::to_string(rep_id) + "-" + std::to_string(i);
        auto d = disclosure(id, "2027-01-04T10:00:00Z");
        store::WriteOp op;
        op.kind = store::OpKind::create;
        op.type = "Communication";
        op.id = id;
        op.index = model::index_entries("Communication", d.resource);
        op.body = model::storage_text(d.resource, "Communication", d.resource.GetAllocator());
        comms.ops.push_back(std::move(op));
        sets.push_back(*events::escalation_timers(*ed, pl, d, *area));
        subjects.push_back(events::escalation_subject(id));
      }
      ++rep_id;
      commit(*st, std::move(comms));
      timer_clock = past_clock;
      (void)timers.run_once();  // the change feed consumed: the timed pass below only fires
      store::UnitOfWork tu;
      tu.timer_sets = std::move(sets);
      commit(*st, std::move(tu));

      auto t0 = Clock::now();
      size_t found = 0;
      for (int c = 0; c < calls; ++c) found += st->due_timers(now, 100).value().size();
      scan.push_back(ms_since(t0) / calls);
      const size_t want = static_cast<size_t>(calls) * static_cast<size_t>(std::min(due_n, 100));
      if (found != want) std::fprintf(stderr, "scan found %zu\n", found);

      sqlite3_stmt* q = nullptr;
      if (sqlite3_prepare_v2(raw,
                             "SELECT key, kind, subject, due, payload, status, scheduled, settled FROM timers "
                             "WHERE status = 'pending' AND due <= ?1 ORDER BY due, key LIMIT 100",
                             -1, &q, nullptr) != SQLITE_OK) {
        std::fprintf(stderr, "select: %s\n", sqlite3_errmsg(raw));
        return 1;
      }
      t0 = Clock::now();
      size_t rows = 0;
      for (int c = 0; c < calls; ++c) {
        sqlite3_bind_text(q, 1, now.c_str(), -1, SQLITE_STATIC);
        while (sqlite3_step(q) == SQLITE_ROW) {
          rows += sqlite3_column_bytes(q, 4) > 0;
        }
        sqlite3_reset(q);
      }
      select.push_back(ms_since(t0) / calls);
      sqlite3_finalize(q);
      if (rows != want) std::fprintf(stderr, "select found %zu\n", rows);

      if (sqlite3_prepare_v2(raw, "SELECT count(*) FROM timers WHERE substr(status, 1) = 'pending' AND substr(due, 1) <= ?1", -1,
                             &q, nullptr) != SQLITE_OK) {
        std::fprintf(stderr, "full: %s\n", sqlite3_errmsg(raw));
        return 1;
      }
      t0 = Clock::now();
      const int full_calls = 3;
      int64_t counted = 0;
      for (int c = 0; c < full_calls; ++c) {
        sqlite3_bind_text(q, 1, now.c_str(), -1, SQLITE_STATIC);
        while (sqlite3_step(q) == SQLITE_ROW) counted += sqlite3_column_int64(q, 0);
        sqlite3_reset(q);
      }
      if (counted != static_cast<int64_t>(full_calls) * due_n) std::fprintf(stderr, "full counted %lld\n", static_cast<long long>(counted));
      full.push_back(ms_since(t0) / full_calls);
      sqlite3_finalize(q);

      timer_clock = clock_at;
      t0 = Clock::now();
      int fired = timers.run_once().value();
      double fire_ms = ms_since(t0);
      if (fired != due_n) std::fprintf(stderr, "fired %d of %d\n", fired, due_n);
      fire.push_back(fire_ms / std::max(1, fired));
      // Their second stage is not due yet: cancel it (as an acknowledgement
      // would) so the next run starts from the same N pending.
      store::UnitOfWork cancel;
      for (const auto& subject : subjects)
        cancel.timer_sets.push_back(store::TimerSet{std::string(events::kEscalationTimerKind), subject, {}});
      commit(*st, std::move(cancel));
    }
    sqlite3_close(raw);
    int64_t pending = 0;
    if (auto c = test::store_scalar(so.path, "SELECT count(*) FROM timers WHERE status = 'pending'"); c >= 0) pending = c;
    std::printf("%10lld %10lld %14.3f %14.3f %14.3f %16.2f %10.1f\n", static_cast<long long>(n),
                static_cast<long long>(pending), test::median(scan), test::median(select), test::median(full),
                test::median(fire), seed_s);
    std::fflush(stdout);
  }
  st->close();
  return 0;
}
