#!/usr/bin/env bash
# Fresh Debian 12 -> every test built and run (unit, integration over real
# TLS sockets, kill -9 durability, FHIR JSON-schema validation with the npm
# validator). Benchmarks are built but not run; see tests/bench/README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGW_BUILD_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)"
(cd build && ctest --output-on-failure -j2 --timeout 600)
# libFuzzer targets (HL7 parser, MLLP framer, adapters), clang + ASan/UBSan, bounded time each.
FUZZ_SECONDS="${FUZZ_SECONDS:-20}" tests/fuzz/run.sh
