#pragma once
// The whole HTTPS + FHIR stack in the test process (real TLS sockets, real
// SQLite file in a temporary folder, the shipped profiles), for integration
// tests that need many requests without a process per test.
#include <memory>
#include <string>

#include "gateway/common/metrics.h"
#include "gateway/ingest/hl7_ingest.h"
#include "gateway/config/limits.h"
#include "gateway/store/store.h"
#include "tests/support/https_client.h"

namespace gw::events {
class Subscriptions;
struct SubscriptionsOptions;
struct FlowContext;
}  // namespace gw::events

namespace gw::test {

// A fresh temporary directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class InProcessGateway {
 public:
  explicit InProcessGateway(config::Limits limits = {});
  // With the subscriptions engine (delivery options: short retries for tests).
  InProcessGateway(config::Limits limits, const events::SubscriptionsOptions& subs);
  ~InProcessGateway();
  uint16_t port() const;
  // A client presenting client-<role>.pem from the dev PKI.
  HttpsClient client(const std::string& role) const;
  store::Store& store();
  metrics::Registry& metrics();
  // The SystmOne HL7 pipeline (what the MLLP listener and /ingest/systmone use).
  ingest::Hl7Ingest& systmone();
  const std::string& data_dir() const { return dir_.path(); }
  // Only when constructed with SubscriptionsOptions.
  events::Subscriptions& subscriptions();
  // Moves the REST API's clock (the CP-IS 12-month scope) to this date,
  // YYYY-MM-DD; "" goes back to the real UTC date.
  // (The safeguarding flows' durable timers fire as if it were noon UTC of it.)
  void set_today(std::string date);
  // The area tables and date the flows use (set_today moves the date).
  std::shared_ptr<const events::FlowContext> flow_context();

 private:
  InProcessGateway(config::Limits limits, const events::SubscriptionsOptions* subs);
  struct Parts;
  TempDir dir_;
  std::unique_ptr<Parts> parts_;
};

}  // namespace gw::test
