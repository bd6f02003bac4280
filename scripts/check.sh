#!/usr/bin/env bash
# Static checks: formatting of our C++ and the purity of core/, config/ and providers/
# (no Boost, CAF, LMDB, libpq or OpenSSL there: they must stay testable without I/O).
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
impure=$(grep -nE '#include <(boost|caf|lmdb|openssl|prometheus|libpq)' core/*.?pp config/*.?pp \
  providers/*.?pp || true)
if [ -n "$impure" ]; then
  echo "core/, config/ and providers/ must stay pure:"
  echo "$impure"
  status=1
fi
if command -v clang-format >/dev/null 2>&1; then
  files=$(git ls-files '*.cpp' '*.hpp' 2>/dev/null || find . -name '*.cpp' -o -name '*.hpp')
  if ! clang-format --dry-run --Werror $files; then
    echo "run: clang-format -i \$(git ls-files '*.cpp' '*.hpp')"
    status=1
  fi
fi
exit $status
