#include "gateway/fhir/include.h"

#include <set>

#include "gateway/common/json.h"
#include "gateway/model/resource_text.h"

namespace gw::fhir {

namespace {

using Seen = std::set<std::string>;  // "Type/id" already in the answer

std::string key_of(const store::StoredResource& r) { return r.type + "/" + r.id; }

// Patient ids the matches name in `param` (index entries are "Patient/<id>").
std::vector<std::string> referenced_patients(const store::SearchPage& page, const model::IncludeParam& inc) {
  std::vector<std::string> ids;
  std::set<std::string> unique;
  for (const auto& r : page.items) {
    if (r.type != inc.source_type) continue;
    auto doc = json::parse(r.body);
    if (!doc) continue;
    for (const auto& e : model::index_entries(r.type, *doc))
      if (e.param == inc.param && unique.insert(e.value.substr(8)).second) ids.push_back(e.value.substr(8));
  }
  return ids;
}

Result<void> add_page(store::Store& store, const store::SearchQuery& q, Seen& seen,
                      std::vector<store::StoredResource>& out) {
  auto res = store.search(q);
  if (!res) return res.error();
  for (auto& r : res->items)
    if (seen.insert(key_of(r)).second) out.push_back(std::move(r));
  return {};
}

}  // namespace

Result<std::vector<store::StoredResource>> included_resources(store::Store& store, const model::SearchRequest& sr,
                                                              const store::SearchPage& page,
                                                              const IncludeContext& ctx) {
  std::vector<store::StoredResource> out;
  if (page.items.empty()) return out;
  Seen seen;
  for (const auto& r : page.items) seen.insert(key_of(r));
  for (const auto& inc : sr.includes) {
    if (!ctx.may_search("Patient")) continue;
    auto ids = referenced_patients(page, inc);
    if (ids.empty()) continue;
    store::SearchQuery q;
    q.type = "Patient";
    q.ids = std::move(ids);
    q.exclude_security = ctx.hidden_labels;
    q.count = ctx.limit;
    q.want_total = false;
    if (auto r = add_page(store, q, seen, out); !r) return r.error();
  }
  for (const auto& inc : sr.revincludes) {
    if (!ctx.may_search(inc.source_type)) continue;
    store::SearchQuery q;
    q.type = inc.source_type;
    store::ParamConstraint c{inc.param, {}};
    for (const auto& r : page.items)
      if (r.type == "Patient") c.any_of.emplace_back("", "Patient/" + r.id);
    if (c.any_of.empty()) continue;
    q.params.push_back(std::move(c));
    q.exclude_security = ctx.hidden_labels;
    q.count = ctx.limit;
    q.want_total = false;
    if (auto r = add_page(store, q, seen, out); !r) return r.error();
  }
  if (out.size() > static_cast<size_t>(ctx.limit)) out.resize(ctx.limit);
  return out;
}

}  // namespace gw::fhir
