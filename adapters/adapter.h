#pragma once
// The adapter seam: pure translation between one legacy wire format and FHIR.
// No I/O, stateless after construction, thread-safe. Each format provides
//   static Result<AdapterPtr> create(const AdapterConfig&, const Profiles&)
// that validates its code tables up front, so an adapter that exists is valid.
// Formats are registered explicitly in registry.cc (no static initialisers).
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/common/issues.h"
#include "gateway/common/result.h"

namespace gw::adapters {

// A FHIR Bundle as JSON text (type transaction for parse results).
struct Bundle {
  std::string json;
  // Number of entries, when the adapter counted them while writing (saves
  // the caller a parse of a large Bundle just to count); nullopt = unknown.
  std::optional<std::size_t> entries{};
};

class Adapter {
 public:
  virtual ~Adapter() = default;
  virtual std::string_view format_id() const = 0;
  virtual Result<Bundle> parse(std::string_view raw, IssueSink& issues) const = 0;
  virtual Result<std::string> render(const Bundle& in, IssueSink& issues) const = 0;
};

using AdapterPtr = std::unique_ptr<Adapter>;

}  // namespace gw::adapters
