// Probes of the running kernel and the root's filesystem.
#ifndef CPP_OVERLAY_SNAPSHOTTER_KERNEL_FEATURES_H_
#define CPP_OVERLAY_SNAPSHOTTER_KERNEL_FEATURES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace cpp_overlay::snapshotter {

// True when /sys/module/overlay/parameters/index exists; containerd then adds
// "index=off" to overlay mounts so lowerdirs can be shared.
bool OverlayHasIndexParameter();

// True when `uid_map_first_line` (the first line of /proc/self/uid_map)
// maps all 4294967295 ids from 0 to 0: the initial user namespace.
bool IsInitialUidMap(absl::string_view uid_map_first_line);

// True when "release" (uname -r, e.g. "6.1.0-18-amd64") is at least
// major.minor.
bool KernelAtLeast(absl::string_view release, int major, int minor);

// Whether overlay mounts need "userxattr", decided as containerd 1.6 does:
// only inside a user namespace, never for a root on tmpfs, and on kernels
// from 5.11 on. (containerd also probes older kernels with a test mount, for
// distribution backports; we do not, and log that the option is left out.)
bool NeedsUserXattr(const std::string& root);

// FailedPrecondition when the filesystem under `dir` does not report d_type
// (overlay needs it: e.g. xfs made without ftype=1).
absl::Status CheckDType(const std::string& dir);

// FailedPrecondition when `dir` is on a filesystem the kernel refuses as an
// overlay's upper layer: overlayfs itself (a root inside a container's or
// pod's own overlay filesystem). Every Prepare would succeed and every
// mount fail. Looks at `dir`, or where it does not exist yet, at its
// nearest existing parent.
absl::Status CheckUpperdirFilesystem(const std::string& dir);

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_KERNEL_FEATURES_H_
