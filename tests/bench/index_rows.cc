// Issue 13: what each declared search parameter (profiles/search/params.json)
// costs a write, and what the whole declared table costs the write path.
//
// 1. Rows and bytes per message, per parameter: the real feeds' fixtures
//    (tests/fixtures/systmone/adt_a28_child.hl7, tests/fixtures/cashgum/
//    gumcad_sample.csv per row, tests/fixtures/camhs/extract_sample.xml per
//    <Patient> record) through their adapters, and each resource of the
//    resulting transaction through the index extraction a write uses
//    (model::index_entries with the declared table). Bytes are the index
//    row's text columns (value, system, param, type: what the store's `idx`
//    primary key holds beside the resource's integer id), before SQLite's
//    record and b-tree overhead. No store.
// 2. Durable write throughput with the full table against a table with only
//    the built-ins (params {}), same run, runs alternating: the real
//    `cpis-gateway serve` (fresh SQLite data directory per run), ADT^A28s
//    each a new child over plain MLLP on loopback, one connection, one
//    message in flight, every ACK checked AA (sent after the fsync'd
//    commit); then the `idx` rows and pages per message read from the
//    stopped gateway's database.
//
//   index_rows [--seconds S] [--runs R] [--connections N]
// One JSON line per measurement, then the medians.
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "adapters/camhs/camhs_adapter.h"
#include "adapters/cashgum/cashgum_adapter.h"
#include "adapters/systmone/systmone_adapter.h"
#include "gateway/common/json.h"
#include "gateway/model/resource_text.h"
#include "gateway/model/search_decl.h"
#include "tests/support/bench_stats.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/mllp_test_kit.h"
#include "tests/support/test_gateway.h"

using namespace gw;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kProfiles = std::string(GW_SOURCE_DIR) + "/profiles";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Cost {
  double rows = 0, bytes = 0;
};

struct Feed {
  const char* name;
  std::string file;   // under tests/fixtures
  double per;         // messages (rows, records) in the file
  const char* unit;
  adapters::AdapterPtr adapter;
};

// Per "Type.param": rows and bytes of the index for one parse of the feed.
struct FeedCost {
  std::map<std::string, Cost> declared;
  Cost builtin;
  std::set<std::string> types;
};

FeedCost cost_of(const Feed& f, const model::SearchParamTable& table) {
  FeedCost out;
  IssueSink sink;
  auto bundle = f.adapter->parse(read_file(std::string(GW_SOURCE_DIR) + "/tests/fixtures/" + f.file), sink);
  if (!bundle) {
    std::fprintf(stderr, "%s: %s\n", f.name, bundle.error().message.c_str());
    std::exit(1);
  }
  auto doc = json::parse(bundle->json);
  if (!doc) std::exit(1);
  for (const auto& e : (*doc)["entry"].GetArray()) {
    const json::Value* res = json::member(e, "resource");
    if (!res) continue;
    std::string type(json::get_string(*res, "resourceType").value_or(""));
    out.types.insert(type);
    auto size = [&](const store::IndexEntry& i) {
      return static_cast<double>(i.param.size() + i.system.size() + i.value.size() + type.size());
    };
    for (const auto& i : model::index_entries(type, *res)) {
      out.builtin.rows += 1;
      out.builtin.bytes += size(i);
    }
    std::vector<store::IndexEntry> declared;
    table.extract(type, *res, declared);
    for (const auto& i : declared) {
      // A token with "text": true also writes "<name>:text" rows: the parameter's.
      std::string name = i.param.substr(0, i.param.find(':'));
      Cost& c = out.declared[type + "." + name];
      c.rows += 1;
      c.bytes += size(i);
    }
  }
  return out;
}

void per_parameter() {
  auto table = model::SearchParamTable::load(kProfiles);
  if (!table) {
    std::fprintf(stderr, "%s\n", table.error().message.c_str());
    std::exit(1);
  }
  std::vector<Feed> feeds;
  feeds.push_back({"systmone_a28", "systmone/adt_a28_child.hl7", 1, "message",
                   adapters::systmone::SystmOneAdapter::create(kProfiles).value()});
  feeds.push_back({"cashgum_row", "cashgum/gumcad_sample.csv", 4, "row",
                   adapters::cashgum::CashGumAdapter::create(kProfiles).value()});
  feeds.push_back({"camhs_record", "camhs/extract_sample.xml", 2, "record",
                   adapters::camhs::CamhsAdapter::create(kProfiles).value()});
  for (const auto& f : feeds) {
    FeedCost c = cost_of(f, *table);
    // Every declared parameter of every type the feed writes, those with no rows too.
    for (const auto& type : c.types) {
      for (const model::ParamDecl* p : table->of(type)) {
        Cost k = c.declared.count(type + "." + p->name) ? c.declared[type + "." + p->name] : Cost{};
        std::printf("{\"bench\":\"index_rows\",\"feed\":\"%s\",\"per\":\"%s\",\"param\":\"%s.%s\",\"type\":\"%s\","
                    "%s\"rows\":%.2f,\"bytes\":%.1f}\n",
                    f.name, f.unit, type.c_str(), p->name.c_str(), model::param_type_name(p->type),
                    p->within.empty() ? "" : ("\"within\":\"" + p->within + "\",").c_str(), k.rows / f.per,
                    k.bytes / f.per);
      }
    }
    Cost all;
    for (const auto& [_, k] : c.declared) {
      all.rows += k.rows;
      all.bytes += k.bytes;
    }
    std::printf("{\"bench\":\"index_rows\",\"feed\":\"%s\",\"per\":\"%s\",\"builtin_rows\":%.2f,\"builtin_bytes\":%.1f,"
                "\"declared_rows\":%.2f,\"declared_bytes\":%.1f}\n",
                f.name, f.unit, c.builtin.rows / f.per, c.builtin.bytes / f.per, all.rows / f.per, all.bytes / f.per);
  }
  std::fflush(stdout);
}

// ---- 2. throughput, full table against the built-ins alone --------------------

std::atomic<uint32_t> g_seq{1};

std::string a28(uint32_t n) {
  // As tests/bench/mllp_ingest.cc: each a new child registered by SystmOne.
  std::string ctl = "IX" + std::to_string(n);
  return "MSH|^~\\&|SYSTMONE|RFR|ROUTE|CPISGW|20261103091500+0000||ADT^A28^ADT_A05|" + ctl +
         "|P|2.4|||||GBR|UNICODE UTF-8\rEVN|A28|20261103091500\rPID|1||" + test::nhs_number_for(n) +
         "^^^NHS^NH~7" + std::to_string(n) +
         "^^^RFR^PI||BENCH^Child^May^^Miss||20190506|F|||12 Mill Lane^Rawmarsh^Rotherham^South Yorkshire^S62 6AA^GBR^H||"
         "01709 555123^PRN|||||||||||||||||||NSTS01\rPD1|||Rawmarsh Health Centre^^C87001^^^NHS^ODS\rPV1|1|N\r"
         "ZCT|HV|RFRHV1^Rawmarsh Health Visiting Team|20190601|\rZSC|Y|Y|20190601\r";
}

// profiles/ with search/params.json declaring nothing: only the built-ins are indexed.
std::string builtin_only_profiles(const std::string& dir) {
  std::string p = dir + "/profiles";
  fs::copy(kProfiles, p, fs::copy_options::recursive);
  std::ofstream(p + "/search/params.json", std::ios::trunc)
      << R"({"comment": "index_rows bench: built-in parameters only", "params": {}})";
  return p;
}

int64_t scalar(sqlite3* db, const char* sql) {
  sqlite3_stmt* st = nullptr;
  int64_t v = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

struct Run {
  test::RunResult load;
  int64_t idx_rows = -1, idx_bytes = -1;  // bytes: the idx b-tree's pages (dbstat), -1 if not compiled in
};

Run run_once(const std::string& profiles, int connections, int seconds) {
  Run out;
  test::TempDir dir;
  {
    test::GatewayProcess gw;
    if (!gw.start(dir.path(), {"--mllp-listen", "127.0.0.1:0", "--log-level", "warn", "--profiles-dir", profiles})) {
      std::fprintf(stderr, "gateway did not start:\n%s\n", gw.log().c_str());
      std::exit(1);
    }
    test::LoadRun load(connections);
    std::vector<std::thread> threads;
    for (int c = 0; c < connections; ++c) {
      threads.emplace_back([&, c] {
        test::RawMllpClient client;
        if (!client.connect(gw.mllp_port())) {
          load.error();
          return;
        }
        load.wait_for_start();
        while (!load.stopping()) {
          auto t0 = Clock::now();
          if (!client.send_message(a28(g_seq.fetch_add(1)))) {
            load.error();
            return;
          }
          auto frames = client.read_frames(1, std::chrono::seconds(10));
          auto f = frames.empty() ? std::nullopt : test::ack_fields(frames[0]);
          if (!f || f->code != "AA") {
            load.error();
            continue;
          }
          load.record(c, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        }
      });
    }
    out.load = load.time(threads, seconds);
    if (gw.terminate() != 0) std::fprintf(stderr, "gateway did not stop cleanly:\n%s\n", gw.log().c_str());
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2((dir.path() + "/gateway.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    out.idx_rows = scalar(db, "SELECT count(*) FROM idx");
    out.idx_bytes = scalar(db, "SELECT sum(pgsize) FROM dbstat WHERE name = 'idx'");
  }
  sqlite3_close(db);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 5, runs = 3, connections = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--seconds") seconds = std::stoi(v);
    else if (k == "--runs") runs = std::stoi(v);
    else if (k == "--connections") connections = std::stoi(v);
    else {
      std::fprintf(stderr, "usage: index_rows [--seconds S] [--runs R] [--connections N]\n");
      return 2;
    }
  }
  per_parameter();

  test::TempDir scratch;
  const std::string builtin = builtin_only_profiles(scratch.path());
  struct Table {
    const char* name;
    std::string profiles;
    std::vector<double> rate, p50, rows, bytes;
  } tables[] = {{"full", kProfiles, {}, {}, {}, {}}, {"builtin_only", builtin, {}, {}, {}, {}}};
  for (int k = 0; k < runs; ++k) {
    for (auto& t : tables) {  // alternating, so both see the same machine
      Run r = run_once(t.profiles, connections, seconds);
      double msgs = static_cast<double>(r.load.ok);
      double rows = msgs > 0 && r.idx_rows >= 0 ? static_cast<double>(r.idx_rows) / msgs : -1;
      double bytes = msgs > 0 && r.idx_bytes >= 0 ? static_cast<double>(r.idx_bytes) / msgs : -1;
      std::printf("{\"bench\":\"index_rows_write\",\"table\":\"%s\",\"connections\":%d,\"run\":%d,\"msgs_per_s\":%.0f,"
                  "\"ack_p50_ms\":%.3f,\"ok\":%llu,\"errors\":%llu,\"idx_rows_per_msg\":%.2f,\"idx_page_bytes_per_msg\":%.0f}\n",
                  t.name, connections, k + 1, r.load.rps, r.load.p50_ms, static_cast<unsigned long long>(r.load.ok),
                  static_cast<unsigned long long>(r.load.errors), rows, bytes);
      std::fflush(stdout);
      t.rate.push_back(r.load.rps);
      t.p50.push_back(r.load.p50_ms);
      t.rows.push_back(rows);
      t.bytes.push_back(bytes);
    }
  }
  for (auto& t : tables) {
    std::printf("{\"bench\":\"index_rows_write\",\"table\":\"%s\",\"connections\":%d,\"median_of\":%d,\"msgs_per_s\":%.0f,"
                "\"ack_p50_ms\":%.3f,\"idx_rows_per_msg\":%.2f,\"idx_page_bytes_per_msg\":%.0f}\n",
                t.name, connections, runs, test::median(t.rate), test::median(t.p50), test::median(t.rows),
                test::median(t.bytes));
  }
  std::printf("{\"bench\":\"index_rows_write\",\"full_over_builtin_msgs_per_s\":%.3f}\n",
              test::median(tables[0].rate) / test::median(tables[1].rate));
  return 0;
}
