# Sourced by the deploy tests: one line per check, and the closing
# "N passed, M failed" line; the script exits non-zero when any check failed.
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "FAIL - $*"; }

# check DESCRIPTION COMMAND...: the command's success is the check.
check() {
  local what="$1"
  shift
  if "$@" >/dev/null 2>&1; then ok "$what"; else not_ok "$what"; fi
}

finish() {
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 && $passed -gt 0 ]]
}

# Waits (up to $2 seconds) for a line matching the regex $3 in file $1; prints the first capture group.
wait_for_line() {
  local file="$1" secs="$2" re="$3" i
  for ((i = 0; i < secs * 10; i++)); do
    if [[ -f "$file" ]] && [[ "$(cat "$file")" =~ $re ]]; then
      echo "${BASH_REMATCH[1]}"
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# Sets $deb to the package deb_build.sh made under build dir $1, or ends the test.
require_deb() {
  deb=$(ls "$1"/deploy-test/deb/cpis-gateway_*_amd64.deb 2>/dev/null | head -1)
  if [[ -z "$deb" ]]; then
    not_ok "no package from deb_build (run the deploy_deb_build test first)"
    finish
    exit 1
  fi
}
