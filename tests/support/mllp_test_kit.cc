#include "tests/support/mllp_test_kit.h"

#include "gateway/security/policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "gateway/hl7/ack.h"
#include "gateway/hl7/er7.h"
#include "gateway/hl7/mllp.h"

namespace gw::test {

using Clock = std::chrono::steady_clock;

std::string hl7_message(const std::string& control_id, size_t padding) {
  std::string m = "MSH|^~\\&|TESTFEED|RXX|CPISGW|CPIS|20240101120000+0000||ADT^A28^ADT_A05|" + control_id +
                  "|P|2.4\rEVN|A28|20240101120000+0000\rPID|1||TEST000001^^^RXX^PI||TEST^PERSON\r";
  if (padding > 0) m += "NTE|1||" + std::string(padding, 'x') + "\r";
  return m;
}

std::string systmone_a28(const std::string& nhs, const std::string& control_id) {
  return "MSH|^~\\&|SYSTMONE|RFR|ROUTE|CPISGW|20261103091500+0000||ADT^A28^ADT_A05|" + control_id +
         "|P|2.4|||||GBR|UNICODE UTF-8\rEVN|A28|20261103091500\rPID|1||" + nhs +
         "^^^NHS^NH||TEST^Child^^^Miss||20190506|F|||1 Test Lane^^Rotherham^^S62 6AA^GBR^H|||||||||||||||||||||NSTS01\r"
         "PV1|1|N\r";
}

delivery::MllpEndpoint tls_feed(uint16_t port, const std::string& pki_dir, const std::string& role) {
  delivery::MllpEndpoint e;
  e.host = "127.0.0.1";
  e.port = port;
  e.tls = true;
  e.ca_file = pki_dir + "/ca.pem";
  e.cert_file = pki_dir + "/client-" + role + ".pem";
  e.key_file = pki_dir + "/client-" + role + ".key";
  return e;
}

std::optional<AckFields> ack_fields(const std::string& ack) {
  auto m = hl7::Message::parse(std::string_view(ack));
  if (!m) return std::nullopt;
  auto msa = m->segment("MSA");
  if (msa.empty()) return std::nullopt;
  return AckFields{std::string(msa.field(1).raw()), std::string(msa.field(2).raw())};
}

RawMllpClient::~RawMllpClient() { close(); }

bool RawMllpClient::connect(uint16_t port, const std::string& host) {
  close();
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close();
    return false;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return true;
}

bool RawMllpClient::write(std::string_view bytes, std::chrono::milliseconds limit) {
  auto deadline = Clock::now() + limit;
  while (!bytes.empty()) {
    pollfd p{fd_, POLLOUT, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::vector<std::string> RawMllpClient::read_frames(size_t n, std::chrono::milliseconds limit) {
  std::vector<std::string> out;
  hl7::Deframer d(64 * 1024 * 1024);
  d.feed(pending_);
  pending_.clear();
  auto deadline = Clock::now() + limit;
  char buf[16384];
  while (out.size() < n) {
    while (out.size() < n) {
      auto f = d.pop();
      if (!f) break;
      if (*f) out.push_back(std::move(f->value()));
    }
    if (out.size() >= n || peer_closed_ || fd_ < 0) break;
    pollfd p{fd_, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
    if (got <= 0) {
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      peer_closed_ = true;
      continue;
    }
    std::string_view chunk(buf, static_cast<size_t>(got));
    d.feed(chunk);
  }
  // Keep any frames read past n for the next call.
  while (auto f = d.pop())
    if (*f) pending_ += frame(f->value());
  return out;
}

bool RawMllpClient::wait_closed(std::chrono::milliseconds limit, std::string* received) {
  auto deadline = Clock::now() + limit;
  char buf[16384];
  while (!peer_closed_ && fd_ >= 0) {
    pollfd p{fd_, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
    if (got <= 0) {
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      peer_closed_ = true;
      break;
    }
    if (received) received->append(buf, static_cast<size_t>(got));
  }
  return peer_closed_;
}

void RawMllpClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  pending_.clear();
  peer_closed_ = false;
}

void RawMllpClient::half_close() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

std::string RawMllpClient::frame(std::string_view er7) { return hl7::frame(er7); }

TestMllpHandler::~TestMllpHandler() { join(); }

void TestMllpHandler::join() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void TestMllpHandler::set_mode(Mode m, size_t batch, std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  mode_ = m;
  batch_ = batch;
  delay_ = delay;
}

void TestMllpHandler::set_ack_builder(std::function<std::string(const net::MllpMessage&)> b) {
  std::lock_guard lock(mu_);
  builder_ = std::move(b);
}

std::string TestMllpHandler::build(const net::MllpMessage& m) {
  {
    std::lock_guard lock(mu_);
    if (builder_) return builder_(m);
  }
  auto parsed = hl7::Message::parse(std::string_view(m.raw));
  if (!parsed) return hl7::build_reject("not an HL7 v2 message");
  return hl7::build_ack(*parsed, hl7::AckCode::AA, "");
}

void TestMllpHandler::enqueue(std::function<void()> f) {
  std::lock_guard lock(mu_);
  if (!worker_.joinable()) {
    worker_ = std::thread([this] {
      std::unique_lock lock(mu_);
      while (true) {
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        auto job = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();
        job();
        lock.lock();
      }
    });
  }
  queue_.push_back(std::move(f));
  cv_.notify_all();
}

void TestMllpHandler::handle(net::MllpMessage msg, net::MllpReply reply) {
  std::string ack = build(msg);
  Mode mode;
  std::chrono::milliseconds delay;
  // Counts what the handler owes, to check the listener's in-flight bound.
  auto counted = [this, reply = std::move(reply)](std::string a) {
    {
      std::lock_guard lock(mu_);
      --outstanding_;
    }
    reply(std::move(a));
  };
  std::vector<std::pair<std::string, net::MllpReply>> release;
  {
    std::lock_guard lock(mu_);
    messages_.push_back(msg);
    max_outstanding_ = std::max(max_outstanding_, ++outstanding_);
    mode = mode_;
    delay = delay_;
    if (mode == Mode::reverse_batch || mode == Mode::never) held_.emplace_back(ack, counted);
    if (mode == Mode::reverse_batch && held_.size() >= batch_) release.swap(held_);
  }
  switch (mode) {
    case Mode::inline_reply:
      counted(std::move(ack));
      break;
    case Mode::worker:
      enqueue([counted, ack]() mutable { counted(std::move(ack)); });
      break;
    case Mode::delayed:
      enqueue([counted, ack, delay]() mutable {
        std::this_thread::sleep_for(delay);
        counted(std::move(ack));
      });
      break;
    case Mode::reverse_batch:
      if (!release.empty())
        enqueue([release = std::move(release)]() mutable {
          for (auto it = release.rbegin(); it != release.rend(); ++it) it->second(std::move(it->first));
        });
      break;
    case Mode::never:
      break;
  }
}

std::string TestMllpHandler::reject_oversized(const net::MllpMessage& info, size_t frame_bytes) {
  std::lock_guard lock(mu_);
  ++oversized_calls_;
  last_oversized_bytes_ = frame_bytes;
  return hl7::build_reject("message exceeds " + std::to_string(frame_bytes) + " bytes");
}

size_t TestMllpHandler::received() const {
  std::lock_guard lock(mu_);
  return messages_.size();
}
std::vector<net::MllpMessage> TestMllpHandler::messages() const {
  std::lock_guard lock(mu_);
  return messages_;
}
size_t TestMllpHandler::oversized_calls() const {
  std::lock_guard lock(mu_);
  return oversized_calls_;
}
size_t TestMllpHandler::last_oversized_bytes() const {
  std::lock_guard lock(mu_);
  return last_oversized_bytes_;
}
size_t TestMllpHandler::max_outstanding() const {
  std::lock_guard lock(mu_);
  return max_outstanding_;
}

std::function<bool(const security::Principal&)> admits_feeds() {
  auto policy = std::make_shared<security::Policy>();
  auto loaded = security::Policy::load(std::string(GW_SOURCE_DIR) + "/profiles");
  if (loaded) *policy = std::move(*loaded);
  return [policy](const security::Principal& p) { return policy->allows_operation(p, "ingest:systmone"); };
}

net::MllpOptions feed_listener_options() {
  net::MllpOptions o;
  o.admits = admits_feeds();
  return o;
}

}  // namespace gw::test
