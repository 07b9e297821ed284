#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz/*_fuzz.cc) with clang, ASan and
# UBSan in build-fuzz/, and runs each for FUZZ_SECONDS (default 20) from a
# seed corpus of the project's fixtures. Exits non-zero on the first crash,
# leak or sanitizer report; the reproducer is left in build-fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seconds="${FUZZ_SECONDS:-20}"
CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGW_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
mkdir -p build-fuzz/artifacts
corpus_for() {
  case "$1" in
    er7_fuzz|mllp_fuzz|systmone_fuzz) echo tests/fixtures/systmone ;;
    camhs_fuzz) echo tests/fixtures/camhs ;;
    cashgum_fuzz) echo tests/fixtures/cashgum ;;
    cpis_upload_fuzz) echo tests/fixtures/cpis ;;
    fhir_request_fuzz) echo tests/fixtures/fhir ;;
    *) echo "" ;;
  esac
}
for bin in build-fuzz/bin/*_fuzz; do
  name="$(basename "$bin")"
  seed="$(corpus_for "$name")"
  work="build-fuzz/corpus/$name"
  mkdir -p "$work"
  # Seeds are copied, never written back into the source tree.
  if [[ "$name" == fhir_request_fuzz ]]; then
    # Its input is a query line, then a JSON body: each FHIR fixture behind a search.
    while IFS= read -r -d '' f; do
      { echo 'identifier=https://fhir.nhs.uk/Id/nhs-number%7C9990237573&_count=5'; cat "$f"; } \
        > "$work/seed-$(printf '%s' "$f" | md5sum | cut -c1-16)"
    done < <(find "$seed" -type f -name '*.json' -print0)
  elif [[ -n "$seed" && -d "$seed" ]]; then
    while IFS= read -r -d '' f; do cp "$f" "$work/seed-$(printf '%s' "$f" | md5sum | cut -c1-16)"; done \
      < <(find "$seed" -type f ! -name '*.json' -print0)
  fi
  echo "fuzz: $name for ${seconds}s"
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/artifacts/$name-" "$work" 2>&1 | tail -n 4
  test "${PIPESTATUS[0]}" -eq 0
done
echo "fuzz: all targets ran without a finding"
