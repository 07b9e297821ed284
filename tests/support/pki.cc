#include "tests/support/pki.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace gw::test {

const std::string& dev_pki_dir() {
  static std::once_flag once;
  static std::string dir;
  std::call_once(once, [] {
    char tmpl[] = "/tmp/gw-pki-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      std::fprintf(stderr, "dev_pki_dir: cannot create a temporary directory\n");
      std::abort();
    }
    dir = tmpl;
    std::string cmd = std::string("bash '") + GW_SOURCE_DIR + "/certs/make-dev-pki.sh' '" + dir + "' >/dev/null";
    int rc = std::system(cmd.c_str());
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
      std::fprintf(stderr, "dev_pki_dir: '%s' failed (status %d); is openssl installed?\n", cmd.c_str(), rc);
      std::abort();
    }
  });
  return dir;
}

}  // namespace gw::test
