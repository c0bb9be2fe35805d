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
  const std::string temp = layout.TempDir(id);
  const std::string final_dir = layout.SnapshotDir(id);
  if (absl::Status s = fs::RemoveAll(temp); !s.ok()) return s;
  if (absl::Status s = fs::RemoveAll(final_dir); !s.ok()) return s;

  absl::Cleanup remove_temp = [&temp] { fs::RemoveAll(temp).IgnoreError(); };
  if (absl::Status s = fs::MakeDir(temp, kSnapshotDirMode); !s.ok()) return s;
  const std::string temp_fs = absl::StrCat(temp, "/fs");
  if (absl::Status s = fs::MakeDir(temp_fs, kFsMode); !s.ok()) return s;
  if (kind == metadata::Kind::kActive) {
    if (absl::Status s = fs::MakeDir(absl::StrCat(temp, "/work"), kWorkMode); !s.ok()) {
      return s;
    }
  }
  if (parent_id.has_value()) {
    absl::StatusOr<fs::Owner> owner = fs::OwnerOf(layout.FsDir(*parent_id));
    if (!owner.ok()) return owner.status();
    if (absl::Status s = fs::Lchown(temp_fs, owner->uid, owner->gid); !s.ok()) return s;
  }
  CrashPoint("create.after_temp_dir");
  if (absl::Status s = fs::Rename(temp, final_dir); !s.ok()) return s;
  std::move(remove_temp).Cancel();
  CrashPoint("create.after_rename");
  return absl::OkStatus();
}

}  // namespace cpp_overlay::snapshotter
