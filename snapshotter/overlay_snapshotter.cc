#include "snapshotter/overlay_snapshotter.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "metadata/errors.h"
#include "snapshotter/crash_points.h"
#include "snapshotter/disk_usage.h"
#include "snapshotter/fs.h"
#include "snapshotter/kernel_features.h"
#include "snapshotter/root_check.h"
#include "snapshotter/snapshot_dir.h"
#include "snapshotter/unsynced_mark_file.h"
#include "spdlog/spdlog.h"

namespace cpp_overlay::snapshotter {
namespace {

using metadata::Kind;

// A failed layer sync's mark that an earlier run filed but may not have
// written to the store (unsynced_mark_file.h): into the store, then gone.
absl::Status FoldUnsyncedMarkFile(const Layout& layout,
                                  metadata::SnapshotStore& store) {
  const std::string path = layout.UnsyncedMarkPath();
  absl::StatusOr<std::optional<uint64_t>> filed = ReadUnsyncedMarkFile(path);
  if (absl::IsDataLoss(filed.status())) {
    // As the store reads a mark it cannot decode: covering every snapshot
    // that exists.
    spdlog::error("{}; taken to cover every snapshot made so far",
                  filed.status().ToString());
    filed = std::optional<uint64_t>(store.PeekNextId());
  }
  if (!filed.ok()) return filed.status();
  if (!filed->has_value()) return absl::OkStatus();
  if (**filed > store.UnsyncedBelow()) {
    spdlog::warn(
        "a filesystem sync failed in an earlier run: snapshots with ids "
        "below {} cannot be committed",
        **filed);
    // Refused (a full disk): the store keeps the mark in memory and every
    // later write carries it; the file stays until one lands.
    if (absl::Status s = store.RaiseUnsyncedBelow(**filed); !s.ok()) {
      spdlog::error("the mark could not be written to the metadata yet: {}",
                    s.ToString());
      return absl::OkStatus();
    }
  }
  if (unlink(path.c_str()) != 0) {
    spdlog::warn("remove {}: {}", path, std::strerror(errno));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<OverlaySnapshotter>> OverlaySnapshotter::Open(
    const Options& options) {
  if (options.root.empty() || options.root[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("root ", options.root, " must be an absolute path"));
  }
  Layout layout(options.root);
  // A symlink or someone else's root is refused; ours is tightened to 0700.
  if (absl::Status s = CheckRootIsOurs(layout.Root()); !s.ok()) return s;
  if (absl::Status s = CheckUpperdirFilesystem(layout.Root()); !s.ok())
    return s;
  if (absl::Status s = CheckRootHoldsNothingForeign(layout); !s.ok()) {
    return s;
  }
  if (absl::Status s = fs::MakeDirs(layout.Root(), kRootMode); !s.ok()) return s;
  if (absl::Status s = CheckDType(layout.Root()); !s.ok()) return s;
  for (const std::string& dir : {layout.SnapshotsDir(), layout.TrashDir()}) {
    if (fs::Exists(dir)) continue;
    if (absl::Status s = fs::MakeDir(dir, kSnapshotsMode); !s.ok()) return s;
  }
  metadata::StoreOptions store_options;
  store_options.on_sync_failure = options.on_metadata_sync_failure;
  store_options.space_reserve_path = layout.SpaceReservePath();
  absl::StatusOr<std::unique_ptr<metadata::SnapshotStore>> store =
      metadata::SnapshotStore::Open(layout.MetadataDir(), store_options);
  if (!store.ok()) return store.status();
  if (absl::Status reserve = (*store)->SpaceReserveError(); !reserve.ok()) {
    spdlog::warn("going without a space reserve: {}", reserve.ToString());
  } else if (!(*store)->HoldsSpaceReserve()) {
    spdlog::warn(
        "the disk holding {} is nearly full: no space reserve at {}, so only "
        "Remove is taken until space is freed",
        layout.Root(), layout.SpaceReservePath());
  }

  if (absl::Status s = FoldUnsyncedMarkFile(layout, **store); !s.ok()) return s;

  MountOptions mount_options;
  mount_options.index_off = OverlayHasIndexParameter();
  mount_options.userxattr = NeedsUserXattr(layout.Root());
  mount_options.extra_overlay_options = options.extra_overlay_options;

  // Resumes deleting whatever an earlier run left in trash/.
  auto reclaimer = std::make_unique<Reclaimer>(
      layout.TrashDir(), options.reclaim_entries_per_second);
  absl::StatusOr<std::unique_ptr<FilesystemSync>> filesystem_sync =
      FilesystemSync::Open(layout.SnapshotsDir());
  if (!filesystem_sync.ok()) return filesystem_sync.status();
  std::unique_ptr<OverlaySnapshotter> snapshotter(new OverlaySnapshotter(
      std::move(layout), std::move(mount_options), *std::move(store),
      std::move(reclaimer), *std::move(filesystem_sync)));
  snapshotter->upperdir_label_ = options.upperdir_label;
  // Start-up reconciliation: directories of operations a crash interrupted.
  // One that cannot be moved (an immutable attribute, say) must not keep the
  // daemon down: only a create that draws its id would fail.
  std::vector<absl::Status> stuck;
  if (absl::Status s = snapshotter->DiscardStrayDirectories(stuck); !s.ok()) {
    return s;
  }
  if (!stuck.empty()) {
    spdlog::error(
        "start-up: {} directories in {} belong to no snapshot and could not "
        "be moved to the trash (see above); serving anyway",
        stuck.size(), snapshotter->layout_.SnapshotsDir());
  }
  if (absl::Status s = snapshotter->RecreateMissingDirectories(); !s.ok()) {
    return s;
  }
  return snapshotter;
}

OverlaySnapshotter::OverlaySnapshotter(
    Layout layout, MountOptions mount_options,
    std::unique_ptr<metadata::SnapshotStore> store,
    std::unique_ptr<Reclaimer> reclaimer,
    std::unique_ptr<FilesystemSync> filesystem_sync)
    : layout_(std::move(layout)),
      mount_options_(std::move(mount_options)),
      store_(std::move(store)),
      reclaimer_(std::move(reclaimer)),
      filesystem_sync_(std::move(filesystem_sync)),
      layer_sync_([sync = filesystem_sync_.get()] { return sync->Sync(); },
                  [this](const absl::Status& failure) {
                    ForbidCommitsOfSnapshotsSoFar(failure);
                  }) {}

void OverlaySnapshotter::ForbidCommitsOfSnapshotsSoFar(
    const absl::Status& failure) {
  // Ids count up: every snapshot whose files were written before the failed
  // sync has one below the next. Kept in the store, as a restart does not
  // bring the lost pages back, and its new descriptor would not even see
  // the error the kernel has already reported.
  const uint64_t below = store_->PeekNextId();
  // The file first: the store may refuse (a failed log sync) or keep us
  // waiting for its writer lock, and a restart must not forget the mark.
  if (absl::Status filed =
          WriteUnsyncedMarkFile(layout_.UnsyncedMarkPath(), below);
      !filed.ok()) {
    spdlog::error(
        "the mark of the failed sync could not be written to its file: {}",
        filed.ToString());
  }
  absl::Status recorded = store_->RaiseUnsyncedBelow(below);
  spdlog::error(
      "{}: the snapshots prepared so far (ids below {}) may have lost "
      "written files and cannot be committed; snapshots prepared from now "
      "on can",
      std::string(failure.message()), below);
  if (!recorded.ok()) {
    spdlog::error("that mark may not be on disk: {}", recorded.ToString());
  }
}

absl::Status OverlaySnapshotter::RecreateMissingDirectories() {
  absl::StatusOr<metadata::Filter> all = metadata::Filter::Parse({});
  if (!all.ok()) return all.status();
  std::vector<metadata::Snapshot> damaged;
  absl::Status walked = store_->Walk(*all, [&](const metadata::Snapshot& s) {
    // fs/ implies its directory; an active snapshot also needs work/.
    if (!fs::Exists(layout_.FsDir(s.id)) ||
        (s.info.kind == Kind::kActive && !fs::Exists(layout_.WorkDir(s.id)))) {
      damaged.push_back(s);
    }
    return absl::OkStatus();
  });
  if (!walked.ok()) return walked;
  for (const metadata::Snapshot& s : damaged) {
    if (s.info.kind == Kind::kCommitted) {
      // Its files are gone; only an operator can decide (fsck reports it).
      spdlog::error("committed snapshot {} (id {}) has no directory {}",
                    metadata::QuoteKey(s.info.name), s.id, layout_.FsDir(s.id));
      continue;
    }
    spdlog::warn("making the lost directories of {} snapshot {} (id {}) again, empty",
                 std::string(metadata::KindName(s.info.kind)),
                 metadata::QuoteKey(s.info.name), s.id);
    // One snapshot's trouble must not keep the daemon from serving the
    // others: its mounts fail until fsck or its removal deals with it.
    if (absl::Status st = RemakeLostSnapshotDir(layout_, s.id, s.info.kind, s.parent_id());
        !st.ok()) {
      spdlog::error("snapshot {} (id {}): {}", metadata::QuoteKey(s.info.name), s.id,
                    st.ToString());
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Mount>> OverlaySnapshotter::Prepare(
    absl::string_view key, absl::string_view parent,
    const metadata::Labels& labels) {
  return Create(Kind::kActive, key, parent, labels);
}

absl::StatusOr<std::vector<Mount>> OverlaySnapshotter::View(
    absl::string_view key, absl::string_view parent,
    const metadata::Labels& labels) {
  return Create(Kind::kView, key, parent, labels);
}

absl::StatusOr<std::vector<Mount>> OverlaySnapshotter::Create(
    Kind kind, absl::string_view key, absl::string_view parent,
    const metadata::Labels& labels) {
  // Fail the common errors before touching the disk; Create checks again.
  absl::StatusOr<std::optional<uint64_t>> parent_id = store_->CheckCreate(key, parent);
  if (!parent_id.ok()) return parent_id.status();

  const uint64_t id = store_->ReserveId();
  {
    absl::MutexLock lock(&in_flight_mu_);
    in_flight_.insert(id);
  }
  absl::Cleanup done = [this, id] {
    absl::MutexLock lock(&in_flight_mu_);
    in_flight_.erase(id);
  };

  if (absl::Status s = MakeSnapshotDir(layout_, id, kind, *parent_id); !s.ok()) return s;
  absl::StatusOr<metadata::Snapshot> snapshot =
      store_->Create(kind, key, parent, labels, id);
  if (snapshot.ok()) CrashPoint("create.after_metadata");
  if (!snapshot.ok()) {
    // A failed sync leaves the record written but maybe not durable: its
    // directory stays for start-up to keep or collect, as after a crash.
    absl::StatusOr<metadata::Snapshot> recorded = store_->Get(key);
    if (recorded.ok() && recorded->id == id) return snapshot.status();
    if (absl::Status s = fs::RemoveAll(layout_.SnapshotDir(id)); !s.ok()) {
      spdlog::warn("remove directory of failed create: {}", s.ToString());
    }
    return snapshot.status();
  }
  return MountsFor(*snapshot, layout_, mount_options_);
}

absl::StatusOr<std::vector<Mount>> OverlaySnapshotter::Mounts(absl::string_view key) {
  absl::StatusOr<metadata::Snapshot> snapshot = store_->Get(key);
  if (!snapshot.ok()) return snapshot.status();
  if (snapshot->info.kind == Kind::kCommitted) {
    return metadata::WrongKind(key, "mounts", "snapshot is committed");
  }
  return MountsFor(*snapshot, layout_, mount_options_);
}

namespace {
// Ids count up from 1 and are never this large.
constexpr uint64_t kNoSnapshotId = std::numeric_limits<uint64_t>::max();
}  // namespace

absl::Status OverlaySnapshotter::Commit(absl::string_view name,
                                        absl::string_view key,
                                        const metadata::Labels& labels) {
  // The measuring runs without the store's lock, so the key may be removed
  // and prepared again meanwhile (containerd never reuses a key, other
  // clients may): the store then refuses the stale usage and we measure
  // the new snapshot.
  constexpr int kAttempts = 3;
  absl::StatusOr<metadata::Snapshot> committed;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    metadata::Usage usage;
    // No snapshot has this id: an active one prepared after the Get below
    // is then measured on the next round, never committed with zero usage.
    uint64_t measured_id = kNoSnapshotId;
    absl::StatusOr<metadata::Snapshot> active = store_->Get(key);
    // Errors (missing key, wrong kind, name taken) come from the store's
    // checks below, in containerd's order; only measure a plausible commit.
    if (active.ok() && active->info.kind == Kind::kActive) {
      absl::StatusOr<metadata::Usage> measured = MeasureActive(key, active->id);
      if (absl::IsAborted(measured.status())) {
        committed = measured.status();
        continue;
      }
      if (!measured.ok()) return measured.status();
      usage = *measured;
      measured_id = active->id;
      // A layer must survive a power cut once its committed record does,
      // files and contents: neither the metadata's log syncs (they commit
      // no filesystem journal, metadata/preallocated_wal.h) nor an unpack
      // (it writes through the page cache) put them on disk. containerd 1.6
      // leaves this to writeback; its users lost layers to power cuts, and
      // containerd 2.0's CRI has image_pull_with_sync_fs to syncfs after
      // each layer. Concurrent Commits share one sync (SharedSync).
      // Internal whatever the errno: retrying this Commit cannot help.
      if (absl::Status s = layer_sync_.Sync(); !s.ok()) {
        return absl::InternalError(absl::StrCat(
            "commit snapshot ", metadata::QuoteKey(key), ": ", s.message()));
      }
      // Checked after the sync: a failure met while waiting counts too.
      if (active->id < store_->UnsyncedBelow()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "commit snapshot ", metadata::QuoteKey(key),
            ": a filesystem sync failed after its files were written (see "
            "the daemon's log), so they may not be on disk; remove it and "
            "unpack the layer again"));
      }
    }
    CrashPoint("commit.after_usage");
    committed = store_->Commit(key, name, labels, usage, measured_id);
    if (!absl::IsAborted(committed.status())) break;
  }
  if (committed.ok()) CrashPoint("commit.after_metadata");
  return committed.status();
}

absl::Status OverlaySnapshotter::Remove(absl::string_view key) {
  absl::StatusOr<metadata::Snapshot> removed = store_->Remove(key);
  if (!removed.ok()) return removed.status();
  CrashPoint("remove.after_metadata");
  // A rename, not a delete: the caller (containerd's GC) holds a lock every
  // snapshot operation waits on. NotFound means a Cleanup already took it.
  absl::Status discarded = reclaimer_->Discard(
      layout_.SnapshotDir(removed->id), std::to_string(removed->id));
  if (!discarded.ok() && !absl::IsNotFound(discarded)) {
    spdlog::warn("snapshot {} removed, its directory is left for cleanup: {}",
                 metadata::QuoteKey(key), discarded.ToString());
  }
  CrashPoint("remove.after_delete");
  return absl::OkStatus();
}

absl::StatusOr<metadata::Info> OverlaySnapshotter::Stat(absl::string_view key) {
  absl::StatusOr<metadata::Snapshot> snapshot = store_->Get(key);
  if (!snapshot.ok()) return snapshot.status();
  return WithUpperdirLabel(*std::move(snapshot));
}

absl::StatusOr<metadata::Info> OverlaySnapshotter::Update(
    const metadata::Info& info, const std::vector<std::string>& paths) {
  absl::StatusOr<metadata::Snapshot> snapshot =
      store_->Update(info.name, info.labels, paths);
  if (!snapshot.ok()) return snapshot.status();
  CrashPoint("update.after_metadata");
  return WithUpperdirLabel(*std::move(snapshot));
}

absl::StatusOr<metadata::Usage> OverlaySnapshotter::Usage(absl::string_view key) {
  // Aborted: the key names a snapshot prepared after the one looked up;
  // measure that one (as Commit does, at most three rounds).
  absl::StatusOr<metadata::Usage> usage;
  for (int attempt = 0; attempt < 3; ++attempt) {
    absl::StatusOr<metadata::Snapshot> snapshot = store_->Get(key);
    if (!snapshot.ok()) return snapshot.status();
    if (snapshot->info.kind != Kind::kActive) return snapshot->usage;
    usage = MeasureActive(key, snapshot->id);
    if (!absl::IsAborted(usage.status())) break;
  }
  return usage;
}

absl::StatusOr<metadata::Usage> OverlaySnapshotter::MeasureActive(
    absl::string_view key, uint64_t id) {
  const std::string fs_dir = layout_.FsDir(id);
  absl::StatusOr<metadata::Usage> usage = DiskUsage(fs_dir);
  if (!absl::IsNotFound(usage.status()) || fs::Exists(fs_dir)) return usage;
  absl::StatusOr<metadata::Snapshot> now = store_->Get(key);
  if (!now.ok()) return usage.status();
  if (now->id != id) {
    return absl::AbortedError(
        absl::StrCat("snapshot ", metadata::QuoteKey(key),
                     " was removed and prepared again while it was measured"));
  }
  return absl::InternalError(absl::StrCat(
      "the directory of snapshot ", metadata::QuoteKey(key), " is missing (",
      usage.status().message(),
      "); its files are lost: remove the snapshot through containerd (a "
      "restart of the daemon makes an active snapshot's directory again, "
      "empty)"));
}

absl::Status OverlaySnapshotter::Walk(
    const std::vector<std::string>& filters,
    const std::function<absl::Status(const metadata::Info&)>& fn) {
  absl::StatusOr<metadata::Filter> filter = metadata::Filter::Parse(filters);
  if (!filter.ok()) return filter.status();
  return store_->Walk(*filter, [this, &fn](const metadata::Snapshot& snapshot) {
    if (!upperdir_label_) return fn(snapshot.info);
    return fn(WithUpperdirLabel(snapshot));
  });
}

absl::Status OverlaySnapshotter::Cleanup() {
  std::vector<absl::Status> stuck;
  if (absl::Status s = DiscardStrayDirectories(stuck); !s.ok()) return s;
  reclaimer_->Wake();
  return stuck.empty() ? absl::OkStatus() : stuck.front();
}

absl::Status OverlaySnapshotter::DiscardStrayDirectories(
    std::vector<absl::Status>& stuck) {
  // Directories first, in-flight ids second, known ids third. A create
  // registers its id before making its directory, so a listed directory of a
  // running create is in the in-flight set; one that finishes in between is
  // in the known set. (Taking the in-flight set before listing would miss a
  // create that starts in between and delete its fresh directory.)
  absl::StatusOr<std::vector<std::string>> entries = fs::ListDir(layout_.SnapshotsDir());
  if (!entries.ok()) return entries.status();
  absl::flat_hash_set<uint64_t> in_flight;
  {
    absl::MutexLock lock(&in_flight_mu_);
    in_flight = in_flight_;
  }
  absl::StatusOr<absl::flat_hash_set<uint64_t>> known = store_->DurableIds();
  if (!known.ok()) return known.status();
  // A snapshot's own directory the id index does not know: before it goes,
  // the records themselves are asked, so that an index that drifted (fsck's
  // missing-id-index) never costs a snapshot its files. Rare: Remove moves
  // its directory itself, so this is mostly a crashed create's.
  const bool unknown_final_dir =
      std::any_of(entries->begin(), entries->end(), [&](const std::string& e) {
        std::optional<uint64_t> id = Layout::IdOfEntry(e);
        return id && e == std::to_string(*id) && !known->contains(*id) &&
               !in_flight.contains(*id);
      });
  if (unknown_final_dir) {
    absl::StatusOr<absl::flat_hash_set<uint64_t>> recorded =
        store_->DurableRecordIds();
    if (!recorded.ok()) return recorded.status();
    known->insert(recorded->begin(), recorded->end());
  }
  CrashPoint("cleanup.after_list");

  for (const std::string& entry : *entries) {
    std::optional<uint64_t> id = Layout::IdOfEntry(entry);
    bool is_final = id && entry == std::to_string(*id);
    if (id && (in_flight.contains(*id) || (is_final && known->contains(*id)))) {
      continue;
    }
    std::string path = absl::StrCat(layout_.SnapshotsDir(), "/", entry);
    absl::Status s = reclaimer_->Discard(path, entry);
    if (!s.ok() && !absl::IsNotFound(s)) {
      spdlog::warn("cleanup: {}", s.ToString());
      stuck.push_back(std::move(s));
    } else if (s.ok()) {
      // A create's or a remove's directory is what a crash leaves;
      // anything not named by an id was not expected in snapshots/.
      const bool crash_leftover = id.has_value();
      spdlog::log(crash_leftover ? spdlog::level::info : spdlog::level::warn,
                  "cleanup: {} belongs to no snapshot; moved to the trash",
                  path);
    }
    CrashPoint("cleanup.after_remove_one");
  }
  return absl::OkStatus();
}

absl::StatusOr<SnapshotterStats> OverlaySnapshotter::Stats() {
  SnapshotterStats stats;
  absl::StatusOr<metadata::StoreStats> store_stats = store_->Stats();
  if (!store_stats.ok()) return store_stats.status();
  stats.store = *std::move(store_stats);
  // The backlog is what the reclaimer has yet to delete in trash/.
  absl::StatusOr<std::vector<std::string>> entries = fs::ListDir(layout_.TrashDir());
  if (!entries.ok()) return entries.status();
  stats.reclaim_backlog_directories = static_cast<int64_t>(entries->size());
  absl::MutexLock lock(&backlog_mu_);
  const absl::Time now = absl::Now();
  if (entries->empty()) {
    backlog_bytes_ = 0;
  } else if (now - backlog_measured_ >= kBacklogBytesInterval) {
    // A walk of everything left to delete: at most once per interval, so
    // frequent scrapes of a big backlog cost little and cannot be used to
    // keep the disk busy.
    backlog_bytes_ = 0;
    for (const std::string& entry : *entries) {
      // Entries may vanish while measured; what is left still counts.
      absl::StatusOr<metadata::Usage> usage =
          DiskUsage(absl::StrCat(layout_.TrashDir(), "/", entry));
      if (usage.ok()) backlog_bytes_ += usage->size;
    }
    backlog_measured_ = now;
  }
  stats.reclaim_backlog_bytes = backlog_bytes_;
  return stats;
}

metadata::Info OverlaySnapshotter::WithUpperdirLabel(metadata::Snapshot snapshot) const {
  if (upperdir_label_) {
    snapshot.info.labels[kUpperdirLabel] = layout_.FsDir(snapshot.id);
  }
  return std::move(snapshot.info);
}

}  // namespace cpp_overlay::snapshotter
