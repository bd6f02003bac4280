#!/usr/bin/env bash
# Builds the actor and HTTP unit tests with ThreadSanitizer (build-tsan/) and runs them.
# Not part of scripts/test.sh or CI (a TSan build is slow); run it after touching threads.
# Extra arguments go to both test binaries, e.g. --gtest_filter='SupervisorTest.*'.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIB_WERROR=ON \
  -DIB_SANITIZE_THREAD=ON >/dev/null
cmake --build build-tsan -j "$(nproc)" --target unit_actors unit_http

# tests/tsan.supp silences only reports inside the uninstrumented libcaf_core (Debian's build).
export TSAN_OPTIONS="suppressions=$root/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
build-tsan/tests/unit_actors "$@"
build-tsan/tests/unit_http "$@"
echo "== TSan: unit_actors and unit_http ran clean"
