#!/usr/bin/env bash
# The systemd unit as `cmake --install` writes it, checked with systemd's own
# tools, which work here without systemd running as PID 1:
#   systemd-analyze verify   - syntax, unknown keys, the executables exist,
#                              the targets it names exist on this system;
#   systemd-analyze security --offline=yes --threshold=20
#                            - the exposure score of its sandboxing settings
#                              (shown as 0.0-10.0; the threshold is in tenths:
#                              20 = 2.0, the top of systemd's "OK" band is 4.9).
# What this cannot prove: that systemd starts it and the gateway runs under
# these restrictions (no systemd as PID 1 here). The gateway's own behaviour as
# the unprivileged user is checked in deb_fresh_root_test.sh.
# usage: systemd_unit_test.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build="$1"
src="$2"
source "$src/tests/deploy/lib.sh"
work="$build/deploy-test/systemd"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
if ! cmake --install "$build" --prefix "$work/p" >"$work/install.log" 2>&1; then
  cat "$work/install.log"
  not_ok "cmake --install"
  finish
  exit 1
fi
unit="$work/p/lib/systemd/system/cpis-gateway.service"

systemd-analyze verify "$unit" >"$work/verify.log" 2>&1
rc=$?
if [[ $rc -eq 0 && ! -s "$work/verify.log" ]]; then ok "systemd-analyze verify: clean"; else not_ok "systemd-analyze verify (exit $rc)"; sed 's/^/# /' "$work/verify.log"; fi

systemd-analyze security --offline=yes --threshold=20 --no-pager "$unit" >"$work/security.log" 2>&1
rc=$?
score=$(sed -n 's/.*Overall exposure level for cpis-gateway.service: \([0-9.]*\).*/\1/p' "$work/security.log")
if [[ $rc -eq 0 && -n "$score" ]]; then ok "systemd-analyze security: exposure $score (threshold 2.0)"; else not_ok "systemd-analyze security exposure '${score:-?}' (exit $rc)"; sed 's/^/# /' "$work/security.log"; fi
grep '^✗' "$work/security.log" | sed 's/^/# not restricted: /'

# The settings the operations guide relies on, by name.
for want in "User=cpis-gateway" "NoNewPrivileges=yes" "ProtectSystem=strict" "ReadWritePaths=/var/lib/cpis-gateway" \
  "StateDirectory=cpis-gateway" "PrivateTmp=yes" "CapabilityBoundingSet=" "ExecReload=/bin/kill -HUP \$MAINPID"; do
  check "unit sets $want" grep -qxF "$want" "$unit"
done
for flag in "User=/DynamicUser=" "NoNewPrivileges=" "ProtectSystem=" "ProtectHome=" "PrivateDevices=" "SystemCallFilter=~@privileged"; do
  check "security analysis counts $flag as restricted" grep -qF "✓ $flag" "$work/security.log"
done
finish
