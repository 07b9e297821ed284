// HL7 v2 ER7: charset conversion, parsing, every field/component walk and
// unescaping, batch splitting, timestamps — none may crash, hang or read out
// of bounds on any input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/hl7/ack.h"
#include "gateway/hl7/er7.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gw::hl7;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)split_batch(input);
  std::string scratch;
  auto text = to_utf8(input, scratch);
  if (!text) return 0;
  auto msg = Message::parse(*text);
  if (!msg) {
    (void)build_reject("fuzz");
    return 0;
  }
  size_t touched = 0;
  for (const auto& seg : msg->all_segments()) {
    for (size_t f = 0; f <= 40; ++f) {
      auto field = seg.field(f);
      for (size_t r = 0; r < 3; ++r) {
        auto rep = field.repetition(r);
        for (size_t c = 1; c <= 6; ++c) {
          auto comp = rep.component(c);
          touched += unescape(comp.raw(), msg->delimiters()).size();
          for (size_t s = 1; s <= 3; ++s) touched += comp.subcomponent(s).raw().size();
        }
      }
    }
  }
  (void)parse_ts(msg->msh().field(7).raw());
  (void)build_ack(*msg, AckCode::AE, "fuzz");
  return touched == static_cast<size_t>(-1);
}
