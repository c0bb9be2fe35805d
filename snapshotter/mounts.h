// Mount specs exactly as containerd's overlayfs snapshotter returns them.
#ifndef CPP_OVERLAY_SNAPSHOTTER_MOUNTS_H_
#define CPP_OVERLAY_SNAPSHOTTER_MOUNTS_H_

#include <string>
#include <vector>

#include "metadata/types.h"
#include "snapshotter/layout.h"

namespace cpp_overlay::snapshotter {

struct Mount {
  std::string type;
  std::string source;
  std::vector<std::string> options;

  bool operator==(const Mount& other) const {
    return type == other.type && source == other.source &&
           options == other.options;
  }
};

struct MountOptions {
  // Prepend "index=off" to overlay mounts (when the kernel has the knob).
  bool index_off = false;
  // Then "userxattr" (in a user namespace: kernel_features.h).
  bool userxattr = false;
  // Appended to overlay mounts only, never to bind mounts.
  std::vector<std::string> extra_overlay_options;
};

// The mounts for `snapshot` (active or view):
//   no parent                 -> bind of its own fs, [rw|ro, rbind]
//   view of exactly one layer -> bind of the parent's fs, [ro, rbind]
//   view of two or more       -> overlay, lowerdir only (read-only)
//   active with parents       -> overlay, workdir, upperdir, lowerdir
// lowerdir lists the ancestors nearest first.
std::vector<Mount> MountsFor(const metadata::Snapshot& snapshot,
                             const Layout& layout, const MountOptions& options);

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_MOUNTS_H_
