#pragma once
// Runs the real build/bin/cpis-gateway binary as a child process for
// end-to-end tests (durability across kill -9, SIGTERM drain, CLI).
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace gw::test {

class GatewayProcess {
 public:
  // Starts `cpis-gateway serve` on 127.0.0.1:0 with the dev PKI and the
  // given data dir, plus extra args; waits (up to 30 s) for the line that
  // says where it listens. Returns false (with the output so far in log())
  // when it exits or never says so.
  bool start(const std::string& data_dir, const std::vector<std::string>& extra_args = {});
  // Extra environment for the binary from the next start() on, e.g.
  // LD_PRELOAD=libfaketime + FAKETIME=+30d to start it "the day after". (The
  // variables, not the faketime command: that one forks, and a kill -9 of it
  // would leave the gateway running.)
  void set_env(std::vector<std::pair<std::string, std::string>> env) { env_ = std::move(env); }
  uint16_t port() const { return port_; }
  // The plain / TLS MLLP ports when started with --mllp-listen / --mllp-tls-listen.
  uint16_t mllp_port() const { return mllp_port_; }
  uint16_t mllp_tls_port() const { return mllp_tls_port_; }
  // The plain-HTTP operations port when started with --ops-listen.
  uint16_t ops_port() const { return ops_port_; }
  // SIGKILL: no chance to flush or drain.
  void kill9();
  // SIGTERM and wait; returns the exit status (or -1 when killed by a signal).
  int terminate();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // Sends a signal (e.g. SIGHUP) to the running process.
  void send_signal(int sig);
  // The output so far; log() as of the last start(), terminate() or refresh.
  const std::string& refresh_log();
  // Waits (up to `limit`) until the output contains `text`.
  bool wait_for_log(const std::string& text, std::chrono::milliseconds limit = std::chrono::seconds(10));
  const std::string& log() const { return output_; }
  ~GatewayProcess();

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  uint16_t port_ = 0;
  uint16_t mllp_port_ = 0, mllp_tls_port_ = 0, ops_port_ = 0;
  std::string output_;
  std::vector<std::pair<std::string, std::string>> env_;
};

// Runs the binary with args to completion; returns the exit code and stdout+stderr.
int run_gateway_command(const std::vector<std::string>& args, std::string& output);

}  // namespace gw::test
