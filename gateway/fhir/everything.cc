#include "gateway/fhir/everything.h"

#include <algorithm>

#include "gateway/model/search_params.h"

namespace gw::fhir {

namespace {

bool has_patient_param(const std::string& type) {
  auto params = model::supported_search_params(type);
  return std::find(params.begin(), params.end(), "patient") != params.end();
}

store::SearchQuery compartment_query(const std::string& type, const std::string& patient_id,
                                     const IncludeContext& ctx) {
  store::SearchQuery q;
  q.type = type;
  q.params.push_back(store::ParamConstraint{"patient", {{"", "Patient/" + patient_id}}});
  q.exclude_security = ctx.hidden_labels;
  return q;
}

}  // namespace

Result<store::SearchPage> patient_everything(store::Store& store, const std::vector<std::string>& types,
                                             const std::string& patient_id, const IncludeContext& ctx, int count,
                                             int64_t offset) {
  // The Patient through the same filter as everything else: hidden = absent.
  store::SearchQuery pq;
  pq.type = "Patient";
  pq.ids = {patient_id};
  pq.exclude_security = ctx.hidden_labels;
  pq.count = 1;
  pq.want_total = false;
  auto patient = store.search(pq);
  if (!patient) return patient.error();
  if (patient->items.empty()) return make_error(Errc::not_found, "Patient not found");

  // Sizes first (counts only), then only the slices of the requested page:
  // a large record is never loaded whole.
  std::vector<std::pair<std::string, int64_t>> parts;
  store::SearchPage out;
  out.total = 1;
  for (const auto& type : types) {
    if (type == "Patient" || !has_patient_param(type) || !ctx.may_search(type)) continue;
    auto q = compartment_query(type, patient_id, ctx);
    q.count = 0;
    auto n = store.search(q);
    if (!n) return n.error();
    if (n->total > 0) parts.emplace_back(type, n->total);
    out.total += n->total;
  }
  int64_t pos = 0;  // index in the whole list of the first resource of the current part
  if (offset == 0 && count > 0) out.items.push_back(std::move(patient->items[0]));
  pos = 1;
  for (const auto& [type, n] : parts) {
    if (offset + count <= pos) break;
    if (pos + n > offset) {
      auto q = compartment_query(type, patient_id, ctx);
      q.offset = std::max<int64_t>(0, offset - pos);
      int64_t room = count - static_cast<int64_t>(out.items.size());
      q.count = static_cast<int>(std::min<int64_t>(n - q.offset, room));
      q.want_total = false;
      auto page = store.search(q);
      if (!page) return page.error();
      for (auto& r : page->items) out.items.push_back(std::move(r));
    }
    pos += n;
  }
  return out;
}

}  // namespace gw::fhir
