// SnapshotStore: which snapshots exist, their kinds, parents, labels, times
// and usage. The only code that touches RocksDB.
//
// Every mutating call is one atomic RocksDB WriteBatch, and its write-ahead
// log is synced before the call returns OK: after a crash a change is either
// fully there or not at all. Checks and the write happen under one writer
// lock, so concurrent callers see containerd's single-writer semantics (one
// of two identical Prepares wins, the other gets AlreadyExists). The sync
// happens after the lock is released and is shared: concurrent callers wait
// for one WAL sync that covers all their writes (group commit). Because the
// log is written in lock order, a synced write also makes every earlier
// write durable, so nothing acknowledged can depend on a lost write.
//
// A failed sync is final: the write it was to cover is already visible to
// readers, and RocksDB cannot say what reached the disk. The store then
// refuses every later change (Unavailable) and tells its owner
// (StoreOptions::on_sync_failure), which should restart from what is on disk.
//
// Thread-safe. Reads do not take the writer lock.
#ifndef CPP_OVERLAY_METADATA_SNAPSHOT_STORE_H_
#define CPP_OVERLAY_METADATA_SNAPSHOT_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "metadata/filters.h"
#include "metadata/space_reserve.h"
#include "metadata/store_dump.h"
#include "metadata/types.h"

namespace rocksdb {
class DB;
class Env;
class FileSystem;
class Status;
struct ReadOptions;
class Statistics;
class WriteBatch;
}

namespace cpp_overlay::metadata {

// What SnapshotStore::Stats reports: record counts and RocksDB's own
// statistics since the database was opened.
struct StoreStats {
  // Distribution of one RocksDB timer, in microseconds.
  struct Timer {
    uint64_t count = 0;
    double sum_micros = 0;
    double p50_micros = 0;
    double p95_micros = 0;
    double p99_micros = 0;
  };
  int64_t active = 0;
  int64_t views = 0;
  int64_t committed = 0;
  Usage committed_usage;  // summed over committed snapshots
  Timer write;            // whole DB writes (rocksdb.db.write.micros)
  Timer wal_sync;         // WAL fsyncs (rocksdb.wal.file.sync.micros)
  uint64_t stall_micros = 0;  // writes held back by RocksDB's write stalls
  uint64_t sst_bytes = 0;     // size of all SST files
  bool space_reserve_held = false;  // see StoreOptions::space_reserve_path
};

struct StoreOptions {
  // Called once, by the caller whose write-ahead log sync failed, with the
  // status every later change gets. Must not call back into the store.
  std::function<void(const absl::Status&)> on_sync_failure;
  // Where to keep the space reserve (space_reserve.h); empty: none. Short
  // of space (no reserve), only removals are written.
  std::string space_reserve_path;
  // Opens to read only (fsck without --repair): nothing is written, so it
  // works on a read-only or full filesystem, and every change fails. A
  // daemon holding the database makes Open fail with Unavailable, and one
  // cannot start while the store is open.
  bool read_only = false;
  // For tests: wraps the file system the database uses (to inject faults).
  std::function<std::shared_ptr<rocksdb::FileSystem>(
      std::shared_ptr<rocksdb::FileSystem>)>
      wrap_file_system;
};

class SnapshotStore {
 public:
  // Opens (creating if needed) the database in directory `path`.
  // Unavailable when another process holds it open.
  static absl::StatusOr<std::unique_ptr<SnapshotStore>> Open(
      const std::string& path, StoreOptions options = {});
  ~SnapshotStore();

  SnapshotStore(const SnapshotStore&) = delete;
  SnapshotStore& operator=(const SnapshotStore&) = delete;

  // Hands out a fresh id for a snapshot about to be created. Ids are never
  // handed out twice by one process; one that is never used by Create is
  // simply skipped. After a crash an id whose Create never landed may be
  // handed out again, so callers must make its directory name free first.
  uint64_t ReserveId();
  // Every id handed out so far is below this.
  uint64_t PeekNextId() const { return next_id_.load(); }

  // Snapshots with an id below this may have lost files to a failed
  // filesystem sync and must never be committed (0: none). Kept across
  // restarts; ids handed out later are never below it.
  uint64_t UnsyncedBelow() const { return unsynced_below_.load(); }
  // Raises that mark to `id` (never lowers it): in memory at once, then as
  // a synced write, written even when the disk is short of space. Until a
  // write of it lands, every other write carries it, so no change is
  // acknowledged before the mark is durable. An error means it is not
  // durable yet.
  absl::Status RaiseUnsyncedBelow(uint64_t id);

  // Checks, without writing, that Create(kind, key, parent, ...) would pass
  // its checks now, and returns the parent's id (nullopt without a parent).
  // Same codes as Create.
  absl::StatusOr<std::optional<uint64_t>> CheckCreate(absl::string_view key,
                                                      absl::string_view parent) const;

  // Records a new view or active snapshot with id `id` (from ReserveId).
  // NotFound: parent missing. AlreadyExists: key taken.
  // InvalidArgument: empty key, parent not committed, bad labels, or a kind
  // other than view/active.
  absl::StatusOr<Snapshot> Create(Kind kind, absl::string_view key,
                                  absl::string_view parent, const Labels& labels,
                                  uint64_t id);

  // Turns active snapshot `key` into committed snapshot `name`, keeping its
  // id; `labels` replace the old ones (containerd does not inherit them).
  // Checked in containerd's order: NotFound: key missing. InvalidArgument:
  // bad name/labels. AlreadyExists: name taken. FailedPrecondition: key is
  // not active. Aborted: `key` is no longer snapshot `measured_id` (removed
  // and prepared again since `usage` was measured), when given.
  absl::StatusOr<Snapshot> Commit(
      absl::string_view key, absl::string_view name, const Labels& labels,
      const Usage& usage, std::optional<uint64_t> measured_id = std::nullopt);

  // Deletes `key`'s record. NotFound: missing. FailedPrecondition: it has
  // children. Returns what was removed, so its directory can go next.
  absl::StatusOr<Snapshot> Remove(absl::string_view key);

  // Applies containerd's Update semantics to `key`'s labels (see
  // ApplyLabelUpdate) and refreshes its updated time.
  absl::StatusOr<Snapshot> Update(absl::string_view key, const Labels& labels,
                                  const std::vector<std::string>& paths);

  // NotFound when missing.
  absl::StatusOr<Snapshot> Get(absl::string_view key) const;

  // Calls `fn` for every snapshot matching `filter`, in key order, from one
  // consistent point in time. Stops early, returning its status, when `fn`
  // fails.
  absl::Status Walk(const Filter& filter,
                    const std::function<absl::Status(const Snapshot&)>& fn) const;

  // Whether the space reserve is held; false when there is none or the
  // disk was too full for it (then only Remove is written).
  bool HoldsSpaceReserve() const;
  // Why the store goes without a space reserve although it was asked for
  // one (e.g. the file could not be made for another reason than space).
  absl::Status SpaceReserveError();

  // Every id metadata knows, for Cleanup, as of a point in time that is
  // synced first: an id missing here is gone for good, also after a power
  // cut, so its directory may be deleted (a Remove written but not yet
  // synced must not lose a directory its record comes back to).
  absl::StatusOr<absl::flat_hash_set<uint64_t>> DurableIds();
  // The same from the snapshot records themselves, not the id index (which
  // they are written with): slower, for a directory the index does not
  // know. DataLoss when a record cannot be decoded (its id is unknown).
  absl::StatusOr<absl::flat_hash_set<uint64_t>> DurableRecordIds();

  // True when some snapshot has `id` as its parent.
  absl::StatusOr<bool> HasChildren(uint64_t id) const;

  // Counts by kind and committed usage (walks every record, from one point
  // in time), plus RocksDB statistics. For metrics and operators.
  absl::StatusOr<StoreStats> Stats() const;

  // For fsck (store_check.h): every entry as stored, from one point in time,
  // including entries normal calls would reject.
  absl::StatusOr<StoreDump> Dump() const;

  // For fsck --repair: applies `repair` as one synced batch under the writer
  // lock, without the checks of the calls above.
  absl::Status ApplyRepair(const StoreRepair& repair);

 private:
  SnapshotStore(std::unique_ptr<rocksdb::Env> env,
                std::unique_ptr<rocksdb::DB> db, uint64_t next_id,
                std::unique_ptr<SpaceReserve> reserve);

  // The record of `key` as RocksDB has it now; no lock of ours. Writers call
  // it under write_mu_, so what they read cannot change before their write.
  absl::StatusOr<Snapshot> Read(absl::string_view key) const;
  // The same from the point in time `options` names.
  absl::StatusOr<Snapshot> Read(absl::string_view key,
                                const rocksdb::ReadOptions& options) const;
  // Create's checks; returns the parent's record (nullopt without a parent).
  absl::StatusOr<std::optional<Snapshot>> ReadCreateParent(
      absl::string_view key, absl::string_view parent) const;

  // Walk through the label index: the snapshots `lookups` find, in key
  // order, that match `filter`.
  absl::Status WalkLabelIndex(
      const rocksdb::ReadOptions& options,
      const std::vector<Filter::LabelLookup>& lookups, const Filter& filter,
      const std::function<absl::Status(const Snapshot&)>& fn) const;

  // Applies `batch` without syncing; returns the sequence number to sync
  // up to. Call with write_mu_ held.
  // `frees_space`: a removal, written even when the disk is full (with
  // the space reserve's blocks).
  absl::StatusOr<uint64_t> WriteLocked(rocksdb::WriteBatch& batch,
                                       absl::string_view what,
                                       absl::string_view key,
                                       bool frees_space = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Adds to `batch` a raised unsynced mark that no write has carried yet
  // (so no change becomes durable before it); returns it, 0 for none. The
  // caller records it in written_unsynced_below_ once the batch is written.
  uint64_t CarryPendingMarkLocked(rocksdb::WriteBatch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Makes the space reserve if it is missing and there is room. True when
  // it is wanted but there is too little space for it (only removals are
  // then written); an error other than space disables it, and is kept for
  // SpaceReserveError.
  bool ShortOfSpaceLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Resume() after a failed log write; with `wait`, for up to 10 s while
  // RocksDB is still recovering by itself (it polls for free space).
  rocksdb::Status ResumeLocked(bool wait)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Returns once every write up to `sequence` is durable, sharing one WAL
  // sync among concurrent callers.
  absl::Status SyncUpTo(uint64_t sequence) ABSL_LOCKS_EXCLUDED(sync_mu_);
  // The id of one entry under a scanned prefix; nullopt past the prefix.
  using IdOfEntry = std::function<absl::StatusOr<std::optional<uint64_t>>(
      absl::string_view key, absl::string_view value)>;
  // Ids of every entry under `prefix`, as of a point in time synced first.
  absl::StatusOr<absl::flat_hash_set<uint64_t>> ScanDurableIds(
      absl::string_view prefix, const IdOfEntry& id_of);

  // The database's file system (write-ahead logs preallocated): it must
  // outlive db_.
  std::unique_ptr<rocksdb::Env> env_;
  std::unique_ptr<rocksdb::DB> db_;
  std::atomic<uint64_t> next_id_;
  std::atomic<uint64_t> unsynced_below_{0};
  // The largest unsynced mark written to the log so far.
  uint64_t written_unsynced_below_ ABSL_GUARDED_BY(write_mu_) = 0;
  // Serialises check-then-write sequences; RocksDB itself is thread-safe.
  absl::Mutex write_mu_;

  absl::Mutex sync_mu_;
  uint64_t synced_sequence_ ABSL_GUARDED_BY(sync_mu_) = 0;
  bool sync_running_ ABSL_GUARDED_BY(sync_mu_) = false;
  // Set when a log write failed with an I/O error (disk full): RocksDB
  // refuses writes until Resume(), which the next write calls.
  std::atomic<bool> needs_resume_{false};
  // Set at construction; changed (Ensure, Release, Disable) only under
  // write_mu_, while held() may be read from anywhere.
  const std::unique_ptr<SpaceReserve> reserve_;
  absl::Status space_reserve_error_ ABSL_GUARDED_BY(write_mu_);
  absl::Time last_resume_timeout_ ABSL_GUARDED_BY(write_mu_) =
      absl::InfinitePast();
  // Read-only: the descriptor holding a shared lock on LOCK (-1: none).
  int read_only_lock_fd_ = -1;
  bool read_only_ = false;
  // Writable: the path it was opened at (see OpenForWriting).
  std::string path_;
  // Set, for good, when a sync failed; every later change gets it.
  absl::Status sync_failure_ ABSL_GUARDED_BY(sync_mu_);
  std::atomic<bool> sync_failed_{false};
  std::function<void(const absl::Status&)> on_sync_failure_;

  // RocksDB's statistics, set by Open. SyncUpTo adds its WAL syncs' latency
  // (SyncWAL does not time itself); Stats reads them.
  std::shared_ptr<rocksdb::Statistics> statistics_;
};

}  // namespace cpp_overlay::metadata

#endif  // CPP_OVERLAY_METADATA_SNAPSHOT_STORE_H_
