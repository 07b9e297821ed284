#!/usr/bin/env bash
# Mints a throw-away development PKI with the openssl CLI:
#   ca.pem/ca.key, server.pem/server.key (SAN localhost, 127.0.0.1, ::1),
#   client-<role>.pem/.key for every role (O=<ODS code>, OU=<role>, CN=<system>),
#   other-ca.pem and client-foreign.pem/.key signed by an unrelated CA (for refusal tests).
# Nothing here is for production; no key made here is ever committed.
set -euo pipefail
out="${1:?usage: make-dev-pki.sh OUTDIR}"
mkdir -p "$out"
cd "$out"
umask 077

days=825
subj_prefix="/C=GB"

if [[ ! -f ca.pem ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -keyout ca.key -out ca.pem -subj "$subj_prefix/O=cpis-gateway dev/CN=cpis-gateway dev CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

issue() { # name subject extfile-content
  local name="$1" subj="$2" ext="$3" ca="${4:-ca}"
  [[ -f "$name.pem" ]] && return 0
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" \
    -out "$name.csr" -subj "$subj" 2>/dev/null
  printf '%s\n' "$ext" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial \
    -days "$days" -out "$name.pem" -extfile "$name.ext" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

issue server "$subj_prefix/O=RXX/OU=gateway/CN=cpis-gateway" \
  "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
extendedKeyUsage=serverAuth,clientAuth
keyUsage=critical,digitalSignature"

# role  ODS  system-name
roles=(
  "local-authority   L0001  la-childrens-social-care"
  "unscheduled-care  RXX01  ed-symphony"
  "gp                B86001 gp-systmone"
  "health-visiting   RXX02  hv-systmone"
  "midwifery         RXX03  maternity-badger"
  "school-nursing    RXX04  sn-systmone"
  "paediatric-liaison RXX05 paed-liaison"
  "lac-health        RXX06  lac-health-team"
  "camhs             RXX07  camhs-rio"
  "adult-mental-health RXX08 amh-rio"
  "substance-misuse  RXX09  sm-nebula"
  "sexual-health     RXX10  cash-lillie"
  "commissioner      QWO    icb-commissioning"
  "integration       RXX    trust-integration-engine"
  "admin             RXX    gateway-admin"
)
for line in "${roles[@]}"; do
  read -r role ods cn <<<"$line"
  issue "client-$role" "$subj_prefix/O=$ods/OU=$role/CN=$cn" \
    "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
done

# A second local authority (CP-IS routing tests: one authority must not hear of another's plans).
issue client-local-authority-2 "$subj_prefix/O=L0002/OU=local-authority/CN=la-neighbouring-authority" \
  "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"

# An unrelated CA and a client it signed: must be refused by the gateway.
if [[ ! -f other-ca.pem ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -keyout other-ca.key -out other-ca.pem -subj "$subj_prefix/O=elsewhere/CN=Some Other CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
issue client-foreign "$subj_prefix/O=B86001/OU=gp/CN=impostor" \
  "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature" other-ca
chmod 644 ./*.pem
echo "dev PKI in $(pwd)"
