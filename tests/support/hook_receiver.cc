#include "tests/support/hook_receiver.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "gateway/net/tls.h"
#include "tests/support/pki.h"

namespace gw::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

std::string ReceivedPost::header(const std::string& lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return {};
}

struct HookReceiver::Impl : std::enable_shared_from_this<HookReceiver::Impl> {
  asio::io_context ioc;
  std::unique_ptr<ssl::context> ctx;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  mutable std::mutex mu;
  mutable std::condition_variable cv;
  std::vector<ReceivedPost> posts;
  size_t failures = 0;
  Mode mode = Mode::ok;
  std::map<std::string, Mode> path_modes;
  int fail_left = 0;
  int fail_status = 503;
  std::chrono::milliseconds delay{0};
  uint16_t port = 0;
  std::function<void(ReceivedPost&&)> on_post;

  Mode mode_for(const std::string& target) {
    std::lock_guard lk(mu);
    if (auto it = path_modes.find(target); it != path_modes.end()) return it->second;
    return mode;
  }

  void accept() {
    acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket sock) {
      if (ec) return;  // closed
      sock.set_option(tcp::no_delay(true), ec);
      bool down = false;
      {
        std::lock_guard lk(self->mu);
        down = self->mode == Mode::down && self->path_modes.empty();
      }
      if (down) {
        beast::error_code ignored;
        sock.close(ignored);
      } else {
        std::make_shared<Session>(self, std::move(sock))->start();
      }
      self->accept();
    });
  }

  struct Session : std::enable_shared_from_this<Session> {
    std::shared_ptr<Impl> owner;
    beast::ssl_stream<beast::tcp_stream> stream;
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::response<http::string_body> res;
    asio::steady_timer timer;

    Session(std::shared_ptr<Impl> o, tcp::socket s)
        : owner(std::move(o)), stream(std::move(s), *owner->ctx), timer(owner->ioc) {}

    void start() {
      stream.async_handshake(ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
        if (ec) return;
        self->read();
      });
    }
    void read() {
      req = {};
      http::async_read(stream, buffer, req, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec) return;
        self->on_request();
      });
    }
    void on_request() {
      std::string target(req.target());
      Mode m = owner->mode_for(target);
      if (m == Mode::down) {
        beast::error_code ignored;
        beast::get_lowest_layer(stream).socket().close(ignored);
        return;
      }
      if (m == Mode::hang) {
        // Hold the connection open without an answer until the client gives up.
        timer.expires_after(std::chrono::hours(1));
        timer.async_wait([self = shared_from_this()](beast::error_code) {});
        return;
      }
      int status = 200;
      std::chrono::milliseconds delay{0};
      {
        std::lock_guard lk(owner->mu);
        delay = owner->delay;
        if (owner->fail_left > 0) {
          --owner->fail_left;
          status = owner->fail_status;
          ++owner->failures;
        } else {
          ReceivedPost p;
          p.target = target;
          for (const auto& f : req) {
            std::string name(f.name_string());
            for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            p.headers.emplace_back(name, std::string(f.value()));
          }
          p.body = req.body();
          p.peer = net::principal_from_peer(stream.native_handle());
          p.at = std::chrono::steady_clock::now();
          if (owner->on_post) owner->on_post(std::move(p));
          else owner->posts.push_back(std::move(p));
        }
      }
      owner->cv.notify_all();
      res = {};
      res.version(11);
      res.result(static_cast<http::status>(status));
      res.set(http::field::content_type, "application/json");
      res.body() = status == 200 ? "{}" : "{\"error\":\"told to fail\"}";
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      if (delay.count() > 0) {
        timer.expires_after(delay);
        timer.async_wait([self = shared_from_this()](beast::error_code) { self->write(); });
      } else {
        write();
      }
    }
    void write() {
      http::async_write(stream, res, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec || !self->res.keep_alive()) return;
        self->read();
      });
    }
  };
};

HookReceiver::HookReceiver(const std::string& cert_name) : impl_(std::make_shared<Impl>()) {
  const std::string& pki = dev_pki_dir();
  impl_->ctx = net::make_server_context(
      net::TlsFiles{pki + "/" + cert_name + ".pem", pki + "/" + cert_name + ".key", pki + "/ca.pem", {}});
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->accept();
  for (int i = 0; i < 2; ++i) impl_->threads.emplace_back([impl = impl_] { impl->ioc.run(); });
}

HookReceiver::~HookReceiver() {
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
}

uint16_t HookReceiver::port() const { return impl_->port; }
std::string HookReceiver::url(const std::string& path) const {
  return "https://127.0.0.1:" + std::to_string(impl_->port) + path;
}
void HookReceiver::set_mode(Mode m) {
  std::lock_guard lk(impl_->mu);
  impl_->mode = m;
}
void HookReceiver::fail_next(int n, int status) {
  std::lock_guard lk(impl_->mu);
  impl_->fail_left = n;
  impl_->fail_status = status;
}
void HookReceiver::set_delay(std::chrono::milliseconds d) {
  std::lock_guard lk(impl_->mu);
  impl_->delay = d;
}
void HookReceiver::set_path_mode(const std::string& path, Mode m) {
  std::lock_guard lk(impl_->mu);
  impl_->path_modes[path] = m;
}
void HookReceiver::set_on_post(std::function<void(ReceivedPost&&)> fn) {
  std::lock_guard lk(impl_->mu);
  impl_->on_post = std::move(fn);
}
std::vector<ReceivedPost> HookReceiver::posts() const {
  std::lock_guard lk(impl_->mu);
  return impl_->posts;
}
size_t HookReceiver::failures() const {
  std::lock_guard lk(impl_->mu);
  return impl_->failures;
}
bool HookReceiver::wait_for(const std::function<bool(const std::vector<ReceivedPost>&)>& pred,
                            std::chrono::milliseconds timeout) const {
  std::unique_lock lk(impl_->mu);
  return impl_->cv.wait_for(lk, timeout, [&] { return pred(impl_->posts); });
}

}  // namespace gw::test
