#!/usr/bin/env bash
# Tests the deployment files in deploy/: the containerd snippet (valid TOML,
# and the one run.sh builds the e2e containerd config from), the systemd unit
# (`systemd-analyze verify`), the Kubernetes manifests (YAML), and, given a
# build directory, the .deb that `cpack -G DEB` makes there (extracted into a
# temp root with dpkg-deb -x) and `cmake --install` into a temp prefix.
# Prints one PASS/FAIL line per check (SKIP when a tool is missing and cannot
# be installed), then "N passed, N failed"; exits non-zero on any failure.
#
# Usage: deploy_test.sh [--build-dir <cmake build dir>] [--daemon <binary>]
# (--daemon defaults to <build dir>/server/containerd-cpp-overlay-grpc)

set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE_DIR=$(cd "$E2E_DIR/../.." && pwd)
DEPLOY="$SOURCE_DIR/deploy"
UNIT=containerd-cpp-overlay-grpc.service
# shellcheck source=lib.sh
. "$E2E_DIR/lib.sh"

BUILD_DIR=""
DAEMON=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) BUILD_DIR=$(cd "$2" && pwd); shift 2 ;;
    --daemon) DAEMON="$2"; shift 2 ;;
    *) echo "deploy_test.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

TMP=$(mktemp -d /tmp/cpp-overlay-deploy.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

PYTHON=/usr/bin/python3
if [ "$(id -u)" = 0 ]; then
  ensure_packages python3 python3-yaml
fi

# ---- The snippet, the e2e config made from it, the unit's fields, the YAML.
PLACEHOLDER_SOCKET=/tmp/cpp-overlay-e2e.XXXXXX/cpp-overlay.sock
if "$E2E_DIR/run.sh" --print-config >"$TMP/e2e-containerd.toml" 2>"$TMP/print-config.err"; then
  pass "run.sh --print-config generates the e2e containerd config"
else
  fail "run.sh --print-config generates the e2e containerd config"
  detail "$TMP/print-config.err"
fi
# shellcheck disable=SC2016 # the literal assignment in run.sh
check "run.sh reads its config from deploy/containerd-config.toml" \
  grep -qF 'SNIPPET="$SOURCE_DIR/deploy/containerd-config.toml"' "$E2E_DIR/run.sh"

if [ -z "$DAEMON" ] && [ -n "$BUILD_DIR" ]; then
  DAEMON="$BUILD_DIR/server/containerd-cpp-overlay-grpc"
fi
if [ -n "$DAEMON" ] && [ ! -x "$DAEMON" ]; then
  fail "the daemon $DAEMON is built"
  DAEMON=""
fi
if [ -n "$DAEMON" ]; then
  # The serving flags (and their defaults) are those of the serve subcommand.
  { "$DAEMON" serve --help || "$DAEMON" --help; } >"$TMP/daemon-help.txt" 2>&1 || true
fi

if "$PYTHON" -c 'import yaml, tomllib' 2>/dev/null; then
  checks_rc=0
  "$PYTHON" "$E2E_DIR/deploy_checks.py" --deploy-dir "$DEPLOY" \
    --generated-config "$TMP/e2e-containerd.toml" --placeholder-socket "$PLACEHOLDER_SOCKET" \
    ${DAEMON:+--daemon-help "$TMP/daemon-help.txt"} >"$TMP/checks.out" 2>&1 || checks_rc=$?
  cat "$TMP/checks.out"
  checks_failed=$(grep -c '^FAIL: ' "$TMP/checks.out" || true)
  NPASS=$((NPASS + $(grep -c '^PASS: ' "$TMP/checks.out" || true)))
  NFAIL=$((NFAIL + checks_failed))
  # A crash drops the checks after it: count it, so the run cannot pass on
  # the ones before.
  if ! grep -qx 'deploy_checks.py: done' "$TMP/checks.out"; then
    fail "deploy_checks.py ran to its end (it exited with status $checks_rc)"
  fi
else
  fail "python3 with yaml (python3-yaml) and tomllib is available"
fi

# ---- systemd-analyze verify: the ExecStart binary must exist, so the unit is
# verified with ExecStart pointing at the built daemon (or /bin/true).
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$TMP/unit"
  sed "s|/usr/bin/containerd-cpp-overlay-grpc|${DAEMON:-/bin/true}|" "$DEPLOY/$UNIT" >"$TMP/unit/$UNIT"
  check "systemd-analyze verify accepts the unit (ExecStart: ${DAEMON:-/bin/true})" \
    systemd-analyze verify "$TMP/unit/$UNIT"
else
  fail "systemd-analyze is installed (package systemd, in scripts/setup.sh) to verify the unit"
fi

# ---- Packaging.
if [ -z "$BUILD_DIR" ]; then
  echo "SKIP: .deb and cmake --install checks (no --build-dir given)"
  summary
  exit
fi

if [ ! -f "$BUILD_DIR/CPackConfig.cmake" ]; then
  fail "the build dir has CPackConfig.cmake (top-level CMakeLists.txt needs add_subdirectory(deploy))"
  summary
  exit
fi

if cpack -G DEB --config "$BUILD_DIR/CPackConfig.cmake" -B "$TMP/pkg" >"$TMP/cpack.log" 2>&1; then
  pass "cpack -G DEB builds a package"
else
  fail "cpack -G DEB builds a package"
  detail "$TMP/cpack.log"
fi
DEB=$(find "$TMP/pkg" -maxdepth 1 -name '*.deb' | head -n 1)
if [ -n "$DEB" ]; then
  note "package $(basename "$DEB")"
  dpkg-deb -I "$DEB" >"$TMP/deb-info.txt"
  sed -n 's/^ \(Package\|Version\|Architecture\|Depends\|Recommends\):/\1:/p' "$TMP/deb-info.txt" | sed 's/^/---- /'
  deb_is_ours() {
    grep -qx " Package: cpp-overlay" "$TMP/deb-info.txt" &&
      grep -qx " Architecture: $(dpkg --print-architecture)" "$TMP/deb-info.txt"
  }
  check ".deb: package cpp-overlay, architecture $(dpkg --print-architecture)" deb_is_ours
  check ".deb: depends on the shared libraries it links (dpkg-shlibdeps found gRPC)" \
    grep -qE '^ Depends: .*libgrpc' "$TMP/deb-info.txt"
  check ".deb: extracts into a temp root (dpkg-deb -x)" dpkg-deb -x "$DEB" "$TMP/root"
  dpkg-deb -e "$DEB" "$TMP/control"
  R="$TMP/root"
  check ".deb: /usr/bin/containerd-cpp-overlay-grpc is executable and runs" \
    "$R/usr/bin/containerd-cpp-overlay-grpc" --help
  check ".deb: the systemd unit is the shipped one, in /usr/lib/systemd/system" \
    cmp "$DEPLOY/$UNIT" "$R/usr/lib/systemd/system/$UNIT"
  check ".deb: the example containerd config is the shipped snippet" \
    cmp "$DEPLOY/containerd-config.toml" "$R/usr/share/doc/cpp-overlay/examples/containerd-config.toml"
  if [ -f "$DEPLOY/config.toml" ]; then
    check ".deb: the daemon's example config.toml is the shipped one" \
      cmp "$DEPLOY/config.toml" "$R/usr/share/doc/cpp-overlay/examples/config.toml"
  fi
  check ".deb: the Kubernetes manifests and README are included" \
    test -f "$R/usr/share/doc/cpp-overlay/examples/kubernetes/daemonset.yaml" \
    -a -f "$R/usr/share/doc/cpp-overlay/examples/kubernetes/runtimeclass.yaml" \
    -a -f "$R/usr/share/doc/cpp-overlay/README.md" -a -f "$R/usr/share/doc/cpp-overlay/README.deploy.md"
  check ".deb: its README.md is the project's README (deploy/README.md points to it)" \
    cmp "$DEPLOY/../README.md" "$R/usr/share/doc/cpp-overlay/README.md"
  check ".deb: maintainer scripts postinst, prerm, postrm are executable" \
    test -x "$TMP/control/postinst" -a -x "$TMP/control/prerm" -a -x "$TMP/control/postrm"
  if command -v systemd-analyze >/dev/null; then
    mkdir -p "$TMP/unit-deb"
    sed "s|/usr/bin/containerd-cpp-overlay-grpc|$R/usr/bin/containerd-cpp-overlay-grpc|" \
      "$R/usr/lib/systemd/system/$UNIT" >"$TMP/unit-deb/$UNIT"
    check "systemd-analyze verify accepts the unit from the .deb, starting the .deb's binary" \
      systemd-analyze verify "$TMP/unit-deb/$UNIT"
  fi
else
  fail "cpack left a .deb in $TMP/pkg"
fi

if cmake --install "$BUILD_DIR" --prefix "$TMP/prefix" >"$TMP/install.log" 2>&1; then
  pass "cmake --install into a temp prefix"
  check "cmake --install: the daemon is in <prefix>/bin" test -x "$TMP/prefix/bin/containerd-cpp-overlay-grpc"
  check "cmake --install: the unit's ExecStart names <prefix>/bin" \
    grep -q "^ExecStart=$TMP/prefix/bin/containerd-cpp-overlay-grpc$" "$TMP/prefix/lib/systemd/system/$UNIT"
else
  fail "cmake --install into a temp prefix"
  detail "$TMP/install.log"
fi

summary
