#!/usr/bin/env bash
# Installs what is missing, builds everything with warnings as errors and ASan+UBSan, and runs
# the unit tests (GoogleTest) and the end-to-end tests (real binaries, real clients, loopback only).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/install-deps.sh --test

echo "== static checks"
scripts/check.sh

echo "== build (build-test: -Werror, ASan+UBSan)"
cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIB_WERROR=ON \
  -DIB_SANITIZE=ON >/dev/null
cmake --build build-test -j "$(nproc)"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "== unit tests"
(cd build-test && ctest --output-on-failure -j "$(nproc)")

# libFuzzer targets of fuzz/ (clang, ASan+UBSan, build-fuzz): 10 s each, seven targets, from the
# seed corpora; fails on any crash (the input is kept under build-fuzz/artifacts/).
echo "== fuzz (short run)"
scripts/fuzz.sh 10

echo "== end-to-end tests"
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
IB_BUILD_DIR="$root/build-test" node --test tests/e2e/*.test.mjs
echo "== all tests passed"
