#!/usr/bin/env bash
# Fresh Debian 12 machine -> every test run: installs packages, builds the
# daemon, the tests and the Go harnesses, and runs ctest (unit, root,
# conformance and end-to-end tests). Needs root: tests mount overlays and
# start their own containerd. Ends with ctest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "test.sh: run as root (tests mount overlays and run containerd)" >&2
  exit 1
fi
start=$(date +%s)
bash scripts/setup.sh
bash scripts/build.sh
echo "test.sh: build took $(( $(date +%s) - start ))s"
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 1500 "$@"
