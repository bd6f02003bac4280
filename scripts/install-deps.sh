#!/usr/bin/env bash
# Installs what InferBridge needs to build, run and test on Debian 12 (bookworm).
# Idempotent: installs only what is missing. Run as root (or with sudo available).
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also the test dependencies (Python cryptography, Node.js)
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
  packages+=(libgtest-dev libgmock-dev python3 python3-cryptography clang-format)
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
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
