#!/usr/bin/env bash
# Installs everything cpis-gateway needs to build and test on Debian 12.
# python3: the hazard-log check and a real HTTP/1.0 receiver in the delivery
# tests; testssl.sh: the TLS audit of both listeners (tests/gateway/e2e/tls_audit_test.cc).
# Idempotent: packages already present are left alone; safe to run again.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git python3
  libboost1.81-dev rapidjson-dev libssl-dev openssl
  libsqlite3-dev libpq-dev libxml2-dev libcsv-dev
  # The suite's PostgreSQL run: a throw-away cluster made with initdb per run
  # (tests/support/pg_cluster.sh); the package's own cluster is not used.
  postgresql-15
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev
  nodejs npm curl ca-certificates
  # Install and package tests (tests/deploy/): the .deb checked with lintian and
  # installed into a fresh Debian 12 root made by mmdebstrap; the systemd unit
  # checked with systemd-analyze (from systemd, which does not run as init here).
  mmdebstrap lintian systemd file
  python3 testssl.sh
  # Timer tests run the real gateway "the day after" (tests/gateway/e2e/flow_timers_e2e_test.cc).
  faketime
  # The web console's real-browser test (tests/gateway/e2e/console_browser_e2e_test.cc):
  # headless Chromium driven by puppeteer-core, the client certificate put in an
  # NSS database with certutil/pk12util.
  chromium libnss3-tools
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# nodejs/npm may come from outside Debian's archive on some images; accept any working node.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi

if ((${#missing[@]})); then
  sudo_cmd=""
  [[ $(id -u) -eq 0 ]] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Chromium reads policies only from /etc/chromium/policies: this one lets the
# browser test's headless Chromium present its client certificate without a
# dialog, for the loopback address and certificates of the dev CA only (never
# a production CA; certs/make-dev-pki.sh names its CA "cpis-gateway dev CA").
policy_dir=/etc/chromium/policies/managed
policy='{"AutoSelectCertificateForUrls": ["{\"pattern\":\"https://127.0.0.1\",\"filter\":{\"ISSUER\":{\"CN\":\"cpis-gateway dev CA\"}}}"]}'
if [[ "$(cat "$policy_dir/cpis-gateway-dev-tests.json" 2>/dev/null)" != "$policy" ]]; then
  sudo_cmd=""
  [[ $(id -u) -eq 0 ]] || sudo_cmd="sudo"
  $sudo_cmd mkdir -p "$policy_dir"
  printf '%s\n' "$policy" | $sudo_cmd tee "$policy_dir/cpis-gateway-dev-tests.json" >/dev/null
fi

# Test-only node tools (FHIR JSON-schema validator); versions pinned by the lock file.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -f "$here/tests/tools/package.json" ]]; then
  (cd "$here/tests/tools" && npm ci --no-audit --no-fund --silent)
fi
