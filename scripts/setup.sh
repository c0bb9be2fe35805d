#!/usr/bin/env bash
# Installs every Debian 12 package cpp-overlay needs to build, test and run.
# Nothing else is downloaded: the build uses only these packages.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "setup.sh: run as root (it installs Debian packages with apt-get)" >&2
  exit 1
fi

# --build-only: just what building and running the daemon needs (for
# scripts/run-daemon.sh); without it, also everything the tests use.
build_only=0
[[ ${1:-} == --build-only ]] && build_only=1

build_packages=(
  cmake ninja-build g++ pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librocksdb-dev libabsl-dev libspdlog-dev libre2-dev libcli11-dev
  libgtest-dev libgmock-dev
  libtomlplusplus-dev libmicrohttpd-dev libsystemd-dev
)
test_packages=(
  # conformance and reference server (containerd's Go sources, GOPATH mode)
  golang-go golang-github-containerd-containerd-dev
  # end-to-end: a real containerd, runc and a static busybox for images
  containerd runc busybox-static python3 python3-yaml
  # packaging and tools used by tests
  dpkg-dev file util-linux e2fsprogs xfsprogs
  # systemd-analyze verifies the systemd unit
  systemd
  # promtool checks the metrics format
  prometheus
  # sanitizer builds and the libFuzzer target
  clang libclang-rt-14-dev
)

packages=("${build_packages[@]}")
((build_only)) || packages+=("${test_packages[@]}")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian's containerd package may start a system containerd; our tests run
# their own isolated one and never touch it.
echo "setup.sh: all packages present"
