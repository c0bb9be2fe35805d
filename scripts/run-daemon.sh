#!/usr/bin/env bash
# Fresh Debian 12 machine -> a running snapshotter daemon:
# installs packages, builds, and runs containerd-cpp-overlay-grpc in the
# foreground on the default root and socket (override with flags, e.g.
# scripts/run-daemon.sh --root /tmp/root --address /tmp/cpp-overlay.sock).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --build-only
bash scripts/build.sh containerd-cpp-overlay-grpc
exec ./"${BUILD_DIR:-build}"/server/containerd-cpp-overlay-grpc "$@"
