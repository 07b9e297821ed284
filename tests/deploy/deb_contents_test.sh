#!/usr/bin/env bash
# The .deb as a file: control data (dependencies cover every library the
# binary links, adduser for the system user), the files and their modes, the
# conffile, the maintainer scripts, and lintian's verdict.
# usage: deb_contents_test.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build="$1"
src="$2"
source "$src/tests/deploy/lib.sh"
require_deb "$build"
work=$(mktemp -d "$build/deploy-test/contents.XXXXXX")
trap 'rm -rf "$work"' EXIT

check "package name" test "$(dpkg-deb -f "$deb" Package)" = cpis-gateway
check "architecture amd64" test "$(dpkg-deb -f "$deb" Architecture)" = amd64
check "version is the project's" grep -qF "project(cpis_gateway VERSION $(dpkg-deb -f "$deb" Version) " "$src/CMakeLists.txt"
depends=$(dpkg-deb -f "$deb" Depends)
echo "# Depends: $depends"
check "depends on adduser (postinst makes the system user)" grep -qw adduser <<<"$depends"

dpkg-deb -x "$deb" "$work/root"
dpkg-deb -e "$deb" "$work/control"
bin="$work/root/usr/bin/cpis-gateway"
check "usr/bin/cpis-gateway" test -x "$bin"
# Every shared library the binary needs comes from a package named in Depends.
# Package names as Depends lists them, one a line, without version constraints.
dep_names=$(tr ',' '\n' <<<"$depends" | sed 's/^ *//; s/ .*//')
owner() {  # the package owning a library file; dpkg may know it under /lib or /usr/lib (merged /usr)
  local p c
  p="$1"
  for c in "$p" "$(readlink -f "$p")" "${p#/usr}" "/usr$p" "$(readlink -f "$p" | sed 's#^/usr##')"; do
    dpkg -S "$c" 2>/dev/null | head -1 | cut -d: -f1 && return 0
  done
  return 1
}
for lib in $(objdump -p "$bin" | awk '/NEEDED/ {print $2}'); do
  path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ {print $NF; exit}')
  pkg=$(owner "$path")
  if [[ -n "$pkg" ]] && grep -qxF "$pkg" <<<"$dep_names"; then ok "$lib from $pkg, a dependency"; else not_ok "$lib (package '${pkg:-?}') is not in Depends"; fi
done
check "stripped (debug info is not shipped)" bash -c "! file '$bin' | grep -q 'not stripped'"
n_src=$(cd "$src/profiles" && find . -type f | wc -l)
n_deb=$(cd "$work/root/usr/share/cpis-gateway/profiles" && find . -type f | wc -l)
if [[ "$n_src" == "$n_deb" ]]; then ok "all $n_deb profile files in usr/share/cpis-gateway/profiles"; else not_ok "profiles: $n_src in the tree, $n_deb packaged"; fi
check "unit at usr/lib/systemd/system" test -s "$work/root/usr/lib/systemd/system/cpis-gateway.service"
check "unit runs /usr/bin/cpis-gateway with /etc/cpis-gateway/config.json" \
  grep -qxF "ExecStart=/usr/bin/cpis-gateway serve --config /etc/cpis-gateway/config.json" "$work/root/usr/lib/systemd/system/cpis-gateway.service"
check "config at etc/cpis-gateway/config.json" test -s "$work/root/etc/cpis-gateway/config.json"
check "config is a conffile" grep -qxF /etc/cpis-gateway/config.json "$work/control/conffiles"
check "docs with OPERATIONS.md and copyright" test -s "$work/root/usr/share/doc/cpis-gateway/OPERATIONS.md" -a -s "$work/root/usr/share/doc/cpis-gateway/copyright"
for s in postinst prerm postrm; do
  check "$s is executable and passes sh -n" bash -c "test -x '$work/control/$s' && sh -n '$work/control/$s'"
done
check "no private key or certificate packaged" bash -c "! find '$work/root' -name '*.key' -o -name '*.pem' | grep -q ."
check "nothing under /usr/local or the build tree" bash -c "! find '$work/root' -path '*/usr/local*' | grep -q . && ! grep -rqs '$build' '$work/root/etc' '$work/root/usr/lib'"

# lintian: no errors, and the only two tags it raises for this package are
# suppressed here, each for a reason:
#   no-manual-page: the binary documents itself with --help on every command;
#   no-changelog: a CPack package has no Debian changelog (what each version
#   does is in README.md, shipped in the docs folder).
suppress=no-manual-page,no-changelog
if lintian --fail-on error,warning --suppress-tags "$suppress" --tag-display-limit 0 "$deb" >"$work/lintian.log" 2>&1; then
  ok "lintian: no errors or warnings"
else
  not_ok "lintian found errors or warnings"
fi
sed 's/^/# lintian: /' "$work/lintian.log"
finish
