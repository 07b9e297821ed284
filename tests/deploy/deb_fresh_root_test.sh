#!/usr/bin/env bash
# The .deb on a fresh Debian 12: a new root made by mmdebstrap (variant "apt":
# the essential packages and apt, what a minimal Debian 12 install or the
# debian:12 image has), `apt install ./cpis-gateway_*.deb` in it resolving the
# dependencies from the Debian archive, then the gateway run there as its
# system user on the packaged config, answering /readyz on the operations
# port; again with the root read-only but the data directory (as the
# container image runs); then remove and purge. Runs in a private mount and PID namespace, so
# nothing it mounts or starts outlives it.
#
# Not proved here (no systemd as PID 1 in this sandbox): that systemd starts
# the unit. The unit is checked by systemd_unit_test.sh; the postinst's
# enable step (the multi-user.target.wants link) is checked below.
# usage: deb_fresh_root_test.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build="$1"
src="$2"
source "$src/tests/deploy/lib.sh"
require_deb "$build"
if [[ $(id -u) -ne 0 ]]; then
  # mmdebstrap --mode=root, chroot and unshare need root (CI runs as root).
  not_ok "this test needs root to make and enter a Debian root"
  finish
  exit 1
fi
root="$build/deploy-test/fresh-root"
# Left for inspection until the next run removes it (about 300 MB, inside the
# build tree): deleting it costs as long as the checks themselves.
rm -rf "$root"

t0=$(date +%s)
archive="http://deb.debian.org/debian"
if ! mmdebstrap --variant=apt --mode=root --quiet bookworm "$root" \
  "deb $archive bookworm main" "deb $archive bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main" >"$build/deploy-test/mmdebstrap.log" 2>&1; then
  cat "$build/deploy-test/mmdebstrap.log"
  not_ok "mmdebstrap could not make a Debian 12 root"
  finish
  exit 1
fi
ok "fresh Debian 12 root made in $(($(date +%s) - t0)) s"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/"
# Outside /tmp, which the read-only phase covers with a tmpfs.
mkdir -p "$root/opt/deb-test"
cp "$src/tests/deploy/lib.sh" "$src/tests/deploy/deb_inside_root.sh" "$src/deploy/config.example.json" \
  "$src/tests/fixtures/fhir/Patient.json" "$root/opt/deb-test/"

# Each phase's checks print their own ok/FAIL lines, counted here.
phase() {
  local name="$1" rc
  shift
  "$@" >"$build/deploy-test/inside-$name.log" 2>&1
  rc=$?
  grep -E '^(ok|FAIL|#) ' "$build/deploy-test/inside-$name.log"
  passed=$((passed + $(grep -c '^ok - ' "$build/deploy-test/inside-$name.log")))
  failed=$((failed + $(grep -c '^FAIL - ' "$build/deploy-test/inside-$name.log")))
  if [[ $rc -ne 0 ]]; then
    not_ok "phase $name exited $rc"
    tail -n 40 "$build/deploy-test/inside-$name.log"
  fi
}
inside() { unshare --mount --pid --fork --mount-proc="$root/proc" -- chroot "$root" /bin/bash /opt/deb-test/deb_inside_root.sh "$1"; }

phase install inside install
# As the container image runs it (deploy/Dockerfile, compose read_only): the
# whole root read-only but the data directory, a tmpfs on /tmp.
phase read-only unshare --mount --pid --fork -- bash -c '
  set -e
  r="$1"
  mount --bind "$r" "$r"
  mount -o remount,bind,ro "$r"
  mount --bind "$r/var/lib/cpis-gateway" "$r/var/lib/cpis-gateway"
  mount -o remount,bind,rw "$r/var/lib/cpis-gateway"
  mount -t tmpfs -o size=16m tmpfs "$r/tmp"
  mount -t proc proc "$r/proc"
  exec chroot "$r" /bin/bash /opt/deb-test/deb_inside_root.sh read-only' _ "$root"
phase remove inside remove
echo "# $(($(date +%s) - t0)) s in all"
finish
