#include "gateway/hl7/mllp.h"

namespace gw::hl7 {

void Deframer::feed(std::string_view bytes) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    char c = bytes[i];
    switch (state_) {
      case State::idle:
        if (c == kMllpStart) {
          state_ = State::in_frame;
          current_.clear();
        } else {
          ++discarded_;
        }
        ++i;
        break;
      case State::in_frame: {
        // Copy the run up to the next control byte at once: frames are large
        // and byte-at-a-time appends would dominate the listener's CPU time.
        std::size_t e = bytes.find_first_of(std::string_view("\x0B\x1C", 2), i);
        std::size_t run = (e == std::string_view::npos ? bytes.size() : e) - i;
        if (current_.size() + run > max_) {
          ++ended_;
          ready_.push_back(make_error(Errc::too_large, "MLLP frame exceeds max_frame_bytes=" + std::to_string(max_)));
          current_.clear();
          current_.shrink_to_fit();
          state_ = State::oversized;
          i += run;
          break;
        }
        current_.append(bytes.substr(i, run));
        i += run;
        if (i == bytes.size()) break;
        if (bytes[i] == kMllpStart) {
          discarded_ += current_.size() + 1;  // the truncated frame and its start block
          current_.clear();
        } else {
          // Emitted at FS, not at the CR, so that a sender that omits the CR
          // still gets its ACK instead of a timeout.
          ++ended_;
          ready_.push_back(std::move(current_));
          current_.clear();
          state_ = State::after_fs;
        }
        ++i;
        break;
      }
      case State::after_fs:
        state_ = State::idle;
        if (c == kMllpCr) ++i;  // otherwise the byte is handled as outside a frame
        break;
      case State::oversized:
        if (c == kMllpStart) {
          state_ = State::in_frame;
          current_.clear();
        } else if (c == kMllpEnd) {
          state_ = State::after_fs;
        }
        ++i;
        break;
    }
  }
}

std::optional<Result<std::string>> Deframer::pop() {
  if (ready_.empty()) return std::nullopt;
  Result<std::string> r = std::move(ready_.front());
  ready_.pop_front();
  return r;
}

std::string frame(std::string_view msg) {
  std::string out;
  out.reserve(msg.size() + 3);
  out += kMllpStart;
  out.append(msg);
  out += kMllpEnd;
  out += kMllpCr;
  return out;
}

}  // namespace gw::hl7
