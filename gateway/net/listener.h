#pragma once
// What the HTTPS and MLLP servers share below their protocols: a bound TCP
// acceptor with its own io_context and threads, the connection limit, the
// table of open connections, and the stop sequence (close the acceptor, let
// live connections drain within a grace period, then force the rest closed).
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gateway/common/metrics.h"

namespace gw::net {

// What a listener needs from one of its connections, whatever the protocol.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void begin_drain() = 0;        // finish what is in flight, then close
  virtual void force_close_async() = 0;  // close now
};

// The open connections of one listener: counted for the limit and the
// metrics, and reachable for a drain. A connection calls opened() when it is
// constructed, add() when it starts, and closed() from its destructor.
class ConnectionTable {
 public:
  explicit ConnectionTable(metrics::Gauge& open_gauge) : gauge_(open_gauge) {}
  void opened();
  void add(uint64_t id, std::weak_ptr<Connection> c);
  void closed(uint64_t id);
  size_t open() const { return open_.load(); }
  std::vector<std::shared_ptr<Connection>> live() const;
  // True when no connection is open before the deadline.
  bool wait_until_empty(std::chrono::steady_clock::time_point deadline) const;

 private:
  metrics::Gauge& gauge_;
  std::atomic<size_t> open_{0};
  mutable std::mutex mu_;
  std::map<uint64_t, std::weak_ptr<Connection>> live_;
};

struct ListenerOptions {
  std::string name;  // "https" | "mllp": the log events' prefix and error texts
  std::string mode;  // logged with the listening line ("mtls", "plain")
  std::string host;
  uint16_t port = 0;
  size_t max_connections = 0;
  int threads = 1;
};

class Listener {
 public:
  // Called on the acceptor's strand for each accepted socket under the
  // connection limit (the socket runs on its own new strand). `remote` is
  // "address:port" for logs. Refuse by closing the socket.
  using Accept = std::function<void(boost::asio::ip::tcp::socket socket, const boost::asio::ip::tcp::endpoint& peer,
                                    std::string remote)>;
  // Binds and listens; throws std::runtime_error naming the address on failure.
  Listener(ListenerOptions opts, std::shared_ptr<ConnectionTable> table, metrics::Counter& refused_max, Accept accept);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  uint16_t start();  // starts accepting and the threads; returns the bound port
  void shutdown(std::chrono::milliseconds grace, std::chrono::milliseconds force_timeout);
  uint16_t port() const { return bound_port_; }
  const std::string& authority() const { return authority_; }  // host:port as bound ([v6]:port)
  boost::asio::io_context& io_context() { return ioc_; }

 private:
  void do_accept();
  void on_accept(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);

  ListenerOptions opts_;
  std::shared_ptr<ConnectionTable> table_;
  metrics::Counter& refused_max_;
  Accept accept_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  uint16_t bound_port_ = 0;
  std::string authority_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace gw::net
