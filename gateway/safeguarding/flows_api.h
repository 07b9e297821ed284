#pragma once
// The read operations of the safeguarding flows (issue 15), added to the
// FHIR API with RestApi::add_operation:
//   GET /fhir/Patient/{id}/$chronology and
//   GET /fhir/Patient/$chronology?identifier=https://fhir.nhs.uk/Id/nhs-number|<nhs>
//       (chronology.h; policy operation "chronology"; audited per call);
//   GET /fhir/Patient/{id}/$booking-summary — for the midwifery service that
//       booked her (an active maternity EpisodeOfCare it manages): completeness
//       and what the shared record holds (events/booking_summary.h);
//   GET /fhir/CareTeam/{plan}/$health-assessments — due, overdue and completed
//       assessments of a LAC plan for the LAC health team serving the plan's
//       authority, or the authority itself (events/lac_assessments.h).
// Reads run on the store's reader pool; each call leaves an audit row.
#include <memory>
#include <string>

#include "gateway/events/relations.h"
#include "gateway/net/http.h"
#include "gateway/safeguarding/chronology.h"
#include "gateway/security/relationships.h"
#include "gateway/security/visibility.h"
#include "gateway/store/store.h"
#include "gateway/write/write_service.h"

namespace gw::fhir {
class RestApi;
}

namespace gw::safeguarding {

class FlowsApi final : public net::Handler {
 public:
  // writes: break-glass records (an AuditEvent the topic break-glass sends on).
  // relationships: whether $chronology needs a legitimate relationship
  // (profiles/policy/relationships.json; null: it does).
  FlowsApi(store::Store& store, write::WriteService& writes, const security::Visibility& visibility,
           std::shared_ptr<const events::FlowContext> flows, ChronologyRules rules, std::string public_base_url = {},
           std::shared_ptr<const security::Relationships> relationships = nullptr);
  // Registers the three operations with the FHIR API (and its CapabilityStatement).
  void add_to(fhir::RestApi& rest);
  void handle(net::Request req, net::Respond respond) override;

 private:
  // The answer, and when it was a break-glass access the record that must
  // commit before the answer leaves.
  struct Answer {
    net::Response response;
    std::optional<write::Request> record;
  };
  Answer chronology_call(const net::Request& req, const std::string& id);
  net::Response booking_summary_call(const net::Request& req, const std::string& id);
  net::Response assessments_call(const net::Request& req, const std::string& id);
  void audit(const net::Request& req, const std::string& what, const std::string& entity, int status,
             const std::string& patient_ref, const std::string& detail);

  store::Store& store_;
  write::WriteService& writes_;
  const security::Visibility& visibility_;
  std::shared_ptr<const events::FlowContext> flows_;
  ChronologyRules rules_;
  std::string base_;
  std::shared_ptr<const security::Relationships> relationships_;
};

}  // namespace gw::safeguarding
