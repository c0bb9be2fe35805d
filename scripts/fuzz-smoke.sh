#!/usr/bin/env bash
# Builds the libFuzzer target (clang, ASan+UBSan) and runs it for a short
# while from a copy of the checked-in corpus. Prints libFuzzer's progress and
# ends with "fuzz: N executions in S s, N crashes". Needs root (the fuzzed
# snapshotter chowns).
#
# usage: scripts/fuzz-smoke.sh [--seconds N] [--build-dir DIR] [--no-build]
#                              [--fuzzer BINARY] [--merge-into DIR]
#   --merge-into DIR   afterwards, merge what the run found into DIR (e.g.
#                      tests/fuzz/corpus/snapshots to grow the checked-in corpus)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
seconds=60
build_dir=${FUZZ_BUILD_DIR:-build-fuzz}
build=1
fuzzer=""
merge_into=""
while (($#)); do
  case "$1" in
    --seconds) seconds=${2:?}; shift 2 ;;
    --build-dir) build_dir=${2:?}; shift 2 ;;
    --no-build) build=0; shift ;;
    --fuzzer) fuzzer=${2:?}; shift 2 ;;
    --merge-into) merge_into=${2:?}; shift 2 ;;
    *) echo "fuzz-smoke.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [[ $(id -u) -ne 0 ]]; then
  echo "fuzz-smoke.sh: run as root (the fuzzed snapshotter chowns)" >&2
  exit 2
fi

if ((build)); then
  start=$(date +%s)
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++ -DCPP_OVERLAY_FUZZ=ON \
    -DCPP_OVERLAY_SANITIZE=address,undefined ${CMAKE_ARGS:-} >/dev/null
  cmake --build "$build_dir" -j "${JOBS:-$(nproc)}" --target snapshots_fuzzer
  echo "fuzz-smoke.sh: build took $(( $(date +%s) - start ))s"
fi
fuzzer=${fuzzer:-$build_dir/tests/fuzz/snapshots_fuzzer}

work=$(mktemp -d /tmp/cpp-overlay-fuzz-smoke.XXXXXX)
trap 'rm -rf --one-file-system "$work"' EXIT
mkdir -p "$work/corpus" "$work/artifacts"
cp "$repo"/tests/fuzz/corpus/snapshots/* "$work/corpus/" 2>/dev/null || true

set +e
# Leak checking stays off: the uninstrumented gRPC keeps per-process caches
# that LeakSanitizer reports at exit; ASan and UBSan errors still abort.
TMPDIR=$work ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$fuzzer" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" 2>&1 | tee "$work/log"
rc=${PIPESTATUS[0]}
set -e

runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$work/log" | grep -oE '[0-9]+$' || echo 0)
crashes=$(find "$work/artifacts" -type f | wc -l)
if ((crashes)); then
  mkdir -p "$build_dir/fuzz-artifacts"
  cp "$work"/artifacts/* "$build_dir/fuzz-artifacts/"
  echo "fuzz-smoke.sh: crashing inputs copied to $build_dir/fuzz-artifacts/"
fi
if [[ -n $merge_into && $rc -eq 0 ]]; then
  mkdir -p "$merge_into"
  TMPDIR=$work ASAN_OPTIONS=detect_leaks=0 "$fuzzer" -merge=1 "$merge_into" "$work/corpus" >/dev/null 2>&1
  echo "fuzz-smoke.sh: merged into $merge_into ($(ls "$merge_into" | wc -l) inputs)"
fi
echo "fuzz: $runs executions in ${seconds}s, $crashes crashes"
if ((rc != 0 || crashes)); then exit 1; fi
