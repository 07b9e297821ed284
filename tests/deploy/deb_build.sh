#!/usr/bin/env bash
# Builds the Debian package from this build tree with CPack, for the other
# deb_* tests (ctest fixture "deb"): BUILD_DIR/deploy-test/deb/cpis-gateway_*.deb.
# usage: deb_build.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$1"
out="$build/deploy-test/deb"
rm -rf "$out"
mkdir -p "$out"
cd "$out"
if ! cpack --config "$build/CPackConfig.cmake" -G DEB -B "$out" >"$out/cpack.log" 2>&1; then
  cat "$out/cpack.log"
  echo "0 passed, 1 failed"
  exit 1
fi
rm -rf "$out/_CPack_Packages"
ls "$out"/cpis-gateway_*.deb
echo "1 passed, 0 failed"
