#!/usr/bin/env bash
# Benchmarks our daemon side by side with containerd 1.6's overlayfs
# snapshotter (tests/bench/refserver), both driven by the same client
# (tests/bench/client) through containerd's proxy client, in one run, on
# fresh roots on one filesystem. Writes a Markdown report (date, machine,
# filesystem, table) to stdout and to --out.
#
# The floor server (tests/bench/refserver --floor) runs alongside on the
# scenarios it can serve: a server doing only what the contract requires,
# whose ratio over the reference is about the most any server could reach
# with this client on this disk (--no-floor leaves it out).
#
# Builds what it needs: our daemon in Release mode in its own build
# directory (unless --daemon is given), the reference and floor servers and
# the client (Go, GOPATH mode, offline from /usr/share/gocode).
#
# By default the roots live on a private ext4 filesystem in a preallocated
# image under --dir, on a loop device with direct I/O: both servers then
# share one filesystem that no other process writes to (the Remove
# scenario counts freed inodes), and it is mounted without `discard`, so
# removing the hundreds of thousands of directories a run creates takes
# seconds, not the better part of an hour. --no-loop puts the roots straight
# on --dir's filesystem instead.
#
# The memory scenario's roots go on a tmpfs (both servers on the same one):
# resident memory does not depend on the disk, and without fsync cost the
# 200,000 snapshots it creates take a couple of minutes instead of a quarter
# of an hour. --memory-on-disk keeps them with the other roots.
#
# Everything started here (daemons, client, loop device, mount, temp dir)
# is removed on exit, also on failure or Ctrl-C. Needs root.
set -euo pipefail

usage() {
  cat <<EOF
usage: $0 [--quick] [--out FILE] [options] [-- CLIENT-FLAGS...]

  --quick            small sizes and one repetition: a smoke run (< 1 min)
  --out FILE         also write the report here (default: <build-dir>/bench.md)
  --reps N           repetitions per scenario, median reported (default 3; quick 1)
  --scenarios LIST   comma-separated subset of: chain,concurrent,stat,mounts,
                     walk,update,remove,usage,memory (default: all)
  --memory-counts L  snapshot counts for the memory scenario (default 10000,100000)
  --daemon BINARY    benchmark this daemon binary instead of building one
  --reference BINARY use this reference server instead of building refserver
  --build-dir DIR    where to build (default: <repo>/build-bench); the Go
                     binaries go to DIR/bench-go
  --dir DIR          where the temporary directory goes (default: /var/tmp)
  --no-loop          put the roots on DIR's own filesystem, no loop device
  --image-size SIZE  size of the loop filesystem image (default 8G; quick 2G)
  --memory-on-disk   memory scenario on the same filesystem as the others, not tmpfs
  --no-floor         do not measure the floor server (tests/bench/refserver --floor), which
                     shows what the client, the transport and the synced writes cost alone
  -- FLAGS...        passed to the client (see: <build-dir>/bench-go/bin/snapshot-bench -h)
EOF
}

# As invoked, for the report's footer.
invocation=""
(($#)) && invocation=$(printf ' %q' "$@")
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/../.." && pwd)

quick=0
out=""
reps=""
scenarios=""
memory_counts=""
daemon=""
reference=""
build_dir="$repo_dir/build-bench"
tmp_parent=/var/tmp
loop=1
memory_tmpfs=1
floor=1
image_size=""
client_extra=()

while (($#)); do
  case "$1" in
    --quick) quick=1; shift ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --reps) reps=${2:?--reps needs a value}; shift 2 ;;
    --scenarios) scenarios=${2:?--scenarios needs a value}; shift 2 ;;
    --memory-counts) memory_counts=${2:?--memory-counts needs a value}; shift 2 ;;
    --daemon) daemon=${2:?--daemon needs a value}; shift 2 ;;
    --reference) reference=${2:?--reference needs a value}; shift 2 ;;
    --build-dir) build_dir=${2:?--build-dir needs a value}; shift 2 ;;
    --dir) tmp_parent=${2:?--dir needs a value}; shift 2 ;;
    --no-loop) loop=0; shift ;;
    --memory-on-disk) memory_tmpfs=0; shift ;;
    --no-floor) floor=0; shift ;;
    --image-size) image_size=${2:?--image-size needs a value}; shift 2 ;;
    --) shift; client_extra=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

if [[ $(id -u) -ne 0 ]]; then
  echo "run.sh: must run as root (the daemons manage snapshot roots; the loop filesystem needs mount)" >&2
  exit 2
fi
mkdir -p "$build_dir"
build_dir=$(cd "$build_dir" && pwd)
out=${out:-$build_dir/bench.md}
go_dir="$build_dir/bench-go"
bin_dir="$go_dir/bin"
if [[ -z $reps ]]; then
  reps=3
  ((quick)) && reps=1
fi
if [[ -z $image_size ]]; then
  image_size=8G
  ((quick)) && image_size=2G
fi

# --- build -----------------------------------------------------------------

built_daemon=0
if [[ -z $daemon ]]; then
  built_daemon=1
  echo "run.sh: building the daemon (Release) in $build_dir" >&2
  if [[ ! -f $build_dir/CMakeCache.txt ]]; then
    cmake -S "$repo_dir" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCPP_OVERLAY_BUILD_TESTS=OFF >&2
  fi
  # Two jobs at most: the machine's cores are shared.
  cmake --build "$build_dir" -j2 --target containerd-cpp-overlay-grpc >&2
  daemon="$build_dir/server/containerd-cpp-overlay-grpc"
fi
if [[ ! -x $daemon ]]; then
  echo "run.sh: $daemon is missing or not executable" >&2
  exit 2
fi
daemon=$(cd "$(dirname "$daemon")" && pwd)/$(basename "$daemon")

gocode=/usr/share/gocode
if ! command -v go >/dev/null; then
  echo "run.sh: 'go' not found; install Debian's golang-go" >&2
  exit 2
fi
if [[ ! -d $gocode/src/github.com/containerd/containerd/snapshots/proxy ]]; then
  echo "run.sh: containerd sources missing in $gocode; install golang-github-containerd-containerd-dev" >&2
  exit 2
fi
echo "run.sh: building the reference server and the client in $go_dir" >&2
# GOPATH mode needs our packages under GOPATH/src.
for pkg in tests/bench/refserver tests/bench/client; do
  rm -rf "${go_dir:?}/gopath/src/cpp-overlay/$pkg"
  mkdir -p "$go_dir/gopath/src/cpp-overlay/$pkg"
  cp "$repo_dir/$pkg"/*.go "$go_dir/gopath/src/cpp-overlay/$pkg/"
done
mkdir -p "$bin_dir"
(
  export GOPATH="$go_dir/gopath:$gocode" GO111MODULE=off GOFLAGS='' GOPROXY=off
  if [[ -z ${GOCACHE:-} && -z ${HOME:-} && -z ${XDG_CACHE_HOME:-} ]]; then
    export GOCACHE="$go_dir/go-cache"
  fi
  cd "$go_dir/gopath"
  go build -o "$bin_dir/refserver" cpp-overlay/tests/bench/refserver
  go build -o "$bin_dir/snapshot-bench" cpp-overlay/tests/bench/client
)

# --- set up ----------------------------------------------------------------

mkdir -p "$tmp_parent"
run_tmp=$(mktemp -d "$(cd "$tmp_parent" && pwd)/cpp-overlay-bench.XXXXXX")
loop_dev=""
client_pid=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local rc=$? pidfile pid mp mounts
  trap - EXIT INT TERM
  if [[ -n $client_pid ]] && kill -0 "$client_pid" 2>/dev/null; then
    kill -TERM "$client_pid" 2>/dev/null || true
    wait "$client_pid" 2>/dev/null || true
  fi
  # Deepest first: sort -r puts a/b before a.
  mounts=$(awk -v p="$run_tmp/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  # Daemons the client started and did not stop: it writes their pids; a
  # daemon behind a wrapper (--daemon a script) is found by its use of this
  # run's private filesystems, which nothing else knows of.
  while IFS= read -r -d '' pidfile; do
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done < <(find "$run_tmp" -name daemon.pid -print0 2>/dev/null)
  for mp in $mounts; do
    for pid in $(fuser -m "$mp" 2>/dev/null); do
      if [[ $pid != "$$" ]]; then
        echo "run.sh: killing process $pid, still using $mp" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done
  done
  sleep 0.2
  while read -r mp; do
    [[ -n $mp ]] || continue
    umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null ||
      echo "run.sh: cannot unmount $mp" >&2
  done <<<"$mounts"
  if [[ -n $loop_dev ]]; then
    losetup -d "$loop_dev" 2>/dev/null || echo "run.sh: cannot detach $loop_dev" >&2
  fi
  rm -rf --one-file-system "$run_tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

work="$run_tmp/work"
mkdir -p "$work"
backing_fs=$(findmnt -no FSTYPE,OPTIONS -T "$run_tmp" | awk '{ print $1 " (" $2 ")" }')
if ((loop)); then
  img="$run_tmp/fs.img"
  fallocate -l "$image_size" "$img"
  # One inode per 4 KiB: a run creates hundreds of thousands of directories.
  # The preallocated image reads as zeros, so the kernel need not zero the
  # inode tables in the background during the run (noinit_itable).
  mkfs.ext4 -q -F -i 4096 "$img"
  loop_dev=$(losetup --direct-io=on --show -f "$img")
  mount -o noinit_itable "$loop_dev" "$work"
  roots_fs="$(findmnt -no FSTYPE,OPTIONS -T "$work" | awk '{ print $1 " (" $2 ")" }'), $image_size image on $loop_dev (direct I/O), backed by $(findmnt -no SOURCE -T "$run_tmp") $backing_fs"
else
  roots_fs="$(findmnt -no SOURCE -T "$work") $backing_fs"
fi
memory_note=""
if ((memory_tmpfs)); then
  memory_work="$run_tmp/memory-work"
  mkdir -p "$memory_work"
  mount -t tmpfs -o size=4G,nr_inodes=4M,mode=0700 bench-memory "$memory_work"
  memory_note="; memory scenario: roots on a tmpfs (RSS does not depend on the disk; creating is faster without fsync cost)"
  client_memory=(--memory-work-dir "$memory_work")
else
  client_memory=()
fi

# --- run -------------------------------------------------------------------

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
if ((built_daemon)); then
  ours_from="built from commit $(git -C "$repo_dir" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [[ -n $(git -C "$repo_dir" status --porcelain -- CMakeLists.txt proto metadata snapshotter server 2>/dev/null) ]]; then
    ours_from="$ours_from with uncommitted changes"
  fi
else
  ours_from="given with --daemon, modified $(date -u -r "$daemon" '+%Y-%m-%d %H:%M UTC')"
fi
quick_note=""
((quick)) && quick_note=", --quick sizes"
containerd_version=$(dpkg-query -W -f '${Version}' golang-github-containerd-containerd-dev 2>/dev/null || echo unknown)

header="# cpp-overlay vs containerd's overlayfs snapshotter

- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $(nproc) CPUs ($cpu), $mem memory, kernel $(uname -r); load average at start $(cut -d' ' -f1-3 /proc/loadavg)
- roots: $roots_fs$memory_note
- ours: \`$daemon\` ($ours_from); reference: containerd $containerd_version overlayfs (asynchronous remove, as 1.6's plugin) via contrib/snapshotservice
- client: containerd's snapshots/proxy over unix sockets, one connection per server; $reps repetition(s)$quick_note
"

client_args=(--ours "$daemon" --reference "${reference:-$bin_dir/refserver}" --work-dir "$work" --reps "$reps")
((floor)) && client_args+=(--floor "$bin_dir/refserver")
((quick)) && client_args+=(--quick)
[[ -n $scenarios ]] && client_args+=(--scenarios "$scenarios")
[[ -n $memory_counts ]] && client_args+=(--memory-counts "$memory_counts")
client_args+=("${client_memory[@]}" "${client_extra[@]}")

echo "run.sh: running in $work" >&2
start=$(date +%s)
set +e
"$bin_dir/snapshot-bench" "${client_args[@]}" >"$run_tmp/table.md" &
client_pid=$!
wait "$client_pid"
rc=$?
client_pid=""
set -e
elapsed=$(($(date +%s) - start))

mkdir -p "$(dirname "$out")"
{
  printf '%s\n' "$header"
  cat "$run_tmp/table.md"
  # shellcheck disable=SC2016 # backquotes are Markdown
  printf '\nWhole run: %d min %d s. Command: `tests/bench/run.sh%s`.\n' \
    $((elapsed / 60)) $((elapsed % 60)) "$invocation"
} | tee "$out"
echo "run.sh: report written to $out" >&2
if ((rc != 0)); then
  echo "run.sh: the client failed (exit status $rc)" >&2
fi
exit "$rc"
