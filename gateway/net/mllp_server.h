#pragma once
// MLLP listener (HL7 v2 over TCP), plain or mutual TLS. Beast-shaped async
// sessions, one strand per connection. Each complete frame is handed to an
// MllpHandler; the handler replies (from any thread) with the ACK, and the
// listener writes ACKs strictly in the order the messages arrived, whatever
// order the replies come in, so pipelining senders match ACKs by position.
//
// An ACK must mean "committed", so the listener never invents one: a
// handler that does not reply within handler_timeout gets the connection
// closed (the sender resends; receivers acknowledge duplicates again).
//
// Plain MLLP exists only for legacy senders that cannot do TLS: connections
// are accepted only from addresses on the allow-list, each entry naming the
// integration principal the audit records.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gateway/common/metrics.h"
#include "gateway/common/result.h"
#include "gateway/config/limits.h"
#include "gateway/net/tls.h"
#include "gateway/security/principal.h"

namespace gw::net {

struct MllpMessage {
  std::string raw;  // the frame's payload (no MLLP block characters)
  security::Principal principal;
  uint64_t conn_id = 0;
  uint64_t msg_id = 0;  // unique per listener
  std::string remote;   // peer address:port
};

// Call exactly once, from any thread, with the ACK in ER7 (unframed).
using MllpReply = std::function<void(std::string ack_er7)>;

class MllpHandler {
 public:
  virtual ~MllpHandler() = default;
  // Called on the connection's network thread: must not block. Must not throw.
  virtual void handle(MllpMessage msg, MllpReply reply) = 0;
  // A frame that could not be delivered because it exceeded
  // max_frame_bytes: the listener answers with the returned ACK (an AR) in
  // that frame's turn. The handler builds it so quarantine can record the
  // event. partial_info.raw is empty (the frame is not buffered);
  // frame_bytes is the limit the frame exceeded, since the rest of it is
  // skipped without counting.
  virtual std::string reject_oversized(const MllpMessage& partial_info, size_t frame_bytes) = 0;
};

// One allow-list entry: a CIDR ("10.1.2.0/24", "::1/128"; a bare address is
// a single host) and the integration principal for peers inside it.
struct MllpAllowEntry {
  std::string cidr;
  std::string ods;
  std::string system;
};

struct MllpOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0 = ephemeral (tests)
  bool tls = false;
  TlsFiles tls_files;                          // tls only
  // Whether a caller may send messages at all (the policy's "ingest:<adapter>"
  // operation, asked by whoever starts the listener); a refused caller's
  // connection is closed after the handshake. Unset: everyone is refused.
  std::function<bool(const security::Principal&)> admits;
  // Plain only. Empty = loopback only (127.0.0.0/8 and ::1), ods "LOCAL",
  // system "loopback". The first matching entry wins.
  std::vector<MllpAllowEntry> allow;
  size_t max_frame_bytes = 1 << 20;
  size_t max_in_flight = 16;  // unanswered messages per connection before reading pauses
  size_t max_connections = 256;
  std::chrono::milliseconds idle_timeout{300'000};  // nothing received and nothing owed
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds handler_timeout{30'000};
  // A frame begun must end within this (slowloris); bytes outside any frame
  // do not count as activity for idle_timeout.
  std::chrono::milliseconds frame_timeout{30'000};
  // Per caller (the certificate identity, or the allow-list entry): over the
  // rate or concurrency the listener stops reading from that connection
  // until the caller may go on. Nothing already read is ever refused.
  config::CallerLimits per_principal;
  int threads = 2;
};

class MllpServer {
 public:
  // Throws std::runtime_error for start-up configuration errors: certificate
  // files, an invalid allow-list entry, an address that cannot be bound.
  MllpServer(const MllpOptions& opts, MllpHandler& handler, metrics::Registry& metrics);
  ~MllpServer();
  MllpServer(const MllpServer&) = delete;
  MllpServer& operator=(const MllpServer&) = delete;

  // Starts the network threads; returns the bound port.
  uint16_t start();
  // Stops accepting and reading, writes the ACKs of messages already handed
  // to the handler (up to the grace period), then closes every connection
  // and joins the threads. Replies arriving later are dropped.
  void shutdown(std::chrono::milliseconds grace);

  // TLS listeners: reads the certificate, key, client CA and CRLs again for
  // connections accepted from now on; open connections keep theirs. On
  // error the current files stay in use and the error names the bad one.
  Result<void> reload_tls();

  uint16_t port() const;
  size_t open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gw::net
