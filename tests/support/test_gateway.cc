#include "tests/support/test_gateway.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>

#include "adapters/registry.h"
#include "gateway/admin/audit_flows.h"
#include "gateway/admin/web_console.h"
#include "gateway/admin/coverage_report.h"
#include "gateway/events/coverage.h"
#include "gateway/events/subscriptions.h"
#include "gateway/area/area.h"
#include "gateway/events/relations.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/fhir/cohort.h"
#include "gateway/fhir/rest.h"
#include "gateway/security/visibility.h"
#include "gateway/write/write_service.h"
#include "gateway/fhir/subscription_api.h"
#include "gateway/ingest/cpis_upload.h"
#include "gateway/ingest/ingest_api.h"
#include "gateway/ingest/render_api.h"
#include "gateway/write/validation.h"
#include "gateway/net/https_server.h"
#include "gateway/ops/ops.h"
#include "gateway/safeguarding/acknowledge.h"
#include "gateway/safeguarding/flows_api.h"
#include "gateway/security/policy.h"
#include "tests/support/pki.h"
#include "tests/support/test_store.h"
#include "tests/support/user_tokens_kit.h"

namespace gw::test {

TempDir::TempDir() {
  char tmpl[] = "/tmp/gw-test-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

struct InProcessGateway::Parts {
  metrics::Registry registry;
  write::Validator validator;
  security::Policy policy;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<security::Visibility> visibility;
  std::unique_ptr<write::WriteService> writes;
  std::unique_ptr<admin::AuditFlows> audit_flows;
  std::unique_ptr<admin::CoverageReportApi> coverage_api;
  std::unique_ptr<fhir::RestApi> rest;
  std::unique_ptr<adapters::Registry> adapters;
  std::unique_ptr<ingest::Hl7Ingest> systmone;
  std::unique_ptr<ingest::FileIngest> camhs, cashgum;
  std::unique_ptr<ingest::CpisUpload> cpis_upload;
  std::unique_ptr<ingest::IngestApi> ingest_api;
  std::unique_ptr<ingest::RenderApi> render_api;
  std::unique_ptr<fhir::SafeguardingCohortApi> cohort;
  std::unique_ptr<ops::Readiness> readiness;
  std::unique_ptr<ops::OpsApi> ops;
  std::unique_ptr<events::Subscriptions> subs;
  std::unique_ptr<fhir::SubscriptionApi> sub_api;
  std::unique_ptr<admin::WebConsole> web;
  std::mutex today_mu;
  std::shared_ptr<const events::FlowContext> flows;
  std::unique_ptr<safeguarding::FlowsApi> flows_api;
  std::unique_ptr<safeguarding::AcknowledgeApi> acknowledge_api;
  std::string today;  // "" = the real date
  net::Router router;
  std::unique_ptr<net::HttpsServer> server;
  uint16_t port = 0;
};

InProcessGateway::InProcessGateway(config::Limits limits) : InProcessGateway(limits, nullptr) {}

InProcessGateway::InProcessGateway(config::Limits limits, const events::SubscriptionsOptions& subs)
    : InProcessGateway(limits, &subs) {}

InProcessGateway::InProcessGateway(config::Limits limits, const events::SubscriptionsOptions* subs)
    : parts_(std::make_unique<Parts>()) {
  const std::string profiles = std::string(GW_SOURCE_DIR) + "/profiles";
  auto v = write::Validator::load(profiles);
  if (!v) throw std::runtime_error("profiles: " + v.error().message);
  parts_->validator = std::move(*v);
  auto p = security::Policy::load(profiles);
  if (!p) throw std::runtime_error("policy: " + p.error().message);
  parts_->policy = std::move(*p);

  store::SqliteOptions so;
  // GW_BENCH_DATA_DIR: a benchmark on a store seeded beforehand
  // (tests/bench/seed_store.py, cpis_query_load --data-dir) opens that one,
  // which it keeps; data_dir() still names the temporary folder.
  const char* seeded = std::getenv("GW_BENCH_DATA_DIR");
  so.path = (seeded && *seeded ? std::string(seeded) : dir_.path()) + "/gateway.db";
  so.metrics = &parts_->registry;
  parts_->store = open_store(so);  // the engine this run of the suite is for
  auto merge = write::MergePolicy::load(profiles);
  if (!merge) throw std::runtime_error("merge policy: " + merge.error().message);
  parts_->visibility = std::make_unique<security::Visibility>(parts_->policy, *parts_->store);
  parts_->writes = std::make_unique<write::WriteService>(*parts_->store, parts_->validator, parts_->policy,
                                                         *parts_->visibility,
                                                         std::make_shared<const write::MergePolicy>(std::move(*merge)),
                                                         &parts_->registry);
  fhir::RestOptions ro;
  auto relationships = security::Relationships::load(profiles);
  if (!relationships) throw std::runtime_error("relationships: " + relationships.error().message);
  ro.relationships = std::make_shared<const security::Relationships>(std::move(*relationships));
  auto shared_relationships = ro.relationships;
  ro.today = [parts = parts_.get()] {
    std::lock_guard lock(parts->today_mu);
    return parts->today.empty() ? model::cpis::utc_today() : parts->today;
  };
  parts_->rest = std::make_unique<fhir::RestApi>(*parts_->store, *parts_->writes, *parts_->visibility,
                                                 parts_->registry, std::move(ro));
  auto reg = adapters::make_registry(profiles);
  if (!reg) throw std::runtime_error("adapters: " + reg.error().message);
  parts_->adapters = std::move(*reg);
  parts_->systmone = std::make_unique<ingest::Hl7Ingest>(*parts_->adapters->find("systmone"), *parts_->writes,
                                                         parts_->registry);
  parts_->camhs = std::make_unique<ingest::FileIngest>(*parts_->adapters->find("camhs"), *parts_->writes,
                                                       parts_->registry);
  parts_->cashgum = std::make_unique<ingest::FileIngest>(*parts_->adapters->find("cashgum"), *parts_->writes,
                                                         parts_->registry);
  parts_->ingest_api = std::make_unique<ingest::IngestApi>(
      std::map<std::string, ingest::Hl7Ingest*>{{"systmone", parts_->systmone.get()}},
      std::map<std::string, ingest::FileIngest*>{{"camhs", parts_->camhs.get()}, {"cashgum", parts_->cashgum.get()}},
      *parts_->store, parts_->policy);
  parts_->cpis_upload = std::make_unique<ingest::CpisUpload>(
      dynamic_cast<const adapters::cpis::CpisUploadAdapter&>(*parts_->adapters->find("cpis-upload")), *parts_->writes,
      parts_->registry);
  parts_->ingest_api->add_answering("cpis-upload", parts_->cpis_upload.get());
  parts_->router.add("/ingest", parts_->ingest_api.get());
  parts_->router.add("/admin", parts_->ingest_api.get());
  parts_->render_api = std::make_unique<ingest::RenderApi>(*parts_->adapters->find("camhs"), *parts_->store,
                                                           parts_->policy);
  parts_->router.add("/render/camhs", parts_->render_api.get());
  parts_->readiness = std::make_unique<ops::Readiness>(*parts_->store, [] { return false; });
  parts_->ops = std::make_unique<ops::OpsApi>(parts_->registry, parts_->policy, *parts_->readiness);
  parts_->router.add("/fhir", parts_->rest.get());
  parts_->audit_flows = std::make_unique<admin::AuditFlows>(*parts_->store, *parts_->writes, parts_->policy);
  parts_->router.add("/audit", parts_->audit_flows.get());
  parts_->coverage_api =
      std::make_unique<admin::CoverageReportApi>(*parts_->store, *parts_->writes, parts_->policy, flow_context());
  parts_->router.add("/reports", parts_->coverage_api.get());
  parts_->cohort = std::make_unique<fhir::SafeguardingCohortApi>(*parts_->store, parts_->policy, profiles);
  parts_->cohort->add_routes(parts_->router, *parts_->rest);
  parts_->flows_api = std::make_unique<safeguarding::FlowsApi>(
      *parts_->store, *parts_->writes, *parts_->visibility, flow_context(), safeguarding::ChronologyRules::load(profiles).value(),
      std::string(), shared_relationships);
  parts_->flows_api->add_to(*parts_->rest);
  parts_->acknowledge_api =
      std::make_unique<safeguarding::AcknowledgeApi>(*parts_->store, *parts_->writes, *parts_->visibility);
  parts_->acknowledge_api->add_to(*parts_->rest);
  parts_->router.add("/healthz", parts_->ops.get());
  parts_->router.add("/readyz", parts_->ops.get());
  parts_->router.add("/metrics", parts_->ops.get());

  const std::string& pki = dev_pki_dir();
  if (subs) {
    auto topics = events::Topics::load(profiles);
    if (!topics) throw std::runtime_error("topics: " + topics.error().message);
    events::SubscriptionsOptions so = *subs;
    if (!so.fanout.flows) so.fanout.flows = flow_context();
    // Indexed as main indexes them (the declared search parameters).
    if (!so.fanout.search_params) so.fanout.search_params = &parts_->validator.search_params();
    if (!so.timers.search_params) so.timers.search_params = &parts_->validator.search_params();
    if (!so.timers.clock) {
      // set_today moves the timers' clock too: noon UTC of that day.
      so.timers.clock = [parts = parts_.get()] {
        std::lock_guard lock(parts->today_mu);
        if (parts->today.empty()) return std::chrono::system_clock::now();
        auto d = area::parse_date(parts->today);
        return d ? std::chrono::system_clock::time_point(*d) + std::chrono::hours(12) : std::chrono::system_clock::now();
      };
    }
    if (so.delivery.ca_file.empty()) so.delivery.ca_file = pki + "/ca.pem";
    so.delivery.cert_file = pki + "/server.pem";
    so.delivery.key_file = pki + "/server.key";
    parts_->subs = std::make_unique<events::Subscriptions>(*parts_->store, std::move(*topics), parts_->policy,
                                                          parts_->registry, so);
    parts_->sub_api =
        std::make_unique<fhir::SubscriptionApi>(*parts_->rest, *parts_->writes, *parts_->subs, std::string());
    parts_->sub_api->add_routes(parts_->router);
  }
  parts_->web = std::make_unique<admin::WebConsole>(std::string(GW_SOURCE_DIR) + "/web", *parts_->store,
                                                    *parts_->writes, *parts_->visibility, *parts_->ingest_api,
                                                    parts_->subs.get());
  parts_->web->add_routes(parts_->router);
  net::HttpsOptions ho;
  ho.host = "127.0.0.1";
  ho.port = 0;
  ho.threads = 2;
  ho.tls = net::TlsFiles{pki + "/server.pem", pki + "/server.key", pki + "/ca.pem", {}};
  ho.limits = limits;
  // The test identity provider (tests/support/user_tokens_kit.h) is trusted.
  ho.users = security::UserTokens::load(test_users_config(), parts_->policy.users()).value();
  parts_->server = std::make_unique<net::HttpsServer>(ho, parts_->router, parts_->registry);
  parts_->port = parts_->server->start();
  if (parts_->subs) {
    parts_->subs->delivery().set_base_url("https://127.0.0.1:" + std::to_string(parts_->port) + "/fhir");
    parts_->subs->start();
  }
}

std::shared_ptr<const events::FlowContext> InProcessGateway::flow_context() {
  if (!parts_->flows) {
    auto area = area::Area::load(std::string(GW_SOURCE_DIR) + "/profiles",
                                 area::parse_date(model::cpis::utc_today()).value());
    if (!area) throw std::runtime_error("area: " + area.error().message);
    auto fc = std::make_shared<events::FlowContext>();
    fc->area = *area;
    auto coverage = events::CoverageRules::load(std::string(GW_SOURCE_DIR) + "/profiles");
    if (!coverage) throw std::runtime_error("coverage: " + coverage.error().message);
    fc->coverage = std::make_shared<const events::CoverageRules>(std::move(*coverage));
    fc->today = [parts = parts_.get()] {
      std::lock_guard lock(parts->today_mu);
      return parts->today.empty() ? model::cpis::utc_today() : parts->today;
    };
    parts_->flows = fc;
  }
  return parts_->flows;
}

InProcessGateway::~InProcessGateway() {
  parts_->server->shutdown(std::chrono::milliseconds(2000));
  if (parts_->subs) parts_->subs->stop();
  parts_->store->close();
}

uint16_t InProcessGateway::port() const { return parts_->port; }
store::Store& InProcessGateway::store() { return *parts_->store; }
metrics::Registry& InProcessGateway::metrics() { return parts_->registry; }
ingest::Hl7Ingest& InProcessGateway::systmone() { return *parts_->systmone; }
events::Subscriptions& InProcessGateway::subscriptions() {
  if (!parts_->subs) throw std::logic_error("this gateway was built without subscriptions");
  return *parts_->subs;
}

void InProcessGateway::set_today(std::string date) {
  std::lock_guard lock(parts_->today_mu);
  parts_->today = std::move(date);
}

HttpsClient InProcessGateway::client(const std::string& role) const { return HttpsClient::for_role(parts_->port, role); }

}  // namespace gw::test
