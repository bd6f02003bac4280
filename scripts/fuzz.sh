#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang, ASan+UBSan, in build-fuzz) and runs each for
# SECONDS_PER_TARGET seconds (default 10) from its seed corpus (fuzz/corpus/<target>/), printing
# libFuzzer's exec counts and coverage (`cov:`, `ft:`, -print_final_stats=1). Fails if any target
# crashes (an ASan/UBSan report, an invariant, a leak, a timeout); the input is kept under
# build-fuzz/artifacts/<target>/ and reproduces with `build-fuzz/fuzz/fuzz_<target> <file>`.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# Environment: IB_FUZZ_BUILD_DIR (default build-fuzz), IB_FUZZ_JOBS (build jobs, default nproc).
# The seed corpora are not modified: each run works in a copy under the build directory (kept
# between runs, so that local runs build on one another).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
shift || true
build=${IB_FUZZ_BUILD_DIR:-build-fuzz}
jobs=${IB_FUZZ_JOBS:-$(nproc)}
all=(http_request chat_request anthropic_request anthropic_stream sse config_load request_record)
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=("${all[@]}")
fi

echo "== fuzz: build ($build: clang, libFuzzer, ASan+UBSan)"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DIB_FUZZ=ON -DIB_SANITIZE=ON -DIB_BUILD_TESTS=OFF -DIB_WERROR=OFF >/dev/null
cmake --build "$build" --target fuzz -j "$jobs"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
summary=()
for t in "${targets[@]}"; do
  bin="$build/fuzz/fuzz_$t"
  seeds="fuzz/corpus/$t"
  work="$build/corpus/$t"
  artifacts="$build/artifacts/$t"
  log="$build/fuzz_$t.log"
  mkdir -p "$work" "$artifacts"
  dict=()
  if [ -f "fuzz/dict/$t.dict" ]; then
    dict=(-dict="fuzz/dict/$t.dict")
  fi
  echo "== fuzz: $t (${secs}s)"
  rc=0
  "$bin" "$work" "$seeds" "${dict[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || rc=$?
  # The last status line (`#N DONE cov: ... ft: ... corp: ...`) and the final stats.
  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$log" | tail -2 || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
    "$log" || true
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  cov=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+).*/cov \1 ft \2/' \
    || true)
  if [ "$rc" -ne 0 ]; then
    echo "!! fuzz: $t failed (exit $rc); log: $log"
    grep -E 'ERROR: |runtime error|invariant violated|Test unit written|SUMMARY' "$log" | head -20
    failed+=("$t")
    summary+=("$t: FAILED")
  else
    summary+=("$t: ${execs:-?} execs, ${cov:-cov ?}")
  fi
done

echo "== fuzz: summary"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "== fuzz: crashes in: ${failed[*]}"
  exit 1
fi
echo "== fuzz: no crash"
