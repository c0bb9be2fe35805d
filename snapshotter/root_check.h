// What a daemon accepts as its root. The root holds every container's and
// image's files, so it must be a real directory that belongs to us:
//   - a symlink is refused (whoever can change the link could point the
//     daemon at any directory, and deleting stray entries would follow it);
//   - a root owned by another user is refused (that user could swap what is
//     inside);
//   - a root of ours that is group- or world-accessible is accepted and
//     tightened to 0700 by OverlaySnapshotter::Open (containerd's test suite
//     and mktemp-made roots are 0777/0700 directories of ours).
// Header-only so that the check changes no target's sources.
#ifndef CPP_OVERLAY_SNAPSHOTTER_ROOT_CHECK_H_
#define CPP_OVERLAY_SNAPSHOTTER_ROOT_CHECK_H_

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "snapshotter/fs.h"
#include "snapshotter/layout.h"

namespace cpp_overlay::snapshotter {

// OK when `root` does not exist yet (Open makes it) or is a directory owned
// by our effective uid. FailedPrecondition for a symlink, a non-directory,
// or another owner.
inline absl::Status CheckRootIsOurs(const std::string& root) {
  struct stat st;
  if (lstat(root.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return fs::ErrnoStatus(errno, absl::StrCat("root ", root));
  }
  if (S_ISLNK(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "root ", root, " is a symlink; give the directory it points to"));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("root ", root, " is not a directory"));
  }
  if (st.st_uid != geteuid()) {
    return absl::FailedPreconditionError(
        absl::StrCat("root ", root, " is owned by uid ", st.st_uid,
                     ", not by this daemon (uid ", geteuid(),
                     "); chown it or choose another root"));
  }
  return absl::OkStatus();
}

// OK when `root` holds metadata/ (it is ours), does not exist, or holds no
// more than an interrupted first start leaves before metadata/ exists: an
// empty snapshots/ and trash/, and space-reserve (and lost+found, when the
// root is a filesystem's mount point). Anything else (another
// snapshotter's root, say containerd's own overlayfs root, or a root whose
// metadata/ was deleted) is refused: start-up would take every directory in
// snapshots/ for a crash's leftover and delete it, and tighten the root's
// mode.
inline absl::Status CheckRootHoldsNothingForeign(const Layout& layout) {
  const std::string& root = layout.Root();
  struct stat st;
  if (lstat(layout.MetadataDir().c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> entries = fs::ListDir(root);
  if (absl::IsNotFound(entries.status())) return absl::OkStatus();
  if (!entries.ok()) return entries.status();
  auto refuse = [&](absl::string_view what) {
    return absl::FailedPreconditionError(absl::StrCat(
        "root ", root, " has no metadata/ directory but holds ", what,
        ": it is not a cpp-overlay root (another snapshotter's?), or its "
        "metadata was deleted. Refusing to start, which would discard its "
        "files; give an empty or new directory as the root"));
  };
  for (const std::string& entry : *entries) {
    const std::string path = absl::StrCat(root, "/", entry);
    // lost+found: a root that is a filesystem's own mount point.
    if (path == layout.SpaceReservePath() || entry == "lost+found") continue;
    if (path != layout.SnapshotsDir() && path != layout.TrashDir()) {
      return refuse(entry);
    }
    absl::StatusOr<std::vector<std::string>> inside = fs::ListDir(path);
    if (!inside.ok()) return inside.status();
    if (!inside->empty()) {
      return refuse(absl::StrCat(entry, "/", inside->front()));
    }
  }
  return absl::OkStatus();
}

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_ROOT_CHECK_H_
