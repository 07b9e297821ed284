#pragma once
// MLLP (Minimal Lower Layer Protocol) framing, without sockets: the listener
// feeds whatever bytes a read returned and pops complete frames, so framing
// is testable byte by byte and independent of how TCP splits the stream.
//
// A frame is <VT 0x0B> payload <FS 0x1C><CR 0x0D>. Recovery rules, chosen so
// that one bad frame never costs the frames after it:
//  - bytes outside a frame (before a VT) are discarded and counted in
//    discarded_bytes(), so the listener can log "garbage before start block";
//  - a VT inside a frame means the sender restarted: the partial frame is
//    discarded (counted) and the new one begins;
//  - FS followed by CR ends the frame; FS followed by anything else also ends
//    it (senders that omit the CR are common), and that next byte is handled
//    as if outside a frame: a VT starts the next frame, anything else is
//    discarded and counted;
//  - a payload longer than max_frame_bytes is reported once as an
//    Errc::too_large error as soon as the limit is passed; the rest of that
//    frame is dropped without buffering and the deframer resynchronises at
//    the next FS or VT.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/common/result.h"

namespace gw::hl7 {

inline constexpr char kMllpStart = '\x0B';
inline constexpr char kMllpEnd = '\x1C';
inline constexpr char kMllpCr = '\x0D';
inline constexpr std::size_t kDefaultMaxFrameBytes = 1024 * 1024;

class Deframer {
 public:
  explicit Deframer(std::size_t max_frame_bytes = kDefaultMaxFrameBytes) : max_(max_frame_bytes) {}

  void feed(std::string_view bytes);
  // The next complete frame's payload, or the error for an oversized one, in
  // stream order; nullopt when nothing is complete yet.
  std::optional<Result<std::string>> pop();
  bool has_ready() const { return !ready_.empty(); }

  // Bytes dropped because they were outside any frame (never the payload of
  // an oversized frame, which is reported as an error instead).
  uint64_t discarded_bytes() const { return discarded_; }
  // True when a frame has started but not yet ended (useful at disconnect).
  bool in_frame() const { return state_ == State::in_frame || state_ == State::oversized; }
  // Frames ended so far (complete or oversized): lets a reader tell a sender
  // making progress from one trickling a frame byte by byte.
  uint64_t frames_ended() const { return ended_; }

 private:
  enum class State { idle, in_frame, after_fs, oversized };
  std::size_t max_;
  State state_ = State::idle;
  std::string current_;
  std::deque<Result<std::string>> ready_;
  uint64_t discarded_ = 0;
  uint64_t ended_ = 0;
};

// `msg` wrapped in an MLLP block.
std::string frame(std::string_view msg);

}  // namespace gw::hl7
