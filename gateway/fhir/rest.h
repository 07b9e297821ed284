#pragma once
// FHIR R4 REST API at /fhir: thin handlers. Reads run on the store's reader
// pool and ask security::Visibility what the caller may see; every write —
// create, update, delete, transaction, batch — is a write::Request handed to
// the write service, answered once it is durable. A network thread never
// blocks on SQLite.
#include <functional>
#include <memory>
#include <string>

#include "gateway/common/metrics.h"
#include "gateway/fhir/capability.h"
#include "gateway/net/http.h"
#include "gateway/security/relationships.h"
#include "gateway/store/store.h"
#include "gateway/write/write_service.h"

namespace gw::security {
class Visibility;
}

namespace gw::fhir {

struct RestOptions {
  std::string public_base_url;  // overrides the Host-derived base in Location/fullUrl
  int max_count = 1000;         // _count ceiling
  int default_count = 20;
  // Today's date (YYYY-MM-DD) for the CP-IS 12-month scope; empty = the UTC
  // date. Tests set it to move the clock.
  std::function<std::string()> today{};
  // What a person opens only on a legitimate relationship or with a
  // break-glass reason (profiles/policy/relationships.json); null: nothing
  // is gated (unit tests of other things).
  std::shared_ptr<const security::Relationships> relationships{};
};

class RestApi final : public net::Handler {
 public:
  RestApi(store::Store& store, write::WriteService& writes, const security::Visibility& visibility,
          metrics::Registry& metrics, RestOptions opts);
  ~RestApi() override;
  void handle(net::Request req, net::Respond respond) override;

  // The CapabilityStatement, from the tables the requests are served from.
  std::string capability_statement() const;
  // What a feature serves beside the REST API, declared where it adds its
  // routes (at start-up, before the listener starts).
  void declare(OperationDecl op);
  void declare(ResourceDecl r);
  void declare(CapabilityExtension e);
  void declare(SearchDecl s);

  // A feature's operation on a type: GET/POST /fhir/<type>/<id>/$<name> and
  // /fhir/<type>/$<name> are handed to `handler` (after the JSON-format
  // check), which does its own policy check and audit. Call before serving
  // and before anything copies the CapabilityStatement.
  void add_operation(OperationDoc doc, net::Handler* handler);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace gw::fhir
