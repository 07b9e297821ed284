#!/usr/bin/env bash
# The .deb on a fresh Debian 12: a new root made by mmdebstrap (variant "apt":
# the essential packages and apt, what a minimal Debian 12 install or the
# debian:12 image has), `apt install ./cpis-gateway_*.deb` in it resolving the
# dependencies from the Debian archive, then the gateway run there as its
# system user on the packaged config, answering /readyz on the operations
# port; then remove and purge. Runs in a private mount and PID namespace, so
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
cp "$src/tests/deploy/lib.sh" "$src/tests/deploy/deb_inside_root.sh" "$src/deploy/config.example.json" "$root/tmp/"

# The checks inside the root print their own ok/FAIL lines.
unshare --mount --pid --fork --mount-proc="$root/proc" -- chroot "$root" /bin/bash /tmp/deb_inside_root.sh \
  >"$build/deploy-test/inside.log" 2>&1
rc=$?
grep -E '^(ok|FAIL|#) ' "$build/deploy-test/inside.log"
passed=$((passed + $(grep -c '^ok - ' "$build/deploy-test/inside.log")))
failed=$((failed + $(grep -c '^FAIL - ' "$build/deploy-test/inside.log")))
if [[ $rc -ne 0 ]]; then
  not_ok "checks inside the root exited $rc"
  tail -n 40 "$build/deploy-test/inside.log"
fi
echo "# $(($(date +%s) - t0)) s in all"
finish
