// Bytes and inodes of a directory tree, as containerd's continuity
// fs.DiskUsage counts them: the tree's root included, every inode once
// (hard links are not counted twice), size = sum of st_blocks * 512.
#ifndef CPP_OVERLAY_SNAPSHOTTER_DISK_USAGE_H_
#define CPP_OVERLAY_SNAPSHOTTER_DISK_USAGE_H_

#include <string>

#include "absl/status/statusor.h"
#include "metadata/types.h"

namespace cpp_overlay::snapshotter {

// Walks `path` without following symlinks or crossing into other entries'
// targets. Entries that vanish during the walk are skipped.
absl::StatusOr<metadata::Usage> DiskUsage(const std::string& path);

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_DISK_USAGE_H_
