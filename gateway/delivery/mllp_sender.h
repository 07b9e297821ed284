#pragma once
// Synchronous MLLP client for delivery workers: sends one HL7 v2 message,
// waits for its original-mode ACK and classifies it. Called from a delivery
// worker thread, never a network thread; one sender per worker (not
// thread-safe). The connection is kept between sends.
//
// How an answer is classified (what the worker does next is its business):
//  - AA / CA: accepted.
//  - AR / CR: rejected, permanent. The receiver could not process the
//    message at all (not HL7, unsupported type or version); the same bytes
//    can only be rejected again, so the worker dead-letters them.
//  - AE / CE: application_error, NOT permanent. HL7 v2 receivers use AE
//    both for invalid content and for their own transient failures (database
//    down), and the two cannot be told apart; the worker retries later on
//    its own long schedule and dead-letters after its own limit.
//  - An ACK whose MSA-2 is not our MSH-10, or that cannot be parsed:
//    bad_ack, NOT permanent. The connection is closed (it may be out of
//    step) but the message is not resent here: a receiver that answers
//    wrongly would likely do so again.
// None of these is retried inside send(). Only transport failures are
// (connect refused, TLS failure, reset, timeout), with exponential backoff
// and jitter, up to max_attempts: the message may or may not have arrived,
// and resending is safe because receivers acknowledge a repeated MSH-10
// again without storing it twice.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/common/result.h"

namespace gw::delivery {

struct MllpEndpoint {
  std::string host;
  uint16_t port = 0;
  bool tls = false;
  std::string ca_file;    // tls: the receiver's certificate must chain to this
  std::string cert_file;  // tls: presented as our client certificate (the gateway's server certificate)
  std::string key_file;
  std::chrono::milliseconds connect_timeout{5'000};  // TCP connect plus TLS handshake
  std::chrono::milliseconds ack_timeout{30'000};     // write plus waiting for the ACK
  int max_attempts = 5;
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30'000};
  size_t max_ack_bytes = 1 << 20;
};

enum class SendStatus { accepted, rejected, application_error, bad_ack, unreachable };
std::string_view send_status_name(SendStatus s);

struct SendOutcome {
  SendStatus status = SendStatus::unreachable;
  std::string ack_code;    // MSA-1 as received; empty without a usable ACK
  std::string text;        // MSA-3 and ERR texts, "; "-joined, unescaped
  int attempts = 0;        // connections/sends tried, including the successful one
  std::string last_error;  // the last transport or ACK problem; empty when accepted
  bool permanent = false;  // true only for rejected (AR/CR)

  bool ok() const { return status == SendStatus::accepted; }
};

class MllpSender {
 public:
  // Throws std::runtime_error when the TLS files cannot be loaded (a
  // configuration error, found at start-up rather than at the first send).
  explicit MllpSender(MllpEndpoint endpoint);
  ~MllpSender();
  MllpSender(MllpSender&&) noexcept;
  MllpSender& operator=(MllpSender&&) noexcept;

  // Sends one message (ER7, unframed) and waits for its ACK. An error only
  // when the message itself is unusable (no MSH, no MSH-10); every outcome
  // of actually trying, including giving up, is a SendOutcome.
  Result<SendOutcome> send(std::string_view er7);

  bool connected() const;
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gw::delivery
