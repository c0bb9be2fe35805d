// Every path under the daemon's root is built here:
//
//   <root>/metadata/            RocksDB (metadata/)
//   <root>/snapshots/<id>/fs    a snapshot's files (upperdir when active)
//   <root>/snapshots/<id>/work  overlay workdir, active snapshots only
//   <root>/snapshots/new-<id>   a create's temporary name in earlier
//                               versions; still collected as a leftover
//   <root>/trash/               removed directories the reclaimer deletes
//   <root>/space-reserve        blocks kept for the metadata on a full disk
//                               (metadata/space_reserve.h)
//   <root>/unsynced-below       a failed layer sync's mark, until the store
//                               holds it (unsynced_mark_file.h)
//
// Ids are decimal so lowerdir strings stay short and containerd's own
// long-option compaction (which assumes <root>/snapshots/<id>/fs) works.
#ifndef CPP_OVERLAY_SNAPSHOTTER_LAYOUT_H_
#define CPP_OVERLAY_SNAPSHOTTER_LAYOUT_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"

namespace cpp_overlay::snapshotter {

// Modes of what the layout names, shared by the daemon and fsck.
inline constexpr mode_t kRootMode = 0700;
inline constexpr mode_t kSnapshotsMode = 0700;
inline constexpr mode_t kSnapshotDirMode = 0700;
inline constexpr mode_t kFsMode = 0755;
inline constexpr mode_t kWorkMode = 0711;

class Layout {
 public:
  explicit Layout(std::string root);

  const std::string& Root() const { return root_; }
  std::string MetadataDir() const;
  std::string SnapshotsDir() const;
  std::string TrashDir() const;
  std::string SpaceReservePath() const;
  std::string UnsyncedMarkPath() const;
  std::string SnapshotDir(uint64_t id) const;
  std::string FsDir(uint64_t id) const;
  std::string WorkDir(uint64_t id) const;
  // The id an entry of SnapshotsDir() belongs to: "<id>", or "new-<id>"
  // (where earlier versions assembled a snapshot before renaming it; a root
  // they crashed in may still hold one). nullopt for anything else.
  static std::optional<uint64_t> IdOfEntry(absl::string_view entry);

 private:
  std::string root_;
};

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_LAYOUT_H_
