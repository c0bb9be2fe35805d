#!/bin/sh
# shellcheck disable=SC2317,SC2016,SC2012  # helpers run via check "$@"; sh -c bodies
# Runs inside a container of the image localhost/cpp-overlay-e2e/layers:1
# (make_images.py bakes it in as /e2e-check.sh) and checks, from inside, that
# the root filesystem is the image's layers merged as OCI defines. Prints one
# "ok <what>" or "not ok <what>" line per check; run.sh turns each line into a
# PASS or FAIL line. Exits non-zero if any check failed.

failed=0
check() {
  what="$1"
  shift
  if "$@" >/dev/null 2>&1; then
    echo "ok $what"
  else
    echo "not ok $what"
    failed=1
  fi
}

content_is() { [ "$(cat "$1")" = "$2" ]; }
absent() { [ ! -e "$1" ] && [ ! -L "$1" ]; }
listing_is() { [ "$(ls -A "$1" | tr '\n' ' ')" = "$2" ]; }
no_whiteout_names() { [ -z "$(find / -xdev -name '.wh.*' 2>/dev/null)" ]; }

check "base layer file is visible" content_is /etc/e2e/base.txt "from the base layer"
check "busybox applet links work" test "$(/usr/bin/basename /a/b)" = b
check "file added by layer 2 is visible" content_is /etc/e2e/layer2.txt "added in layer 2"
check "file added by layer 3 is visible" content_is /layer3/new.txt "added in layer 3"
check "file modified in layers 2 and 3 shows the top version" content_is /etc/e2e/modify.txt v3
check "file whiteouted by layer 3 is gone" absent /etc/e2e/delete-me.txt
check "directory whiteouted by layer 3 is gone" absent /gone-dir
check "opaque directory holds only the top layer's entries" listing_is /opaque "new-c "
check "opaque directory hides lower subdirectories" absent /opaque/sub
check "no whiteout marker is visible" no_whiteout_names
check "hard link in a layer shares its inode" test "$(stat -c %i /etc/e2e/layer2.txt)" = "$(stat -c %i /etc/e2e/layer2-link.txt)"
check "file mode and owner from the layer are kept" test "$(stat -c '%a %u %g' /etc/e2e/private.txt)" = "600 1234 5678"
check "root filesystem is writable" sh -c 'echo written > /written-by-container && [ "$(cat /written-by-container)" = written ]'
check "a lower file can be modified" sh -c 'echo changed > /etc/e2e/base.txt && [ "$(cat /etc/e2e/base.txt)" = changed ]'
check "a lower file can be deleted" sh -c 'rm /etc/e2e/layer2.txt && [ ! -e /etc/e2e/layer2.txt ]'
check "root filesystem is an overlay mount" sh -c 'grep -q "^[^ ]* / overlay " /proc/mounts'

# The root mount options name the snapshot directories, so the host side can
# tell which snapshotter provided this root filesystem.
echo "rootfs-options $(awk '$2 == "/" { print $4 }' /proc/mounts | tail -n 1)"

exit $failed
