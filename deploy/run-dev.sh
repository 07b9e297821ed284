#!/usr/bin/env bash
# Fresh Debian 12 -> a running gateway on its embedded SQLite store:
# installs the Debian packages, builds, makes a dev PKI in ./pki (once),
# and starts `build/bin/cpis-gateway serve`, which prints where it listens.
# Extra arguments go to `serve` (e.g. --https-listen 0.0.0.0:8443).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGW_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target cpis-gateway
[[ -f pki/ca.pem ]] || certs/make-dev-pki.sh pki >/dev/null
echo "client certificates for curl: pki/client-<role>.pem with pki/client-<role>.key, CA pki/ca.pem"
exec build/bin/cpis-gateway serve --data-dir ./data --tls-cert pki/server.pem --tls-key pki/server.key \
  --client-ca pki/ca.pem "$@"
