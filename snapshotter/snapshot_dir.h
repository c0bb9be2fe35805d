// Making the directory of a new view or active snapshot, the one way the
// daemon (Prepare, View, start-up) and fsck --repair both do it.
#ifndef CPP_OVERLAY_SNAPSHOTTER_SNAPSHOT_DIR_H_
#define CPP_OVERLAY_SNAPSHOTTER_SNAPSHOT_DIR_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "metadata/types.h"
#include "snapshotter/layout.h"

namespace cpp_overlay::snapshotter {

// Builds <snapshots>/new-<id> with fs/ and, for an active snapshot, work/,
// then renames it to <snapshots>/<id>, so the final name never holds a
// half-made tree. As containerd's overlayfs does, fs/ takes the owner of
// the parent layer's fs/ (`parent_id`), so a layer unpacked for a user
// namespace stays writable by it. Anything an earlier crash left under
// either name is removed first: ids are never handed out twice, so it
// belongs to no snapshot.
absl::Status MakeSnapshotDir(const Layout& layout, uint64_t id,
                             metadata::Kind kind,
                             std::optional<uint64_t> parent_id);

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_SNAPSHOT_DIR_H_
