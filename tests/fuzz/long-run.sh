#!/usr/bin/env bash
# The long fuzz runs recorded in docs/FUZZING.md: every target built by
# tests/fuzz/run.sh, one after another at the lowest CPU priority, for
# RUNS executions each (default 1 000 000), from the corpus run.sh left in
# build-fuzz/corpus/<target>. Each run's output is kept in
# build-fuzz/long-runs/<target>.log; the last lines are libFuzzer's final
# stats (executions, exec/s, coverage). Run tests/fuzz/run.sh first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
runs="${RUNS:-1000000}"
mkdir -p build-fuzz/long-runs build-fuzz/artifacts
for bin in build-fuzz/bin/*_fuzz; do
  name="$(basename "$bin")"
  [[ -n "${ONLY:-}" && "$name" != "$ONLY" ]] && continue
  mkdir -p "build-fuzz/corpus/$name"
  echo "fuzz (long): $name for $runs runs"
  start=$(date +%s)
  nice -n 19 "$bin" -runs="$runs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/artifacts/$name-" "build-fuzz/corpus/$name" > "build-fuzz/long-runs/$name.log" 2>&1
  echo "  $(( $(date +%s) - start )) s; $(grep -E '^#[0-9]+.*(DONE|cov)' "build-fuzz/long-runs/$name.log" | tail -n 1)"
done
