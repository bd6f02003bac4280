#!/usr/bin/env bash
# Installs what InferBridge needs to build, run and test on Debian 12 (bookworm).
# Idempotent: installs only what is missing. Run as root (or with sudo available).
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also the test dependencies (Python cryptography, Node.js,
#                                    Prometheus: the `prometheus` server and `promtool`)
set -euo pipefail

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    *) echo "usage: $0 [--test]" >&2; exit 2 ;;
  esac
done

packages=(
  g++ cmake pkg-config ninja-build
  libcaf-dev libboost1.81-dev rapidjson-dev liblmdb-dev lmdb-utils prometheus-cpp-dev
  libssl-dev ca-certificates libgoogle-perftools-dev
)
if [ "$want_test" = 1 ]; then
  # prometheus: tests/e2e/prometheus.test.mjs starts its own server on a loopback port and runs
  # promtool; the system service the package would start is kept off (see below).
  packages+=(libgtest-dev libgmock-dev python3 python3-cryptography clang-format prometheus)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js and npm drive the end-to-end tests; a machine may already have them from elsewhere
# (then Debian's packages would conflict), so only install them when the commands are absent.
if [ "$want_test" = 1 ]; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    sudo="sudo"
  fi
  echo "installing: ${missing[*]}"
  # Debian's prometheus package starts a system-wide server on :9090. The tests start their own
  # on ephemeral ports, so forbid service starts during the install (policy-rc.d, exit 101) unless
  # the machine already has a policy, and stop and disable the service we just installed. A
  # Prometheus that was installed before is left as it is.
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
fi
