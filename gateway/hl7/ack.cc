#include "gateway/hl7/ack.h"

#include <openssl/rand.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace gw::hl7 {
namespace {

// Text we write is kept to ASCII: the ACK does not declare MSH-18, and the
// sender's decoder may not be the charset we converted from.
std::string ascii_escaped(std::string_view text, const Delimiters& d) {
  std::string out = escape(text, d);
  for (char& c : out)
    if (static_cast<unsigned char>(c) >= 0x80 || (static_cast<unsigned char>(c) < 0x20)) c = '?';
  return out;
}

// v2.5 and later use the ERL/CWE shape of ERR; anything unreadable is treated
// as the UK profile's v2.4.
bool uses_v25_err(std::string_view version) {
  int major = 0, minor = 0;
  if (std::sscanf(std::string(version).c_str(), "%d.%d", &major, &minor) != 2) return false;
  return major > 2 || (major == 2 && minor >= 5);
}

std::string err_segments(std::span<const AckError> errors, std::string_view version, const Delimiters& d) {
  if (errors.empty()) return {};
  const std::string f(1, d.field), c(1, d.component), s(1, d.subcomponent);
  std::string out;
  if (!uses_v25_err(version)) {
    out = "ERR" + f;
    bool first = true;
    for (const auto& e : errors) {
      if (!first) out += d.repetition;
      first = false;
      out += ascii_escaped(e.segment, d) + c + (e.segment.empty() ? "" : std::to_string(e.sequence)) + c +
             (e.field > 0 ? std::to_string(e.field) : "") + c + std::to_string(static_cast<int>(e.code)) + s +
             ascii_escaped(e.text, d) + s + "HL70357";
    }
    out += '\r';
    return out;
  }
  for (const auto& e : errors) {
    std::string location;
    if (!e.segment.empty()) {
      location = ascii_escaped(e.segment, d) + c + std::to_string(e.sequence);
      if (e.field > 0) location += c + std::to_string(e.field);
    }
    out += "ERR" + f + f + location + f + std::to_string(static_cast<int>(e.code)) + c +
           std::string(error_code_text(e.code)) + c + "HL70357" + f + "E" + f + f + f + f + ascii_escaped(e.text, d) +
           '\r';
  }
  return out;
}

}  // namespace

std::string_view ack_code_name(AckCode c) {
  switch (c) {
    case AckCode::AA: return "AA";
    case AckCode::AE: return "AE";
    case AckCode::AR: return "AR";
  }
  return "AR";
}

std::string_view error_code_text(ErrorCode c) {
  switch (c) {
    case ErrorCode::segment_sequence: return "Segment sequence error";
    case ErrorCode::required_field_missing: return "Required field missing";
    case ErrorCode::data_type: return "Data type error";
    case ErrorCode::table_value_not_found: return "Table value not found";
    case ErrorCode::unsupported_message_type: return "Unsupported message type";
    case ErrorCode::unsupported_version: return "Unsupported version id";
    case ErrorCode::application_internal: return "Application internal error";
  }
  return "Application internal error";
}

std::string new_control_id() {
  std::array<unsigned char, 10> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    // The id needs to be unique, not secret: fall back to the clock.
    auto now = std::chrono::system_clock::now().time_since_epoch().count();
    for (auto& b : bytes) {
      b = static_cast<unsigned char>(now);
      now >>= 6;
    }
  }
  std::string out;
  char buf[3];
  for (auto b : bytes) {
    std::snprintf(buf, sizeof buf, "%02X", b);
    out += buf;
  }
  return out;
}

std::string hl7_now() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S+0000", &tm);
  return buf;
}

std::string build_ack(const Message& inbound, AckCode code, std::string_view text, std::span<const AckError> errors,
                      const AckHeader& header) {
  const Delimiters& d = inbound.delimiters();
  const Segment msh = inbound.msh();
  const std::string f(1, d.field), c(1, d.component);
  auto copy = [&](std::size_t i) { return std::string(msh.field(i).raw()); };

  std::string out = "MSH" + f + d.encoding_characters();
  // The ACK goes back to whoever sent the message, from whom it was sent to.
  out += f + copy(5) + f + copy(6) + f + copy(3) + f + copy(4);
  out += f + (header.timestamp.empty() ? hl7_now() : ascii_escaped(header.timestamp, d)) + f;
  out += f + "ACK" + c + std::string(msh.field(9).component(2).raw()) + c + "ACK";
  out += f + ascii_escaped(header.control_id.empty() ? new_control_id() : header.control_id, d);
  out += f + copy(11) + f + copy(12) + '\r';
  out += "MSA" + f + std::string(ack_code_name(code)) + f + copy(10);
  if (!text.empty()) out += f + ascii_escaped(text, d);
  out += '\r';
  out += err_segments(errors, inbound.version(), d);
  return out;
}

std::string build_reject(std::string_view text, const AckHeader& header, std::span<const AckError> errors) {
  const Delimiters d{};
  std::string out = "MSH|" + d.encoding_characters() + "|" + ascii_escaped(header.sending_application, d) + "|" +
                    ascii_escaped(header.sending_facility, d) + "|||" +
                    (header.timestamp.empty() ? hl7_now() : ascii_escaped(header.timestamp, d)) + "||ACK|" +
                    ascii_escaped(header.control_id.empty() ? new_control_id() : header.control_id, d) + "|P|" +
                    ascii_escaped(header.version, d) + "\r";
  out += "MSA|AR|";
  if (!text.empty()) out += "|" + ascii_escaped(text, d);
  out += "\r";
  out += err_segments(errors, header.version, d);
  return out;
}

}  // namespace gw::hl7
