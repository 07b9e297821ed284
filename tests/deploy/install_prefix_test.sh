#!/usr/bin/env bash
# `cmake --install BUILD --prefix P`: the layout docs/OPERATIONS.md promises,
# and the installed binary started from elsewhere, with no --profiles-dir,
# finds P/share/cpis-gateway/profiles and answers /readyz on its operations port.
# usage: install_prefix_test.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build="$1"
src="$2"
source "$src/tests/deploy/lib.sh"
work="$build/deploy-test/install-prefix"
rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix with space"  # paths are quoted everywhere
pid=""
cleanup() { [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

if ! cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1; then
  cat "$work/install.log"
  not_ok "cmake --install"
  finish
  exit 1
fi
ok "cmake --install --prefix"

check "bin/cpis-gateway is executable" test -x "$prefix/bin/cpis-gateway"
n_src=$(cd "$src/profiles" && find . -type f | wc -l)
n_inst=$(cd "$prefix/share/cpis-gateway/profiles" 2>/dev/null && find . -type f | wc -l)
if [[ "$n_src" -gt 0 && "$n_src" == "$n_inst" ]]; then ok "every profile file installed ($n_inst)"; else not_ok "profiles: $n_src in the tree, ${n_inst:-0} installed"; fi
n_web_src=$(cd "$src/web" && find . -type f | wc -l)
n_web=$(cd "$prefix/share/cpis-gateway/web" 2>/dev/null && find . -type f | wc -l)
if [[ "$n_web_src" -gt 0 && "$n_web_src" == "$n_web" ]]; then ok "every web console file installed ($n_web)"; else not_ok "web: $n_web_src in the tree, ${n_web:-0} installed"; fi
check "profiles identical to the tree" diff -r "$src/profiles" "$prefix/share/cpis-gateway/profiles"
for doc in README.md OPERATIONS.md CONFIG.md config.example.json copyright formats/systmone.md; do
  check "docs: share/doc/cpis-gateway/$doc" test -s "$prefix/share/doc/cpis-gateway/$doc"
done
check "make-dev-pki.sh installed executable" test -x "$prefix/share/cpis-gateway/make-dev-pki.sh"
unit="$prefix/lib/systemd/system/cpis-gateway.service"
check "systemd unit at lib/systemd/system" test -s "$unit"
check "the unit starts the installed binary" grep -qxF "ExecStart=$prefix/bin/cpis-gateway serve --config $prefix/etc/cpis-gateway/config.json" "$unit"
check "config at etc/cpis-gateway/config.json" test -s "$prefix/etc/cpis-gateway/config.json"
check "no @PLACEHOLDER@ left in the unit" bash -c "! grep -q '@[A-Z]*@' '$unit'"

# The installed binary, from a directory with no ./profiles, on the installed config's
# settings but with test paths and ports.
pki="$work/pki"
"$prefix/share/cpis-gateway/make-dev-pki.sh" "$pki" >/dev/null 2>&1 || not_ok "make-dev-pki.sh"
mkdir -p "$work/elsewhere"
cd "$work/elsewhere"
check "the config schema is installed with the profiles" test -s "$prefix/share/cpis-gateway/profiles/schemas/config.schema.json"
# The installed config checked against the schema (and the flags, the profiles, the files) without starting.
if "$prefix/bin/cpis-gateway" serve --config "$prefix/etc/cpis-gateway/config.json" --data-dir "$work/data" \
  --tls-cert "$pki/server.pem" --tls-key "$pki/server.key" --client-ca "$pki/ca.pem" --check-config >"$work/check.log" 2>&1 \
  && grep -q "matches profiles/schemas/config.schema.json" "$work/check.log"; then
  ok "serve --check-config accepts the installed config"
else
  not_ok "serve --check-config on the installed config: $(cat "$work/check.log")"
fi
printf '{\n  "https": {"threads": 0}\n}\n' >"$work/bad.json"
if ! "$prefix/bin/cpis-gateway" serve --config "$work/bad.json" --check-config >"$work/check.log" 2>&1 \
  && grep -qF "$work/bad.json:2:13: https.threads must be between 1 and 256, not 0 (at /https/threads)" "$work/check.log"; then
  ok "serve --check-config names a bad setting with line, column and pointer"
else
  not_ok "serve --check-config on a bad config: $(cat "$work/check.log")"
fi
"$prefix/bin/cpis-gateway" serve --config "$prefix/etc/cpis-gateway/config.json" --data-dir "$work/data" \
  --https-listen 127.0.0.1:0 --ops-listen 127.0.0.1:0 --tls-cert "$pki/server.pem" --tls-key "$pki/server.key" \
  --client-ca "$pki/ca.pem" >"$work/serve.log" 2>&1 &
pid=$!
ops=$(wait_for_line "$work/serve.log" 30 'operations listening on http://127\.0\.0\.1:([0-9]+) ')
https=$(wait_for_line "$work/serve.log" 1 'listening on https://127\.0\.0\.1:([0-9]+)/fhir')
if [[ -n "$ops" ]]; then ok "started with no --profiles-dir from a directory without profiles"; else cat "$work/serve.log"; not_ok "the installed binary did not start"; fi
if [[ -n "$ops" ]]; then
  code=$(curl -s -o "$work/readyz" -w '%{http_code}' "http://127.0.0.1:$ops/readyz")
  if [[ "$code" == 200 ]] && grep -q '"status":"ready"' "$work/readyz"; then ok "/readyz 200 on the operations port"; else not_ok "/readyz answered $code: $(cat "$work/readyz")"; fi
  # The profiles really loaded: the CapabilityStatement lists the topics from profiles/topics.
  code=$(curl -s -o "$work/metadata" -w '%{http_code}' --cert "$pki/client-gp.pem" --key "$pki/client-gp.key" \
    --cacert "$pki/ca.pem" "https://127.0.0.1:$https/fhir/metadata")
  if [[ "$code" == 200 ]] && grep -q 'SubscriptionTopic/patient-change' "$work/metadata"; then ok "FHIR metadata over mutual TLS names the installed topics"; else not_ok "metadata answered $code"; fi
  kill -TERM "$pid"
  if wait "$pid"; then ok "SIGTERM: drained and exited 0"; else not_ok "exit status $? after SIGTERM"; fi
  pid=""
fi
finish
