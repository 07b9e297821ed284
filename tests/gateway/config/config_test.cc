#include "gateway/config/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/config/config_schema.h"
#include "tests/support/test_gateway.h"

namespace gw::config {
namespace {

using namespace std::chrono_literals;

std::string read_source_file(const std::string& rel) {
  std::ifstream in(std::string(GW_SOURCE_DIR) + "/" + rel);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Error config_error(std::string_view text) {
  auto c = parse_config(text);
  EXPECT_FALSE(c.has_value()) << "accepted: " << text;
  if (c) return {};
  EXPECT_EQ(c.error().code, Errc::invalid_input);
  return c.error();
}

void expect_same(const Config& a, const Config& b) {
  EXPECT_EQ(a.data_dir, b.data_dir);
  EXPECT_EQ(a.profiles_dir, b.profiles_dir);
  EXPECT_EQ(a.https.host, b.https.host);
  EXPECT_EQ(a.https.port, b.https.port);
  EXPECT_EQ(a.network_threads, b.network_threads);
  EXPECT_EQ(a.tls_cert, b.tls_cert);
  EXPECT_EQ(a.tls_key, b.tls_key);
  EXPECT_EQ(a.client_ca, b.client_ca);
  EXPECT_EQ(a.limits.header_bytes, b.limits.header_bytes);
  EXPECT_EQ(a.limits.body_bytes, b.limits.body_bytes);
  EXPECT_EQ(a.limits.max_connections, b.limits.max_connections);
  EXPECT_EQ(a.limits.max_pipelined, b.limits.max_pipelined);
  EXPECT_EQ(a.limits.handshake_timeout, b.limits.handshake_timeout);
  EXPECT_EQ(a.limits.read_timeout, b.limits.read_timeout);
  EXPECT_EQ(a.limits.idle_timeout, b.limits.idle_timeout);
  EXPECT_EQ(a.limits.handler_timeout, b.limits.handler_timeout);
  EXPECT_EQ(a.store_reader_threads, b.store_reader_threads);
  EXPECT_EQ(a.store_writer_queue, b.store_writer_queue);
  EXPECT_EQ(a.store_max_batch, b.store_max_batch);
  EXPECT_EQ(a.store_writer_cache_mib, b.store_writer_cache_mib);
  EXPECT_EQ(a.store_engine, b.store_engine);
  EXPECT_EQ(a.store_conninfo, b.store_conninfo);
  EXPECT_EQ(a.shutdown_grace, b.shutdown_grace);
  EXPECT_EQ(a.log_level, b.log_level);
  EXPECT_EQ(a.public_base_url, b.public_base_url);
  EXPECT_EQ(a.mllp.plain.has_value(), b.mllp.plain.has_value());
  EXPECT_EQ(a.mllp.tls.has_value(), b.mllp.tls.has_value());
  EXPECT_EQ(a.ops_listen.has_value(), b.ops_listen.has_value());
  ASSERT_EQ(a.mllp.allow.size(), b.mllp.allow.size());
  for (size_t i = 0; i < a.mllp.allow.size(); ++i) {
    EXPECT_EQ(a.mllp.allow[i].cidr, b.mllp.allow[i].cidr);
    EXPECT_EQ(a.mllp.allow[i].ods, b.mllp.allow[i].ods);
    EXPECT_EQ(a.mllp.allow[i].system, b.mllp.allow[i].system);
  }
  EXPECT_EQ(a.mllp.max_frame_bytes, b.mllp.max_frame_bytes);
  EXPECT_EQ(a.mllp.max_in_flight, b.mllp.max_in_flight);
  EXPECT_EQ(a.mllp.max_connections, b.mllp.max_connections);
  EXPECT_EQ(a.mllp.idle_timeout, b.mllp.idle_timeout);
  EXPECT_EQ(a.mllp.handler_timeout, b.mllp.handler_timeout);
  EXPECT_EQ(a.gp_hl7.enabled, b.gp_hl7.enabled);
  EXPECT_EQ(a.gp_hl7.practices.size(), b.gp_hl7.practices.size());
  EXPECT_EQ(a.gp_hl7.first_retry, b.gp_hl7.first_retry);
  EXPECT_EQ(a.gp_hl7.max_backoff, b.gp_hl7.max_backoff);
  EXPECT_EQ(a.gp_hl7.retry_for, b.gp_hl7.retry_for);
  EXPECT_EQ(a.gp_hl7.poll, b.gp_hl7.poll);
  EXPECT_EQ(a.gp_hl7.workers, b.gp_hl7.workers);
  EXPECT_EQ(a.gp_hl7.connect_timeout, b.gp_hl7.connect_timeout);
  EXPECT_EQ(a.gp_hl7.ack_timeout, b.gp_hl7.ack_timeout);
  EXPECT_EQ(a.gp_hl7.endpoint_ca, b.gp_hl7.endpoint_ca);
  EXPECT_EQ(a.users.issuers.size(), b.users.issuers.size());
  EXPECT_EQ(a.users.leeway_seconds, b.users.leeway_seconds);
}

// ---- parse_listen ------------------------------------------------------------

TEST(ParseListen, HostAndPort) {
  auto l = parse_listen("0.0.0.0:9443");
  ASSERT_TRUE(l.has_value()) << l.error().message;
  EXPECT_EQ(l->host, "0.0.0.0");
  EXPECT_EQ(l->port, 9443);
  auto n = parse_listen("gw-1.example.nhs.uk:443");
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->host, "gw-1.example.nhs.uk");
  EXPECT_EQ(n->port, 443);
}

TEST(ParseListen, PortOnlyMeansLoopback) {
  auto l = parse_listen(":8443");
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->host, "127.0.0.1");
  EXPECT_EQ(l->port, 8443);
}

TEST(ParseListen, Ipv6InBrackets) {
  auto l = parse_listen("[::1]:8443");
  ASSERT_TRUE(l.has_value()) << l.error().message;
  EXPECT_EQ(l->host, "::1");
  EXPECT_EQ(l->port, 8443);
  auto any = parse_listen("[::]:0");
  ASSERT_TRUE(any.has_value());
  EXPECT_EQ(any->host, "::");
  auto full = parse_listen("[2001:db8::42]:65535");
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(full->host, "2001:db8::42");
  EXPECT_EQ(full->port, 65535);
}

TEST(ParseListen, PortZeroAndBoundsAllowed) {
  EXPECT_EQ(parse_listen("127.0.0.1:0").value().port, 0);
  EXPECT_EQ(parse_listen("127.0.0.1:1").value().port, 1);
  EXPECT_EQ(parse_listen("127.0.0.1:65535").value().port, 65535);
}

void expect_listen_error(std::string_view s, std::string_view part) {
  auto l = parse_listen(s);
  ASSERT_FALSE(l.has_value()) << "accepted: " << s;
  EXPECT_EQ(l.error().code, Errc::invalid_input);
  EXPECT_NE(l.error().message.find(part), std::string::npos) << s << " -> " << l.error().message;
}

TEST(ParseListen, BadStringsNameTheBadPart) {
  expect_listen_error("127.0.0.1:65536", "port '65536' is out of range");
  expect_listen_error("127.0.0.1:99999999999999999999", "out of range");
  expect_listen_error("127.0.0.1:http", "port 'http' is not a number");
  expect_listen_error("127.0.0.1:-1", "port '-1' is not a number");
  expect_listen_error("127.0.0.1:80x", "port '80x'");
  expect_listen_error("127.0.0.1:", "has no port");
  expect_listen_error("127.0.0.1", "must be HOST:PORT");
  expect_listen_error("", "must be HOST:PORT");
  expect_listen_error("::1:8443", "write it in brackets");
  expect_listen_error("[::1]8443", "after the ']'");
  expect_listen_error("[::1:8443", "without a closing ']'");
  expect_listen_error("[not-v6]:8443", "host 'not-v6' is not an IPv6 address");
  expect_listen_error("bad host:8443", "host 'bad host'");
}

// ---- parse_config --------------------------------------------------------------

TEST(ParseConfig, EmptyObjectGivesDocumentedDefaults) {
  auto c = parse_config("{}");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->data_dir, "./data");
  EXPECT_EQ(c->profiles_dir, "./profiles");
  EXPECT_EQ(c->https.host, "127.0.0.1");
  EXPECT_EQ(c->https.port, 8443);
  EXPECT_EQ(c->network_threads, 2);
  EXPECT_EQ(c->tls_cert, "./pki/server.pem");
  EXPECT_EQ(c->tls_key, "./pki/server.key");
  EXPECT_EQ(c->client_ca, "./pki/ca.pem");
  EXPECT_EQ(c->limits.body_bytes, 10u * 1024 * 1024);
  EXPECT_EQ(c->limits.header_bytes, 8u * 1024);
  EXPECT_EQ(c->store_reader_threads, 2);
  EXPECT_EQ(c->store_writer_queue, 10000u);
  EXPECT_EQ(c->store_max_batch, 512u);
  EXPECT_EQ(c->store_writer_cache_mib, 256);
  EXPECT_EQ(c->shutdown_grace, 10'000ms);
  EXPECT_EQ(c->log_level, "info");
  EXPECT_EQ(c->public_base_url, "");
  expect_same(*c, Config{});
}

TEST(ParseConfig, EveryKeyIsApplied) {
  auto c = parse_config(R"({
    "data_dir": "/d", "profiles_dir": "/p",
    "https": {"listen": "[::1]:9000", "threads": 7},
    "tls": {"cert": "/c.pem", "key": "/k.pem", "client_ca": "/ca.pem"},
    "limits": {"header_bytes": 4096, "body_bytes": 123, "max_connections": 5, "max_pipelined": 3,
               "handshake_timeout_ms": 11, "read_timeout_ms": 12, "idle_timeout_ms": 13,
               "handler_timeout_ms": 14},
    "store": {"reader_threads": 9, "writer_queue": 99, "max_batch": 8, "writer_cache_mib": 1024},
    "shutdown_grace_ms": 0, "log_level": "debug",
    "public_base_url": "https://gw.example.nhs.uk/"
  })");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->data_dir, "/d");
  EXPECT_EQ(c->profiles_dir, "/p");
  EXPECT_EQ(c->https.host, "::1");
  EXPECT_EQ(c->https.port, 9000);
  EXPECT_EQ(c->network_threads, 7);
  EXPECT_EQ(c->tls_cert, "/c.pem");
  EXPECT_EQ(c->tls_key, "/k.pem");
  EXPECT_EQ(c->client_ca, "/ca.pem");
  EXPECT_EQ(c->limits.header_bytes, 4096u);
  EXPECT_EQ(c->limits.body_bytes, 123u);
  EXPECT_EQ(c->limits.max_connections, 5u);
  EXPECT_EQ(c->limits.max_pipelined, 3u);
  EXPECT_EQ(c->limits.handshake_timeout, 11ms);
  EXPECT_EQ(c->limits.read_timeout, 12ms);
  EXPECT_EQ(c->limits.idle_timeout, 13ms);
  EXPECT_EQ(c->limits.handler_timeout, 14ms);
  EXPECT_EQ(c->store_reader_threads, 9);
  EXPECT_EQ(c->store_writer_queue, 99u);
  EXPECT_EQ(c->store_max_batch, 8u);
  EXPECT_EQ(c->store_writer_cache_mib, 1024);
  EXPECT_EQ(c->shutdown_grace, 0ms);
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->public_base_url, "https://gw.example.nhs.uk");  // "/fhir" is appended to it
}

TEST(ParseConfig, PartialSectionKeepsOtherDefaults) {
  auto c = parse_config(R"({"limits": {"body_bytes": 1000}})");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->limits.body_bytes, 1000u);
  EXPECT_EQ(c->limits.header_bytes, config::Limits{}.header_bytes);
  EXPECT_EQ(c->limits.read_timeout, config::Limits{}.read_timeout);
}

// The one problem of a one-problem config, without the "config file config: 1 problem" header.
std::string only_problem(std::string_view text) {
  Error e = config_error(text);
  auto nl = e.message.find("\n  ");
  EXPECT_NE(e.message.find(": 1 problem\n"), std::string::npos) << e.message;
  return nl == std::string::npos ? e.message : e.message.substr(nl + 3);
}

TEST(ParseConfig, UnknownKeysAreNamedWithTheirPathPositionAndPointer) {
  auto e = config_error(R"({"limits": {"body_byts": 10}})");
  EXPECT_EQ(e.message, "config file config: 1 problem\n  config:1:13: limits.body_byts is not a known setting (at /limits/body_byts)");
  EXPECT_EQ(e.expression, "limits.body_byts");
  EXPECT_EQ(only_problem(R"({"datadir": "/x"})"), "config:1:2: datadir is not a known setting (at /datadir)");
  EXPECT_EQ(only_problem(R"({"https": {"port": 1}})"), "config:1:12: https.port is not a known setting (at /https/port)");
  EXPECT_EQ(only_problem(R"({"tls": {"ca": "x"}})"), "config:1:10: tls.ca is not a known setting (at /tls/ca)");
  EXPECT_EQ(only_problem(R"({"store": {"readers": 1}})"),
            "config:1:12: store.readers is not a known setting (at /store/readers)");
  EXPECT_EQ(only_problem(R"({"mllp": {"allow": [{"cidr": "::1/128", "ods": "X", "sytem": "y"}]}})"),
            "config:1:53: mllp.allow[0].sytem is not a known setting (at /mllp/allow/0/sytem)");
}

TEST(ParseConfig, DuplicateKeyIsAnError) {
  EXPECT_EQ(only_problem(R"({"log_level": "info", "log_level": "debug"})"),
            "config:1:2: log_level appears more than once (at /log_level)");
}

TEST(ParseConfig, TypeErrorsNameKeyAndExpectedType) {
  auto e = config_error(R"({"https": {"threads": "4"}})");
  EXPECT_EQ(e.expression, "https.threads");
  EXPECT_NE(e.message.find("https.threads must be an integer, not \"4\""), std::string::npos) << e.message;
  EXPECT_NE(only_problem(R"({"limits": {"body_bytes": 1.5}})").find("limits.body_bytes must be an integer, not 1.5"),
            std::string::npos);
  EXPECT_EQ(only_problem(R"({"data_dir": 5})"), "config:1:2: data_dir must be a string, not 5 (at /data_dir)");
  EXPECT_NE(only_problem(R"({"tls": {"cert": null}})").find("tls.cert must be a string, not null"), std::string::npos);
  EXPECT_NE(only_problem(R"({"limits": []})").find("limits must be an object, not []"), std::string::npos);
  EXPECT_NE(only_problem(R"({"https": "127.0.0.1:1"})").find("https must be an object"), std::string::npos);
  EXPECT_NE(only_problem(R"({"data_dir": ""})").find("data_dir must not be empty"), std::string::npos);
  EXPECT_NE(only_problem(R"({"subscriptions": {"enabled": "yes"}})").find("subscriptions.enabled must be true or false"),
            std::string::npos);
}

TEST(ParseConfig, RangesAreChecked) {
  EXPECT_NE(only_problem(R"({"https": {"threads": 0}})").find("https.threads must be between 1 and 256, not 0"),
            std::string::npos);
  EXPECT_NE(only_problem(R"({"https": {"threads": 257}})").find("not 257"), std::string::npos);
  EXPECT_TRUE(parse_config(R"({"https": {"threads": 256}})").has_value());
  EXPECT_NE(only_problem(R"({"limits": {"body_bytes": 0}})").find("limits.body_bytes must be between 1"),
            std::string::npos);
  EXPECT_NE(only_problem(R"({"limits": {"body_bytes": -5}})").find("not -5"), std::string::npos);
  EXPECT_NE(only_problem(R"({"limits": {"max_connections": 18446744073709551615}})")
                .find("limits.max_connections must be between 1 and 1000000"),
            std::string::npos);
  EXPECT_NE(only_problem(R"({"subscriptions": {"jitter": 1}})").find("subscriptions.jitter must be in [0, 1), not 1"),
            std::string::npos);
  EXPECT_TRUE(parse_config(R"({"subscriptions": {"jitter": 0.99}})").has_value());
  EXPECT_EQ(config_error(R"({"limits": {"read_timeout_ms": 0}})").expression, "limits.read_timeout_ms");
  EXPECT_EQ(config_error(R"({"store": {"reader_threads": 0}})").expression, "store.reader_threads");
  EXPECT_EQ(config_error(R"({"store": {"max_batch": 0}})").expression, "store.max_batch");
  EXPECT_EQ(config_error(R"({"store": {"writer_cache_mib": 8}})").expression, "store.writer_cache_mib");
  EXPECT_EQ(config_error(R"({"shutdown_grace_ms": -1})").expression, "shutdown_grace_ms");
}

TEST(ParseConfig, LogLevelIsOneOfFour) {
  for (const char* l : {"debug", "info", "warn", "error"}) {
    auto c = parse_config(std::string(R"({"log_level": ")") + l + "\"}");
    ASSERT_TRUE(c.has_value()) << l;
    EXPECT_EQ(c->log_level, l);
  }
  EXPECT_EQ(only_problem(R"({"log_level": "verbose"})"),
            "config:1:2: log_level: \"verbose\" is not one of: debug, info, warn, error (at /log_level)");
  EXPECT_NE(only_problem(R"({"store": {"engine": "mysql"}})").find("store.engine: \"mysql\" is not one of: sqlite, postgresql"),
            std::string::npos);
  config_error(R"({"log_level": "warning"})");
  config_error(R"({"log_level": "INFO"})");
}

TEST(ParseConfig, BadListenNamesKeyAndPart) {
  auto e = config_error(R"({"https": {"listen": "127.0.0.1:70000"}})");
  EXPECT_EQ(e.expression, "https.listen");
  EXPECT_NE(e.message.find("config:1:12: https.listen: port '70000' is out of range 0-65535 (at /https/listen)"),
            std::string::npos)
      << e.message;
}

TEST(ParseConfig, PublicBaseUrlMustBeAbsolute) {
  EXPECT_EQ(config_error(R"({"public_base_url": "gw.example.nhs.uk"})").expression, "public_base_url");
  EXPECT_TRUE(parse_config(R"({"public_base_url": ""})").has_value());
}

TEST(ParseConfig, NotJsonOrNotObject) {
  EXPECT_NE(config_error("{").message.find("\n  config:1:2: not valid JSON: "), std::string::npos) << config_error("{").message;
  EXPECT_NE(config_error("[]").message.find("config:1:1: the config must be an object, not []"), std::string::npos)
      << config_error("[]").message;
}

// A config file's problems are all reported at once, each as
// FILE:LINE:COLUMN with the key's path, not as a byte offset.
TEST(LoadConfigFile, EveryProblemWithFileLineColumnAndKey) {
  test::TempDir dir;
  std::string file = dir.path() + "/gateway.json";
  std::ofstream(file) << "{\n"
                         "  \"https\": {\n"
                         "    \"threads\": \"four\",\n"
                         "    \"listen\": \":8443\"\n"
                         "  },\n"
                         "  \"limits\": {\"body_byts\": 10},\n"
                         "  \"log_level\": \"verbose\"\n"
                         "}\n";
  auto c = load_config_file(file);
  ASSERT_FALSE(c.has_value());
  const std::string& m = c.error().message;
  EXPECT_NE(m.find("3 problems"), std::string::npos) << m;
  EXPECT_NE(m.find(file + ":3:5: https.threads must be an integer, not \"four\" (at /https/threads)"), std::string::npos) << m;
  EXPECT_NE(m.find(file + ":6:14: limits.body_byts is not a known setting (at /limits/body_byts)"), std::string::npos) << m;
  EXPECT_NE(m.find(file + ":7:3: log_level: \"verbose\" is not one of: debug, info, warn, error (at /log_level)"),
            std::string::npos)
      << m;
  EXPECT_EQ(c.error().expression, "https.threads");

  std::ofstream(file, std::ios::trunc) << "{\n  \"data_dir\": \"/x\",\n  \"log_level\": info\n}\n";
  auto syntax = load_config_file(file);
  ASSERT_FALSE(syntax.has_value());
  EXPECT_NE(syntax.error().message.find(file + ":3:16: not valid JSON"), std::string::npos) << syntax.error().message;
  EXPECT_EQ(syntax.error().message.find("offset"), std::string::npos) << syntax.error().message;
}

TEST(ParseConfig, ExampleFileParses) {
  auto c = load_config_file(std::string(GW_SOURCE_DIR) + "/deploy/config.example.json");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->https.host, "0.0.0.0");
  EXPECT_EQ(c->https.port, 8443);
  EXPECT_EQ(c->network_threads, 4);
  EXPECT_EQ(c->public_base_url, "https://cpis-gateway.example.nhs.uk");
}

TEST(ParseConfig, OpsListenerIsOffByDefaultLoopbackForBarePortAndNamedOnError) {
  EXPECT_FALSE(Config{}.ops_listen.has_value());
  auto c = parse_config(R"({"ops": {"listen": ":9464"}})");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  ASSERT_TRUE(c->ops_listen.has_value());
  EXPECT_EQ(c->ops_listen->host, "127.0.0.1");
  EXPECT_EQ(c->ops_listen->port, 9464);
  EXPECT_EQ(config_error(R"({"ops": {"listen": "9464"}})").expression, "ops.listen");
  EXPECT_EQ(config_error(R"({"ops": {"lisen": ":9464"}})").expression, "ops.lisen");
  auto ex = load_config_file(std::string(GW_SOURCE_DIR) + "/deploy/config.example.json");
  ASSERT_TRUE(ex.has_value()) << ex.error().message;
  ASSERT_TRUE(ex->ops_listen.has_value());
  EXPECT_EQ(ex->ops_listen->host, "127.0.0.1");
}

TEST(ParseConfig, MllpIsOffByDefaultAndConfigurable) {
  Config d;
  EXPECT_FALSE(d.mllp.plain.has_value());
  EXPECT_FALSE(d.mllp.tls.has_value());
  ASSERT_EQ(d.mllp.allow.size(), 2u);  // loopback only
  auto c = parse_config(R"({"mllp":{"listen":"0.0.0.0:2575","tls_listen":":2576",
      "allow":[{"cidr":"10.1.0.0/16","ods":"RFR","system":"SYSTMONE"}],"max_frame_bytes":2048}})");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  ASSERT_TRUE(c->mllp.plain.has_value());
  EXPECT_EQ(c->mllp.plain->port, 2575);
  EXPECT_EQ(c->mllp.tls->host, "127.0.0.1");
  ASSERT_EQ(c->mllp.allow.size(), 1u);
  EXPECT_EQ(c->mllp.allow[0].ods, "RFR");
  EXPECT_EQ(c->mllp.max_frame_bytes, 2048u);
  auto bad = parse_config(R"({"mllp":{"allow":[{"cidr":"10.0.0.0/8"}]}})");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("mllp.allow[0]: missing required key 'ods' (at /mllp/allow/0)"), std::string::npos)
      << bad.error().message;
  auto typo = parse_config(R"({"mllp":{"alow":[]}})");
  ASSERT_FALSE(typo.has_value());
  EXPECT_NE(typo.error().message.find("mllp.alow is not a known setting"), std::string::npos);
}

TEST(ParseConfig, GpPracticeEndpoints) {
  auto c = parse_config(R"({"gp_hl7": {"practices": [
      {"ods": "B86001", "address": "10.1.2.3:2575"},
      {"ods": "C87001", "address": "gp.example.nhs.uk:2576", "tls": true}],
    "retry_for_seconds": 60, "first_retry_ms": 100, "workers": 2, "endpoint_ca": "/gp-ca.pem"}})");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  ASSERT_EQ(c->gp_hl7.practices.size(), 2u);
  EXPECT_EQ(c->gp_hl7.practices[0].ods, "B86001");
  EXPECT_EQ(c->gp_hl7.practices[0].address.host, "10.1.2.3");
  EXPECT_EQ(c->gp_hl7.practices[0].address.port, 2575);
  EXPECT_FALSE(c->gp_hl7.practices[0].tls);
  EXPECT_TRUE(c->gp_hl7.practices[1].tls);
  EXPECT_EQ(c->gp_hl7.retry_for, std::chrono::seconds(60));
  EXPECT_EQ(c->gp_hl7.first_retry, std::chrono::milliseconds(100));
  EXPECT_EQ(c->gp_hl7.endpoint_ca, "/gp-ca.pem");
  EXPECT_EQ(c->gp_hl7.workers, 2);

  auto twice = parse_config(R"({"gp_hl7": {"practices": [{"ods": "B86001", "address": "h:1"}, {"ods": "B86001", "address": "h:2"}]}})");
  ASSERT_FALSE(twice.has_value());
  EXPECT_NE(twice.error().message.find("gp_hl7.practices[1].ods names a practice listed before"), std::string::npos)
      << twice.error().message;
  auto no_port = parse_config(R"({"gp_hl7": {"practices": [{"ods": "B86001", "address": "h:0"}]}})");
  ASSERT_FALSE(no_port.has_value());
  EXPECT_NE(no_port.error().message.find("gp_hl7.practices[0].address needs a port other than 0"), std::string::npos)
      << no_port.error().message;
  auto no_address = parse_config(R"({"gp_hl7": {"practices": [{"ods": "B86001"}]}})");
  ASSERT_FALSE(no_address.has_value());
  EXPECT_NE(no_address.error().message.find("gp_hl7.practices[0]: missing required key 'address'"), std::string::npos)
      << no_address.error().message;
  auto typo = parse_config(R"({"gp_hl7": {"practises": []}})");
  ASSERT_FALSE(typo.has_value());
  EXPECT_NE(typo.error().message.find("gp_hl7.practises is not a known setting"), std::string::npos);
}

// docs/CONFIG.md shows the defaults as a JSON block; it must not drift from the code.
TEST(ParseConfig, DocumentedDefaultsMatchTheCode) {
  std::string md = read_source_file("docs/CONFIG.md");
  size_t start = md.find("```json\n");
  ASSERT_NE(start, std::string::npos);
  start += 8;
  size_t end = md.find("```", start);
  ASSERT_NE(end, std::string::npos);
  auto c = parse_config(std::string_view(md).substr(start, end - start));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  expect_same(*c, Config{});
}

TEST(LoadConfigFile, MissingFileIsNamed) {
  auto c = load_config_file("/nonexistent/cpis.json");
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().message.find("/nonexistent/cpis.json"), std::string::npos);
}

TEST(LoadConfigFile, ErrorInFileNamesFileAndKey) {
  std::string path = ::testing::TempDir() + "config_test_bad.json";
  {
    std::ofstream out(path);
    out << R"({"limits": {"body_byts": 1}})";
  }
  auto c = load_config_file(path);
  std::remove(path.c_str());
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().message.find(path), std::string::npos);
  EXPECT_NE(c.error().message.find("limits.body_byts is not a known setting"), std::string::npos);
  EXPECT_EQ(c.error().expression, "limits.body_byts");
}

}  // namespace
}  // namespace gw::config

namespace gw::config {
namespace {

TEST(ParseConfig, SubscriptionsHaveTheDocumentedDefaultsAndAreConfigurable) {
  Config d;
  EXPECT_TRUE(d.subscriptions.enabled);
  EXPECT_LE(d.subscriptions.first_retry, std::chrono::milliseconds(5000));
  EXPECT_EQ(d.subscriptions.max_backoff, std::chrono::minutes(10));
  EXPECT_EQ(d.subscriptions.retry_for, std::chrono::hours(72));
  auto c = parse_config(R"({"subscriptions":{"enabled":false,"delivery_workers":3,"first_retry_ms":100,
      "max_backoff_ms":2000,"retry_for_seconds":60,"post_timeout_ms":500,"jitter":0.5,
      "max_events_per_notification":10,"poll_ms":50,"endpoint_ca":"/etc/ca.pem"}})");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_FALSE(c->subscriptions.enabled);
  EXPECT_EQ(c->subscriptions.delivery_workers, 3);
  EXPECT_EQ(c->subscriptions.first_retry, std::chrono::milliseconds(100));
  EXPECT_EQ(c->subscriptions.retry_for, std::chrono::seconds(60));
  EXPECT_EQ(c->subscriptions.jitter, 0.5);
  EXPECT_EQ(c->subscriptions.endpoint_ca, "/etc/ca.pem");
  auto bad = parse_config(R"({"subscriptions":{"jitter":1.5}})");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().expression, "subscriptions.jitter");
  EXPECT_FALSE(parse_config(R"({"subscriptions":{"retry_for":5}})").has_value());
}

}  // namespace
}  // namespace gw::config

namespace gw::config {
namespace {

TEST(ParseConfig, RevocationListsRateLimitsAndFrameTimeout) {
  auto c = parse_config(R"({"tls": {"crl_files": ["/a/crl.pem", "/b/crl.pem"]},
    "limits": {"rate_per_principal": 2.5, "burst": 7, "max_concurrent_per_principal": 3, "max_query_params": 40},
    "mllp": {"frame_timeout_ms": 1500}})");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->tls_crls, (std::vector<std::string>{"/a/crl.pem", "/b/crl.pem"}));
  EXPECT_DOUBLE_EQ(c->limits.per_principal.rate_per_second, 2.5);
  EXPECT_EQ(c->limits.per_principal.burst, 7u);
  EXPECT_EQ(c->limits.per_principal.max_concurrent, 3u);
  EXPECT_EQ(c->limits.max_query_params, 40u);
  EXPECT_EQ(c->mllp.frame_timeout, std::chrono::milliseconds(1500));
  auto bad = parse_config(R"({"tls": {"crl_files": "/a/crl.pem"}})");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("tls.crl_files must be an array"), std::string::npos) << bad.error().message;
  auto negative = parse_config(R"({"limits": {"rate_per_principal": -1}})");
  ASSERT_FALSE(negative);
  EXPECT_NE(negative.error().message.find("limits.rate_per_principal"), std::string::npos);
}

TEST(ParseConfig, RateLimitFlagIsRpsAndAnOptionalBurst) {
  config::Limits l;
  ASSERT_TRUE(parse_rate_limit("10", l));
  EXPECT_DOUBLE_EQ(l.per_principal.rate_per_second, 10);
  EXPECT_EQ(l.per_principal.burst, 20u);  // unchanged
  ASSERT_TRUE(parse_rate_limit("0.5:3", l));
  EXPECT_DOUBLE_EQ(l.per_principal.rate_per_second, 0.5);
  EXPECT_EQ(l.per_principal.burst, 3u);
  for (const char* wrong : {"", "x", "5:", "5:0", "-1", "5:2:1", "1e9"}) {
    auto r = parse_rate_limit(wrong, l);
    EXPECT_FALSE(r) << wrong;
  }
}

TEST(ParseConfig, StoreEngineIsSqliteByDefaultAndPostgresqlNeedsAConninfo) {
  EXPECT_EQ(Config{}.store_engine, "sqlite");
  EXPECT_TRUE(check_store(Config{}));
  auto c = parse_config(R"({"store": {"engine": "postgresql", "conninfo": "host=db dbname=cpis user=cpis"}})");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->store_engine, "postgresql");
  EXPECT_EQ(c->store_conninfo, "host=db dbname=cpis user=cpis");
  EXPECT_TRUE(check_store(*c));
  // Without its conninfo (from the file or --store-conninfo) it cannot start.
  auto bare = parse_config(R"({"store": {"engine": "postgresql"}})");
  ASSERT_TRUE(bare.has_value()) << bare.error().message;
  auto why = check_store(*bare);
  ASSERT_FALSE(why);
  EXPECT_NE(why.error().message.find("store.conninfo"), std::string::npos) << why.error().message;
  EXPECT_EQ(config_error(R"({"store": {"engine": "mysql"}})").expression, "store.engine");
  EXPECT_EQ(config_error(R"({"store": {"conninfo": 5}})").expression, "store.conninfo");
  // The flag takes the same two names.
  Config f;
  EXPECT_TRUE(set_store_engine("postgresql", f));
  EXPECT_EQ(f.store_engine, "postgresql");
  EXPECT_FALSE(set_store_engine("postgres", f));
  EXPECT_EQ(f.store_engine, "postgresql");
}

}  // namespace
}  // namespace gw::config

namespace gw::config {
namespace {

// The example's keys as dotted paths (a value that is not an object is a
// key: "mllp.allow" is one), and every member name anywhere in it.
void example_keys(const json::Value& v, const std::string& path, std::set<std::string>& paths,
                  std::set<std::string>& names) {
  if (v.IsObject()) {
    for (const auto& m : v.GetObject()) {
      std::string k(json::as_view(m.name));
      names.insert(k);
      example_keys(m.value, path.empty() ? k : path + "." + k, paths, names);
    }
    return;
  }
  paths.insert(path);
  if (v.IsArray())
    for (const auto& item : v.GetArray())
      if (item.IsObject())
        for (const auto& m : item.GetObject()) names.insert(std::string(json::as_view(m.name)));
}

// deploy/config.example.json lists every key (the README says so): the keys
// of the reference table in docs/CONFIG.md are exactly its keys, and every
// key name the code reads (gateway/config/config.cc) is in it.
TEST(ConfigExample, ListsEveryKeyOfTheReferenceAndTheParser) {
  auto ex = json::parse(read_source_file("deploy/config.example.json"));
  ASSERT_TRUE(ex.has_value());
  std::set<std::string> paths, names;
  example_keys(*ex, "", paths, names);

  std::set<std::string> reference;
  std::string doc = read_source_file("docs/CONFIG.md");
  std::regex row(R"(\n\| `([a-z0-9_.]+)` \|)");
  for (std::sregex_iterator it(doc.begin(), doc.end(), row), end; it != end; ++it) reference.insert((*it)[1].str());
  ASSERT_GT(reference.size(), 50u) << "the reference table was not found in docs/CONFIG.md";
  for (const auto& k : reference) EXPECT_TRUE(paths.count(k)) << k << " is documented but not in config.example.json";
  for (const auto& k : paths) EXPECT_TRUE(reference.count(k)) << k << " is in config.example.json but not documented";

  // The key names the code reads (the last step of each; ConfigSchema.* checks them against the schema).
  std::set<std::string> parser;
  for (const auto& p : config_keys_read()) parser.insert(p.substr(p.rfind('/') + 1));
  parser.erase("*");
  ASSERT_GT(parser.size(), 40u) << "config_keys_read() returned too few keys";
  for (const auto& k : parser) EXPECT_TRUE(names.count(k)) << "the parser knows '" << k << "'; the example lacks it";
  for (const auto& k : names) EXPECT_TRUE(parser.count(k)) << "the example has '" << k << "'; the parser does not know it";
}

// ---- the schema as the one reference (profiles/schemas/config.schema.json) ------

// A schema node with a local "$ref" followed.
const json::Value& resolved(const json::Value& root, const json::Value& node) {
  if (auto ref = json::get_string(node, "$ref")) {
    std::string_view r = *ref;
    EXPECT_EQ(r.rfind("#/definitions/", 0), 0u) << r;
    const json::Value* defs = json::member(root, "definitions");
    const json::Value* d = defs ? json::member(*defs, r.substr(14)) : nullptr;
    EXPECT_NE(d, nullptr) << r;
    if (d) return *d;
  }
  return node;
}

struct SchemaKey {
  std::string pointer;           // "/mllp/allow/*/cidr"
  const json::Value* node;       // its schema, as written (with "default", "description")
};

// Every setting of the schema: each property that is not itself an object
// of settings, with "*" for the items of an array of objects.
void schema_keys(const json::Value& root, const json::Value& node, const std::string& ptr, std::vector<SchemaKey>& out) {
  const json::Value& n = resolved(root, node);
  const json::Value* props = json::member(n, "properties");
  if (props) {
    for (const auto& m : props->GetObject()) {
      std::string p = ptr + "/" + std::string(json::as_view(m.name));
      const json::Value& child = resolved(root, m.value);
      out.push_back({p, &m.value});
      if (json::get_string(child, "type") == "object") schema_keys(root, child, p, out);
      if (const json::Value* items = json::member(child, "items"); items && json::member(resolved(root, *items), "properties"))
        schema_keys(root, *items, p + "/*", out);
    }
  }
}

struct SchemaDoc {
  json::Document doc;
  std::vector<SchemaKey> keys;
  SchemaDoc() {
    auto d = json::parse(config_schema_text());
    EXPECT_TRUE(d.has_value());
    if (d) doc = std::move(*d);
    schema_keys(doc, doc, "", keys);
  }
};

// The binary's copy is the file in profiles/ (the build embeds it), and it is the file installed with the profiles.
TEST(ConfigSchema, CompiledInCopyIsTheProfilesFile) {
  EXPECT_EQ(std::string(config_schema_text()), read_source_file("profiles/schemas/config.schema.json"));
}

TEST(ConfigSchema, EveryKeyTheCodeReadsIsInTheSchemaAndBackAgain) {
  SchemaDoc s;
  std::set<std::string> in_schema, read;
  for (const auto& k : s.keys) in_schema.insert(k.pointer);
  for (const auto& k : config_keys_read()) read.insert(k);
  EXPECT_GT(in_schema.size(), 70u);
  for (const auto& k : read) EXPECT_TRUE(in_schema.count(k)) << k << " is read by the code but not in the schema";
  for (const auto& k : in_schema) EXPECT_TRUE(read.count(k)) << k << " is in the schema but the code never reads it";
}

// "*" -> "0": the first item of the example's arrays.
std::string example_pointer(std::string p) {
  for (size_t at; (at = p.find("/*")) != std::string::npos;) p.replace(at, 2, "/0");
  return p;
}

const json::Value* at_pointer(const json::Value& root, const std::string& pointer) {
  const json::Value* v = &root;
  size_t at = 0;
  while (v && at < pointer.size()) {
    size_t next = pointer.find('/', at + 1);
    std::string tok = pointer.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
    if (v->IsArray()) {
      size_t i = std::stoul(tok);
      v = i < v->Size() ? &(*v)[static_cast<json::SizeType>(i)] : nullptr;
    } else {
      v = json::member(*v, tok);
    }
    if (next == std::string::npos) break;
    at = next;
  }
  return v;
}

TEST(ConfigSchema, ExampleValidatesAndSetsEveryKey) {
  SchemaDoc s;
  for (const char* f : {"deploy/config.example.json", "deploy/config.installed.json"}) {
    std::string text = read_source_file(f);
    auto c = parse_config(text);
    EXPECT_TRUE(c.has_value()) << f << ": " << c.error().message;
  }
  auto example = json::parse(read_source_file("deploy/config.example.json"));
  ASSERT_TRUE(example.has_value());
  for (const auto& k : s.keys)
    EXPECT_NE(at_pointer(*example, example_pointer(k.pointer)), nullptr)
        << "deploy/config.example.json does not show " << k.pointer;
}

// docs/CONFIG.md's table has a row per setting; an item's keys are quoted in its array's row.
TEST(ConfigSchema, EveryKeyHasARowInTheDocs) {
  SchemaDoc s;
  std::string md = read_source_file("docs/CONFIG.md");
  auto row_of = [&](const std::string& dotted) -> std::string {
    size_t at = md.find("\n| `" + dotted + "` |");
    if (at == std::string::npos) return "";
    return md.substr(at + 1, md.find('\n', at + 1) - at - 1);
  };
  for (const auto& k : s.keys) {
    if (json::get_string(resolved(s.doc, *k.node), "type") == "object") continue;  // a section, not a setting
    std::string dotted = k.pointer.substr(1);
    std::replace(dotted.begin(), dotted.end(), '/', '.');
    size_t star = dotted.find(".*.");
    if (star == std::string::npos) {
      EXPECT_NE(row_of(dotted), "") << "docs/CONFIG.md has no row for `" << dotted << "`";
    } else {
      std::string row = row_of(dotted.substr(0, star));
      std::string item_key = "\"" + dotted.substr(star + 3) + "\"";
      EXPECT_NE(row.find(item_key), std::string::npos) << dotted << ": its array's row does not name " << item_key;
    }
  }
}

// The schema's "default"s are the code's defaults: a file made of them reads as Config{}.
TEST(ConfigSchema, DefaultsAreTheBuiltInOnes) {
  SchemaDoc s;
  json::Document d;
  d.SetObject();
  size_t n = 0;
  for (const auto& k : s.keys) {
    const json::Value* def = json::member(*k.node, "default");
    if (!def || k.pointer.find("/*") != std::string::npos) continue;
    json::Value* obj = &d;
    std::string rest = k.pointer.substr(1);
    for (size_t slash; (slash = rest.find('/')) != std::string::npos; rest = rest.substr(slash + 1)) {
      std::string part = rest.substr(0, slash);
      if (!json::member(*obj, part)) json::set(*obj, part, json::object(), d.GetAllocator());
      obj = &(*obj)[part.c_str()];
    }
    json::set(*obj, rest, json::Value(*def, d.GetAllocator()), d.GetAllocator());
    ++n;
  }
  EXPECT_GT(n, 50u);  // 56 today: every setting that has a default
  auto c = parse_config(json::to_string(d));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  expect_same(*c, Config{});
  EXPECT_EQ(c->limits.max_query_params, Config{}.limits.max_query_params);
  EXPECT_EQ(c->limits.per_principal.rate_per_second, Config{}.limits.per_principal.rate_per_second);
  EXPECT_EQ(c->limits.per_principal.burst, Config{}.limits.per_principal.burst);
  EXPECT_EQ(c->limits.per_principal.max_concurrent, Config{}.limits.per_principal.max_concurrent);
  EXPECT_EQ(c->subscriptions.enabled, Config{}.subscriptions.enabled);
  EXPECT_EQ(c->subscriptions.delivery_workers, Config{}.subscriptions.delivery_workers);
  EXPECT_EQ(c->subscriptions.first_retry, Config{}.subscriptions.first_retry);
  EXPECT_EQ(c->subscriptions.max_backoff, Config{}.subscriptions.max_backoff);
  EXPECT_EQ(c->subscriptions.retry_for, Config{}.subscriptions.retry_for);
  EXPECT_EQ(c->subscriptions.post_timeout, Config{}.subscriptions.post_timeout);
  EXPECT_EQ(c->subscriptions.jitter, Config{}.subscriptions.jitter);
  EXPECT_EQ(c->subscriptions.max_events_per_notification, Config{}.subscriptions.max_events_per_notification);
  EXPECT_EQ(c->subscriptions.poll, Config{}.subscriptions.poll);
  EXPECT_EQ(c->audit_retention_days, Config{}.audit_retention_days);
  EXPECT_EQ(c->mllp.frame_timeout, Config{}.mllp.frame_timeout);
  EXPECT_EQ(c->tls_crls, Config{}.tls_crls);
}

// Several problems of several kinds in one file: every one is reported, in
// the file's order, with its line, column and JSON pointer.
TEST(LoadConfigFile, EveryKindOfProblemAtOnce) {
  test::TempDir dir;
  std::string file = dir.path() + "/bad.json";
  std::ofstream(file) << "{\n"                                                     // 1
                         "  \"https\": {\"listen\": \":8443\", \"threads\": 0},\n"  // 2
                         "  \"limits\": {\n"                                       // 3
                         "    \"body_bytes\": 2147483648,\n"                       // 4
                         "    \"read_timout_ms\": 5\n"                             // 5
                         "  },\n"                                                  // 6
                         "  \"store\": {\"engine\": \"oracle\", \"max_batch\": 1.5},\n"  // 7
                         "  \"mllp\": {\"tls_listen\": \"[::1]2576\"},\n"         // 8
                         "  \"gp_hl7\": {\"practices\": [\n"                       // 9
                         "    {\"ods\": \"B86001\", \"address\": \"gp:2575\"},\n"  // 10
                         "    {\"ods\": \"B86001\", \"address\": \"gp:2576\", \"tsl\": true}\n"  // 11
                         "  ]},\n"                                                 // 12
                         "  \"log_level\": \"loud\"\n"                             // 13
                         "}\n";
  auto c = load_config_file(file);
  ASSERT_FALSE(c.has_value());
  const std::string m = c.error().message;
  std::vector<std::string> want = {
      file + ":2:32: https.threads must be between 1 and 256, not 0 (at /https/threads)",
      file + ":4:5: limits.body_bytes must be between 1 and 1073741824, not 2147483648 (at /limits/body_bytes)",
      file + ":5:5: limits.read_timout_ms is not a known setting (at /limits/read_timout_ms)",
      file + ":7:13: store.engine: \"oracle\" is not one of: sqlite, postgresql (at /store/engine)",
      file + ":7:33: store.max_batch must be an integer, not 1.5 (at /store/max_batch)",
      file + ":8:12: mllp.tls_listen: listen address '[::1]2576' needs ':PORT' after the ']' (at /mllp/tls_listen)",
      file + ":11:6: gp_hl7.practices[1].ods names a practice listed before (at /gp_hl7/practices/1/ods)",
      file + ":11:45: gp_hl7.practices[1].tsl is not a known setting (at /gp_hl7/practices/1/tsl)",
      file + ":13:3: log_level: \"loud\" is not one of: debug, info, warn, error (at /log_level)",
  };
  EXPECT_NE(m.find("config file " + file + ": 9 problems\n"), std::string::npos) << m;
  size_t last = 0;
  for (const auto& w : want) {
    size_t at = m.find(w);
    EXPECT_NE(at, std::string::npos) << "missing: " << w << "\nin:\n" << m;
    if (at != std::string::npos) {
      EXPECT_GT(at, last) << "out of order: " << w;
      last = at;
    }
  }
  EXPECT_EQ(c.error().expression, "https.threads");

  // A second file: problems inside arrays of objects and at the top level.
  std::ofstream(file, std::ios::trunc) << "{\n"
                                          "  \"users\": {\"issuers\": [{\"issuer\": \"https://idp\"}], \"leeway_seconds\": 301},\n"
                                          "  \"tls\": {\"crl_files\": [\"/a.pem\", \"\"]},\n"
                                          "  \"public_base_url\": \"gw.example\",\n"
                                          "  \"colour\": \"blue\"\n"
                                          "}\n";
  auto c2 = load_config_file(file);
  ASSERT_FALSE(c2.has_value());
  const std::string m2 = c2.error().message;
  EXPECT_NE(m2.find(": 5 problems\n"), std::string::npos) << m2;
  EXPECT_NE(m2.find(file + ":2:25: users.issuers[0]: missing required key 'audience', 'jwks_file' (at /users/issuers/0)"),
            std::string::npos)
      << m2;
  EXPECT_NE(m2.find(file + ":2:53: users.leeway_seconds must be between 0 and 300, not 301"), std::string::npos) << m2;
  EXPECT_NE(m2.find(file + ":3:35: tls.crl_files[1] must not be empty (at /tls/crl_files/1)"), std::string::npos) << m2;
  EXPECT_NE(m2.find(file + ":4:3: public_base_url: \"gw.example\" does not match the pattern"), std::string::npos) << m2;
  EXPECT_NE(m2.find(file + ":5:3: colour is not a known setting (at /colour)"), std::string::npos) << m2;
}

}  // namespace
}  // namespace gw::config
