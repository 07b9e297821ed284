// The MLLP deframer on arbitrary byte streams split at arbitrary points: every
// frame it returns must lie within the input, oversized frames must be
// reported rather than buffered, and nothing may crash or grow without bound.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "gateway/hl7/mllp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // The first two bytes choose the frame limit and the chunking.
  size_t limit = 16 + data[0] * 8u;
  size_t chunk = 1 + data[1] % 64u;
  std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  gw::hl7::Deframer d(limit);
  size_t out = 0;
  for (size_t i = 0; i < input.size(); i += chunk) {
    d.feed(input.substr(i, chunk));
    while (auto f = d.pop()) {
      if (*f) {
        if (f->value().size() > limit) std::abort();  // a frame over the limit must never be delivered
        out += f->value().size();
      }
    }
  }
  if (out > input.size()) std::abort();  // frames are made of input bytes only
  return 0;
}
