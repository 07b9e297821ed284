#include "gateway/store/store.h"

#include <algorithm>

namespace gw::store {

namespace {

bool matches(const InboundRow& m, const InboundFilter& f) {
  if (!f.status.empty() && m.status != f.status) return false;
  if (!f.adapter.empty() && m.adapter != f.adapter) return false;
  if (!f.channel.empty() && m.channel != f.channel) return false;
  if (!f.kind.empty() && m.kind != f.kind) return false;
  if (!f.sender.empty() && m.sender_ods != f.sender && m.sender_system != f.sender) return false;
  if (!f.received_from.empty() && m.received < f.received_from) return false;
  if (!f.received_to.empty() && m.received >= f.received_to) return false;
  if (f.before_id > 0 && m.id >= f.before_id) return false;
  return true;
}

}  // namespace

Result<std::vector<InboundRow>> Store::find_inbound(const InboundFilter& f) {
  // Pages of list_inbound, newest first, until the page is full or the rows
  // run out; bounded so a filter that matches nothing does not read for ever.
  constexpr int kPage = 500;
  constexpr int64_t kMaxScanned = 100000;
  std::vector<InboundRow> out;
  for (int64_t offset = 0; offset < kMaxScanned && static_cast<int>(out.size()) < f.limit; offset += kPage) {
    auto rows = list_inbound("", kPage, offset);
    if (!rows) return rows.error();
    for (auto& m : *rows) {
      if (!matches(m, f)) continue;
      if (!f.with_raw) m.raw.clear();
      out.push_back(std::move(m));
      if (static_cast<int>(out.size()) >= f.limit) break;
    }
    if (rows->size() < static_cast<size_t>(kPage)) break;
  }
  return out;
}

}  // namespace gw::store
