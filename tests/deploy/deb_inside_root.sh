#!/bin/bash
# Runs as root inside the fresh Debian 12 root of deb_fresh_root_test.sh, in
# three phases: install (and run as systemd would), read-only (run as the
# container does), remove.
set -uo pipefail
here=/opt/deb-test
source "$here/lib.sh"
export DEBIAN_FRONTEND=noninteractive
deb=$(ls /tmp/cpis-gateway_*.deb 2>/dev/null)

# Starts the gateway as its user on the packaged config (ports chosen by the
# kernel); sets pid, ops and https, or ends the phase.
start_gateway() {
  cd /var/lib/cpis-gateway || exit 1
  setpriv --reuid=cpis-gateway --regid=cpis-gateway --init-groups --no-new-privs -- \
    /usr/bin/cpis-gateway serve --config /etc/cpis-gateway/config.json --https-listen 127.0.0.1:0 \
    --ops-listen 127.0.0.1:0 >"$1" 2>&1 &
  pid=$!
  ops=$(wait_for_line "$1" 30 'operations listening on http://127\.0\.0\.1:([0-9]+) ')
  https=$(wait_for_line "$1" 1 'listening on https://127\.0\.0\.1:([0-9]+)/fhir')
  if [[ -z "$ops" || -z "$https" ]]; then
    tail -n 20 "$1"
    kill -9 "$pid" 2>/dev/null
    not_ok "the installed gateway did not start"
    finish
    exit 1
  fi
}

stop_gateway() {
  kill -TERM "$pid"
  if wait "$pid"; then ok "SIGTERM: exit 0"; else not_ok "exit $? after SIGTERM"; fi
}

readyz_ok() {
  local code
  code=$(curl -s -o "$1" -w '%{http_code}' "http://127.0.0.1:$ops/readyz")
  [[ "$code" == 200 ]] && grep -q '"status":"ready"' "$1"
}

pki=/etc/cpis-gateway/pki
mtls=(--cert "$pki/client-gp.pem" --key "$pki/client-gp.key" --cacert "$pki/ca.pem")

case "${1:-}" in
install)
apt-get update -qq >/tmp/apt.log 2>&1
if apt-get install -y -qq "$deb" >>/tmp/apt.log 2>&1; then
  ok "apt install ./$(basename "$deb") on a fresh Debian 12"
else
  tail -n 30 /tmp/apt.log
  not_ok "apt install"
  finish
  exit 1
fi
check "the dev-PKI script's openssl came as a recommendation" test -x /usr/bin/openssl

uid=$(id -u cpis-gateway 2>/dev/null || echo none)
if [[ "$uid" =~ ^[0-9]+$ && "$uid" -gt 0 && "$uid" -lt 1000 ]]; then ok "system user cpis-gateway (uid $uid)"; else not_ok "system user: '$uid'"; fi
check "the user has no login shell" bash -c '[[ "$(getent passwd cpis-gateway | cut -d: -f7)" == */nologin || "$(getent passwd cpis-gateway | cut -d: -f7)" == /bin/false ]]'
check "/var/lib/cpis-gateway is the user's, 0750" test "$(stat -c '%U:%G %a' /var/lib/cpis-gateway)" = "cpis-gateway:cpis-gateway 750"
check "/etc/cpis-gateway is root:cpis-gateway 0750" test "$(stat -c '%U:%G %a' /etc/cpis-gateway)" = "root:cpis-gateway 750"
check "/etc/cpis-gateway/pki is root:cpis-gateway 0750" test "$(stat -c '%U:%G %a' /etc/cpis-gateway/pki)" = "root:cpis-gateway 750"
check "config.json root:cpis-gateway 0640" test "$(stat -c '%U:%G %a' /etc/cpis-gateway/config.json)" = "root:cpis-gateway 640"
check "the unit is enabled (multi-user.target.wants)" test -L /etc/systemd/system/multi-user.target.wants/cpis-gateway.service

# config.example.json points only at what the package (data, profiles, the
# pki directory) or the documented certificate step makes.
for key in data_dir profiles_dir; do
  v=$(sed -n "s/^  \"$key\": \"\(.*\)\",*$/\1/p" "$here/config.example.json")
  check "config.example.json $key ($v) exists after install" test -d "$v"
done
for v in $(sed -n 's/^ *"\(cert\|key\|client_ca\)": "\(.*\)",*$/\2/p' "$here/config.example.json"); do
  check "config.example.json TLS file $v is in the package's pki directory" test -d "$(dirname "$v")"
done

# The certificate step of docs/OPERATIONS.md ("for a trial"), then the gateway as systemd would run it.
/usr/share/cpis-gateway/make-dev-pki.sh /etc/cpis-gateway/pki >/dev/null 2>&1
chgrp cpis-gateway /etc/cpis-gateway/pki/*
chmod 0640 /etc/cpis-gateway/pki/*
check "a trial PKI in /etc/cpis-gateway/pki" test -s /etc/cpis-gateway/pki/server.pem
apt-get install -y -qq curl >>/tmp/apt.log 2>&1 || not_ok "curl for the probes"

start_gateway /tmp/serve.log
ok "cpis-gateway serve --config /etc/cpis-gateway/config.json started as cpis-gateway"
if readyz_ok /tmp/readyz; then ok "/readyz 200 ready on the operations port"; else not_ok "/readyz: $(cat /tmp/readyz)"; fi
echo "# readyz: $(cat /tmp/readyz)"
check "FHIR metadata over mutual TLS (client-gp)" test "$(curl -s -o /dev/null -w '%{http_code}' "${mtls[@]}" "https://127.0.0.1:$https/fhir/metadata")" = 200
check "no FHIR without a client certificate" test "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$pki/ca.pem" "https://127.0.0.1:$https/fhir/metadata")" = 000
check "the store is in /var/lib/cpis-gateway, owned by the user" test "$(stat -c %U /var/lib/cpis-gateway/gateway.db)" = cpis-gateway
check "backup as the service user while it serves" setpriv --reuid=cpis-gateway --regid=cpis-gateway --init-groups -- \
  /usr/bin/cpis-gateway backup --data-dir /var/lib/cpis-gateway --to /var/lib/cpis-gateway/backup-test.db
stop_gateway

# The maintainer scripts' upgrade path (configure with the old version given).
if apt-get install -y -qq --reinstall "$deb" >>/tmp/apt.log 2>&1; then ok "reinstall over itself (the upgrade path)"; else not_ok "reinstall"; fi
check "after the upgrade path: config.json still root:cpis-gateway 0640" test "$(stat -c '%U:%G %a' /etc/cpis-gateway/config.json)" = "root:cpis-gateway 640"
check "after the upgrade path: the store is still there" test -s /var/lib/cpis-gateway/gateway.db
;;

read-only)
check "the root filesystem is read-only" bash -c '! touch /usr/share/cpis-gateway/x 2>/dev/null'
start_gateway /tmp/serve.log
ok "started on a read-only root with only /var/lib/cpis-gateway writable"
if readyz_ok /tmp/readyz; then ok "/readyz 200: the store commits on a read-only root"; else not_ok "/readyz: $(cat /tmp/readyz)"; fi
sed 's/{{nhs}}/9434765919/' "$here/Patient.json" >/tmp/patient.json
code=$(curl -s -o /tmp/created -w '%{http_code}' --cert "$pki/client-integration.pem" --key "$pki/client-integration.key" \
  --cacert "$pki/ca.pem" -H 'Content-Type: application/fhir+json' --data-binary @/tmp/patient.json \
  "https://127.0.0.1:$https/fhir/Patient")
check "a FHIR create is committed (201)" test "$code" = 201
stop_gateway
;;

remove)
apt-get remove -y -qq cpis-gateway >>/tmp/apt.log 2>&1
check "remove: binary gone" test ! -e /usr/bin/cpis-gateway
check "remove: configuration kept" test -f /etc/cpis-gateway/config.json
apt-get purge -y -qq cpis-gateway >>/tmp/apt.log 2>&1
check "purge: configuration removed" test ! -e /etc/cpis-gateway/config.json
check "purge: the store (clinical records, audit) kept" test -s /var/lib/cpis-gateway/gateway.db
;;

*)
echo "usage: deb_inside_root.sh install|read-only|remove" >&2
exit 2
;;
esac
finish
