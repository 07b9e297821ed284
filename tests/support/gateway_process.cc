#include "tests/support/gateway_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <algorithm>
#include <regex>

#include "tests/support/pki.h"
#include "tests/support/test_store.h"

namespace gw::test {

namespace {
std::vector<char*> argv_of(std::vector<std::string>& args) {
  std::vector<char*> out;
  for (auto& a : args) out.push_back(a.data());
  out.push_back(nullptr);
  return out;
}
}  // namespace

bool GatewayProcess::start(const std::string& data_dir, const std::vector<std::string>& extra_args) {
  const std::string& pki = dev_pki_dir();
  std::vector<std::string> args = {GW_BINARY,      "serve",          "--data-dir",     data_dir,
                                   "--https-listen", "127.0.0.1:0",   "--tls-cert",     pki + "/server.pem",
                                   "--tls-key",      pki + "/server.key", "--client-ca", pki + "/ca.pem",
                                   "--profiles-dir", std::string(GW_SOURCE_DIR) + "/profiles"};
  // On the engine this run of the suite is for (tests/support/test_store.h).
  auto engine = engine_args(data_dir);
  args.insert(args.end(), engine.begin(), engine.end());
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  // The child writes to a file, not a pipe: a pipe nobody drains would block
  // the gateway's logging once it filled up.
  char path[] = "/tmp/gw-process-XXXXXX";
  int wfd = mkstemp(path);
  if (wfd < 0) return false;
  out_fd_ = open(path, O_RDONLY);
  unlink(path);
  output_.clear();
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    dup2(wfd, 1);
    dup2(wfd, 2);
    close(wfd);
    for (const auto& [k, v] : env_) setenv(k.c_str(), v.c_str(), 1);
    auto argv = argv_of(args);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(wfd);
  pid_ = pid;
  std::regex re("listening on https://127\\.0\\.0\\.1:([0-9]+)/fhir");
  std::regex mllp_re("HL7 v2 MLLP listening on [^:]+:([0-9]+)");
  std::regex mllp_tls_re("HL7 v2 MLLP/TLS listening on [^:]+:([0-9]+)");
  std::regex ops_re("operations listening on http://[^ ]+:([0-9]+) ");
  auto wants = [&](const char* flag) {
    return std::find(extra_args.begin(), extra_args.end(), flag) != extra_args.end();
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    usleep(20'000);
    char buf[4096];
    ssize_t n;
    while ((n = read(out_fd_, buf, sizeof buf)) > 0) output_.append(buf, static_cast<size_t>(n));
    std::smatch m, mm, mt, mo;
    bool mllp_ok = !wants("--mllp-listen") || std::regex_search(output_, mm, mllp_re);
    bool tls_ok = !wants("--mllp-tls-listen") || std::regex_search(output_, mt, mllp_tls_re);
    bool ops_ok = !wants("--ops-listen") || std::regex_search(output_, mo, ops_re);
    if (mllp_ok && tls_ok && ops_ok && std::regex_search(output_, m, re)) {
      if (wants("--ops-listen")) ops_port_ = static_cast<uint16_t>(std::stoi(mo[1].str()));
      port_ = static_cast<uint16_t>(std::stoi(m[1].str()));
      if (wants("--mllp-listen")) mllp_port_ = static_cast<uint16_t>(std::stoi(mm[1].str()));
      if (wants("--mllp-tls-listen")) mllp_tls_port_ = static_cast<uint16_t>(std::stoi(mt[1].str()));
      return true;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
  }
  return false;
}

void GatewayProcess::send_signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

const std::string& GatewayProcess::refresh_log() {
  char buf[4096];
  ssize_t n;
  while (out_fd_ >= 0 && (n = read(out_fd_, buf, sizeof buf)) > 0) output_.append(buf, static_cast<size_t>(n));
  return output_;
}

bool GatewayProcess::wait_for_log(const std::string& text, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (refresh_log().find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    usleep(20'000);
  }
  return true;
}

void GatewayProcess::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

int GatewayProcess::terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  char buf[4096];
  ssize_t n;
  while (out_fd_ >= 0 && (n = read(out_fd_, buf, sizeof buf)) > 0) output_.append(buf, static_cast<size_t>(n));
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return -1;
}

GatewayProcess::~GatewayProcess() {
  kill9();
  if (out_fd_ >= 0) close(out_fd_);
}

int run_gateway_command(const std::vector<std::string>& args_in, std::string& output) {
  std::vector<std::string> args = {GW_BINARY};
  args.insert(args.end(), args_in.begin(), args_in.end());
  // A replay works on the store its data directory's gateway used: on this
  // run's engine.
  if (!args_in.empty() && args_in[0] == "replay") {
    auto dir = std::find(args_in.begin(), args_in.end(), std::string("--data-dir"));
    if (dir != args_in.end() && dir + 1 != args_in.end()) {
      auto engine = engine_args(*(dir + 1));
      args.insert(args.end(), engine.begin(), engine.end());
    }
  }
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    auto argv = argv_of(args);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) output.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace gw::test
