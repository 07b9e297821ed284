#pragma once
// Test kit for the MLLP listener and sender: a raw plain-TCP MLLP client
// (bytes as they are, so tests can pipeline, split and corrupt frames) and
// an MllpHandler whose reply timing the test chooses.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gateway/delivery/mllp_sender.h"
#include "gateway/net/mllp_server.h"

namespace gw::test {

// An ADT^A28 with MSH-10 = control_id and no real patient data.
std::string hl7_message(const std::string& control_id, size_t padding = 0);

// A SystmOne ADT^A28 for a made-up child with this NHS number and MSH-10:
// what the gateway's systmone mapping accepts (AA).
std::string systmone_a28(const std::string& nhs, const std::string& control_id);

struct AckFields {
  std::string code;        // MSA-1
  std::string control_id;  // MSA-2
};
// MSA-1 and MSA-2 of an ACK; nullopt when it does not parse.
std::optional<AckFields> ack_fields(const std::string& ack);

// Blocking POSIX client with deadlines on every wait.
class RawMllpClient {
 public:
  RawMllpClient() = default;
  ~RawMllpClient();
  RawMllpClient(const RawMllpClient&) = delete;
  RawMllpClient& operator=(const RawMllpClient&) = delete;

  bool connect(uint16_t port, const std::string& host = "127.0.0.1");
  // False when the bytes could not all be written before the deadline.
  bool write(std::string_view bytes, std::chrono::milliseconds limit = std::chrono::seconds(5));
  bool send_message(const std::string& er7) { return write(frame(er7)); }
  // Up to n frame payloads; fewer when the server closed or the deadline passed.
  std::vector<std::string> read_frames(size_t n, std::chrono::milliseconds limit = std::chrono::seconds(5));
  // True when the server closed the connection before the deadline; any
  // bytes received meanwhile are appended to *received.
  bool wait_closed(std::chrono::milliseconds limit, std::string* received = nullptr);
  void close();
  void half_close();  // shutdown(SHUT_WR): no more bytes from us
  bool closed_by_peer() const { return peer_closed_; }

  static std::string frame(std::string_view er7);

 private:
  int fd_ = -1;
  std::string pending_;
  bool peer_closed_ = false;
};

// Reply modes: inline (from handle()), from a worker thread, in reverse
// order per batch of `batch` messages, after a delay, or never.
class TestMllpHandler : public net::MllpHandler {
 public:
  enum class Mode { inline_reply, worker, reverse_batch, delayed, never };
  explicit TestMllpHandler(Mode mode = Mode::inline_reply) : mode_(mode) {}
  ~TestMllpHandler() override;

  void set_mode(Mode m, size_t batch = 16, std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  // Replaces the ACK the handler builds (e.g. AE, AR, or a wrong MSA-2).
  void set_ack_builder(std::function<std::string(const net::MllpMessage&)> b);

  void handle(net::MllpMessage msg, net::MllpReply reply) override;
  std::string reject_oversized(const net::MllpMessage& info, size_t frame_bytes) override;

  size_t received() const;
  std::vector<net::MllpMessage> messages() const;
  size_t oversized_calls() const;
  size_t last_oversized_bytes() const;
  size_t max_outstanding() const;
  void join();

 private:
  std::string build(const net::MllpMessage& m);
  void enqueue(std::function<void()> f);

  Mode mode_;
  size_t batch_ = 16;
  std::chrono::milliseconds delay_{0};
  std::function<std::string(const net::MllpMessage&)> builder_;
  mutable std::mutex mu_;
  std::vector<net::MllpMessage> messages_;
  std::vector<std::pair<std::string, net::MllpReply>> held_;
  size_t oversized_calls_ = 0, last_oversized_bytes_ = 0;
  size_t outstanding_ = 0, max_outstanding_ = 0;
  // Worker for the modes that reply from another thread.
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread worker_;
};

// An MLLP/TLS sender's endpoint on 127.0.0.1:port presenting
// pki_dir/client-<role>.pem, checking the server against pki_dir/ca.pem.
delivery::MllpEndpoint tls_feed(uint16_t port, const std::string& pki_dir, const std::string& role);

// The listener's admission as the gateway configures it: the shipped
// policy's operation ingest:systmone.
std::function<bool(const security::Principal&)> admits_feeds();

// MllpOptions as the gateway sets them for a feed listener (admits_feeds()).
net::MllpOptions feed_listener_options();

// A GP practice's MLLP endpoint in the test process: plain MLLP on an
// ephemeral loopback port, answered by a TestMllpHandler.
struct TestPractice {
  TestMllpHandler handler;
  metrics::Registry metrics;
  net::MllpServer server{feed_listener_options(), handler, metrics};
  uint16_t port = server.start();
};

}  // namespace gw::test
