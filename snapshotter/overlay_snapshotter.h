// The overlayfs snapshotter: metadata in SnapshotStore, files in
// <root>/snapshots/<id> (see layout.h).
//
// Ordering, so a crash never leaves metadata pointing at a missing or
// half-made directory:
//   create: build snapshots/new-<id>, rename to snapshots/<id>, fsync the
//           parent directory, then write metadata. A crash before the
//           metadata write leaves an unknown directory that start-up
//           reconciliation (Cleanup) removes.
//   remove: write metadata first, then delete the directory; a crash in
//           between leaves an unknown directory, again collected.
//   commit: only metadata changes; the directory keeps its id.
#ifndef CPP_OVERLAY_SNAPSHOTTER_OVERLAY_SNAPSHOTTER_H_
#define CPP_OVERLAY_SNAPSHOTTER_OVERLAY_SNAPSHOTTER_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "metadata/snapshot_store.h"
#include "snapshotter/layout.h"
#include "snapshotter/snapshotter.h"

namespace cpp_overlay::snapshotter {

class OverlaySnapshotter : public Snapshotter {
 public:
  struct Options {
    std::string root;
    // Appended to every overlay mount (e.g. "volatile").
    std::vector<std::string> extra_overlay_options;
  };

  // Creates the root (mode 0700) and its layout if needed, opens the
  // metadata, and reconciles the directories with it before returning.
  // Unavailable: another process holds the root. FailedPrecondition: the
  // filesystem lacks d_type.
  static absl::StatusOr<std::unique_ptr<OverlaySnapshotter>> Open(
      const Options& options);

  absl::StatusOr<std::vector<Mount>> Prepare(
      absl::string_view key, absl::string_view parent,
      const metadata::Labels& labels) override;
  absl::StatusOr<std::vector<Mount>> View(
      absl::string_view key, absl::string_view parent,
      const metadata::Labels& labels) override;
  absl::StatusOr<std::vector<Mount>> Mounts(absl::string_view key) override;
  absl::Status Commit(absl::string_view name, absl::string_view key,
                      const metadata::Labels& labels) override;
  absl::Status Remove(absl::string_view key) override;
  absl::StatusOr<metadata::Info> Stat(absl::string_view key) override;
  absl::StatusOr<metadata::Info> Update(
      const metadata::Info& info, const std::vector<std::string>& paths) override;
  absl::StatusOr<metadata::Usage> Usage(absl::string_view key) override;
  absl::Status Walk(
      const std::vector<std::string>& filters,
      const std::function<absl::Status(const metadata::Info&)>& fn) override;
  absl::Status Cleanup() override;

  const Layout& layout() const { return layout_; }

 private:
  OverlaySnapshotter(Layout layout, MountOptions mount_options,
                     std::unique_ptr<metadata::SnapshotStore> store);

  absl::StatusOr<std::vector<Mount>> Create(metadata::Kind kind,
                                            absl::string_view key,
                                            absl::string_view parent,
                                            const metadata::Labels& labels);
  // Builds snapshots/<id> for a new snapshot (see the file comment).
  absl::Status MakeSnapshotDir(uint64_t id, metadata::Kind kind,
                               absl::string_view parent);

  const Layout layout_;
  const MountOptions mount_options_;
  std::unique_ptr<metadata::SnapshotStore> store_;

  // Ids whose directories exist before their metadata does; Cleanup must
  // leave them alone.
  absl::Mutex in_flight_mu_;
  absl::flat_hash_set<uint64_t> in_flight_ ABSL_GUARDED_BY(in_flight_mu_);
};

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_OVERLAY_SNAPSHOTTER_H_
