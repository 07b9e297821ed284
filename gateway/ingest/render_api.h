#pragma once
// The CAMHS-format face of a Tier 4 discharge (CPIS.md §4, tier4-discharge):
//   GET /render/camhs/Encounter/{id}   the spell and its Patient rendered by
//                                      the camhs adapter (`render`) as an
//                                      MHSExtract, application/xml.
// Policy operation "render:camhs" (the CAMHS system, admin). A FHIR
// operation URL (/fhir/Encounter/{id}/$...) is not used because the FHIR
// route speaks JSON only and owns every /fhir path.
#include <string>

#include "adapters/adapter.h"
#include "gateway/net/http.h"
#include "gateway/security/policy.h"
#include "gateway/store/store.h"

namespace gw::ingest {

class RenderApi final : public net::Handler {
 public:
  RenderApi(const adapters::Adapter& camhs, store::Store& store, const security::Policy& policy);
  void handle(net::Request req, net::Respond respond) override;

 private:
  void render(const net::Request& req, net::Respond& respond, const std::string& encounter_id);
  const adapters::Adapter& camhs_;
  store::Store& store_;
  const security::Policy& policy_;
};

}  // namespace gw::ingest
