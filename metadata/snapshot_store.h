// SnapshotStore: which snapshots exist, their kinds, parents, labels, times
// and usage. The only code that touches RocksDB.
//
// Every mutating call is one atomic RocksDB WriteBatch written with
// sync=true before the call returns OK: after a crash a change is either
// fully there or not at all. Checks and the write happen under one writer
// lock, so concurrent callers see containerd's single-writer semantics (one
// of two identical Prepares wins, the other gets AlreadyExists).
//
// Thread-safe. Reads do not take the writer lock.
#ifndef CPP_OVERLAY_METADATA_SNAPSHOT_STORE_H_
#define CPP_OVERLAY_METADATA_SNAPSHOT_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "metadata/filters.h"
#include "metadata/types.h"

namespace rocksdb {
class DB;
}

namespace cpp_overlay::metadata {

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
  // its checks now. Same codes as Create.
  absl::Status CheckCreate(absl::string_view key, absl::string_view parent) const;

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

 private:
  explicit SnapshotStore(std::unique_ptr<rocksdb::DB> db, uint64_t next_id);

  absl::StatusOr<Snapshot> GetLocked(absl::string_view key) const;

  std::unique_ptr<rocksdb::DB> db_;
  std::atomic<uint64_t> next_id_;
  // Serialises check-then-write sequences; RocksDB itself is thread-safe.
  absl::Mutex write_mu_;
};

}  // namespace cpp_overlay::metadata

#endif  // CPP_OVERLAY_METADATA_SNAPSHOT_STORE_H_
