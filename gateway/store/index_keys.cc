#include "gateway/store/index_keys.h"

#include <algorithm>
#include <iterator>
#include <tuple>

namespace gw::store {

namespace {

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool get_varint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    auto b = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

bool get_field(std::string_view& in, std::string& out) {
  uint64_t n = 0;
  if (!get_varint(in, n) || n > in.size()) return false;
  out.assign(in.substr(0, n));
  in.remove_prefix(n);
  return true;
}

auto key_tuple(const IndexEntry& e) { return std::tie(e.param, e.system, e.value); }

}  // namespace

std::vector<IndexEntry> index_keys(const std::vector<IndexEntry>& index) {
  std::vector<IndexEntry> out;
  out.reserve(index.size());
  for (const auto& e : index)
    if (e.param != "_security") out.push_back(e);
  std::sort(out.begin(), out.end(), [](const IndexEntry& a, const IndexEntry& b) { return key_tuple(a) < key_tuple(b); });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const IndexEntry& a, const IndexEntry& b) { return key_tuple(a) == key_tuple(b); }),
            out.end());
  drop_patient_duplicates(out);
  return out;
}

bool drop_patient_duplicates(std::vector<IndexEntry>& keys) {
  // Sorted by (param, system, value): the "subject" keys form one run.
  auto lo = std::lower_bound(keys.begin(), keys.end(), std::string_view("subject"),
                             [](const IndexEntry& e, std::string_view p) { return e.param < p; });
  auto hi = std::find_if(lo, keys.end(), [](const IndexEntry& e) { return e.param != "subject"; });
  if (lo == hi) return false;
  std::vector<IndexEntry> subjects(lo, hi);
  auto before = keys.size();
  keys.erase(std::remove_if(keys.begin(), keys.end(),
                            [&](const IndexEntry& e) {
                              if (e.param != "patient") return false;
                              return std::any_of(subjects.begin(), subjects.end(), [&](const IndexEntry& s) {
                                return s.system == e.system && s.value == e.value;
                              });
                            }),
             keys.end());
  return keys.size() != before;
}

std::vector<std::string> stored_params(const std::string& param) {
  if (param == "patient") return {"patient", "subject"};
  return {param};
}

bool answers(std::string_view stored, std::string_view param) {
  return stored == param || (param == "patient" && stored == "subject");
}

std::string encode_keys(const std::vector<IndexEntry>& keys) {
  std::string out;
  for (const auto& e : keys) {
    for (const std::string* f : {&e.param, &e.system, &e.value}) {
      put_varint(out, f->size());
      out += *f;
    }
  }
  return out;
}

std::vector<IndexEntry> decode_keys(std::string_view blob) {
  std::vector<IndexEntry> out;
  while (!blob.empty()) {
    IndexEntry e;
    if (!get_field(blob, e.param) || !get_field(blob, e.system) || !get_field(blob, e.value)) break;
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<IndexEntry> keys_minus(const std::vector<IndexEntry>& after, const std::vector<IndexEntry>& before) {
  auto less = [](const IndexEntry& a, const IndexEntry& b) { return key_tuple(a) < key_tuple(b); };
  std::vector<IndexEntry> out;
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::back_inserter(out), less);
  return out;
}

}  // namespace gw::store
