// A depth-first walk of a directory tree that works at any depth: no
// recursion (a container can nest directories tens of thousands deep, far
// past what a thread's stack holds) and a bounded number of open directories
// (at most kTreeWalkOpenDirs; deeper ones are reached again through "..",
// checked by device and inode). Shared by Usage and by removal.
#ifndef CPP_OVERLAY_SNAPSHOTTER_TREE_WALK_H_
#define CPP_OVERLAY_SNAPSHOTTER_TREE_WALK_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cpp_overlay::snapshotter::fs {

inline constexpr int kTreeWalkOpenDirs = 32;

struct TreeWalkVisitor {
  // Called for every entry of every directory walked ("." and ".." left
  // out) with the open directory holding it and readdir's d_type. Returns
  // true to walk into the entry, which must then be a directory; an error
  // stops the walk and is returned.
  std::function<absl::StatusOr<bool>(int dir_fd, const char* name,
                                     unsigned char d_type)>
      entry;
  // Called (when set) once all of a walked-into directory's entries were
  // visited, with the open directory holding it: a removal unlinks it here.
  std::function<absl::Status(int dir_fd, const char* name)> leave;
  // Called (when set) instead of walking into a directory that is a mount
  // point (another filesystem, or a bind mount), with its path: the walk
  // never crosses into another mount. Unset, such a directory stops the walk
  // with FailedPrecondition.
  std::function<absl::Status(const std::string& path)> mount_point;
};

// Walks everything below the directory open as `root_fd` (borrowed, not
// closed), whose path is `root_path` (for messages only). A directory that
// vanishes before it is opened is skipped; one that moves elsewhere while
// the walk is below it stops the walk with FailedPrecondition, as does a
// mount point (see TreeWalkVisitor::mount_point).
absl::Status WalkTree(int root_fd, const std::string& root_path,
                      const TreeWalkVisitor& visitor);

}  // namespace cpp_overlay::snapshotter::fs

#endif  // CPP_OVERLAY_SNAPSHOTTER_TREE_WALK_H_
