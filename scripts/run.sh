#!/usr/bin/env bash
# Installs what is missing, builds the gateway (release) and runs it on its embedded defaults:
# listening on 127.0.0.1:8080, LMDB and master.key in ./data. Extra arguments go to inferbridge.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DIB_BUILD_TESTS=OFF >/dev/null
cmake --build build --target inferbridge -j "$(nproc)"
exec ./build/inferbridge "$@"
