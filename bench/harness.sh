#!/usr/bin/env bash
# The load-testing harness (issue 17) in one command: builds the Release binaries (the gateway,
# the mock provider and the streams' client bench/stream_client) into build-bench/, starts the
# mock provider, nginx and the gateway on loopback, measures every scenario side by side and
# writes bench/results/<stamp>/{results.md,results.json,*.png}.
#   bench/harness.sh [--quick] [--duration S] [--other-url URL --other-header 'K: V'
#                    --other-body FILE] [--out DIR] [--build-dir DIR] [--no-build] ...
# Options: bench/README.md ("harness") or bench/harness.sh --help.
# Needs wrk, nginx, gnuplot and Node.js: scripts/install-deps.sh --bench.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "node is required: scripts/install-deps.sh --bench" >&2; exit 3; }
exec node bench/harness.mjs "$@"
