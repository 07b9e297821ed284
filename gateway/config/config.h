#pragma once
// Immutable configuration tree, parsed once at start-up from a JSON file
// (every key optional; defaults below are the documented defaults, and the
// "default"s of profiles/schemas/config.schema.json, which a test keeps equal)
// and then overridden by command-line flags. The file is checked against that
// schema first: unknown keys, wrong types and out-of-range values are all
// reported at once with line and column, so a typo in an operator's file is
// caught at start-up rather than silently ignored.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gateway/common/result.h"
#include "gateway/config/limits.h"

namespace gw::config {

struct Listen {
  std::string host;
  uint16_t port = 0;
};

// Parses "HOST:PORT", "[v6]:PORT" or ":PORT" (host defaults to 127.0.0.1).
Result<Listen> parse_listen(std::string_view s);

// Parses --rate-limit "RPS[:BURST]" into limits.per_principal (BURST
// unchanged when not given).
Result<void> parse_rate_limit(std::string_view s, config::Limits& limits);

// Plain MLLP is only for legacy senders that cannot do TLS: each entry
// admits one address range and names the integration principal that the
// audit records for it.
struct MllpAllow {
  std::string cidr;    // "127.0.0.1/32", "10.20.0.0/16", "::1/128"
  std::string ods;     // the sender's ODS code
  std::string system;  // the sending system's name
};

struct MllpConfig {
  std::optional<Listen> plain;  // off unless configured (--mllp-listen)
  std::optional<Listen> tls;    // MLLP over mutual TLS (--mllp-tls-listen)
  std::vector<MllpAllow> allow{{"127.0.0.1/32", "LOCAL", "loopback"}, {"::1/128", "LOCAL", "loopback"}};
  size_t max_frame_bytes = 1 << 20;
  size_t max_in_flight = 16;     // messages awaiting their ACK on one connection
  size_t max_connections = 256;
  std::chrono::milliseconds idle_timeout{300'000};
  std::chrono::milliseconds handler_timeout{30'000};
  // A frame begun must end within this, so a sender trickling bytes cannot
  // hold a connection (slowloris); idle_timeout bounds the time between frames.
  std::chrono::milliseconds frame_timeout{30'000};
};

// Rest-hook subscriptions (docs/CONFIG.md, "subscriptions").
struct SubscriptionsConfig {
  bool enabled = true;
  int delivery_workers = 16;                            // parallel subscriptions being delivered
  std::chrono::milliseconds first_retry{5'000};         // first retry within this (then doubling)
  std::chrono::milliseconds max_backoff{600'000};       // backoff cap
  std::chrono::seconds retry_for{72 * 3600};            // then dead-letter
  std::chrono::milliseconds post_timeout{10'000};       // per POST (connect + TLS + answer)
  double jitter = 0.2;                                  // up to this fraction shorter than the backoff
  int max_events_per_notification = 100;                // cap on a subscription's backport-max-count
  std::chrono::milliseconds poll{2'000};                // store re-scan for pending work (CLI replays)
  std::string endpoint_ca;                              // CA for endpoints; empty = tls.client_ca
};

// CP-IS plans sent into GP records over MLLP (docs/CONFIG.md, "gp_hl7").
struct GpPractice {
  std::string ods;     // the practice's ODS code (Patient.generalPractitioner)
  Listen address;      // where its system listens for MLLP
  bool tls = false;    // MLLP over mutual TLS (our tls.cert, checked against endpoint_ca)
};

struct GpHl7Config {
  bool enabled = true;                                   // plan changes are queued (and recorded undeliverable without an endpoint)
  std::vector<GpPractice> practices;
  std::chrono::milliseconds first_retry{5'000};          // after AE / unreachable, then doubling
  std::chrono::milliseconds max_backoff{300'000};
  std::chrono::seconds retry_for{24 * 3600};             // then the practice's queued messages are dead-lettered
  std::chrono::milliseconds poll{500};                   // change feed and due retries
  int workers = 4;                                       // practices sent to in parallel
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds ack_timeout{30'000};
  std::string endpoint_ca;                               // empty = tls.client_ca
};

// Identity providers whose user tokens (Authorization: Bearer, a JWT signed
// RS256 or ES256) name the person behind a request (docs/CONFIG.md, "users").
struct TrustedIssuer {
  std::string issuer;     // the token's iss, exactly
  std::string audience;   // the token's aud must be (or contain) this
  std::string jwks_file;  // the issuer's public keys (JWK Set); kid selects one
};

struct UsersConfig {
  std::vector<TrustedIssuer> issuers;  // none: a request carrying a token is refused (401)
  int64_t leeway_seconds = 60;         // clock skew allowed on exp, nbf and iat
};

struct Config {
  std::string data_dir = "./data";         // SQLite database, quarantine, raw inputs
  std::string profiles_dir = "./profiles"; // rules, code maps, topics, policy
  bool profiles_dir_given = false;         // named in the file or by --profiles-dir: must exist, no search
  Listen https{"127.0.0.1", 8443};
  int network_threads = 2;
  std::string tls_cert = "./pki/server.pem";
  std::string tls_key = "./pki/server.key";
  std::string client_ca = "./pki/ca.pem";
  std::vector<std::string> tls_crls;       // tls.crl_files / --crl: CRLs checked on every client handshake
  config::Limits limits;                      // header/body/timeouts/connections/pipelining
  int store_reader_threads = 2;
  size_t store_writer_queue = 10000;       // units of work waiting for the writer
  size_t store_max_batch = 512;            // units per group commit
  int store_writer_cache_mib = 256;        // the writer's SQLite page cache
  std::string store_engine = "sqlite";     // "sqlite" (data_dir/gateway.db) | "postgresql" (store_conninfo)
  std::string store_conninfo;              // libpq conninfo; the password in a passfile or PGPASSWORD
  std::chrono::milliseconds shutdown_grace{10'000};
  std::string log_level = "info";          // debug|info|warn|error
  std::string public_base_url;             // if set, used for Location/fullUrl instead of Host
  // Plain-HTTP /healthz, /readyz, /metrics for probes and scrapers that have
  // no client certificate (--ops-listen); off unless set.
  std::optional<Listen> ops_listen;
  MllpConfig mllp;
  SubscriptionsConfig subscriptions;
  // audit.retention_days (docs/AUDIT.md "Retention"): audit records older than
  // this are pruned, a whole checkpointed segment at a time, so that
  // `audit verify` still checks what is kept. 0: kept for ever (the default).
  int audit_retention_days = 0;
  GpHl7Config gp_hl7;
  UsersConfig users;
};

// store.engine / --store-engine: "sqlite" or "postgresql".
Result<void> set_store_engine(std::string_view engine, Config& c);
// After the file and the flags: a PostgreSQL engine needs its conninfo.
Result<void> check_store(const Config& c);

// Checks a config file's JSON text against profiles/schemas/config.schema.json
// (compiled in) and then for what a schema cannot express (listen addresses,
// entries listed twice, keys given twice), and reads it. The error lists every
// problem at once, one a line, as "NAME:LINE:COLUMN: setting message (at
// /json/pointer)", NAME "config"; its expression is the first one's setting.
Result<Config> parse_config(std::string_view json_text);
// The same for a file; NAME is the file's path.
Result<Config> load_config_file(const std::string& path);

}  // namespace gw::config
