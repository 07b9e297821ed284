#include "gateway/events/hl7_outbound.h"

#include "gateway/common/log.h"

namespace gw::events {

Hl7Outbound::Hl7Outbound(const adapters::Adapter& renderer, std::map<std::string, delivery::MllpEndpoint> endpoints)
    : renderer_(renderer) {
  for (auto& [ods, ep] : endpoints) {
    auto link = std::make_unique<Link>();
    link->endpoint = std::move(ep);
    links_.emplace(ods, std::move(link));
  }
}

Hl7Outbound::~Hl7Outbound() = default;

bool Hl7Outbound::has_endpoint(const std::string& ods) const { return links_.count(ods) != 0; }

namespace {

// MSH-10 replaced in rendered ER7 (fields counted by the field separator).
Result<void> set_control_id(std::string& er7, const std::string& id) {
  if (er7.size() < 8 || er7.compare(0, 3, "MSH") != 0) return make_error(Errc::internal, "rendered HL7 has no MSH");
  const char sep = er7[3];
  size_t end = er7.find_first_of("\r\n");
  if (end == std::string::npos) end = er7.size();
  size_t start = 3;  // MSH-1 is the separator itself, at index 3; the next one precedes MSH-3
  for (int field = 3; field <= 10; ++field) {
    start = er7.find(sep, start + 1);
    if (start == std::string::npos || start >= end) return make_error(Errc::internal, "rendered MSH has no MSH-10");
  }
  size_t stop = er7.find(sep, start + 1);
  if (stop == std::string::npos || stop > end) stop = end;
  er7.replace(start + 1, stop - start - 1, id);
  return {};
}

}  // namespace

Result<delivery::SendOutcome> Hl7Outbound::send(const std::string& ods, const adapters::Bundle& bundle, IssueSink& issues,
                                      const std::string& control_id) {
  auto it = links_.find(ods);
  if (it == links_.end()) return make_error(Errc::not_found, "no MLLP endpoint configured for organisation " + ods);
  auto er7 = renderer_.render(bundle, issues);
  if (!er7) return er7.error();
  if (issues.has_errors()) return make_error(Errc::unprocessable, "the FHIR could not be rendered as HL7 v2");
  if (!control_id.empty())
    if (auto r = set_control_id(*er7, control_id); !r) return r.error();
  Link& link = *it->second;
  std::lock_guard lk(link.mu);
  if (!link.sender) {
    try {
      link.sender = std::make_unique<delivery::MllpSender>(link.endpoint);
    } catch (const std::exception& e) {
      return make_error(Errc::internal, std::string("MLLP endpoint for ") + ods + ": " + e.what());
    }
  }
  auto out = link.sender->send(*er7);
  if (!out) return out.error();
  log::info("hl7_outbound", {{"to_ods", ods},
                             {"adapter", std::string(renderer_.format_id())},
                             {"status", std::string(delivery::send_status_name(out->status))},
                             {"attempts", out->attempts}});
  return out;
}

}  // namespace gw::events
