#include "snapshotter/snapshot_dir.h"

#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "snapshotter/crash_points.h"
#include "snapshotter/fs.h"

namespace cpp_overlay::snapshotter {

absl::Status MakeSnapshotDir(const Layout& layout, uint64_t id,
                             metadata::Kind kind,
                             std::optional<uint64_t> parent_id) {
  const std::string dir = layout.SnapshotDir(id);
  absl::Status made = fs::MakeDir(dir, kSnapshotDirMode);
  // The common case costs one mkdir, not a stat first.
  if (absl::IsAlreadyExists(made)) {
    if (absl::Status s = fs::RemoveAll(dir); !s.ok()) return s;
    made = fs::MakeDir(dir, kSnapshotDirMode);
  }
  if (!made.ok()) return made;
  absl::Cleanup remove_partial = [&dir] { fs::RemoveAll(dir).IgnoreError(); };
  CrashPoint("create.after_snapshot_dir");
  const std::string fs_dir = absl::StrCat(dir, "/fs");
  if (absl::Status s = fs::MakeDir(fs_dir, kFsMode); !s.ok()) return s;
  if (kind == metadata::Kind::kActive) {
    if (absl::Status s = fs::MakeDir(absl::StrCat(dir, "/work"), kWorkMode); !s.ok()) {
      return s;
    }
  }
  if (parent_id.has_value()) {
    absl::StatusOr<fs::Owner> owner = fs::OwnerOf(layout.FsDir(*parent_id));
    if (!owner.ok()) return owner.status();
    if (absl::Status s = fs::Lchown(fs_dir, owner->uid, owner->gid); !s.ok()) return s;
  }
  std::move(remove_partial).Cancel();
  CrashPoint("create.after_dirs");
  return absl::OkStatus();
}

absl::Status RemakeLostSnapshotDir(const Layout& layout, uint64_t id,
                                   metadata::Kind kind,
                                   std::optional<uint64_t> parent_id) {
  if (fs::Exists(layout.FsDir(id))) {
    if (kind != metadata::Kind::kActive || fs::Exists(layout.WorkDir(id))) {
      return absl::OkStatus();
    }
    return fs::MakeDir(layout.WorkDir(id), kWorkMode);
  }
  if (parent_id.has_value() && !fs::Exists(layout.FsDir(*parent_id))) {
    parent_id.reset();
  }
  return MakeSnapshotDir(layout, id, kind, parent_id);
}

}  // namespace cpp_overlay::snapshotter
