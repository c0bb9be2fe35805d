#!/usr/bin/env bash
# Sanitizer stages of CI: builds only the targets each stage needs, in its
# own build directory, and runs
#   asan  (ASan + UBSan): the unit tests, the failure-injection crash test and
#         containerd's conformance suite against the instrumented daemon
#   tsan  (TSan): the concurrency tests: concurrent store writers,
#         concurrent Prepares and Commits in-process, the shared filesystem
#         sync and the reclaimer (not the random-kill crash test: see
#         below). Debian's libraries
#         are not instrumented: tests/sanitizers/tsan_absl_mutex.cc is
#         preloaded so TSan sees absl::Mutex, and tests/sanitizers/tsan.supp
#         names what stays invisible inside RocksDB, gRPC and Abseil.
# Any sanitizer report fails the stage. Needs root (tests mount and chown).
#
# usage: scripts/test-sanitizers.sh [asan|tsan|all]   (default all)
# env:   JOBS (default nproc), ASAN_BUILD_DIR (build-asan), TSAN_BUILD_DIR (build-tsan)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
stage=${1:-all}
jobs=${JOBS:-$(nproc)}
if [[ $(id -u) -ne 0 ]]; then
  echo "test-sanitizers.sh: run as root (the tests mount overlays and chown)" >&2
  exit 1
fi

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$repo/tests/sanitizers/tsan.supp"
# Leaks are checked in the test binaries; the suppressions name the
# uninstrumented libraries' process-lifetime caches.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
export LSAN_OPTIONS="suppressions=$repo/tests/sanitizers/lsan.supp:print_suppressions=0"

configure_and_build() {  # dir sanitize targets...
  local dir=$1 sanitize=$2
  shift 2
  local start
  start=$(date +%s)
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCPP_OVERLAY_SANITIZE="$sanitize" ${CMAKE_ARGS:-} >/dev/null
  cmake --build "$dir" -j "$jobs" --target "$@"
  echo "test-sanitizers.sh: $sanitize build of $* took $(( $(date +%s) - start ))s"
}

failed=0
run() {  # name seconds command...: a hang fails the step instead of CI
  local name=$1 limit=$2
  shift 2
  echo "test-sanitizers.sh: --- $name"
  if timeout --kill-after=30 "$limit" "$@"; then
    echo "test-sanitizers.sh: $name passed"
  else
    echo "test-sanitizers.sh: $name FAILED" >&2
    failed=$((failed + 1))
  fi
}

# run_requiring PRESENT ABSENT COMMAND...: runs COMMAND, showing its output;
# fails when it fails, when PRESENT (an ERE, or empty for none) is not in its
# output, or when ABSENT is.
run_requiring() {
  local present=$1 absent=$2 out rc
  shift 2
  out=$(mktemp)
  "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  if ((rc == 0)) && [[ -n $present ]] && ! grep -qE "$present" "$out"; then
    echo "test-sanitizers.sh: no test ran: $*" >&2
    rc=1
  fi
  if ((rc == 0)) && grep -qE "$absent" "$out"; then
    echo "test-sanitizers.sh: a test skipped or is disabled, which counts as failed: $*" >&2
    rc=1
  fi
  rm -f "$out"
  return "$rc"
}
export -f run_requiring

# Runs a gtest binary; fails when its filter matched no test, so a renamed
# test cannot turn a stage into an empty pass, and when a test skipped.
gtest_ran_some() {  # command...
  run_requiring '^\[  PASSED  \] [1-9][0-9]* tests?' '^\[  SKIPPED \] [1-9][0-9]* tests?' "$@"
}
export -f gtest_ran_some

# Runs ctest; ctest passes a run in which tests skipped, this fails it.
ctest_none_skipped() {  # ctest arguments...
  run_requiring '' '\(Skipped\)|\(Disabled\)' ctest "$@"
}
export -f ctest_none_skipped

if [[ $stage == asan || $stage == all ]]; then
  dir=${ASAN_BUILD_DIR:-build-asan}
  configure_and_build "$dir" address,undefined \
    metadata_test snapshotter_test server_test containerd-cpp-overlay-grpc crash_points_test
  daemon=$repo/$dir/server/containerd-cpp-overlay-grpc
  run "asan: unit tests" 1800 bash -c "cd '$dir' && ctest_none_skipped -L unit --no-tests=error --output-on-failure --timeout 600"
  run "asan: failure injection" 1200 bash -c \
    "cd '$dir' && CPP_OVERLAY_DAEMON='$daemon' gtest_ran_some ./tests/crash/crash_points_test"
  # The harness wants a clean exit after SIGTERM, so a leak fails it too.
  run "asan: conformance" 1500 \
    bash tests/conformance/run.sh --daemon "$daemon" --build-dir "$repo/$dir/conformance"
fi

if [[ $stage == tsan || $stage == all ]]; then
  dir=${TSAN_BUILD_DIR:-build-tsan}
  configure_and_build "$dir" thread \
    metadata_test server_test snapshotter_test
  # Debian's Abseil is not instrumented: preload the shim that shows TSan
  # absl::Mutex's happens-before edges (tests/sanitizers/tsan_absl_mutex.cc).
  shim=$repo/$dir/libtsan_absl_mutex.so
  g++ -std=c++17 -O1 -g -fPIC -shared -fsanitize=thread \
    -o "$shim" tests/sanitizers/tsan_absl_mutex.cc -ldl
  run "tsan: concurrent store writers" 900 bash -c 'gtest_ran_some "$@"' - env LD_PRELOAD="$shim" \
    "$dir/tests/metadata/metadata_test" --gtest_filter='*Concurrent*'
  run "tsan: concurrent Prepares and Commits" 900 bash -c 'gtest_ran_some "$@"' - env LD_PRELOAD="$shim" \
    "$dir/tests/server/server_test" --gtest_filter='*Concurrent*'
  run "tsan: shared filesystem syncs and the reclaimer" 900 bash -c 'gtest_ran_some "$@"' - env LD_PRELOAD="$shim" \
    "$dir/tests/snapshotter/snapshotter_test" --gtest_filter='SharedSync*:*Reclaimer*'
  # The random-kill crash test is not run under TSan: Debian's RocksDB is
  # linked statically and uninstrumented, and TSan reports races inside its
  # background threads (no symbols to suppress by) at random start-ups.
fi

if ((failed)); then
  echo "test-sanitizers.sh: $failed stage(s) failed" >&2
  exit 1
fi
echo "test-sanitizers.sh: all sanitizer stages passed"
