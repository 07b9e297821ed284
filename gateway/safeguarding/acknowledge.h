#pragma once
// POST /fhir/Communication/{id}/$acknowledge (issue 17 part 1, docs/FLOWS.md
// "Acknowledgement and escalation"): the organisation a safeguarding
// disclosure was sent to says it has been received by someone who will act.
//
// - Policy operation "acknowledge" (profiles/policy/access.json) and the
//   Communication read rules: a disclosure the caller may not read is 404
//   (it does not exist for it); one it may read but was not sent to its
//   organisation (admin) is 403 — only the recipient acknowledges.
// - The first acknowledgement writes, through the write service, the
//   Communication `completed` with `received` and who acknowledged it
//   (extension acknowledged-by), an audit row, and an empty escalation
//   TimerSet (the deadlines are cancelled) — one transaction, answered
//   after it is durable. Acknowledging again answers 200 with the same
//   state and writes only the audit row.
#include <string>

#include "gateway/common/json.h"
#include "gateway/net/http.h"
#include "gateway/security/principal.h"
#include "gateway/security/visibility.h"
#include "gateway/store/store.h"
#include "gateway/write/write_service.h"

namespace gw::fhir {
class RestApi;
}

namespace gw::safeguarding {

inline constexpr std::string_view kAcknowledgedByUrl = "https://cpis-gateway.nhs.uk/StructureDefinition/acknowledged-by";

// Who acknowledged, as the Communication records it: the one place that
// says so (the organisation by ODS code and the system; issue 17 part 3
// adds the person behind the system here).
json::Value acknowledged_by(const security::Principal& who, const std::string& when, json::Allocator& a);

class AcknowledgeApi final : public net::Handler {
 public:
  AcknowledgeApi(store::Store& store, write::WriteService& writes, const security::Visibility& visibility);
  // Registers the operation with the FHIR API (and its CapabilityStatement).
  void add_to(fhir::RestApi& rest);
  void handle(net::Request req, net::Respond respond) override;

 private:
  void acknowledge(const net::Request& req, const std::string& id, net::Respond respond, bool retried);
  void audit(const net::Request& req, const std::string& id, int status, const std::string& patient_ref,
             const std::string& detail);

  store::Store& store_;
  write::WriteService& writes_;
  const security::Visibility& visibility_;
};

}  // namespace gw::safeguarding
