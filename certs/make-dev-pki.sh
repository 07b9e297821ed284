#!/usr/bin/env bash
# Mints a throw-away development PKI with the openssl CLI:
#   ca.pem/ca.key, server.pem/server.key (SAN localhost, 127.0.0.1, ::1),
#   client-<role>.pem/.key for every role (O=<ODS code>, OU=<role>, CN=<system>),
#   client-unscheduled-care-desktop.pem/.key (O=RXX01, OU=unscheduled-care, CN=ed-desktop: a user-facing system),
#   client-local-authority-2.pem/.key (a second local authority, O=LA372 as in the CP-IS upload sample),
#   other-ca.pem and client-foreign.pem/.key signed by an unrelated CA (for refusal tests),
#   server-expired.pem/.key (valid names, expired in 2020) and server-wrong-host.pem/.key
#   (SAN wrong-host.invalid only) for the outbound certificate checks,
#   crl.pem: the CA's certificate revocation list (empty until a revoke).
#
#   make-dev-pki.sh revoke OUTDIR ROLE   revokes client-ROLE.pem and writes OUTDIR/crl.pem anew.
# Nothing here is for production; no key made here is ever committed.
set -euo pipefail
usage="usage: make-dev-pki.sh OUTDIR | make-dev-pki.sh revoke OUTDIR ROLE"
mode=make
if [[ "${1:-}" == revoke ]]; then
  mode=revoke
  shift
fi
out="${1:?$usage}"
mkdir -p "$out"
cd "$out"
umask 077

# openssl ca keeps what it issued and revoked in index.txt; the CRL is made from it.
write_ca_conf() {
  [[ -f ca.cnf ]] && return 0
  : > index.txt
  echo 1000 > crlnumber
  mkdir -p issued
  cat > ca.cnf <<'CNF'
[ ca ]
default_ca = dev
[ dev ]
dir = .
database = ./index.txt
new_certs_dir = ./issued
certificate = ./ca.pem
private_key = ./ca.key
serial = ./ca.srl
crlnumber = ./crlnumber
default_md = sha256
default_crl_days = 3650
unique_subject = no
policy = any
[ any ]
commonName = supplied
CNF
}

gencrl() {
  openssl ca -config ca.cnf -gencrl -out crl.pem 2>/dev/null
  chmod 644 crl.pem
}

if [[ "$mode" == revoke ]]; then
  role="${2:?$usage}"
  [[ -f "client-$role.pem" ]] || { echo "no client-$role.pem in $out" >&2; exit 1; }
  write_ca_conf
  openssl ca -config ca.cnf -revoke "client-$role.pem" -crl_reason keyCompromise 2>/dev/null
  gencrl
  echo "revoked client-$role.pem; CRL in $(pwd)/crl.pem"
  exit 0
fi

# Under 398 days: what browsers and testssl.sh accept for a TLS certificate.
days=397
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

# The CRL distribution point says where revocation is published (the URL is
# the dev setup's; nothing fetches it here).
issue server "$subj_prefix/O=RXX/OU=gateway/CN=cpis-gateway" \
  "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
extendedKeyUsage=serverAuth,clientAuth
keyUsage=critical,digitalSignature
crlDistributionPoints=URI:http://localhost/cpis-gateway-dev/crl.pem"

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

# The ED's desktop client, a system people sit at (profiles/policy/users.json
# userFacingSystems): its unscheduled CP-IS queries must name the person.
issue client-unscheduled-care-desktop "$subj_prefix/O=RXX01/OU=unscheduled-care/CN=ed-desktop" \
  "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"

# A second local authority, so tests can show one authority cannot change another's plans.
issue client-local-authority-2 "$subj_prefix/O=LA372/OU=local-authority/CN=rotherham-childrens-services" \
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
# Outbound checks: a receiver must be refused when its certificate has
# expired or names another host, even though the dev CA signed it.
write_ca_conf
[[ -f ca.srl ]] || openssl rand -hex 8 > ca.srl
if [[ ! -f server-expired.pem ]]; then
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server-expired.key \
    -out server-expired.csr -subj "$subj_prefix/O=RXX/OU=gateway/CN=expired receiver" 2>/dev/null
  printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" "extendedKeyUsage=serverAuth,clientAuth" > server-expired.ext
  openssl ca -config ca.cnf -batch -notext -in server-expired.csr -out server-expired.pem \
    -startdate 20200101000000Z -enddate 20200201000000Z -extfile server-expired.ext 2>/dev/null
  rm -f server-expired.csr server-expired.ext
fi
issue server-wrong-host "$subj_prefix/O=RXX/OU=gateway/CN=wrong-host.invalid" \
  "subjectAltName=DNS:wrong-host.invalid
extendedKeyUsage=serverAuth,clientAuth
keyUsage=critical,digitalSignature"
[[ -f crl.pem ]] || gencrl
chmod 644 ./*.pem
echo "dev PKI in $(pwd)"
