#include "gateway/delivery/hl7_outbound.h"

#include "gateway/common/log.h"

namespace gw::delivery {

Hl7Outbound::Hl7Outbound(const adapters::Adapter& renderer, std::map<std::string, MllpEndpoint> endpoints)
    : renderer_(renderer) {
  for (auto& [ods, ep] : endpoints) {
    auto link = std::make_unique<Link>();
    link->endpoint = std::move(ep);
    links_.emplace(ods, std::move(link));
  }
}

Hl7Outbound::~Hl7Outbound() = default;

bool Hl7Outbound::has_endpoint(const std::string& ods) const { return links_.count(ods) != 0; }

Result<SendOutcome> Hl7Outbound::send(const std::string& ods, const adapters::Bundle& bundle, IssueSink& issues) {
  auto it = links_.find(ods);
  if (it == links_.end()) return make_error(Errc::not_found, "no MLLP endpoint configured for organisation " + ods);
  auto er7 = renderer_.render(bundle, issues);
  if (!er7) return er7.error();
  if (issues.has_errors()) return make_error(Errc::unprocessable, "the FHIR could not be rendered as HL7 v2");
  Link& link = *it->second;
  std::lock_guard lk(link.mu);
  if (!link.sender) {
    try {
      link.sender = std::make_unique<MllpSender>(link.endpoint);
    } catch (const std::exception& e) {
      return make_error(Errc::internal, std::string("MLLP endpoint for ") + ods + ": " + e.what());
    }
  }
  auto out = link.sender->send(*er7);
  if (!out) return out.error();
  log::info("hl7_outbound", {{"to_ods", ods},
                             {"adapter", std::string(renderer_.format_id())},
                             {"status", std::string(send_status_name(out->status))},
                             {"attempts", out->attempts}});
  return out;
}

}  // namespace gw::delivery
