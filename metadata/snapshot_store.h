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
// Thread-safe. Reads do not take the writer lock.
#ifndef CPP_OVERLAY_METADATA_SNAPSHOT_STORE_H_
#define CPP_OVERLAY_METADATA_SNAPSHOT_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "metadata/filters.h"
#include "metadata/store_dump.h"
#include "metadata/types.h"

namespace rocksdb {
class DB;
class Env;
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
};

class SnapshotStore {
 public:
  // Opens (creating if needed) the database in directory `path`.
  // Unavailable when another process holds it open.
  static absl::StatusOr<std::unique_ptr<SnapshotStore>> Open(
      const std::string& path);
  ~SnapshotStore();

  SnapshotStore(const SnapshotStore&) = delete;
  SnapshotStore& operator=(const SnapshotStore&) = delete;

  // Hands out a fresh id for a snapshot about to be created. Ids are never
  // handed out twice by one process; one that is never used by Create is
  // simply skipped. After a crash an id whose Create never landed may be
  // handed out again, so callers must make its directory name free first.
  uint64_t ReserveId();

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
  // AlreadyExists: name taken. NotFound: key missing.
  // FailedPrecondition: key is not active. InvalidArgument: bad name/labels.
  absl::StatusOr<Snapshot> Commit(absl::string_view key, absl::string_view name,
                                  const Labels& labels, const Usage& usage);

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

  // Every id metadata knows, for Cleanup.
  absl::StatusOr<absl::flat_hash_set<uint64_t>> Ids() const;

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
                std::unique_ptr<rocksdb::DB> db, uint64_t next_id);

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
  absl::StatusOr<uint64_t> WriteLocked(rocksdb::WriteBatch& batch,
                                       absl::string_view what,
                                       absl::string_view key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Returns once every write up to `sequence` is durable, sharing one WAL
  // sync among concurrent callers.
  absl::Status SyncUpTo(uint64_t sequence) ABSL_LOCKS_EXCLUDED(sync_mu_);

  // The database's file system (write-ahead logs preallocated): it must
  // outlive db_.
  std::unique_ptr<rocksdb::Env> env_;
  std::unique_ptr<rocksdb::DB> db_;
  std::atomic<uint64_t> next_id_;
  // Serialises check-then-write sequences; RocksDB itself is thread-safe.
  absl::Mutex write_mu_;

  absl::Mutex sync_mu_;
  uint64_t synced_sequence_ ABSL_GUARDED_BY(sync_mu_) = 0;
  bool sync_running_ ABSL_GUARDED_BY(sync_mu_) = false;
  // Set when a log write or sync failed with an I/O error (disk full):
  // RocksDB refuses writes until Resume(), which the next write calls.
  std::atomic<bool> needs_resume_{false};

  // RocksDB's statistics, set by Open. SyncUpTo adds its WAL syncs' latency
  // (SyncWAL does not time itself); Stats reads them.
  std::shared_ptr<rocksdb::Statistics> statistics_;
};

}  // namespace cpp_overlay::metadata

#endif  // CPP_OVERLAY_METADATA_SNAPSHOT_STORE_H_
