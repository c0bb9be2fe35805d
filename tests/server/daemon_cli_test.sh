#!/usr/bin/env bash
# The daemon binary as an operator meets it: subcommand help, version,
# config errors (one line naming file, line and key; exit 2), the original
# `--root X --address Y` form, a config file with flags winning over it,
# JSON log lines, sd_notify READY/STOPPING, the socket's group and mode,
# `health` (0 serving, 1 not), `info`, and a metrics scrape that passes
# `promtool check metrics` with counters moving after RPCs.
#
#   daemon_cli_test.sh <containerd-cpp-overlay-grpc binary>
#
# Needs root (the daemon chowns and probes overlayfs), python3 and promtool.
set -euo pipefail

BIN=${1:?usage: daemon_cli_test.sh <containerd-cpp-overlay-grpc binary>}
BIN=$(readlink -f "$BIN")
TMP=$(mktemp -d /tmp/cpp-overlay-cli-XXXXXX)
DAEMON_PID=
NOTIFY_PID=
passed=0
failed=0

cleanup() {
  [[ -n $DAEMON_PID ]] && kill -KILL "$DAEMON_PID" 2>/dev/null || true
  [[ -n $NOTIFY_PID ]] && kill "$NOTIFY_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }
check() { # check "description" command...
  local what=$1; shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}

[[ $(id -u) -eq 0 ]] || { echo "daemon_cli_test.sh: needs root" >&2; exit 1; }
command -v python3 >/dev/null || { echo "daemon_cli_test.sh: needs python3" >&2; exit 1; }
command -v promtool >/dev/null || {
  echo "daemon_cli_test.sh: needs promtool (apt-get install prometheus; scripts/setup.sh does)" >&2
  exit 1
}

# --- help and version -------------------------------------------------------
for sub in serve health info fsck version; do
  check "$sub --help exits 0" "$BIN" "$sub" --help >"$TMP/help.txt"
done
"$BIN" --help >"$TMP/help.txt"
for sub in serve health info fsck version; do
  check "top-level help lists $sub" grep -qE "^  $sub " "$TMP/help.txt"
done
"$BIN" serve --help >"$TMP/serve-help.txt"
for flag in --config --address --root --log-level --log-format --socket-group --socket-mode \
  --metrics-address --mount-option --mount-options --upperdir-label --reclaim-entries-per-second \
  --health-probe-interval --shutdown-grace; do
  check "serve --help documents $flag" grep -q -- "$flag" "$TMP/serve-help.txt"
done
check "version prints the version" bash -c "'$BIN' version | grep -qE '^containerd-cpp-overlay-grpc [0-9]+\.[0-9]+\.[0-9]+'"
check "--version still works" bash -c "'$BIN' --version | grep -q '^containerd-cpp-overlay-grpc '"

# --- configuration errors: exit 2, one line naming file, line and key --------
expect_config_error() { # name, file text, expected stderr substring
  local name=$1 text=$2 want=$3 rc=0
  printf '%s' "$text" >"$TMP/$name.toml"
  "$BIN" serve --config "$TMP/$name.toml" --root "$TMP/never" --address "$TMP/never.sock" \
    >"$TMP/out.txt" 2>"$TMP/err.txt" || rc=$?
  if [[ $rc -eq 2 && $(wc -l <"$TMP/err.txt") -eq 1 ]] && grep -qF -- "$want" "$TMP/err.txt"; then
    ok "config error $name: $(cat "$TMP/err.txt")"
  else
    fail "config error $name: rc=$rc, stderr: $(cat "$TMP/err.txt")"
  fi
  [[ ! -e $TMP/never ]] || fail "config error $name: the daemon touched its root"
}
expect_config_error unknown_key $'root = "/r"\n\nadress = "/x.sock"\n' "unknown_key.toml:3: unknown key \"adress\""
expect_config_error bad_value $'# c\nlog_level = "loud"\n' "bad_value.toml:2: log_level: \"loud\" is not one of"
expect_config_error wrong_type $'upperdir_label = "yes"\n' "wrong_type.toml:1: upperdir_label: must be true or false"
expect_config_error syntax $'root = "/r\n' "syntax.toml:1: "
rc=0
"$BIN" serve --config "$TMP/missing.toml" --root "$TMP/never" >/dev/null 2>"$TMP/err.txt" || rc=$?
check "an explicit missing config file is an error (exit 2)" \
  bash -c "[[ $rc -eq 2 ]] && grep -q 'missing.toml does not exist' '$TMP/err.txt'"
rc=0
"$BIN" serve --config "$TMP" --root "$TMP/never" --address "$TMP/never.sock" >/dev/null 2>"$TMP/err.txt" || rc=$?
check "a config path that is a directory is an error, not an empty file (exit 2)" \
  bash -c "[[ $rc -eq 2 ]] && grep -q 'is not a regular file' '$TMP/err.txt'"
rc=0
"$BIN" serve --root "$TMP/never" --address "$TMP/never.sock" --socket-group no-such-group-here \
  >/dev/null 2>"$TMP/err.txt" || rc=$?
check "a socket group that does not exist is a configuration error (exit 2)" \
  bash -c "[[ $rc -eq 2 ]] && grep -q 'no such group' '$TMP/err.txt'"
rc=0
"$BIN" serve --no-such-flag >/dev/null 2>"$TMP/err.txt" || rc=$?
check "an unknown flag is one line with what to do (exit 2)" \
  bash -c "[[ $rc -eq 2 && \$(wc -l <'$TMP/err.txt') -eq 1 ]] && grep -q -- '--no-such-flag.*--help' '$TMP/err.txt'"
rc=0
"$BIN" serve --root relative/root --address "$TMP/never.sock" >/dev/null 2>"$TMP/err.txt" || rc=$?
check "a bad flag value is an error naming the key (exit 2)" \
  bash -c "[[ $rc -eq 2 ]] && grep -q 'root: \"relative/root\" must be an absolute path' '$TMP/err.txt'"

rc=0
"$BIN" serve --root "$TMP/never-root" --address "$TMP/never.sock" \
  --reclaim-entries-per-second 99999999999999999999 >/dev/null 2>"$TMP/err.txt" || rc=$?
check "a number too large for a flag is an error, not clamped (exit 2)" \
  bash -c "[[ $rc -eq 2 ]] && grep -q 'is not a whole number of entries per second' '$TMP/err.txt'"
for sub in health info; do
  rc=0
  "$BIN" "$sub" --address "$TMP/never.sock" --timeout -1s >/dev/null 2>"$TMP/err.txt" || rc=$?
  check "$sub --timeout -1s is a usage error (exit 2)" \
    bash -c "[[ $rc -eq 2 ]] && grep -q 'is not a positive duration' '$TMP/err.txt'"
done

wait_health() { # address, wanted exit status
  for _ in $(seq 100); do
    local rc=0
    "$BIN" health --address "$1" >"$TMP/health.txt" 2>&1 || rc=$?
    [[ $rc -eq $2 ]] && return 0
    sleep 0.1
  done
  return 1
}

stop_daemon() {
  kill -TERM "$DAEMON_PID"
  local rc=0
  wait "$DAEMON_PID" || rc=$?
  DAEMON_PID=
  return $rc
}

# --- the original form: --root and --address only ---------------------------
"$BIN" --root "$TMP/plain-root" --address "$TMP/plain.sock" >"$TMP/plain.log" 2>&1 &
DAEMON_PID=$!
check "the original form serves (health exits 0)" wait_health "$TMP/plain.sock" 0
check "health prints one SERVING line" bash -c "[[ \$(wc -l <'$TMP/health.txt') -eq 1 ]] && grep -q '^SERVING: ' '$TMP/health.txt'"
kill -HUP "$DAEMON_PID"
for _ in $(seq 50); do grep -q 'no configuration to reload' "$TMP/plain.log" && break; sleep 0.1; done
check "SIGHUP is logged and ignored" grep -q 'received Hangup: there is no configuration to reload; ignored' "$TMP/plain.log"
check "after SIGHUP the daemon still serves" wait_health "$TMP/plain.sock" 0
check "the original form stops cleanly on SIGTERM" stop_daemon
check "health exits 1 once the daemon is gone" wait_health "$TMP/plain.sock" 1
check "the text log has start, config, serving and stop lines" bash -c "
  grep -q 'starting: root=$TMP/plain-root address=$TMP/plain.sock' '$TMP/plain.log' &&
  grep -q 'configuration from defaults and flags: ' '$TMP/plain.log' &&
  grep -q 'serving on $TMP/plain.sock' '$TMP/plain.log' &&
  grep -q 'stopped' '$TMP/plain.log'"

# --- fsck's exit codes, on the stopped daemon's root ------------------------
fsck_rc() {  # expected-rc fsck-args...: runs fsck, output to $TMP/fsck.txt
  local want=$1 rc=0
  shift
  "$BIN" fsck "$@" >"$TMP/fsck.txt" 2>&1 || rc=$?
  [[ $rc -eq $want ]] || { echo "fsck $*: exit $rc, want $want"; cat "$TMP/fsck.txt"; return 1; }
}
check "fsck of the clean stopped root exits 0" fsck_rc 0 --root "$TMP/plain-root"
mkdir "$TMP/plain-root/snapshots/987654"
check "fsck reports a stray directory and exits 1" \
  bash -c "$(declare -f fsck_rc); BIN='$BIN' TMP='$TMP' fsck_rc 1 --root '$TMP/plain-root' &&
    grep -q 'stray-directory' '$TMP/fsck.txt'"
check "fsck --repair removes it and exits 2" fsck_rc 2 --root "$TMP/plain-root" --repair
check "fsck after the repair exits 0" fsck_rc 0 --root "$TMP/plain-root"
check "fsck with an unknown flag exits 3, never 2 (repaired)" fsck_rc 3 --root "$TMP/plain-root" --bogus
check "fsck with a relative root exits 3" fsck_rc 3 --root relative/root
check "health with an unknown flag exits 2" bash -c "'$BIN' health --bogus >/dev/null 2>&1; [[ \$? == 2 ]]"
check "info with a bad --timeout exits 2" bash -c "'$BIN' info --timeout soon >/dev/null 2>&1; [[ \$? == 2 ]]"

# --- config file + flags, JSON logs, sd_notify, metrics ---------------------
getent group daemon >/dev/null || groupadd --system daemon
cat >"$TMP/config.toml" <<EOF
address = "$TMP/never-used.sock"
root = "$TMP/root"
log_format = "text"
log_level = "info"
socket_group = "daemon"
socket_mode = 0o600
metrics_address = "127.0.0.1:0"
mount_options = ["volatile"]
health_probe_interval = "200ms"
EOF
python3 - "$TMP/notify.sock" "$TMP/notify.txt" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(120)
with open(sys.argv[2], "a") as out:
    while True:
        msg = s.recv(4096).decode()
        out.write(msg.replace("\n", " ") + "\n")
        out.flush()
        if "STOPPING=1" in msg:
            break
EOF
NOTIFY_PID=$!
for _ in $(seq 50); do [[ -S $TMP/notify.sock ]] && break; sleep 0.1; done

# Flags win over the file: address and log format.
NOTIFY_SOCKET=$TMP/notify.sock "$BIN" --config "$TMP/config.toml" --address "$TMP/d.sock" \
  --log-format json >"$TMP/daemon.log" 2>&1 &
DAEMON_PID=$!
check "the configured daemon serves on the flag's address" wait_health "$TMP/d.sock" 0
check "sd_notify READY=1 was sent" grep -q "READY=1" "$TMP/notify.txt"
check "socket mode comes from the file (0600)" bash -c "[[ \$(stat -c %a '$TMP/d.sock') == 600 ]]"
check "socket group comes from the file (daemon)" bash -c "[[ \$(stat -c %G '$TMP/d.sock') == daemon ]]"
check "health of the snapshots service exits 0" \
  "$BIN" health --address "$TMP/d.sock" --service containerd.services.snapshots.v1.Snapshots
printf 'address = "%s"\n' "$TMP/d.sock" >"$TMP/health-config.toml"
check "health reads the address from --config (the live daemon's: exit 0)" \
  "$BIN" health --config "$TMP/health-config.toml" --timeout 5s
check "health reads the address from --config (the file's unused one: exit 1, named)" \
  bash -c "'$BIN' health --config '$TMP/config.toml' --timeout 1s >'$TMP/health.out' 2>&1; \
    [[ \$? == 1 ]] && grep -qF '$TMP/never-used.sock' '$TMP/health.out'"

URL=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)["msg"]
    if m.startswith("metrics at "):
        print(m[len("metrics at "):])
' "$TMP/daemon.log")
check "the log says where metrics are" bash -c "[[ '$URL' == http://127.0.0.1:*/metrics ]]"
scrape() { python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$URL"; }
list_ok() { grep '^grpc_server_handled_total{.*grpc_method="List",grpc_code="OK"}' "$1" | awk '{print $2}'; }
scrape >"$TMP/scrape1.txt"
check "the first scrape passes promtool check metrics" promtool check metrics <"$TMP/scrape1.txt"

"$BIN" info --address "$TMP/d.sock" --root "$TMP/root" >"$TMP/info.txt"
check "info exits 0 and reports the root" grep -q "^root:        $TMP/root\$" "$TMP/info.txt"
check "info reports the daemon as SERVING" grep -q "^address:     $TMP/d.sock (SERVING)\$" "$TMP/info.txt"
check "info counts snapshots by kind" grep -q "^snapshots:   0 (committed 0, active 0, view 0)\$" "$TMP/info.txt"
check "info reports disk used, database and filesystem" bash -c "
  grep -q '^disk used:   ' '$TMP/info.txt' && grep -q '^database:    $TMP/root/metadata: ' '$TMP/info.txt' &&
  grep -q '^filesystem:  ' '$TMP/info.txt'"

scrape >"$TMP/scrape2.txt"
check "the second scrape passes promtool check metrics" promtool check metrics <"$TMP/scrape2.txt"
before=$(list_ok "$TMP/scrape1.txt")
after=$(list_ok "$TMP/scrape2.txt")
check "List's OK counter moved with info's List call ($before -> $after)" \
  bash -c "[[ -n '$before' && -n '$after' ]] && (( $after == $before + 1 ))"
check "process metrics are exported" grep -q '^process_open_fds ' "$TMP/scrape2.txt"
check "info with the daemon's address but another root exits 1 and says to pass --root" \
  bash -c "'$BIN' info --address '$TMP/d.sock' --root '$TMP/not-the-root' >'$TMP/info-other.txt' 2>&1;
    [[ \$? == 1 ]] && grep -q 'pass the daemon.s --root' '$TMP/info-other.txt'"

check "the configured daemon stops cleanly on SIGTERM" stop_daemon
for _ in $(seq 50); do grep -q "STOPPING=1" "$TMP/notify.txt" && break; sleep 0.1; done
check "sd_notify STOPPING=1 was sent" grep -q "STOPPING=1" "$TMP/notify.txt"
check "every log line is a JSON object" python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines, "no log lines"
for line in lines:
    obj = json.loads(line)
    assert set(obj) == {"time", "level", "logger", "msg"}, obj
' "$TMP/daemon.log"
check "the JSON log has the configuration line with the file's values" python3 -c '
import json, sys
msgs = [json.loads(l)["msg"] for l in open(sys.argv[1])]
config = [m for m in msgs if m.startswith("configuration from file ")]
assert config and "mount_options=[volatile]" in config[0] and "log_format=json" in config[0], config
assert "stopped" in msgs, msgs
' "$TMP/daemon.log"
check "no log line for successful calls at info level" bash -c "! grep -q '\"msg\":\"List ' '$TMP/daemon.log'"

echo "daemon_cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
