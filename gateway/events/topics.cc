#include "gateway/events/topics.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "gateway/common/json.h"
#include "gateway/events/relations.h"

namespace gw::events {

namespace {

constexpr std::string_view kUrlBase = "https://cpis-gateway.nhs.uk/SubscriptionTopic/";

bool has(const std::vector<std::string>& v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

Error bad(const std::string& source, const std::string& key, const std::string& what) {
  return make_error(Errc::invalid_input, source + ": " + key + " " + what, key);
}

Result<std::vector<std::string>> strings(const json::Value& obj, const char* key, const std::string& source,
                                         bool required) {
  std::vector<std::string> out;
  const json::Value* v = json::member(obj, key);
  if (!v) {
    if (required) return bad(source, key, "is required");
    return out;
  }
  if (!v->IsArray()) return bad(source, key, "must be an array of strings");
  for (const auto& e : v->GetArray()) {
    if (!e.IsString() || e.GetStringLength() == 0) return bad(source, key, "must be an array of non-empty strings");
    out.emplace_back(e.GetString(), e.GetStringLength());
  }
  return out;
}

Result<std::string> string_of(const json::Value& obj, const char* key, const std::string& source) {
  auto s = json::get_string(obj, key);
  if (!s || s->empty()) return bad(source, key, "is required (a non-empty string)");
  return std::string(*s);
}

const std::set<std::string_view> kFilterParams = {"identifier", "patient", "patient:identifier", "organization",
                                                  "code"};
const std::set<std::string_view> kInteractions = {"create", "update", "delete"};
// Routes the matcher implements (matcher.cc, route_allows).
const std::set<std::string_view> kRoutes = {"caseload",        "plan-authority", "plan-authority-on-move",
                                            "linked-children", "relationship",   "disclosure-audience",
                                            "relations",       "escalation",     "acting-organisation",
                                            "timer"};
// Relationships the matcher checks for the relationship and linked-children
// routes (matcher.cc related()); the relations route has its own (relations.h).
const std::set<std::string_view> kRelationships = {"caseload", "camhs-care", "pregnant-parent"};
// The escalation route (issue 17, events/escalation.h): a durable timer, not
// a change, fires it; the receivers are the disclosure's recipient
// organisation (its safeguarding lead's subscription) and, at the second
// deadline, the area's designated nurse (profiles/area/services.json).
const std::set<std::string_view> kEscalationRelationships = {"disclosure-recipient", "designated-nurse"};
// Payload kinds the dispatcher implements (dispatcher.cc, disclosure.cc).
const std::set<std::string_view> kPayloads = {"focus", "disclosure", "disclosure-when-hidden"};

// The disclosure keys: audiences (role -> disclosable-to code, every role a
// subscriber role), purpose and legal_basis (both or neither). The
// disclosure-audience route needs all three: a disclosure nobody can account
// for must not be configurable.
std::optional<Error> parse_disclosure(const json::Value& doc, const std::string& source, Topic& t) {
  if (const json::Value* a = json::member(doc, "audiences")) {
    if (!a->IsObject()) return bad(source, "audiences", "must be an object (role -> disclosable-to code)");
    for (const auto& m : a->GetObject()) {
      std::string role(m.name.GetString(), m.name.GetStringLength());
      if (!has(t.roles, role)) return bad(source, "audiences", "names '" + role + "' which is not in roles");
      if (!m.value.IsString() || m.value.GetStringLength() == 0)
        return bad(source, "audiences." + role, "must be a non-empty string");
      t.audiences[role].assign(m.value.GetString(), m.value.GetStringLength());
    }
  }
  t.purpose = std::string(json::get_string(doc, "purpose").value_or(""));
  t.legal_basis = std::string(json::get_string(doc, "legal_basis").value_or(""));
  if (t.purpose.empty() != t.legal_basis.empty())
    return bad(source, t.purpose.empty() ? "purpose" : "legal_basis", "is required with the other");
  // receivers: subscriber role -> the relationship its organisation must
  // have with the event. The relations route knows the flows' relationships
  // (relations.h), the relationship and linked-children routes the person's
  // (kRelationships); any other route hears by its own rule and takes none.
  const bool flow_route = t.route == "relations";
  const bool person_route = t.route == "relationship" || t.route == "linked-children";
  const bool escalation_route = t.route == "escalation";
  if (const json::Value* rc = json::member(doc, "receivers")) {
    if (!flow_route && !person_route && !escalation_route)
      return bad(source, "receivers",
                 "is used only by the relations, relationship, linked-children and escalation routes");
    if (!rc->IsObject()) return bad(source, "receivers", "must be an object (role -> relationship)");
    for (const auto& m : rc->GetObject()) {
      std::string role(m.name.GetString(), m.name.GetStringLength());
      if (!has(t.roles, role)) return bad(source, "receivers", "names '" + role + "' which is not in roles");
      std::string_view rel = m.value.IsString() ? json::as_view(m.value) : std::string_view();
      if (escalation_route && !kEscalationRelationships.count(rel))
        return bad(source, "receivers." + role, "must be disclosure-recipient or designated-nurse on this route");
      if (flow_route && !is_relation(rel))
        return bad(source, "receivers." + role, "must name a relationship the gateway implements (relations.h)");
      if (person_route && !kRelationships.count(rel))
        return bad(source, "receivers." + role, "must be caseload, camhs-care or pregnant-parent on this route");
      t.receivers[role] = std::string(rel);
    }
  }
  if (t.receivers.empty() && (flow_route || escalation_route || t.route == "relationship"))
    return bad(source, "receivers", "is required by the " + t.route + " route (role -> relationship)");
  if ((flow_route || escalation_route) && !t.audits_disclosure())
    return bad(source, "legal_basis", "is required by the " + t.route + " route");
  if (t.route == "disclosure-audience") {
    if (t.audiences.empty()) return bad(source, "audiences", "is required by the disclosure-audience route");
    if (!t.audits_disclosure()) return bad(source, "legal_basis", "is required by the disclosure-audience route");
    // The focus is derived from restricted records: what leaves is the
    // per-receiver Communication its receiver acknowledges (escalation.h).
    if (t.payload != "disclosure") return bad(source, "payload", "must be disclosure on the disclosure-audience route");
  }
  return std::nullopt;
}

}  // namespace

bool Topic::triggered_by(std::string_view type, std::string_view interaction) const {
  for (const auto& t : triggers)
    if (t.resource == type && has(t.interactions, interaction)) return true;
  return false;
}
bool Topic::allows_filter(std::string_view parameter) const {
  for (const auto& f : filters)
    if (f.parameter == parameter) return true;
  return false;
}
bool Topic::allows_role(std::string_view role) const { return has(roles, role); }
bool Topic::unrestricted(std::string_view role) const { return has(unrestricted_roles, role); }

Result<Topic> Topics::parse(std::string_view text, const std::string& source) {
  auto doc = json::parse(text);
  if (!doc) return make_error(Errc::invalid_input, source + ": " + doc.error().message);
  if (!doc->IsObject()) return bad(source, "(root)", "must be an object");
  Topic t;
  for (const auto& m : doc->GetObject()) {
    std::string_view k(m.name.GetString(), m.name.GetStringLength());
    static const std::set<std::string_view> known = {"name",    "url",     "title", "status",
                                                      "description", "triggers", "filters", "roles",
                                                      "unrestricted_roles", "route", "payload",
                                                      "statuses", "requires", "comment",
                                                      "audiences", "purpose", "legal_basis", "receivers"};
    if (!known.count(k)) return bad(source, std::string(k), "is not a known topic key");
  }
  auto name = string_of(*doc, "name", source);
  if (!name) return name.error();
  t.name = *name;
  auto url = string_of(*doc, "url", source);
  if (!url) return url.error();
  t.url = *url;
  if (t.url != std::string(kUrlBase) + t.name) {
    return bad(source, "url", "must be " + std::string(kUrlBase) + t.name);
  }
  auto title = string_of(*doc, "title", source);
  if (!title) return title.error();
  t.title = *title;
  t.description = std::string(json::get_string(*doc, "description").value_or(""));
  auto status = string_of(*doc, "status", source);
  if (!status) return status.error();
  if (*status != "active" && *status != "declared") return bad(source, "status", "must be active or declared");
  t.status = *status;
  // Routes durable timers fire (the escalation deadlines, the weekly
  // coverage-gaps summary) have no triggers: no change fires them.
  const std::string route_name = std::string(json::get_string(*doc, "route").value_or(""));
  const bool timer_fired = route_name == "escalation" || route_name == "timer";
  const json::Value* trig = json::member(*doc, "triggers");
  if (timer_fired) {
    if (trig && (!trig->IsArray() || !trig->Empty()))
      return bad(source, "triggers", "must be empty on a route durable timers fire (escalation, timer)");
  } else if (!trig || !trig->IsArray() || trig->Empty()) {
    return bad(source, "triggers", "must be a non-empty array");
  }
  if (trig && trig->IsArray()) for (const auto& e : trig->GetArray()) {
    Trigger tr;
    auto res = string_of(e, "resource", source);
    if (!res) return res.error();
    tr.resource = *res;
    auto in = strings(e, "interactions", source, true);
    if (!in) return in.error();
    for (const auto& i : *in)
      if (!kInteractions.count(i)) return bad(source, "triggers.interactions", "has unknown interaction " + i);
    tr.interactions = *in;
    auto codes = strings(e, "codes", source, false);
    if (!codes) return codes.error();
    for (const auto& c : *codes)
      if (c.find('|') == std::string::npos || c.front() == '|' || c.back() == '|')
        return bad(source, "triggers.codes", "must be system|code values ('" + c + "')");
    tr.codes = *codes;
    if (const json::Value* tag = json::member(e, "tag")) {
      std::string_view v = tag->IsString() ? json::as_view(*tag) : std::string_view();
      size_t bar = v.find('|');
      if (bar == std::string_view::npos || bar == 0 || bar + 1 == v.size())
        return bad(source, "triggers.tag", "must be system|code");
      tr.tag = std::string(v);
    }
    if (!has(t.types_, tr.resource)) t.types_.push_back(tr.resource);
    t.triggers.push_back(std::move(tr));
  }
  if (const json::Value* f = json::member(*doc, "filters")) {
    if (!f->IsArray()) return bad(source, "filters", "must be an array");
    for (const auto& e : f->GetArray()) {
      auto p = string_of(e, "parameter", source);
      if (!p) return p.error();
      if (!kFilterParams.count(*p)) return bad(source, "filters.parameter", "'" + *p + "' is not supported");
      t.filters.push_back(TopicFilter{*p, std::string(json::get_string(e, "description").value_or(""))});
    }
  }
  auto roles = strings(*doc, "roles", source, true);
  if (!roles) return roles.error();
  t.roles = *roles;
  auto unr = strings(*doc, "unrestricted_roles", source, false);
  if (!unr) return unr.error();
  for (const auto& r : *unr)
    if (!has(t.roles, r)) return bad(source, "unrestricted_roles", "names '" + r + "' which is not in roles");
  t.unrestricted_roles = *unr;
  if (const json::Value* r = json::member(*doc, "route")) {
    if (!r->IsString() || !kRoutes.count(std::string_view(r->GetString(), r->GetStringLength())))
      return bad(source, "route", "must be one of the routes the matcher implements (see kRoutes in topics.cc)");
    t.route.assign(r->GetString(), r->GetStringLength());
  }
  if (const json::Value* p = json::member(*doc, "payload")) {
    if (!p->IsString() || !kPayloads.count(std::string_view(p->GetString(), p->GetStringLength())))
      return bad(source, "payload", "must be focus, disclosure or disclosure-when-hidden");
    t.payload.assign(p->GetString(), p->GetStringLength());
  }
  auto statuses = strings(*doc, "statuses", source, false);
  if (!statuses) return statuses.error();
  t.statuses = *statuses;
  auto req = strings(*doc, "requires", source, false);
  if (!req) return req.error();
  t.requires_paths = *req;
  if (auto e = parse_disclosure(*doc, source, t)) return *e;
  return t;
}

Result<Topics> Topics::load(const std::string& profiles_dir) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(profiles_dir) / "topics";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return make_error(Errc::invalid_input, dir.string() + " is not a directory");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".json") files.push_back(e.path());
  if (ec) return make_error(Errc::invalid_input, dir.string() + ": " + ec.message());
  std::sort(files.begin(), files.end());
  Topics out;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in) return make_error(Errc::invalid_input, "cannot read " + f.string());
    auto t = parse(ss.str(), f.string());
    if (!t) return t.error();
    if (f.stem().string() != t->name) {
      return make_error(Errc::invalid_input, f.string() + ": name must match the file name");
    }
    out.topics_.push_back(std::move(*t));
  }
  if (out.topics_.empty()) return make_error(Errc::invalid_input, dir.string() + " holds no topics");
  return out;
}

const Topic* Topics::by_url(std::string_view url) const {
  for (const auto& t : topics_)
    if (t.url == url) return &t;
  return nullptr;
}
const Topic* Topics::by_name(std::string_view name) const {
  for (const auto& t : topics_)
    if (t.name == name) return &t;
  return nullptr;
}

std::string Topics::as_basic(const Topic& t) {
  json::Document d;
  d.SetObject();
  auto& a = d.GetAllocator();
  json::set(d, "resourceType", "Basic", a);
  json::set(d, "id", t.name, a);
  json::Value ext(rapidjson::kArrayType);
  auto add_ext = [&](std::string_view url, std::string_view kind, json::Value v) {
    json::Value e(rapidjson::kObjectType);
    json::set(e, "url", url, a);
    json::set(e, kind, std::move(v), a);
    ext.PushBack(e, a);
  };
  const std::string sd = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.";
  add_ext(sd + "url", "valueUri", json::str(t.url, a));
  add_ext(sd + "title", "valueString", json::str(t.title, a));
  add_ext(sd + "status", "valueCode", json::str(t.status == "active" ? "active" : "draft", a));
  if (!t.description.empty()) add_ext(sd + "description", "valueMarkdown", json::str(t.description, a));
  for (const auto& tr : t.triggers) {
    json::Value e(rapidjson::kObjectType);
    json::set(e, "url", sd + "resourceTrigger", a);
    json::Value parts(rapidjson::kArrayType);
    auto part = [&](std::string_view url, std::string_view kind, std::string_view v) {
      json::Value p(rapidjson::kObjectType);
      json::set(p, "url", url, a);
      json::set(p, kind, v, a);
      parts.PushBack(p, a);
    };
    part("resource", "valueUri", "http://hl7.org/fhir/StructureDefinition/" + tr.resource);
    for (const auto& i : tr.interactions) part("supportedInteraction", "valueCode", i);
    json::set(e, "extension", std::move(parts), a);
    ext.PushBack(e, a);
  }
  for (const auto& f : t.filters) {
    json::Value e(rapidjson::kObjectType);
    json::set(e, "url", sd + "canFilterBy", a);
    json::Value parts(rapidjson::kArrayType);
    json::Value p(rapidjson::kObjectType);
    json::set(p, "url", "filterParameter", a);
    json::set(p, "valueString", f.parameter, a);
    parts.PushBack(p, a);
    if (!f.description.empty()) {
      json::Value q(rapidjson::kObjectType);
      json::set(q, "url", "description", a);
      json::set(q, "valueMarkdown", f.description, a);
      parts.PushBack(q, a);
    }
    json::set(e, "extension", std::move(parts), a);
    ext.PushBack(e, a);
  }
  json::set(d, "extension", std::move(ext), a);
  json::Value code(rapidjson::kObjectType);
  json::Value coding(rapidjson::kArrayType);
  json::Value c(rapidjson::kObjectType);
  json::set(c, "system", "http://hl7.org/fhir/fhir-types", a);
  json::set(c, "code", "SubscriptionTopic", a);
  coding.PushBack(c, a);
  json::set(code, "coding", std::move(coding), a);
  json::set(d, "code", std::move(code), a);
  return json::to_string(d);
}

}  // namespace gw::events
