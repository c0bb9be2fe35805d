// Probes of the running kernel and the root's filesystem.
#ifndef CPP_OVERLAY_SNAPSHOTTER_KERNEL_FEATURES_H_
#define CPP_OVERLAY_SNAPSHOTTER_KERNEL_FEATURES_H_

#include <string>

#include "absl/status/status.h"

namespace cpp_overlay::snapshotter {

// True when /sys/module/overlay/parameters/index exists; containerd then adds
// "index=off" to overlay mounts so lowerdirs can be shared.
bool OverlayHasIndexParameter();

// FailedPrecondition when the filesystem under `dir` does not report d_type
// (overlay needs it: e.g. xfs made without ftype=1).
absl::Status CheckDType(const std::string& dir);

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_KERNEL_FEATURES_H_
