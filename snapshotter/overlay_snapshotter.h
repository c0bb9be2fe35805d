// The overlayfs snapshotter: metadata in SnapshotStore, files in
// <root>/snapshots/<id> (see layout.h).
//
// Ordering, so a crash never leaves metadata pointing at a missing or
// half-made directory:
//   create: register the id as in flight (Cleanup leaves in-flight ids
//           alone), make snapshots/<id> with fs/ (and work/), then write
//           metadata. A crash before the metadata write leaves an unknown
//           directory that start-up reconciliation (Cleanup) removes. As
//           in containerd, the directory is not fsynced: the WAL sync
//           overwrites preallocated log space and need not commit the
//           filesystem journal holding the mkdirs. After a power cut
//           start-up recreates the (necessarily empty) directories of
//           active and view snapshots whose mkdirs were lost.
//   remove: write metadata first, then rename the directory into trash/,
//           where the background reclaimer deletes it; a crash in between
//           leaves an unknown directory, again collected.
//   commit: only metadata changes; the directory keeps its id.
#ifndef CPP_OVERLAY_SNAPSHOTTER_OVERLAY_SNAPSHOTTER_H_
#define CPP_OVERLAY_SNAPSHOTTER_OVERLAY_SNAPSHOTTER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "metadata/snapshot_store.h"
#include "snapshotter/filesystem_sync.h"
#include "snapshotter/layout.h"
#include "snapshotter/reclaimer.h"
#include "snapshotter/shared_sync.h"
#include "snapshotter/snapshotter.h"

namespace cpp_overlay::snapshotter {

// What OverlaySnapshotter::Stats reports.
struct SnapshotterStats {
  metadata::StoreStats store;
  // Removed directories in trash/ the reclaimer has yet to delete, and
  // their size.
  int64_t reclaim_backlog_directories = 0;
  int64_t reclaim_backlog_bytes = 0;
};

inline constexpr char kUpperdirLabel[] = "containerd.io/snapshot/overlay.upperdir";

class OverlaySnapshotter : public Snapshotter {
 public:
  struct Options {
    std::string root;
    // Appended to every overlay mount (e.g. "volatile").
    std::vector<std::string> extra_overlay_options;
    // As containerd's overlayfs `upperdir_label`: Stat, Update and Walk add
    // the label kUpperdirLabel = <root>/snapshots/<id>/fs (computed, never
    // stored; Walk filters see only stored labels, as in containerd).
    bool upperdir_label = false;
    // Pace of background deletion, in unlinked entries per second; 0 means
    // as fast as idle I/O priority allows.
    uint64_t reclaim_entries_per_second = 0;
    // Called once when the metadata's write-ahead log could not be synced;
    // every later change then fails (metadata::StoreOptions). The daemon
    // stops, so that a restart recovers from what is on disk.
    std::function<void(const absl::Status&)> on_metadata_sync_failure;
  };

  // Creates the root (mode 0700) and its layout if needed, opens the
  // metadata, and reconciles the directories with it before returning.
  // Unavailable: another process holds the root. FailedPrecondition: the
  // filesystem lacks d_type, or the root is a symlink or owned by another
  // user (root_check.h); a root of ours with a looser mode is chmodded 0700.
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

  // Waits until removed directories are deleted; for tests and benchmarks.
  bool WaitForReclaim(absl::Duration timeout) {
    return reclaimer_->WaitUntilEmpty(timeout);
  }

  // Store statistics plus the reclaim backlog, for metrics. The backlog's
  // directories are counted each time; their bytes take a walk of what is
  // left to delete, done at most once per kBacklogBytesInterval (0 at once
  // when nothing is left).
  static constexpr absl::Duration kBacklogBytesInterval = absl::Seconds(60);
  absl::StatusOr<SnapshotterStats> Stats();

 private:
  OverlaySnapshotter(Layout layout, MountOptions mount_options,
                     std::unique_ptr<metadata::SnapshotStore> store,
                     std::unique_ptr<Reclaimer> reclaimer,
                     std::unique_ptr<FilesystemSync> filesystem_sync);

  // A layer sync failed: the files of every snapshot prepared so far may
  // have lost pages, so none of them may be committed (Commit refuses ids
  // below the store's UnsyncedBelow, which a restart keeps).
  void ForbidCommitsOfSnapshotsSoFar(const absl::Status& failure);

  // Start-up repair: an active or view snapshot whose directory, fs/ or
  // work/ a power cut lost gets them back, empty (RemakeLostSnapshotDir);
  // a committed one's loss is logged for the operator (fsck reports it).
  absl::Status RecreateMissingDirectories();
  // Moves the directories under snapshots/ that belong to no snapshot into
  // the trash. A failure to list them is returned; each directory that
  // could not be moved is logged and its error appended to `stuck`.
  absl::Status DiscardStrayDirectories(std::vector<absl::Status>& stuck);

  // Usage of snapshot `id` (under `key`)'s fs/. If fs/ is gone while the
  // record stays, that is damage, not a missing snapshot: Internal, as
  // NotFound would tell containerd the key does not exist (and CRI's stats
  // loop skips NotFound silently). NotFound when a Remove came in between,
  // Aborted when the key names another snapshot since.
  absl::StatusOr<metadata::Usage> MeasureActive(absl::string_view key,
                                                uint64_t id);

  absl::StatusOr<std::vector<Mount>> Create(metadata::Kind kind,
                                            absl::string_view key,
                                            absl::string_view parent,
                                            const metadata::Labels& labels);
  const Layout layout_;
  const MountOptions mount_options_;
  std::unique_ptr<metadata::SnapshotStore> store_;
  std::unique_ptr<Reclaimer> reclaimer_;
  // syncfs of the snapshots' filesystem before a committed record is
  // written, shared by concurrent Commits.
  std::unique_ptr<FilesystemSync> filesystem_sync_;
  SharedSync layer_sync_;

  // Ids whose directories exist before their metadata does; Cleanup must
  // leave them alone.
  absl::Mutex in_flight_mu_;
  absl::flat_hash_set<uint64_t> in_flight_ ABSL_GUARDED_BY(in_flight_mu_);
  // Stats' last measure of the trash's bytes, and when it was taken.
  absl::Mutex backlog_mu_;
  int64_t backlog_bytes_ ABSL_GUARDED_BY(backlog_mu_) = 0;
  absl::Time backlog_measured_ ABSL_GUARDED_BY(backlog_mu_) = absl::InfinitePast();

  // Options::upperdir_label; set once by Open.
  bool upperdir_label_ = false;
  // `snapshot`'s Info, with kUpperdirLabel when upperdir_label_ is set.
  metadata::Info WithUpperdirLabel(metadata::Snapshot snapshot) const;
};

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_OVERLAY_SNAPSHOTTER_H_
