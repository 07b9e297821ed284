#include "gateway/identity/reconcile.h"

#include "gateway/identity/nhs_number.h"
#include "gateway/model/cpis_plan.h"

namespace gw::identity {

namespace {

// A merge chain longer than this is a loop or corrupt data, not a history.
constexpr int kMaxMergeHops = 16;

json::Value nhs_identifier(std::string_view nhs, json::Allocator& a) {
  json::Value id = json::object();
  json::set(id, "system", kNhsNumberSystem, a);
  json::set(id, "value", nhs, a);
  return id;
}

// Replaces any earlier mark (a plan moved twice names the last number retired).
void mark_superseded(json::Value& care_team, const std::string& retired_nhs, json::Allocator& a) {
  json::Value kept = json::array();
  if (json::Value* exts = const_cast<json::Value*>(json::member(care_team, "extension")); exts && exts->IsArray())
    for (auto& x : exts->GetArray())
      if (json::get_string(x, "url").value_or("") != model::cpis::kSupersededNhsNumberUrl) kept.PushBack(x, a);
  json::Value mark = json::object();
  json::set(mark, "url", model::cpis::kSupersededNhsNumberUrl, a);
  mark.AddMember("valueIdentifier", nhs_identifier(retired_nhs, a), a);
  kept.PushBack(mark, a);
  json::set(care_team, "extension", std::move(kept), a);
}

// The stored body's meta minus what the store assigns; no meta when nothing is left.
void drop_version_meta(json::Value& resource) {
  json::Value* meta = const_cast<json::Value*>(json::member(resource, "meta"));
  if (!meta || !meta->IsObject()) return;
  meta->RemoveMember("versionId");
  meta->RemoveMember("lastUpdated");
  if (meta->ObjectEmpty()) resource.RemoveMember("meta");
}

}  // namespace

std::string nhs_number_of(const json::Value& patient) {
  const json::Value* ids = json::member(patient, "identifier");
  if (!ids || !ids->IsArray()) return {};
  for (const auto& id : ids->GetArray())
    if (json::get_string(id, "system").value_or("") == kNhsNumberSystem)
      return std::string(json::get_string(id, "value").value_or(""));
  return {};
}

std::string replaced_by(const json::Value& patient) {
  const json::Value* links = json::member(patient, "link");
  if (!links || !links->IsArray()) return {};
  for (const auto& l : links->GetArray()) {
    if (json::get_string(l, "type").value_or("") != "replaced-by") continue;
    if (const json::Value* other = json::member(l, "other"))
      return std::string(json::get_string(*other, "reference").value_or(""));
  }
  return {};
}

std::string source_time(const json::Value& patient) {
  if (const json::Value* exts = json::member(patient, "extension"); exts && exts->IsArray())
    for (const auto& x : exts->GetArray())
      if (json::get_string(x, "url").value_or("") == kSourceTimeUrl)
        return std::string(json::get_string(x, "valueInstant").value_or(""));
  return {};
}

bool older_than_stored(std::string_view message_time, const json::Value& stored_patient) {
  std::string stored = source_time(stored_patient);
  return !message_time.empty() && !stored.empty() && message_time < stored;
}

Result<std::optional<Subject>> find_subject(store::TxView& view, const std::string& nhs) {
  auto holder = view.find_by_unique_key(nhs);
  if (!holder) return holder.error();
  if (!*holder) return std::optional<Subject>();
  auto rec = view.read("Patient", **holder);
  if (!rec) {
    if (rec.error().code == Errc::not_found || rec.error().code == Errc::gone) return std::optional<Subject>();
    return rec.error();
  }
  Subject s;
  s.record = std::move(*rec);
  for (int hop = 0;; ++hop) {
    auto doc = json::parse(s.record.body);
    if (!doc || !doc->IsObject()) return make_error(Errc::internal, "a stored Patient is not readable");
    std::string next = replaced_by(*doc);
    if (next.rfind("Patient/", 0) != 0) return std::optional<Subject>(std::move(s));
    if (hop == kMaxMergeHops) {
      return make_error(Errc::conflict, "this NHS number's record was merged more than " +
                                            std::to_string(kMaxMergeHops) + " times over; the chain is not followed",
                        "PID-3");
    }
    auto survivor = view.read("Patient", next.substr(8));
    if (!survivor) {
      if (survivor.error().code == Errc::not_found || survivor.error().code == Errc::gone) {
        return make_error(Errc::conflict,
                          "this NHS number was merged into a record that no longer exists; the merge needs review",
                          "PID-3");
      }
      return survivor.error();
    }
    s.record = std::move(*survivor);
    s.merged_away = true;
  }
}

void retarget_to_survivor(json::Document& incoming, const json::Value& survivor) {
  auto& a = incoming.GetAllocator();
  json::Value ids = json::array();
  if (const json::Value* in = json::member(incoming, "identifier"); in && in->IsArray())
    for (const auto& id : in->GetArray())
      if (json::get_string(id, "system").value_or("") != kNhsNumberSystem) ids.PushBack(json::Value(id, a), a);
  if (const json::Value* held = json::member(survivor, "identifier"); held && held->IsArray())
    for (const auto& id : held->GetArray())
      if (json::get_string(id, "system").value_or("") == kNhsNumberSystem) ids.PushBack(json::Value(id, a), a);
  json::set(incoming, "identifier", std::move(ids), a);
  incoming.RemoveMember("link");
  if (const json::Value* links = json::member(survivor, "link")) incoming.AddMember("link", json::Value(*links, a), a);
}

Result<std::vector<MovedPlan>> plans_moved_by_merge(store::TxView& view, const std::string& retired_id,
                                                    const std::string& retired_nhs, const std::string& survivor_ref,
                                                    const std::string& survivor_nhs) {
  std::vector<MovedPlan> out;
  for (int64_t offset = 0;; offset += 200) {
    store::SearchQuery q;
    q.type = "CareTeam";
    q.params.push_back({"patient", {{"", "Patient/" + retired_id}}});
    q.count = 200;
    q.offset = offset;
    q.want_total = false;
    auto page = view.search(q);
    if (!page) return page.error();
    for (const auto& plan : page->items) {
      MovedPlan m;
      m.id = plan.id;
      m.version = plan.version;
      auto doc = json::parse(plan.body);
      if (!doc || !doc->IsObject()) continue;
      m.care_team = std::move(*doc);
      if (!model::cpis::plan_type_of(m.care_team)) continue;
      auto& a = m.care_team.GetAllocator();
      drop_version_meta(m.care_team);
      json::Value subject = json::object();
      json::set(subject, "reference", std::string_view(survivor_ref), a);
      if (!survivor_nhs.empty()) subject.AddMember("identifier", nhs_identifier(survivor_nhs, a), a);
      json::set(m.care_team, "subject", std::move(subject), a);
      mark_superseded(m.care_team, retired_nhs, a);
      out.push_back(std::move(m));
    }
    if (page->items.size() < 200) return out;
  }
}

}  // namespace gw::identity
