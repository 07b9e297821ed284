#pragma once
// Original-mode acknowledgements (MSA-1 AA/AE/AR). The ITK profile does not
// support MSH-15/16, so every sender expects an original-mode ACK.
//
// ERR takes two shapes because the segment was redefined in v2.5: up to v2.4
// an error is one repetition of ERR-1 (ELD: segment^sequence^field^code&text);
// from v2.5 each error is its own ERR segment with ERR-2 (location), ERR-3
// (code, table 0357), ERR-4 (severity) and ERR-8 (user message).
#include <span>
#include <string>
#include <string_view>

#include "gateway/hl7/er7.h"

namespace gw::hl7 {

enum class AckCode { AA, AE, AR };
std::string_view ack_code_name(AckCode c);

// HL7 table 0357 codes we report.
enum class ErrorCode {
  segment_sequence = 100,
  required_field_missing = 101,
  data_type = 102,
  table_value_not_found = 103,
  unsupported_message_type = 200,
  unsupported_version = 203,
  application_internal = 207,
};
std::string_view error_code_text(ErrorCode c);

struct AckError {
  std::string segment;   // "PID"; empty when the error concerns no segment
  int sequence = 1;      // which occurrence of the segment, 1-based
  int field = 0;         // 0 when the error concerns the segment as a whole
  ErrorCode code = ErrorCode::application_internal;
  std::string text;      // for the sender's staff; never a patient identifier
};

// What the gateway says about itself in the ACK header.
struct AckHeader {
  std::string control_id;  // MSH-10; empty -> new_control_id()
  std::string timestamp;   // MSH-7;  empty -> now, UTC
  // Used only when the inbound message could not be parsed, so there is no
  // MSH to swap.
  std::string sending_application = "CPISGW";
  std::string sending_facility;
  std::string version = "2.4";
};

// The ACK for a parsed inbound message, as ER7 with \r terminators and the
// inbound message's separators. `text` goes to MSA-3.
std::string build_ack(const Message& inbound, AckCode code, std::string_view text,
                      std::span<const AckError> errors = {}, const AckHeader& header = {});

// An AR for input that could not be parsed at all: default separators, our
// own header values, empty MSA-2 (there is no control id to echo).
// ERR segments say what was wrong (in the header's version's shape).
std::string build_reject(std::string_view text, const AckHeader& header = {}, std::span<const AckError> errors = {});

// 20 random hexadecimal characters: fits MSH-10 (ST, 20 characters in v2.3.1).
std::string new_control_id();
// Current UTC time as an HL7 DTM with seconds and +0000.
std::string hl7_now();

}  // namespace gw::hl7
