// cpis-gateway: assembles configuration, profiles, store, features and
// listeners, then waits for SIGTERM/SIGINT and drains.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <optional>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "adapters/registry.h"
#include "gateway/area/area.h"
#include "gateway/common/log.h"
#include "gateway/common/metrics.h"
#include "gateway/config/config.h"
#include "gateway/config/profile_schemas.h"
#include "gateway/admin/audit_flows.h"
#include "gateway/admin/web_console.h"
#include "gateway/admin/coverage_report.h"
#include "gateway/admin/gp_record_admin.h"
#include "gateway/audit/checkpoints.h"
#include "gateway/audit/verify.h"
#include "gateway/events/gp_record_feed.h"
#include "gateway/events/hl7_outbound.h"
#include "gateway/events/rest_hook_delivery.h"
#include "gateway/events/subscriptions.h"
#include "gateway/events/topics.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/fhir/cohort.h"
#include "gateway/fhir/subscription_api.h"
#include "gateway/fhir/rest.h"
#include "gateway/write/validation.h"
#include "gateway/ingest/cpis_upload.h"
#include "gateway/ingest/hl7_ingest.h"
#include "gateway/ingest/ingest_api.h"
#include "gateway/ingest/render_api.h"
#include "gateway/ingest/mllp_ingest.h"
#include "gateway/net/mllp_server.h"
#include "gateway/net/https_server.h"
#include "gateway/ops/ops.h"
#include "gateway/safeguarding/acknowledge.h"
#include "gateway/safeguarding/flows_api.h"
#include "gateway/security/policy.h"
#include "gateway/security/relationships.h"
#include "gateway/security/visibility.h"
#include "gateway/write/write_service.h"
#include "gateway/store/postgres/import_sqlite.h"
#include "gateway/store/postgres/pg.h"
#include "gateway/store/sqlite/backup.h"
#include "gateway/store/store.h"

namespace {

constexpr const char* kUsage =
    "usage: cpis-gateway <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve      run the gateway (see 'cpis-gateway serve --help')\n"
    "  version    print the version\n"
    "  audit      audit trail tools: 'audit verify' checks the hash chain\n"
    "             (see 'cpis-gateway audit verify --help')\n"
    "  replay     re-run quarantined legacy messages through the current mapping\n"
    "             (see 'cpis-gateway replay --help')\n"
    "  backup     copy the embedded store of a running or stopped gateway to one file\n"
    "             (see 'cpis-gateway backup --help')\n"
    "  migrate    copy a stopped embedded store into PostgreSQL, verified and restartable\n"
    "             (see 'cpis-gateway migrate --help')\n";

constexpr const char* kMigrateUsage =
    "usage: cpis-gateway migrate --from-data-dir DIR --to-postgresql CONNINFO\n"
    "\n"
    "Copies the embedded store DIR/gateway.db into PostgreSQL: resources with their whole history,\n"
    "the search index, the NHS-number keys, the audit trail (same rows, same order), outbox,\n"
    "inbound messages, idempotency keys, change-feed cursors and subscription events. Stop the\n"
    "gateway that uses DIR first. Each chunk commits with a note of how far it got, so an\n"
    "interrupted run is simply run again and goes on from there. Then every table's count and a\n"
    "SHA-256 of the whole audit trail are compared on both sides. The target must be empty (or\n"
    "hold this migration's own progress). The password belongs in a passfile or PGPASSWORD.\n"
    "Exits 0 when everything was copied and verified. Then: serve --store-engine postgresql\n"
    "--store-conninfo CONNINFO (docs/OPERATIONS.md, \"Scaling from one node to two\").\n";

constexpr const char* kBackupUsage =
    "usage: cpis-gateway backup --data-dir DIR --to FILE\n"
    "\n"
    "Copies DIR/gateway.db to FILE with SQLite's online backup API while the gateway goes on\n"
    "serving: FILE holds every write acknowledged before the backup began, checked with\n"
    "PRAGMA integrity_check, as one self-contained file. FILE must not exist. To restore: stop\n"
    "the gateway, put FILE in an empty data directory as gateway.db, start it (docs/OPERATIONS.md).\n"
    "Exits 0 when the copy is complete and intact.\n";

constexpr const char* kAuditVerifyUsage =
    "usage: cpis-gateway audit verify --data-dir DIR [--ca FILE] [--anchor SEQ:HEX]\n"
    "       cpis-gateway audit verify --store-conninfo STRING [--ca FILE] [--anchor SEQ:HEX]\n"
    "\n"
    "Walks the audit trail of DIR/gateway.db (or of the PostgreSQL schema the conninfo names,\n"
    "the one the gateways share) from its first record, recomputes the hash chain\n"
    "(docs/AUDIT.md), holds it to every stored checkpoint and checks each checkpoint's signature\n"
    "(and, with --ca, that its signer chains to that CA). --anchor holds the trail to a chain\n"
    "value kept elsewhere (an 'audit_checkpoint' log line: seq and chain). Read-only: safe while\n"
    "the gateway runs on the same data dir.\n"
    "Exits 0 when the trail is intact, 1 naming the first bad record when a record was edited,\n"
    "deleted or inserted, 2 when the trail could not be checked.\n";

constexpr const char* kReplayUsage =
    "usage: cpis-gateway replay --data-dir DIR [--profiles-dir DIR] (--id N ... | --all)\n"
    "       cpis-gateway replay --data-dir DIR --dead-letters (--subscription ID | --all)\n"
    "       (on PostgreSQL add --store-engine postgresql --store-conninfo STRING, as for serve)\n"
    "\n"
    "Re-runs quarantined legacy messages (GET /admin/quarantine lists them) through the\n"
    "current mappings and profiles, as their original sender. Each message that now\n"
    "passes is committed and its quarantine entry marked 'replayed'; one that still\n"
    "fails stays quarantined. Safe while the gateway runs on the same data dir.\n"
    "Prints one line per message; exits 0 when every message was accepted, 1 otherwise.\n"
    "\n"
    "With --dead-letters: the subscription events that were given up after the retry window\n"
    "(gw_subscription_dead_letters_total) go back to pending for one subscription or all;\n"
    "a running gateway delivers them within subscriptions.poll_ms, in event-number order.\n"
    "Plan messages for a GP practice that were not delivered (gw_gp_hl7_dead_letters_total)\n"
    "are replayed the same way with --subscription gp-hl7:<practice ODS> (or --all).\n";

constexpr const char* kServeUsage =
    "usage: cpis-gateway serve [--config FILE] [options]\n"
    "\n"
    "Without --config the documented defaults apply (docs/CONFIG.md); these flags override the file:\n"
    "  --data-dir DIR            where the SQLite store lives (default ./data)\n"
    "  --store-engine ENGINE     sqlite (default) or postgresql (several nodes on one database)\n"
    "  --store-conninfo STRING   libpq conninfo for postgresql, e.g. 'host=db dbname=cpis user=cpis\n"
    "                            passfile=/run/secrets/pgpass'; the password from a passfile or\n"
    "                            PGPASSWORD, never in the conninfo (it is logged without it)\n"
    "  --profiles-dir DIR        profile rules, policy, topics (default ./profiles, else the installed\n"
    "                            BINDIR/../share/cpis-gateway/profiles, else the source tree's)\n"
    "  --https-listen HOST:PORT  FHIR/HTTPS listener (default 127.0.0.1:8443)\n"
    "  --tls-cert FILE           server certificate chain, PEM (default ./pki/server.pem)\n"
    "  --tls-key FILE            server private key, PEM (default ./pki/server.key)\n"
    "  --client-ca FILE          CA that client certificates must chain to (default ./pki/ca.pem)\n"
    "  --crl FILE                certificate revocation list, PEM; repeatable (replaces tls.crl_files)\n"
    "  --rate-limit RPS[:BURST]  requests per second per caller (certificate or MLLP allow-list entry)\n"
    "  --mllp-listen HOST:PORT   plain MLLP, only for addresses on the allow-list (mllp.allow;\n"
    "                            default loopback only); off unless given\n"
    "  --mllp-tls-listen HOST:PORT  MLLP over mutual TLS (client certificate OU=integration)\n"
    "  --ops-listen HOST:PORT    plain-HTTP /healthz, /readyz, /metrics for probes and scrapers\n"
    "                            (no client certificate; ':PORT' binds loopback); off unless given\n"
    "  --log-level LEVEL         debug|info|warn|error\n"
    "  --check-migrations        dry run: say which schema migrations starting would apply to the\n"
    "                            store, apply them in a transaction that is rolled back, and exit\n"
    "                            (0: none pending or all would apply; 1: a step fails, the store is\n"
    "                            newer than this gateway, or it cannot be opened). Holds the store's\n"
    "                            write lock while it runs.\n"
    "  --check-config            check the config file (profiles/schemas/config.schema.json; every\n"
    "                            problem with FILE:LINE:COLUMN), the flags, the profile files and\n"
    "                            the files start-up needs, print what was checked and exit (0: all\n"
    "                            good; 2: problems, listed on stderr). Opens no store, binds nothing.\n"
    "\n"
    "SIGHUP re-reads the TLS certificate, key, client CA and CRLs without dropping connections;\n"
    "a file that cannot be loaded is refused (logged as tls_reload_refused) and the old ones stay.\n";

// This process among the nodes sharing a database: host and pid.
std::string node_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host) + ":" + std::to_string(getpid());
}

int fail_start(const std::string& what) {
  std::fprintf(stderr, "cpis-gateway: %s\n", what.c_str());
  return 2;
}

// Every subcommand parses its flags with CLI11, so they all answer alike:
// --help prints the subcommand's usage, an unknown option is "unknown option
// 'X'" whatever follows it, a missing or refused value names the option.
// Returns an exit code when the command should stop here (help, an error).
std::optional<int> parse_command_line(CLI::App& app, const std::string& cmd, const char* usage, int argc, char** argv) {
  bool help = false;
  app.set_help_flag();
  app.add_flag("-h,--help", help);
  app.allow_extras();
  // A single-valued option given twice takes the last (a flag after a
  // wrapper script's own overrides it), as the hand-written parser did.
  for (CLI::Option* o : app.get_options())
    if (o->get_items_expected_max() == 1) o->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::vector<std::string> args(argv, argv + argc);
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  const std::string hint = " (try 'cpis-gateway " + cmd + " --help')";
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return fail_start(cmd + ": " + e.what() + hint);
  }
  if (help) {
    std::fputs(usage, stdout);
    return 0;
  }
  for (const std::string& a : app.remaining()) {
    if (a.size() > 1 && a[0] == '-') return fail_start(cmd + ": unknown option '" + a + "'" + hint);
  }
  if (!app.remaining().empty()) return fail_start(cmd + ": unexpected argument '" + app.remaining()[0] + "'" + hint);
  return std::nullopt;
}

const std::vector<std::string> kLogLevels = {"debug", "info", "warn", "error"};

// Every file start-up needs, checked before anything is opened, each named
// by the setting (and flag) that points at it: one run lists all that is
// missing, and a missing file never leaves a half-started gateway behind.
gw::Result<void> check_start_files(const gw::config::Config& cfg) {
  std::vector<std::string> problems;
  auto need = [&](const std::string& file, const std::string& setting) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) {
      problems.push_back(setting + ": '" + file + "' " + (std::filesystem::exists(file, ec) ? "is not a file" : "does not exist"));
    } else if (access(file.c_str(), R_OK) != 0) {
      problems.push_back(setting + ": '" + file + "' cannot be read: " + std::strerror(errno));
    }
  };
  need(cfg.tls_cert, "tls.cert (--tls-cert)");
  need(cfg.tls_key, "tls.key (--tls-key)");
  need(cfg.client_ca, "tls.client_ca (--client-ca)");
  for (size_t i = 0; i < cfg.tls_crls.size(); ++i) need(cfg.tls_crls[i], "tls.crl_files[" + std::to_string(i) + "] (--crl)");
  // Outbound TLS: only what is switched on, and only a CA of its own (the
  // default, tls.client_ca, is checked above).
  if (cfg.subscriptions.enabled && !cfg.subscriptions.endpoint_ca.empty())
    need(cfg.subscriptions.endpoint_ca, "subscriptions.endpoint_ca");
  bool gp_tls = std::any_of(cfg.gp_hl7.practices.begin(), cfg.gp_hl7.practices.end(),
                            [](const gw::config::GpPractice& p) { return p.tls; });
  if (cfg.gp_hl7.enabled && gp_tls && !cfg.gp_hl7.endpoint_ca.empty()) need(cfg.gp_hl7.endpoint_ca, "gp_hl7.endpoint_ca");
  if (problems.empty()) return {};
  std::string msg = "cannot start: " + std::to_string(problems.size()) + " file" + (problems.size() == 1 ? "" : "s") +
                    " missing or unreadable (nothing was opened)";
  for (const auto& p : problems) msg += "\n  " + p;
  return gw::make_error(gw::Errc::invalid_input, msg);
}

// Where the profiles are when none was named and ./profiles is not there:
// the installed layout first (PREFIX/bin/cpis-gateway beside
// PREFIX/share/cpis-gateway/profiles, as `cmake --install` and the .deb lay it
// out), then the source tree of a build (build/bin/ -> the repository).
// Only the default is searched for: a directory the operator named must be there.
std::string locate_profiles(const std::string& configured, const char* argv0) {
  namespace fs = std::filesystem;
  if (fs::exists(configured)) return configured;
  std::error_code ec;
  fs::path exe = fs::canonical("/proc/self/exe", ec);
  if (!ec) {
    for (const fs::path& guess : {exe.parent_path().parent_path() / "share" / "cpis-gateway" / "profiles",
                                  exe.parent_path().parent_path().parent_path() / "profiles"}) {
      if (fs::exists(guess)) return guess.string();
    }
  }
  (void)argv0;
  return configured;
}

// The parts every command that touches data needs: profiles, policy, store,
// FHIR API and the ingest pipelines. Declared in dependency order, so they
// are destroyed in reverse.
struct Core {
  gw::metrics::Registry registry;
  gw::write::Validator validator;
  gw::security::Policy policy;
  // profiles/policy/relationships.json: what a person opens only on a legitimate relationship.
  std::shared_ptr<const gw::security::Relationships> relationships;
  std::unique_ptr<gw::adapters::Registry> adapters;
  std::unique_ptr<gw::store::Store> store;
  std::unique_ptr<gw::security::Visibility> visibility;
  std::unique_ptr<gw::write::WriteService> writes;
  std::unique_ptr<gw::fhir::RestApi> rest;
  std::map<std::string, std::unique_ptr<gw::ingest::Hl7Ingest>> hl7;
  std::map<std::string, std::unique_ptr<gw::ingest::FileIngest>> files;
  std::unique_ptr<gw::ingest::CpisUpload> cpis_upload;
  // Plans into GP records (serve only; stopped before the store closes).
  std::unique_ptr<gw::events::Hl7Outbound> gp_outbound;
  std::unique_ptr<gw::events::GpRecordFeed> gp_feed;
  std::string db_path;

  std::map<std::string, gw::ingest::Hl7Ingest*> ingesters() const {
    std::map<std::string, gw::ingest::Hl7Ingest*> out;
    for (const auto& [k, v] : hl7) out[k] = v.get();
    return out;
  }
  std::map<std::string, gw::ingest::FileIngest*> file_ingesters() const {
    std::map<std::string, gw::ingest::FileIngest*> out;
    for (const auto& [k, v] : files) out[k] = v.get();
    return out;
  }
};

// Throws std::runtime_error naming what could not be loaded (start-up only).
// The store the configuration names (the embedded one in data_dir, or
// PostgreSQL), for serve and for the commands that work on a gateway's store.
// Throws std::runtime_error when it cannot be opened.
std::unique_ptr<gw::store::Store> open_store(const gw::config::Config& cfg, gw::metrics::Registry* registry) {
  using namespace gw;
  if (cfg.store_engine == "postgresql") {
    store::PostgresOptions po;
    po.conninfo = cfg.store_conninfo;
    po.reader_threads = cfg.store_reader_threads;
    po.writer_queue_capacity = cfg.store_writer_queue;
    po.max_batch = cfg.store_max_batch;
    po.metrics = registry;
    return store::open_postgres(po);
  }
  store::SqliteOptions so;
  so.path = (std::filesystem::path(cfg.data_dir) / "gateway.db").string();
  so.reader_threads = cfg.store_reader_threads;
  so.writer_queue_capacity = cfg.store_writer_queue;
  so.max_batch = cfg.store_max_batch;
  so.writer_cache_mib = cfg.store_writer_cache_mib;
  so.metrics = registry;
  return store::open_sqlite(so);
}

std::unique_ptr<Core> make_core(const gw::config::Config& cfg) {
  using namespace gw;
  auto core = std::make_unique<Core>();
  if (auto checked = config::check_profile_files(cfg.profiles_dir); !checked) throw std::runtime_error(checked.error().message);
  auto validator = write::Validator::load(cfg.profiles_dir);
  if (!validator) throw std::runtime_error("profiles: " + validator.error().message);
  core->validator = std::move(*validator);
  auto policy = security::Policy::load(cfg.profiles_dir);
  if (!policy) throw std::runtime_error("policy: " + policy.error().message);
  core->policy = std::move(*policy);
  auto adapters = adapters::make_registry(cfg.profiles_dir);
  if (!adapters) throw std::runtime_error("adapters: " + adapters.error().message);
  core->adapters = std::move(*adapters);

  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  if (ec) throw std::runtime_error("cannot create data directory " + cfg.data_dir + ": " + ec.message());
  core->store = open_store(cfg, &core->registry);
  // Never the conninfo: it may name more than an operator should see in a log.
  core->db_path = cfg.store_engine == "postgresql" ? "postgresql"
                                                   : (std::filesystem::path(cfg.data_dir) / "gateway.db").string();
  auto merge = write::MergePolicy::load(cfg.profiles_dir);
  if (!merge) throw std::runtime_error("merge policy: " + merge.error().message);
  core->visibility = std::make_unique<security::Visibility>(core->policy, *core->store);
  core->writes = std::make_unique<write::WriteService>(*core->store, core->validator, core->policy, *core->visibility,
                                                       std::make_shared<const write::MergePolicy>(std::move(*merge)),
                                                       &core->registry);
  fhir::RestOptions ro{cfg.public_base_url, 1000, 20};
  auto relationships = security::Relationships::load(cfg.profiles_dir);
  if (!relationships) throw std::runtime_error("relationships: " + relationships.error().message);
  ro.relationships = std::make_shared<const security::Relationships>(std::move(*relationships));
  core->relationships = ro.relationships;
  core->rest = std::make_unique<fhir::RestApi>(*core->store, *core->writes, *core->visibility, core->registry, ro);
  if (const adapters::Adapter* s1 = core->adapters->find("systmone")) {
    core->hl7["systmone"] = std::make_unique<ingest::Hl7Ingest>(*s1, *core->writes, core->registry);
  }
  for (const char* name : {"camhs", "cashgum"}) {
    if (const adapters::Adapter* a = core->adapters->find(name)) {
      core->files[name] = std::make_unique<ingest::FileIngest>(*a, *core->writes, core->registry);
    }
  }
  if (auto* cp = dynamic_cast<const adapters::cpis::CpisUploadAdapter*>(core->adapters->find("cpis-upload"))) {
    core->cpis_upload = std::make_unique<ingest::CpisUpload>(*cp, *core->writes, core->registry);
  }
  return core;
}

// CP-IS plan changes rendered for the GP record and sent over MLLP to the
// practice endpoints in gp_hl7.practices (docs/CONFIG.md).
void start_gp_record(Core& core, const gw::config::Config& cfg) {
  using namespace gw;
  const auto& g = cfg.gp_hl7;
  if (!g.enabled) return;
  const adapters::Adapter* s1 = core.adapters->find("systmone");
  if (!s1) throw std::runtime_error("gp_hl7 needs the systmone adapter");
  std::map<std::string, delivery::MllpEndpoint> endpoints;
  for (const auto& p : g.practices) {
    delivery::MllpEndpoint e;
    e.host = p.address.host;
    e.port = p.address.port;
    e.tls = p.tls;
    e.ca_file = g.endpoint_ca.empty() ? cfg.client_ca : g.endpoint_ca;
    e.cert_file = cfg.tls_cert;
    e.key_file = cfg.tls_key;
    e.connect_timeout = g.connect_timeout;
    e.ack_timeout = g.ack_timeout;
    e.max_attempts = 1;  // the feed retries on its own schedule, without holding up other practices
    endpoints.emplace(p.ods, std::move(e));
  }
  core.gp_outbound = std::make_unique<events::Hl7Outbound>(*s1, std::move(endpoints));
  events::GpRecordOptions o;
  o.poll = g.poll;
  o.workers = g.workers;
  o.first_retry = g.first_retry;
  o.max_backoff = g.max_backoff;
  o.retry_for = std::chrono::duration_cast<std::chrono::milliseconds>(g.retry_for);
  core.gp_feed = std::make_unique<events::GpRecordFeed>(*core.store, *core.gp_outbound, core.registry, o);
  core.gp_feed->start();
}

// An explicitly named profiles directory (--profiles-dir, or profiles_dir in
// the config file) must exist: falling back to some other directory would run
// the gateway under rules and a policy nobody chose. Only the default searches.
gw::Result<void> check_profiles_dir(gw::config::Config& cfg) {
  std::error_code ec;
  if (cfg.profiles_dir_given) {
    if (!std::filesystem::is_directory(cfg.profiles_dir, ec))
      return gw::make_error(gw::Errc::invalid_input, "profiles directory '" + cfg.profiles_dir + "' does not exist");
    return {};
  }
  cfg.profiles_dir = locate_profiles(cfg.profiles_dir, nullptr);
  return {};
}

int replay(int argc, char** argv) {
  using namespace gw;
  config::Config cfg;
  std::vector<int64_t> ids;
  bool all = false;
  bool dead_letters = false;
  std::string subscription;
  CLI::App app;
  app.add_option("--data-dir", cfg.data_dir);
  std::string store_engine;
  auto* engine = app.add_option("--store-engine", store_engine);
  app.add_option("--store-conninfo", cfg.store_conninfo);
  auto* profiles = app.add_option("--profiles-dir", cfg.profiles_dir);
  app.add_option("--subscription", subscription);
  app.add_option("--id", ids)->check(CLI::PositiveNumber);
  app.add_flag("--all", all);
  app.add_flag("--dead-letters", dead_letters);
  if (auto stop = parse_command_line(app, "replay", kReplayUsage, argc, argv)) return *stop;
  cfg.profiles_dir_given = profiles->count() > 0;
  if (engine->count())
    if (auto r = config::set_store_engine(store_engine, cfg); !r) return fail_start("replay: --store-engine: " + r.error().message);
  if (dead_letters) {
    if (!ids.empty()) return fail_start("replay: --dead-letters and --id do not mix");
    if (subscription.empty() == !all) return fail_start("replay: --dead-letters needs --subscription ID or --all");
    if (auto r = config::check_store(cfg); !r) return fail_start("replay: " + r.error().message);
    if (cfg.store_engine == "sqlite" && !std::filesystem::exists(std::filesystem::path(cfg.data_dir) / "gateway.db")) {
      return fail_start("replay: no gateway store in " + cfg.data_dir);
    }
    log::set_level(log::Level::warn);
    try {
      auto st = open_store(cfg, nullptr);  // the engine the gateway runs on
      auto n = events::RestHookDelivery::replay_dead_letters(*st, subscription);
      st->close();
      if (!n) return fail_start("replay: " + n.error().message);
      std::printf("requeued %lld dead-lettered event(s)%s%s\n", static_cast<long long>(*n),
                  subscription.empty() ? "" : " of Subscription/", subscription.c_str());
      return 0;
    } catch (const std::exception& e) {
      return fail_start(e.what());
    }
  }
  if (!subscription.empty()) return fail_start("replay: --subscription goes with --dead-letters");
  if (ids.empty() && !all) return fail_start("replay: say which messages: --id N (repeatable) or --all");
  if (auto r = config::check_store(cfg); !r) return fail_start("replay: " + r.error().message);
  if (cfg.store_engine == "sqlite" && !std::filesystem::exists(std::filesystem::path(cfg.data_dir) / "gateway.db")) {
    return fail_start("replay: no gateway store in " + cfg.data_dir);
  }
  if (auto r = check_profiles_dir(cfg); !r) return fail_start("replay: " + r.error().message);
  log::set_level(log::Level::warn);
  std::unique_ptr<Core> core;
  try {
    core = make_core(cfg);
  } catch (const std::exception& e) {
    return fail_start(e.what());
  }
  if (all) {
    for (int64_t offset = 0;; offset += 500) {
      auto rows = core->store->list_inbound("quarantined", 500, offset);
      if (!rows) return fail_start("replay: " + rows.error().message);
      for (const auto& r : *rows) ids.push_back(r.id);
      if (rows->size() < 500) break;
    }
    std::sort(ids.begin(), ids.end());  // oldest first, as they arrived
  }
  size_t failed = 0;
  for (int64_t id : ids) {
    auto row = core->store->get_inbound(id);
    auto it = row ? core->hl7.find(row->adapter) : core->hl7.end();
    if (!row || it == core->hl7.end()) {
      std::string why = row ? "no adapter '" + row->adapter + "'" : row.error().message;
      std::printf("%lld\terror\t%s\n", static_cast<long long>(id), why.c_str());
      ++failed;
      continue;
    }
    std::promise<Result<ingest::IngestResult>> p;
    auto f = p.get_future();
    it->second->replay(id, security::Principal{"", "admin", "cpis-gateway replay"},
                       [&p](Result<ingest::IngestResult> r) { p.set_value(std::move(r)); });
    auto r = f.get();
    if (!r) {
      std::printf("%lld\terror\t%s\n", static_cast<long long>(id), r.error().message.c_str());
      ++failed;
      continue;
    }
    bool ok = r->outcome == ingest::Outcome::accepted || r->outcome == ingest::Outcome::duplicate;
    if (!ok) ++failed;
    std::string why;
    for (const auto& i : r->issues) {
      if (i.severity != Severity::error) continue;
      why = i.expression.empty() ? i.message : i.expression + ": " + i.message;
      break;
    }
    std::printf("%lld\t%s\t%s\n", static_cast<long long>(id), ingest::outcome_name(r->outcome), why.c_str());
  }
  core->store->close();
  std::printf("replayed %zu message(s): %zu accepted, %zu still failing\n", ids.size(), ids.size() - failed, failed);
  return failed ? 1 : 0;
}

int backup(int argc, char** argv) {
  std::string data_dir, to;
  CLI::App app;
  app.add_option("--data-dir", data_dir);
  app.add_option("--to", to);
  if (auto stop = parse_command_line(app, "backup", kBackupUsage, argc, argv)) return *stop;
  if (data_dir.empty() || to.empty()) return fail_start("backup: needs --data-dir DIR and --to FILE");
  std::string db = (std::filesystem::path(data_dir) / "gateway.db").string();
  auto t0 = std::chrono::steady_clock::now();
  auto r = gw::store::sqlite::backup_database(db, to);
  if (!r) return fail_start("backup: " + r.error().message);
  std::printf("backed up %s to %s: %lld pages, %lld bytes, integrity ok, %.1f s\n", db.c_str(), to.c_str(),
              static_cast<long long>(r->pages), static_cast<long long>(r->bytes),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

int audit_verify(int argc, char** argv) {
  gw::audit::VerifyOptions o;
  std::string data_dir;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kAuditVerifyUsage, stdout);
      return 0;
    }
    if (i + 1 >= argc) return fail_start("audit verify: '" + a + "' needs a value (try --help)");
    std::string v = argv[++i];
    if (a == "--data-dir") data_dir = v;
    else if (a == "--store-conninfo") o.conninfo = v;
    else if (a == "--ca") o.ca_file = v;
    else if (a == "--anchor") {
      o.anchor = gw::audit::parse_anchor(v);
      if (!o.anchor) return fail_start("audit verify: --anchor wants SEQ:HEX (64 hex digits)");
    } else return fail_start("audit verify: unknown option '" + a + "' (try --help)");
  }
  if (!o.conninfo.empty()) {
    if (!data_dir.empty()) return fail_start("audit verify: give --data-dir DIR or --store-conninfo STRING, not both");
    auto r = gw::audit::verify_trail(o);
    std::fputs(r.report.c_str(), r.exit_code == 0 ? stdout : stderr);
    return r.exit_code;
  }
  if (data_dir.empty()) return fail_start("audit verify: needs --data-dir DIR (or --store-conninfo STRING on PostgreSQL)");
  o.db_path = (std::filesystem::path(data_dir) / "gateway.db").string();
  if (!std::filesystem::exists(o.db_path)) return fail_start("audit verify: no gateway store at " + o.db_path);
  auto r = gw::audit::verify_trail(o);
  std::fputs(r.report.c_str(), r.exit_code == 0 ? stdout : stderr);
  return r.exit_code;
}

int audit(int argc, char** argv) {
  if (argc >= 1 && std::string(argv[0]) == "verify") return audit_verify(argc - 1, argv + 1);
  if (argc >= 1 && (std::string(argv[0]) == "--help" || std::string(argv[0]) == "-h")) {
    std::fputs(kAuditVerifyUsage, stdout);
    return 0;
  }
  return fail_start("audit: the only subcommand is 'verify' (try 'cpis-gateway audit verify --help')");
}

int migrate(int argc, char** argv) {
  std::string from, conninfo;
  CLI::App app;
  app.add_option("--from-data-dir", from);
  app.add_option("--to-postgresql", conninfo);
  if (auto stop = parse_command_line(app, "migrate", kMigrateUsage, argc, argv)) return *stop;
  if (from.empty() || conninfo.empty()) return fail_start("migrate: needs --from-data-dir DIR and --to-postgresql CONNINFO");
  std::string db = (std::filesystem::path(from) / "gateway.db").string();
  if (!std::filesystem::exists(db)) return fail_start("migrate: no gateway store at " + db);
  gw::store::pg::ImportOptions o;
  o.sqlite_path = db;
  o.conninfo = conninfo;
  auto t0 = std::chrono::steady_clock::now();
  auto r = gw::store::pg::import_sqlite(o);
  if (!r) return fail_start("migrate: " + r.error().message);
  for (const auto& t : r->tables) {
    std::printf("%-13s source %10lld  target %10lld  copied now %10lld%s\n", t.table.c_str(),
                static_cast<long long>(t.source_rows), static_cast<long long>(t.target_rows),
                static_cast<long long>(t.copied_now), t.source_rows == t.target_rows ? "" : "  MISMATCH");
  }
  std::printf("audit sha256 source %s\naudit sha256 target %s%s\n", r->audit_digest_source.c_str(),
              r->audit_digest_target.c_str(), r->audit_digest_source == r->audit_digest_target ? "" : "  MISMATCH");
  if (r->audit_chain_finding.empty()) {
    std::printf("audit chain  %lld records verified on the target\n", static_cast<long long>(r->audit_chain_records));
  } else {
    std::printf("audit chain  MISMATCH on the target at %s\n", r->audit_chain_finding.c_str());
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!r->verified) {
    std::printf("migrate: NOT verified (%.1f s): see MISMATCH above\n", secs);
    return 1;
  }
  std::printf("migrate: copied and verified in %.1f s (%s)\n", secs, gw::store::pg::redact_conninfo(conninfo).c_str());
  return 0;
}

// serve --check-migrations: what starting would do to the store, proved by a
// rolled-back run of the pending steps. Prints a line per fact; no log lines.
int report_migrations(const gw::config::Config& cfg) {
  using namespace gw;
  const bool pg = cfg.store_engine == "postgresql";
  const std::string where = pg ? "postgresql (" + store::pg::redact_conninfo(cfg.store_conninfo) + ")"
                               : (std::filesystem::path(cfg.data_dir) / "gateway.db").string();
  const auto t0 = std::chrono::steady_clock::now();
  auto check = pg ? store::check_migrations_postgres(cfg.store_conninfo)
                  : store::check_migrations_sqlite((std::filesystem::path(cfg.data_dir) / "gateway.db").string());
  if (!check) {
    std::fprintf(stderr, "check-migrations: %s: %s\n", where.c_str(), check.error().message.c_str());
    return 1;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("store: %s\n", where.c_str());
  if (!check->exists) {
    std::printf("schema: none yet; starting creates it at version %d\n", check->known);
    return 0;
  }
  std::printf("schema: at version %lld, this gateway knows up to %d\n", static_cast<long long>(check->at),
              check->known);
  if (check->pending.empty()) {
    std::printf("pending: none (up to date)\n");
    return 0;
  }
  std::string steps;
  for (int v : check->pending) steps += (steps.empty() ? "" : ", ") + std::to_string(v);
  std::printf("pending: %zu step(s): %s\n", check->pending.size(), steps.c_str());
  std::printf("dry run: every pending step applied to this store and rolled back in %.1f s; nothing was changed\n",
              secs);
  return 0;
}

int serve(int argc, char** argv) {
  using namespace gw;
  std::string config_file, data_dir, profiles_dir, tls_cert, tls_key, client_ca, log_level, rate_limit;
  std::string https_listen, ops_listen, mllp_listen, mllp_tls_listen;
  std::vector<std::string> crls;
  CLI::App app;
  app.add_option("--config", config_file);
  auto* o_data = app.add_option("--data-dir", data_dir);
  auto* o_profiles = app.add_option("--profiles-dir", profiles_dir);
  std::string store_engine, store_conninfo;
  auto* o_engine = app.add_option("--store-engine", store_engine);
  auto* o_conninfo = app.add_option("--store-conninfo", store_conninfo);
  auto* o_cert = app.add_option("--tls-cert", tls_cert);
  auto* o_key = app.add_option("--tls-key", tls_key);
  auto* o_ca = app.add_option("--client-ca", client_ca);
  auto* o_crl = app.add_option("--crl", crls);
  auto* o_rate = app.add_option("--rate-limit", rate_limit);
  auto* o_https = app.add_option("--https-listen", https_listen);
  auto* o_ops = app.add_option("--ops-listen", ops_listen);
  auto* o_mllp = app.add_option("--mllp-listen", mllp_listen);
  auto* o_mllp_tls = app.add_option("--mllp-tls-listen", mllp_tls_listen);
  auto* o_level = app.add_option("--log-level", log_level)->check(CLI::IsMember(kLogLevels));
  bool check_migrations = false;
  app.add_flag("--check-migrations", check_migrations);
  bool check_config = false;
  app.add_flag("--check-config", check_config);
  if (auto stop = parse_command_line(app, "serve", kServeUsage, argc, argv)) return *stop;

  config::Config cfg;
  if (!config_file.empty()) {
    auto c = config::load_config_file(config_file);
    if (!c) return fail_start(c.error().message);
    cfg = *c;
  }
  // The flags override the file.
  if (o_data->count()) cfg.data_dir = data_dir;
  if (o_profiles->count()) {
    cfg.profiles_dir = profiles_dir;
    cfg.profiles_dir_given = true;
  }
  if (o_engine->count())
    if (auto r = config::set_store_engine(store_engine, cfg); !r) return fail_start("--store-engine: " + r.error().message);
  if (o_conninfo->count()) {
    cfg.store_conninfo = store_conninfo;
  }
  if (o_cert->count()) cfg.tls_cert = tls_cert;
  if (o_key->count()) cfg.tls_key = tls_key;
  if (o_ca->count()) cfg.client_ca = client_ca;
  if (o_level->count()) cfg.log_level = log_level;
  if (o_crl->count()) cfg.tls_crls = crls;  // the flags replace the file's list
  if (o_rate->count())
    if (auto r = config::parse_rate_limit(rate_limit, cfg.limits); !r) return fail_start("--rate-limit: " + r.error().message);
  auto listen = [](CLI::Option* o, const std::string& v, auto&& set) -> std::optional<std::string> {
    if (!o->count()) return std::nullopt;
    auto l = config::parse_listen(v);
    if (!l) return o->get_name() + ": " + l.error().message;
    set(*l);
    return std::nullopt;
  };
  for (auto err : {listen(o_https, https_listen, [&](const config::Listen& l) { cfg.https = l; }),
                   listen(o_ops, ops_listen, [&](const config::Listen& l) { cfg.ops_listen = l; }),
                   listen(o_mllp, mllp_listen, [&](const config::Listen& l) { cfg.mllp.plain = l; }),
                   listen(o_mllp_tls, mllp_tls_listen, [&](const config::Listen& l) { cfg.mllp.tls = l; })})
    if (err) return fail_start(*err);
  if (cfg.log_level == "debug") log::set_level(log::Level::debug);
  else if (cfg.log_level == "warn") log::set_level(log::Level::warn);
  else if (cfg.log_level == "error") log::set_level(log::Level::error);

  // Signals are handled by sigwait below; block them before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (auto r = check_profiles_dir(cfg); !r) return fail_start(r.error().message);
  if (auto r = config::check_store(cfg); !r) return fail_start(r.error().message);
  if (check_migrations) return report_migrations(cfg);
  if (auto r = check_start_files(cfg); !r) return fail_start(r.error().message);
  if (check_config) {
    if (auto r = config::check_profile_files(cfg.profiles_dir); !r) return fail_start(r.error().message);
    std::printf("config: %s matches profiles/schemas/config.schema.json\n",
                config_file.empty() ? "(none: the defaults)" : config_file.c_str());
    std::printf("profiles: %s: policy, topics, rules and search parameters match their schemas\n",
                cfg.profiles_dir.c_str());
    std::printf("files: the certificates, key, CA%s start-up needs are there\n", cfg.tls_crls.empty() ? "" : ", CRLs");
    return 0;
  }

  // Declared in dependency order: destroyed in reverse, the listener first.
  std::atomic<bool> draining{false};
  std::unique_ptr<Core> core;
  std::unique_ptr<ops::Readiness> readiness;
  std::unique_ptr<ops::OpsApi> ops_api;
  std::unique_ptr<ops::OpsApi> ops_open_api;
  std::unique_ptr<ingest::IngestApi> ingest_api;
  std::unique_ptr<admin::GpRecordAdmin> gp_admin;
  std::unique_ptr<admin::AuditFlows> audit_flows;
  std::unique_ptr<admin::WebConsole> web_console;
  std::unique_ptr<admin::CoverageReportApi> coverage_api;
  std::unique_ptr<ingest::RenderApi> render_api;
  std::unique_ptr<fhir::SafeguardingCohortApi> cohort_api;
  std::unique_ptr<safeguarding::FlowsApi> flows_api;
  std::unique_ptr<safeguarding::AcknowledgeApi> acknowledge_api;
  std::unique_ptr<events::Subscriptions> subscriptions;
  std::unique_ptr<fhir::SubscriptionApi> subscription_api;
  net::Router router;
  std::unique_ptr<net::HttpsServer> server;
  net::Router ops_router;
  std::unique_ptr<net::HttpsServer> ops_server;
  std::vector<std::unique_ptr<ingest::MllpIngestHandler>> mllp_handlers;
  std::vector<std::unique_ptr<net::MllpServer>> mllp_servers;
  std::optional<size_t> mllp_tls_index;  // which of mllp_servers has TLS files to reload
  std::unique_ptr<audit::Checkpointer> audit_checkpoints;
  try {
    core = make_core(cfg);
    metrics::Registry& registry = core->registry;
    ops::ReadinessOptions ready_opts;
    // Nodes sharing one database each probe a cursor of their own, or one
    // node's probe would read back another's value.
    if (cfg.store_engine == "postgresql") ready_opts.probe_cursor += ":" + node_name();
    readiness =
        std::make_unique<ops::Readiness>(*core->store, [&draining] { return draining.load(); }, std::move(ready_opts));
    ops_api = std::make_unique<ops::OpsApi>(registry, core->policy, *readiness);
    ingest_api =
        std::make_unique<ingest::IngestApi>(core->ingesters(), core->file_ingesters(), *core->store, core->policy);
    if (core->cpis_upload) ingest_api->add_answering("cpis-upload", core->cpis_upload.get());
    router.add("/fhir", core->rest.get());
    router.add("/healthz", ops_api.get());
    router.add("/readyz", ops_api.get());
    router.add("/metrics", ops_api.get());
    router.add("/ingest", ingest_api.get());
    router.add("/admin", ingest_api.get());
    gp_admin = std::make_unique<admin::GpRecordAdmin>(*core->store, core->policy);
    router.add("/admin/gp-hl7", gp_admin.get());
    audit_flows = std::make_unique<admin::AuditFlows>(*core->store, *core->writes, core->policy);
    router.add("/audit", audit_flows.get());
    if (const adapters::Adapter* camhs = core->adapters->find("camhs")) {
      render_api = std::make_unique<ingest::RenderApi>(*camhs, *core->store, core->policy);
      router.add("/render/camhs", render_api.get());
    }
    cohort_api = std::make_unique<fhir::SafeguardingCohortApi>(*core->store, core->policy, cfg.profiles_dir);
    cohort_api->add_routes(router, *core->rest);
    // The safeguarding flows' tables and calendar (profiles/area/, profiles/calendar/):
    // a table that does not cover today and next year stops start-up.
    auto area = area::Area::load(cfg.profiles_dir, area::parse_date(model::cpis::utc_today()).value());
    if (!area) throw std::runtime_error("area: " + area.error().message);
    auto flows = std::make_shared<events::FlowContext>();
    flows->area = *area;
    flows->today = model::cpis::utc_today;
    auto coverage_rules = events::CoverageRules::load(cfg.profiles_dir);
    if (!coverage_rules) throw std::runtime_error("coverage: " + coverage_rules.error().message);
    flows->coverage = std::make_shared<const events::CoverageRules>(std::move(*coverage_rules));
    coverage_api = std::make_unique<admin::CoverageReportApi>(*core->store, *core->writes, core->policy, flows);
    router.add("/reports", coverage_api.get());
    auto chronology_rules = safeguarding::ChronologyRules::load(cfg.profiles_dir);
    if (!chronology_rules) throw std::runtime_error("chronology: " + chronology_rules.error().message);
    flows_api = std::make_unique<safeguarding::FlowsApi>(*core->store, *core->writes, *core->visibility, flows,
                                                         std::move(*chronology_rules), cfg.public_base_url,
                                                         core->relationships);
    flows_api->add_to(*core->rest);
    acknowledge_api = std::make_unique<safeguarding::AcknowledgeApi>(*core->store, *core->writes, *core->visibility);
    acknowledge_api->add_to(*core->rest);
    if (cfg.subscriptions.enabled) {
      auto topics = events::Topics::load(cfg.profiles_dir);
      if (!topics) throw std::runtime_error("topics: " + topics.error().message);
      events::SubscriptionsOptions so;
      const auto& sc = cfg.subscriptions;
      so.delivery.workers = sc.delivery_workers;
      so.delivery.first_retry = sc.first_retry;
      so.delivery.max_backoff = sc.max_backoff;
      so.delivery.retry_for = std::chrono::duration_cast<std::chrono::milliseconds>(sc.retry_for);
      so.delivery.post_timeout = sc.post_timeout;
      so.delivery.poll = sc.poll;
      so.delivery.jitter = sc.jitter;
      so.delivery.max_events_per_notification = sc.max_events_per_notification;
      so.delivery.ca_file = sc.endpoint_ca.empty() ? cfg.client_ca : sc.endpoint_ca;
      so.delivery.cert_file = cfg.tls_cert;
      so.delivery.key_file = cfg.tls_key;
      so.fanout.search_params = &core->validator.search_params();
      so.timers.search_params = &core->validator.search_params();
      so.fanout.flows = flows;
      subscriptions =
          std::make_unique<events::Subscriptions>(*core->store, std::move(*topics), core->policy, registry, so);
      subscription_api = std::make_unique<fhir::SubscriptionApi>(*core->rest, *core->writes, *subscriptions,
                                                                 cfg.public_base_url);
      subscription_api->add_routes(router);
    }
    // The dashboard and message console (docs/AUDIT.md): static files from the
    // profiles directory's sibling "web" (share/cpis-gateway/web when installed).
    std::filesystem::path profiles_path(cfg.profiles_dir);
    if (!profiles_path.has_filename()) profiles_path = profiles_path.parent_path();  // "profiles/"
    web_console = std::make_unique<admin::WebConsole>((profiles_path.parent_path() / "web").string(), *core->store, *core->writes,
        *core->visibility, *ingest_api, subscriptions.get());
    web_console->add_routes(router);
    if (web_console->files() == 0)
      log::warn("web_console_missing", {{"reason", "no web files next to the profiles directory"}});

    net::HttpsOptions ho;
    ho.host = cfg.https.host;
    ho.port = cfg.https.port;
    ho.threads = cfg.network_threads;
    ho.tls = net::TlsFiles{cfg.tls_cert, cfg.tls_key, cfg.client_ca, cfg.tls_crls};
    ho.limits = cfg.limits;
    // Trusted identity providers' keys: a JWKS file that cannot be read or
    // holds a key that cannot be used stops start-up (docs/CONFIG.md, users).
    auto users = security::UserTokens::load(cfg.users, core->policy.users());
    if (!users) throw std::runtime_error("users: " + users.error().message);
    if (!cfg.users.issuers.empty()) ho.users = std::move(*users);
    server = std::make_unique<net::HttpsServer>(ho, router, registry);
    uint16_t port = server->start();
    std::string host = cfg.https.host.find(':') != std::string::npos ? "[" + cfg.https.host + "]" : cfg.https.host;
    std::printf("cpis-gateway %s listening on https://%s:%u/fhir (store: %s)\n", GW_VERSION, host.c_str(),
                static_cast<unsigned>(port), core->db_path.c_str());
    std::printf("try: curl --cert %s/client-gp.pem --key %s/client-gp.key --cacert %s https://%s:%u/fhir/metadata\n",
                std::filesystem::path(cfg.client_ca).parent_path().string().c_str(),
                std::filesystem::path(cfg.client_ca).parent_path().string().c_str(), cfg.client_ca.c_str(),
                host.c_str(), static_cast<unsigned>(port));
    std::fflush(stdout);
    if (subscriptions) {
      subscriptions->delivery().set_base_url(
          (cfg.public_base_url.empty() ? "https://" + host + ":" + std::to_string(port) : cfg.public_base_url) + "/fhir");
      subscriptions->start();
    }
    auto start_mllp = [&](const config::Listen& l, bool tls) {
      auto it = core->hl7.find("systmone");
      if (it == core->hl7.end()) throw std::runtime_error("MLLP needs the systmone adapter");
      mllp_handlers.push_back(std::make_unique<ingest::MllpIngestHandler>(*it->second, tls ? "mllp-tls" : "mllp",
                                                                         cfg.mllp.max_frame_bytes));
      net::MllpOptions mo;
      mo.host = l.host;
      mo.port = l.port;
      mo.tls = tls;
      mo.tls_files = net::TlsFiles{cfg.tls_cert, cfg.tls_key, cfg.client_ca, cfg.tls_crls};
      for (const auto& a : cfg.mllp.allow) mo.allow.push_back(net::MllpAllowEntry{a.cidr, a.ods, a.system});
      mo.max_frame_bytes = cfg.mllp.max_frame_bytes;
      // Who may send HL7 at all is policy data (operation ingest:systmone).
      mo.admits = [&policy = core->policy](const security::Principal& p) {
        return policy.allows_operation(p, "ingest:systmone");
      };
      mo.max_in_flight = cfg.mllp.max_in_flight;
      mo.max_connections = cfg.mllp.max_connections;
      mo.idle_timeout = cfg.mllp.idle_timeout;
      mo.handler_timeout = cfg.mllp.handler_timeout;
      mo.frame_timeout = cfg.mllp.frame_timeout;
      mo.per_principal = cfg.limits.per_principal;
      mo.threads = cfg.network_threads;
      mllp_servers.push_back(std::make_unique<net::MllpServer>(mo, *mllp_handlers.back(), registry));
      uint16_t p = mllp_servers.back()->start();
      std::string h = l.host.find(':') != std::string::npos ? "[" + l.host + "]" : l.host;
      std::printf("cpis-gateway HL7 v2 %s listening on %s:%u (%s)\n", tls ? "MLLP/TLS" : "MLLP", h.c_str(),
                  static_cast<unsigned>(p),
                  tls ? "mutual TLS, certificate OU=integration" : "plain, allow-listed addresses only");
    };
    if (cfg.ops_listen) {
      // Only the three operations routes: this listener has no client identity.
      ops_open_api = std::make_unique<ops::OpsApi>(registry, core->policy, *readiness, ops::OpsApi::Access::listener);
      for (const char* route : {"/healthz", "/readyz", "/metrics"}) ops_router.add(route, ops_open_api.get());
      net::HttpsOptions oo;
      oo.host = cfg.ops_listen->host;
      oo.port = cfg.ops_listen->port;
      oo.threads = 1;
      oo.limits = cfg.limits;
      oo.limits.max_connections = 64;  // probes and scrapers, not clients
      oo.plain_http = true;
      oo.metrics_prefix = "gw_ops_http";
      ops_server = std::make_unique<net::HttpsServer>(oo, ops_router, registry);
      uint16_t p = ops_server->start();
      std::string h = oo.host.find(':') != std::string::npos ? "[" + oo.host + "]" : oo.host;
      std::printf("cpis-gateway operations listening on http://%s:%u (/healthz /readyz /metrics; plain HTTP)\n",
                  h.c_str(), static_cast<unsigned>(p));
    }
    start_gp_record(*core, cfg);
    // Signed checkpoints of the audit chain with the server's own key
    // (docs/AUDIT.md); the last one at shutdown, before the store closes.
    // On PostgreSQL every node checkpoints (and prunes) the shared trail; a
    // checkpoint at a record another node already stated is not stored twice.
    audit_checkpoints = std::make_unique<audit::Checkpointer>(
        *core->store,
        audit::CheckpointOptions{cfg.tls_cert, cfg.tls_key, std::chrono::seconds(60), cfg.audit_retention_days},
        registry);
    audit_checkpoints->start();
    if (cfg.mllp.plain) start_mllp(*cfg.mllp.plain, false);
    if (cfg.mllp.tls) {
      mllp_tls_index = mllp_servers.size();
      start_mllp(*cfg.mllp.tls, true);
    }
    std::fflush(stdout);
    log::info("started", {{"https_port", static_cast<unsigned>(port)}});

    int sig = 0;
    while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP) {
      // Certificate rotation and revocation without a restart: each listener
      // swaps in a new context for new connections, or keeps its old one.
      auto reload = [](const char* listener, Result<void> r) {
        if (r) log::info("tls_reloaded", {{"listener", listener}});
        else log::error("tls_reload_refused", {{"listener", listener}, {"reason", r.error().message}});
      };
      reload("https", server->reload_tls());
      for (size_t i = 0; i < mllp_servers.size(); ++i)
        if (mllp_tls_index && *mllp_tls_index == i) reload("mllp-tls", mllp_servers[i]->reload_tls());
    }
    log::info("stopping", {{"signal", sig}});
    draining.store(true);
    for (auto& m : mllp_servers) m->shutdown(cfg.shutdown_grace);
    server->shutdown(cfg.shutdown_grace);
    // Last, so load balancers see /readyz say "draining" while the rest drains.
    if (ops_server) ops_server->shutdown(std::chrono::milliseconds(0));
    if (subscriptions) subscriptions->stop();
    if (core->gp_feed) core->gp_feed->stop();
    if (audit_checkpoints) audit_checkpoints->stop();
    core->store->close();
    log::info("stopped");
  } catch (const std::exception& e) {
    return fail_start(e.what());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "version" || cmd == "--version") {
    std::printf("cpis-gateway %s\n", GW_VERSION);
    return 0;
  }
  if (cmd == "serve") return serve(argc - 2, argv + 2);
  if (cmd == "replay") return replay(argc - 2, argv + 2);
  if (cmd == "backup") return backup(argc - 2, argv + 2);
  if (cmd == "migrate") return migrate(argc - 2, argv + 2);
  if (cmd == "audit") return audit(argc - 2, argv + 2);
  std::fprintf(stderr, "cpis-gateway: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
  return 2;
}
