#include "gateway/ingest/render_api.h"

#include <memory>

#include "gateway/common/issues.h"
#include "gateway/common/json.h"
#include "gateway/model/resource_text.h"
#include "gateway/security/visibility.h"

namespace gw::ingest {

namespace {

constexpr const char* kRoute = "render_camhs";

net::Response error_response(const Error& e) {
  net::Response r;
  r.status = http_status_for(e.code);
  r.body = operation_outcome(e);
  r.route = kRoute;
  return r;
}

std::string now_iso() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A collection Bundle holding the spell and its Patient, as render expects.
std::string render_input(const store::StoredResource& encounter, const store::StoredResource& patient) {
  std::string out = "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"timestamp\":\"" + now_iso() + "\",\"entry\":[";
  out += "{\"fullUrl\":\"Patient/" + patient.id + "\",\"resource\":" + model::served_text(patient) + "},";
  out += "{\"fullUrl\":\"Encounter/" + encounter.id + "\",\"resource\":" + model::served_text(encounter) + "}]}";
  return out;
}

}  // namespace

RenderApi::RenderApi(const adapters::Adapter& camhs, store::Store& store, const security::Policy& policy)
    : camhs_(camhs), store_(store), policy_(policy) {}

void RenderApi::handle(net::Request req, net::Respond respond) {
  constexpr std::string_view kPrefix = "/render/camhs/Encounter/";
  std::string_view path = req.path;
  if (path.rfind(kPrefix, 0) != 0 || !model::is_valid_id(path.substr(kPrefix.size()))) {
    return respond(error_response(make_error(Errc::not_found, "no such endpoint (GET /render/camhs/Encounter/{id})")));
  }
  if (!policy_.allows_operation(req.principal, "render:camhs")) {
    return respond(error_response(
        make_error(Errc::forbidden, "role '" + req.principal.role + "' may not render CAMHS discharges")));
  }
  if (req.method != "GET") return respond(error_response(make_error(Errc::method_not_allowed, "render accepts GET")));
  std::string id(path.substr(kPrefix.size()));
  auto shared = std::make_shared<net::Respond>(std::move(respond));
  auto r = store_.run_read([this, req = std::move(req), id, shared]() { render(req, *shared, id); });
  if (!r) (*shared)(error_response(r.error()));
}

void RenderApi::render(const net::Request& req, net::Respond& respond, const std::string& encounter_id) {
  auto enc = store_.read("Encounter", encounter_id);
  if (!enc || enc->deleted || security::hidden_by_labels(enc->body, policy_.hidden_labels(req.principal)))
    return respond(error_response(make_error(Errc::not_found, "Encounter not found")));
  auto doc = json::parse(enc->body);
  if (!doc) return respond(error_response(make_error(Errc::internal, "stored Encounter is unreadable")));
  std::string subject;
  if (const json::Value* s = json::member(*doc, "subject")) subject = std::string(json::get_string(*s, "reference").value_or(""));
  if (subject.rfind("Patient/", 0) != 0)
    return respond(error_response(make_error(Errc::unprocessable, "the Encounter has no Patient subject", "Encounter.subject")));
  auto patient = store_.read("Patient", subject.substr(8));
  if (!patient || patient->deleted)
    return respond(error_response(make_error(Errc::unprocessable, "the Encounter's Patient is not stored", "Encounter.subject")));
  IssueSink issues;
  auto xml = camhs_.render(adapters::Bundle{render_input(*enc, *patient)}, issues);
  if (!xml) {
    net::Response r;
    r.status = http_status_for(xml.error().code);
    r.body = issues.empty() ? operation_outcome(xml.error()) : operation_outcome(issues.issues());
    r.route = kRoute;
    return respond(std::move(r));
  }
  net::Response r;
  r.content_type = "application/xml; charset=utf-8";
  r.body = std::move(*xml);
  r.route = kRoute;
  respond(std::move(r));
}

}  // namespace gw::ingest
