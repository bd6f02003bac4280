#!/usr/bin/env bash
# Installs what InferBridge needs to build, run and test on Debian 12 (bookworm).
# Idempotent: installs only what is missing. Run as root (or with sudo available).
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also the test dependencies (Python cryptography, Node.js,
#                                    Prometheus: the `prometheus` server and `promtool`,
#                                    PostgreSQL 15: `initdb`, `pg_ctl`, `postgres`, `psql`,
#                                    clang 14 and its libFuzzer/sanitizer runtimes for fuzz/,
#                                    and the load-testing tools of --bench, which the harness's
#                                    smoke test runs)
#   scripts/install-deps.sh --bench  the load-testing harness (bench/harness.sh): wrk, nginx-light,
#                                    gnuplot-nox, linux-perf, strace, openssl, Node.js
set -euo pipefail

want_test=0
want_bench=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1; want_bench=1 ;;
    --bench) want_bench=1 ;;
    *) echo "usage: $0 [--test] [--bench]" >&2; exit 2 ;;
  esac
done

packages=(
  g++ cmake pkg-config ninja-build
  libcaf-dev libboost1.81-dev rapidjson-dev liblmdb-dev lmdb-utils prometheus-cpp-dev
  libssl-dev ca-certificates libjemalloc-dev libpq-dev
)
if [ "$want_test" = 1 ]; then
  # prometheus: tests/e2e/prometheus.test.mjs starts its own server on a loopback port and runs
  # promtool; the system service the package would start is kept off (see below).
  # postgresql-15: tests/e2e/lib/pg.mjs runs initdb into a temp dir and starts its own cluster on
  # a loopback port; the package's cluster "15 main" (port 5432) is kept off the same way.
  # clang + libclang-rt-14-dev: scripts/fuzz.sh builds the libFuzzer targets of fuzz/ with
  # -fsanitize=fuzzer,address,undefined (the runtimes are only a Recommends of clang-14).
  packages+=(libgtest-dev libgmock-dev python3 python3-cryptography clang-format prometheus
             postgresql-15 clang libclang-rt-14-dev)
fi

if [ "$want_bench" = 1 ]; then
  # bench/harness.sh: wrk drives the non-streamed rows, nginx-light is the reference proxy hop
  # (the harness starts its own on a loopback port; the package's service is kept off below),
  # gnuplot-nox draws the PNGs, perf and strace profile the gateway (--profile), openssl makes
  # the certificate of the HTTPS upstream that nginx-light terminates.
  packages+=(wrk nginx-light gnuplot-nox linux-perf strace openssl)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js and npm drive the end-to-end tests (Node alone the harness); a machine may already have
# them from elsewhere (then Debian's packages would conflict), so only install them when the
# commands are absent.
if [ "$want_test" = 1 ] || [ "$want_bench" = 1 ]; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
fi
if [ "$want_test" = 1 ]; then
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    sudo="sudo"
  fi
  echo "installing: ${missing[*]}"
  # Debian's prometheus package starts a system-wide server on :9090, and postgresql-15 creates
  # and starts the cluster "15 main" on :5432. The tests start their own on ephemeral ports, so
  # forbid service starts during the install (policy-rc.d, exit 101) unless the machine already
  # has a policy, and stop and disable the services we just installed. A Prometheus or PostgreSQL
  # that was installed before is left as it is.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    own_policy=1
  fi
  trap 'if [ "$own_policy" = 1 ]; then $sudo rm -f "$policy"; fi' EXIT
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [[ " ${missing[*]} " == *" prometheus "* ]]; then
    if [ -d /run/systemd/system ]; then
      $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/prometheus ]; then
      $sudo /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    fi
  fi
  if [[ " ${missing[*]} " == *" nginx-light "* ]]; then
    # The harness runs nginx itself; the packaged site on :80 stays off.
    if [ -d /run/systemd/system ]; then
      $sudo systemctl disable --now nginx >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/nginx ]; then
      $sudo /etc/init.d/nginx stop >/dev/null 2>&1 || true
    fi
  fi
  if [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
    # The cluster stays in place (removing it is the operator's call) but no longer starts by
    # itself: start.conf "manual" keeps pg_ctlcluster and the init script off it at boot.
    conf=/etc/postgresql/15/main/start.conf
    if [ -f "$conf" ]; then
      echo manual | $sudo tee "$conf" >/dev/null
    fi
    if [ -d /run/systemd/system ]; then
      $sudo systemctl disable --now postgresql >/dev/null 2>&1 || true
      $sudo systemctl stop postgresql@15-main >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/postgresql ]; then
      $sudo /etc/init.d/postgresql stop >/dev/null 2>&1 || true
    fi
    if command -v pg_ctlcluster >/dev/null 2>&1; then
      $sudo pg_ctlcluster 15 main stop >/dev/null 2>&1 || true
    fi
  fi
fi
