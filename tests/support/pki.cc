#include "tests/support/pki.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace gw::test {

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "dev_pki_dir: %s\n", what.c_str());
  std::abort();
}

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

}  // namespace

// One dev PKI per build tree, made by certs/make-dev-pki.sh on first use and
// shared by every test process (ctest runs each test in its own process; the
// script takes seconds). A lock file makes concurrent first uses wait for one
// maker; a half-made directory is never used because it is renamed into place
// only when complete.
const std::string& dev_pki_dir() {
  static std::once_flag once;
  static std::string dir;
  std::call_once(once, [] {
    const std::string build = GW_BUILD_DIR;
    dir = build + "/test-pki";
    // A PKI made by an older script lacks the newest certificate: make it again.
    auto complete = [] { return exists(dir + "/ca.pem") && exists(dir + "/server-wrong-host.pem") && exists(dir + "/client-unscheduled-care-desktop.pem") && exists(dir + "/crl.pem"); };
    if (complete()) return;
    int lock = ::open((build + "/test-pki.lock").c_str(), O_CREAT | O_RDWR, 0600);
    if (lock < 0 || ::flock(lock, LOCK_EX) != 0) die("cannot lock " + build + "/test-pki.lock");
    if (!complete()) {
      std::string tmp = build + "/test-pki.tmp." + std::to_string(::getpid());
      std::string cmd = std::string("rm -rf '") + tmp + "' && bash '" + GW_SOURCE_DIR + "/certs/make-dev-pki.sh' '" +
                        tmp + "' >/dev/null";
      int rc = std::system(cmd.c_str());
      if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        die("'" + cmd + "' failed (status " + std::to_string(rc) + "); is openssl installed?");
      }
      if (std::system(("rm -rf '" + dir + "'").c_str()) != 0) die("cannot clear " + dir);
      if (::rename(tmp.c_str(), dir.c_str()) != 0) die("cannot move the dev PKI into " + dir);
    }
    ::flock(lock, LOCK_UN);
    ::close(lock);
  });
  return dir;
}

void copy_dev_pki(const std::string& into) {
  std::string cmd = "mkdir -p '" + into + "' && cp -a '" + dev_pki_dir() + "/.' '" + into + "/'";
  if (std::system(cmd.c_str()) != 0) die("'" + cmd + "' failed");
}

void revoke_client(const std::string& pki_dir, const std::string& role) {
  std::string cmd = std::string("bash '") + GW_SOURCE_DIR + "/certs/make-dev-pki.sh' revoke '" + pki_dir + "' '" +
                    role + "' >/dev/null";
  if (std::system(cmd.c_str()) != 0) die("'" + cmd + "' failed");
}

}  // namespace gw::test
