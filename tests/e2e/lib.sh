# shellcheck shell=bash
# Helpers shared by the cpp-overlay end-to-end scripts (sourced, not run).
#
# Reporting: every check prints exactly one "PASS: <what>" or "FAIL: <what>"
# line; `summary` prints "N passed, N failed" and returns non-zero on any
# failure. Details of a failure go to stdout indented under its FAIL line.

NPASS=0
NFAIL=0

pass() {
  echo "PASS: $*"
  NPASS=$((NPASS + 1))
}

fail() {
  echo "FAIL: $*"
  NFAIL=$((NFAIL + 1))
}

# detail FILE|-: indents a failure's evidence under the FAIL line.
detail() {
  if [ "$1" = - ]; then sed -e 's/^/    | /' | tail -n 40; else sed -e 's/^/    | /' "$1" | tail -n 40; fi
}

# check WHAT CMD...: runs CMD; PASS if it succeeds, FAIL with its output if not.
check() {
  local what="$1" out
  shift
  if out=$("$@" 2>&1); then
    pass "$what"
  else
    fail "$what"
    printf '%s\n' "$out" | detail -
  fi
}

# expect_eq WHAT ACTUAL EXPECTED
expect_eq() {
  if [ "$2" = "$3" ]; then
    pass "$1"
  else
    fail "$1"
    printf 'expected: %s\nactual:   %s\n' "$3" "$2" | detail -
  fi
}

summary() {
  echo "$NPASS passed, $NFAIL failed"
  [ "$NFAIL" -eq 0 ]
}

note() { echo "---- $*"; }

# wait_for SECONDS CMD...: polls CMD every 0.2 s until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then return 1; fi
    sleep 0.2
  done
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# timed VAR CMD...: runs CMD, stores its wall time in ms in VAR, returns its status.
timed() {
  local __var="$1" __start __rc=0
  shift
  __start=$(now_ms)
  "$@" || __rc=$?
  printf -v "$__var" '%s' $(($(now_ms) - __start))
  return $__rc
}

# stop_pid PID SECONDS: SIGTERM, then SIGKILL after SECONDS. Only for children
# this script started.
stop_pid() {
  local pid="$1" grace="$2" i
  kill -0 "$pid" 2>/dev/null || return 0
  {
    kill -TERM "$pid" || true
    for ((i = 0; i < grace * 5; i++)); do
      kill -0 "$pid" || break
      sleep 0.2
    done
    kill -KILL "$pid" || true
    wait "$pid" || true
  } 2>/dev/null
}

# pids_matching_cmdline STRING: pids whose command line contains STRING. Used
# only with strings unique to this run (its temp dir), never a program name.
pids_matching_cmdline() {
  local dir pid
  for dir in /proc/[0-9]*; do
    pid="${dir#/proc/}"
    [ "$pid" = "$$" ] && continue
    if tr '\0' ' ' 2>/dev/null <"$dir/cmdline" | grep -F -- "$1" >/dev/null; then echo "$pid"; fi
  done
}

# pids_rooted_under DIR: pids whose root directory lies under DIR (processes
# left inside a container whose rootfs is one of this run's snapshots).
pids_rooted_under() {
  local dir root
  for dir in /proc/[0-9]*; do
    root=$(readlink "$dir/root" 2>/dev/null) || continue
    case "$root" in "$1"/*) echo "${dir#/proc/}" ;; esac
  done
}

# unmount_under DIR: unmounts everything mounted below DIR, deepest first.
unmount_under() {
  local mp
  awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | awk '{ print length($0) " " $0 }' |
    sort -rn | cut -d' ' -f2- | while read -r mp; do
      mp=$(printf '%b' "$mp") # /proc/mounts escapes spaces as \040
      umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
    done
}

mounts_under() { awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts; }

# ensure_packages PKG...: installs the Debian packages that are missing.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'install ok installed' >/dev/null || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  note "installing ${missing[*]}"
  apt-get update -qq || true # a stale mirror must not hide cached packages
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# children_of PID: the pids whose parent is PID (from /proc: no procps).
children_of() {
  local stat line fields
  for stat in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$stat" || continue
    # Fields after the command name, which may hold spaces: state, ppid, ...
    read -r -a fields <<<"${line##*) }"
    [ "${fields[1]:-}" = "$1" ] && basename "$(dirname "$stat")"
  done
  return 0
}

# start_deadline SECONDS: ctest ends a test that passes its TIMEOUT with
# SIGKILL, which no trap sees, and containerd's shims and the mounts would
# outlive it. After SECONDS this sends the script SIGTERM, then the command
# it is waiting for (every child but those named with deadline_spare, which
# the script's cleanup stops in its own order), so the wait ends and the
# script's trap runs its cleanup. stop_deadline (first thing in that
# cleanup) undoes it.
DEADLINE_SPARE_FILE=""
start_deadline() {
  local seconds="$1" script_pid=$$ name
  name=$(basename "$0")
  DEADLINE_SPARE_FILE=$(mktemp /tmp/cpp-overlay-deadline.XXXXXX)
  (
    sleep "$seconds" </dev/null >/dev/null 2>&1 || exit 0
    echo "$name: still running after ${seconds}s; stopping, to clean up before ctest's timeout" >&2
    # The script first: bash runs its TERM trap once the foreground child
    # it waits for has ended.
    kill -TERM "$script_pid"
    for pid in $(children_of "$script_pid"); do
      [ "$pid" = "$BASHPID" ] && continue
      grep -qxF "$pid" "$DEADLINE_SPARE_FILE" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    done
  ) &
  DEADLINE_PID=$!
}
# deadline_spare PID: the deadline leaves this background child alone.
deadline_spare() {
  [ -z "$DEADLINE_SPARE_FILE" ] || echo "$1" >>"$DEADLINE_SPARE_FILE"
}
stop_deadline() {
  if [ -n "${DEADLINE_PID:-}" ]; then
    local sleeper
    sleeper=$(children_of "$DEADLINE_PID")
    kill -KILL "$DEADLINE_PID" 2>/dev/null || true
    # shellcheck disable=SC2086 # one pid, or none
    [ -z "$sleeper" ] || kill -KILL $sleeper 2>/dev/null || true
    DEADLINE_PID=""
  fi
  [ -z "$DEADLINE_SPARE_FILE" ] || rm -f "$DEADLINE_SPARE_FILE"
  DEADLINE_SPARE_FILE=""
}
