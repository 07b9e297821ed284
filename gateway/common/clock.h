#pragma once
// Wall-clock instants as the gateway records them: milliseconds since the
// Unix epoch in storage, ISO 8601 UTC with milliseconds ("2026-12-07T05:30:00.123Z")
// in FHIR (meta.lastUpdated, AuditEvent.recorded) and in the logs. One place
// for the formatting that the first tree wrote in nine.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gw::clock {

// Milliseconds since the Unix epoch, now.
int64_t now_ms();
// "YYYY-MM-DDThh:mm:ss.sssZ" for a millisecond instant.
std::string iso_ms(int64_t ms);
// Now, as iso_ms.
std::string iso_now();
// Reads what iso_ms writes (and any "YYYY-MM-DDThh:mm:ss[.fraction](Z|+hh:mm)"
// instant); nullopt when it is not one.
std::optional<int64_t> parse_iso_ms(std::string_view iso);

}  // namespace gw::clock
