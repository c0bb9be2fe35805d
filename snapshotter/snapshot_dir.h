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

// Makes <snapshots>/<id> with fs/ and, for an active snapshot, work/. As
// containerd's overlayfs does, fs/ takes the owner of the parent layer's
// fs/ (`parent_id`), so a layer unpacked for a user namespace stays
// writable by it.
//
// The tree is made in place, not assembled under a temporary name and
// renamed as containerd's overlayfs does: the caller writes the metadata
// only after this returns, so a half-made tree after a crash belongs to no
// snapshot and start-up reconciliation removes it like any orphan, and the
// rename was a tenth of the daemon's CPU per Prepare. On failure the tree is
// removed; anything already under the name (an id reserved by a process
// that crashed before its metadata was written) is removed first.
absl::Status MakeSnapshotDir(const Layout& layout, uint64_t id,
                             metadata::Kind kind,
                             std::optional<uint64_t> parent_id);

// Makes the lost parts of an active or view snapshot's tree again, empty,
// as start-up and fsck --repair do after a power cut (directories are not
// synced, so a fresh one can be lost, whole or in part): a missing fs/
// (files written to it, if any, are lost) or directory means the whole
// tree again; an active snapshot missing only work/ gets that back. When
// the parent layer's directory is lost too, fs/ keeps the daemon's owner:
// the parent is what fsck reports. OK when nothing is missing.
absl::Status RemakeLostSnapshotDir(const Layout& layout, uint64_t id,
                                   metadata::Kind kind,
                                   std::optional<uint64_t> parent_id);

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_SNAPSHOT_DIR_H_
