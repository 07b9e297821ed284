#include "gateway/net/listener.h"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <algorithm>
#include <future>
#include <stdexcept>

#include "gateway/common/log.h"

namespace gw::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

void ConnectionTable::opened() {
  open_.fetch_add(1);
  gauge_.add(1);
}

void ConnectionTable::add(uint64_t id, std::weak_ptr<Connection> c) {
  std::lock_guard lock(mu_);
  live_[id] = std::move(c);
}

void ConnectionTable::closed(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    live_.erase(id);
  }
  gauge_.add(-1);
  open_.fetch_sub(1);
}

std::vector<std::shared_ptr<Connection>> ConnectionTable::live() const {
  std::vector<std::shared_ptr<Connection>> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, w] : live_)
    if (auto c = w.lock()) out.push_back(std::move(c));
  return out;
}

bool ConnectionTable::wait_until_empty(Clock::time_point deadline) const {
  while (open_.load() > 0) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

Listener::Listener(ListenerOptions opts, std::shared_ptr<ConnectionTable> table, metrics::Counter& refused_max,
                   Accept accept)
    : opts_(std::move(opts)),
      table_(std::move(table)),
      refused_max_(refused_max),
      accept_(std::move(accept)),
      acceptor_(asio::make_strand(ioc_)) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(opts_.host, ec);
  if (ec) throw std::runtime_error("invalid " + opts_.name + " listen address '" + opts_.host + "': " + ec.message());
  tcp::endpoint ep{addr, opts_.port};
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + opts_.host + ":" + std::to_string(opts_.port) + ": " +
                             ec.message());
  }
  bound_port_ = acceptor_.local_endpoint().port();
  authority_ = (addr.is_v6() ? "[" + opts_.host + "]" : opts_.host) + ":" + std::to_string(bound_port_);
}

Listener::~Listener() { shutdown(std::chrono::milliseconds(0), std::chrono::milliseconds(0)); }

void Listener::do_accept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](boost::system::error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void Listener::on_accept(boost::system::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) {
    // EMFILE and friends: log and keep accepting rather than go deaf.
    log::warn(opts_.name + "_accept_failed", {{"error", ec.message()}});
    return do_accept();
  }
  boost::system::error_code rec;
  auto peer = socket.remote_endpoint(rec);
  if (rec) {  // the peer is already gone
    socket.close(rec);
    return do_accept();
  }
  std::string remote = peer.address().to_string() + ":" + std::to_string(peer.port());
  if (table_->open() >= opts_.max_connections) {
    refused_max_.inc();
    log::warn(opts_.name + "_connection_refused",
              {{"remote", remote},
               {"reason", "max_connections"},
               {"max_connections", static_cast<uint64_t>(opts_.max_connections)}});
    socket.close(rec);
    return do_accept();
  }
  // Both protocols answer with small writes; without this Nagle plus the
  // peer's delayed ACK adds tens of milliseconds to each one.
  socket.set_option(tcp::no_delay(true), rec);
  accept_(std::move(socket), peer, std::move(remote));
  do_accept();
}

uint16_t Listener::start() {
  if (started_) return bound_port_;
  started_ = true;
  work_.emplace(ioc_.get_executor());
  asio::post(acceptor_.get_executor(), [this] { do_accept(); });
  int n = std::max(1, opts_.threads);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] {
    log::name_thread("gw-net");
    ioc_.run();
  });
  log::info(opts_.name + "_listening", {{"address", authority_}, {"mode", opts_.mode}, {"threads", n}});
  return bound_port_;
}

void Listener::shutdown(std::chrono::milliseconds grace, std::chrono::milliseconds force_timeout) {
  if (stopped_) return;
  stopped_ = true;
  if (!started_) {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    return;
  }
  std::promise<void> closed;
  asio::post(acceptor_.get_executor(), [this, &closed] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    closed.set_value();
  });
  closed.get_future().wait();

  auto start = Clock::now();
  for (auto& c : table_->live()) c->begin_drain();
  bool drained = table_->wait_until_empty(start + grace);
  size_t left = table_->open();
  if (!drained) {
    for (auto& c : table_->live()) c->force_close_async();
    table_->wait_until_empty(Clock::now() + force_timeout);
  }
  log::info(opts_.name + "_stopped",
            {{"drained", drained ? "yes" : "no"},
             {"forced", static_cast<uint64_t>(drained ? 0 : left)},
             {"ms", std::chrono::duration<double, std::milli>(Clock::now() - start).count()}});
  work_.reset();
  ioc_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace gw::net
