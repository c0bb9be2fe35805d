#!/usr/bin/env bash
# Fresh Debian 12 machine -> every test run: installs packages, builds the
# daemon, the tests and the Go harnesses, runs ctest (unit, crash, root,
# conformance, end-to-end and deploy tests), then the ASan+UBSan and TSan
# stages and a short libFuzzer run. Needs root: tests mount
# overlays and start their own containerd.
#
# Ends with one line "N passed, N failed" that counts every ctest test and
# every sanitizer/fuzz stage, also when setup or the build fails (counted as
# one failure each); a test ctest reports as skipped counts as failed, not
# passed. Exits non-zero if anything failed. SKIP_SANITIZERS=1 runs ctest
# only.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "test.sh: run as root (tests mount overlays and run containerd)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
start=$(date +%s)
for step in setup build; do
  if ! bash "scripts/$step.sh"; then
    echo "test.sh: $step FAILED after $(( $(date +%s) - start ))s; no test ran"
    echo "0 passed, 1 failed"
    exit 1
  fi
done
echo "test.sh: build took $(( $(date +%s) - start ))s"

build_dir=${BUILD_DIR:-build}
ctest_log=$(mktemp)
trap 'rm -f "$ctest_log"' EXIT
set +e
(cd "$build_dir" && ctest --output-on-failure --no-tests=error --timeout 1500 "$@") 2>&1 | tee "$ctest_log"
ctest_rc=${PIPESTATUS[0]}
set -e
echo "test.sh: ctest finished after $(( $(date +%s) - start ))s"

# ctest's "N% tests passed, F tests failed out of T". ctest counts a skipped
# test as passed and lists it as "(Skipped)" (a disabled one as
# "(Disabled)", outside T); here both are failures.
summary=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$ctest_log" | tail -1 || true)
total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$summary")
failed=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$summary")
if [[ -z $summary ]]; then
  total=1 failed=1  # ctest itself did not finish
fi
# Skipped tests are in T, disabled ones are not.
skipped=$(grep -cE '^[[:space:]]*[0-9]+ - .* \(Skipped\)$' "$ctest_log" || true)
disabled=$(grep -cE '^[[:space:]]*[0-9]+ - .* \(Disabled\)$' "$ctest_log" || true)
passed=$((total - failed - skipped))
if ((skipped + disabled)); then
  echo "test.sh: $skipped skipped and $disabled disabled test(s), counted as failed"
  failed=$((failed + skipped + disabled))
  ctest_rc=1
fi
if [[ ${SKIP_SANITIZERS:-0} == 1 ]]; then
  echo "$passed passed, $failed failed"
  if ((failed == 0 && ctest_rc == 0)); then exit 0; fi
  exit 1
fi

stage() {  # name command...
  local name=$1 t0
  shift
  t0=$(date +%s)
  echo "test.sh: === $name"
  if "$@"; then
    echo "test.sh: $name passed ($(( $(date +%s) - t0 ))s)"
    passed=$((passed + 1))
  else
    echo "test.sh: $name FAILED ($(( $(date +%s) - t0 ))s)"
    failed=$((failed + 1))
  fi
}
stage "sanitizers: ASan+UBSan" bash scripts/test-sanitizers.sh asan
# TSan runs the in-process concurrency tests only: Debian's Abseil, gRPC and
# RocksDB are uninstrumented, and tests/sanitizers/tsan.supp names what stays
# invisible inside them (see scripts/test-sanitizers.sh).
stage "sanitizers: TSan" bash scripts/test-sanitizers.sh tsan
stage "fuzz smoke" bash scripts/fuzz-smoke.sh --seconds 60

echo "test.sh: everything took $(( $(date +%s) - start ))s"
echo "$passed passed, $failed failed"
((failed == 0 && ctest_rc == 0))
