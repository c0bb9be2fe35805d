#include "metadata/snapshot_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "metadata/errors.h"
#include "metadata/keys.h"
#include "metadata/labels.h"
#include "metadata/preallocated_wal.h"
#include "metadata/record_codec.h"
#include "metadata/rocksdb_status.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/snapshot.h"
#include "rocksdb/statistics.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace cpp_overlay::metadata {
namespace {

// Durability comes from SyncUpTo after the writer lock is released.
rocksdb::WriteOptions UnsyncedWrite() {
  rocksdb::WriteOptions options;
  options.sync = false;
  return options;
}

rocksdb::Slice ToSlice(absl::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

absl::string_view FromSlice(const rocksdb::Slice& s) {
  return absl::string_view(s.data(), s.size());
}

// The value stored at `db_key`; nullopt when there is none.
absl::StatusOr<std::optional<std::string>> ReadValue(rocksdb::DB& db,
                                                     absl::string_view db_key) {
  std::string stored;
  rocksdb::Status s = db.Get(rocksdb::ReadOptions(), ToSlice(db_key), &stored);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return FromRocksDB(s, absl::StrCat("read ", db_key));
  return stored;
}

// The largest id any record uses, plus one; at least the stored next id.
absl::StatusOr<uint64_t> RecoverNextId(rocksdb::DB& db) {
  uint64_t next = 1;
  absl::StatusOr<std::optional<std::string>> stored =
      ReadValue(db, keys::kNextId);
  if (!stored.ok()) return stored.status();
  if (*stored) {
    if (auto id = keys::DecodeId(**stored)) next = std::max(next, *id);
  }
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions()));
  // Ids are big-endian, so the last "i/" key holds the largest.
  it->SeekForPrev(
      ToSlice(absl::StrCat(keys::kIdPrefix, std::string(8, '\xff'))));
  if (it->Valid()) {
    if (auto id = keys::IdOf(FromSlice(it->key())))
      next = std::max(next, *id + 1);
  }
  if (!it->status().ok()) return FromRocksDB(it->status(), "scan ids");
  return next;
}

// "<what> snapshot <key>", or `what` alone for a write of no snapshot's.
std::string WriteSubject(absl::string_view what, absl::string_view key) {
  if (key.empty()) return std::string(what);
  return absl::StrCat(what, " snapshot ", QuoteKey(key));
}

struct IdsAtOpen {
  uint64_t next_id = 1;
  uint64_t unsynced_below = 0;
  // The stored mark did not decode: the first write replaces it.
  bool rewrite_mark = false;
};

// The next id is never below the unsynced mark, so no new snapshot falls
// below it (ids handed out but never created are not stored).
absl::StatusOr<IdsAtOpen> ReadIdsAtOpen(rocksdb::DB& db) {
  IdsAtOpen ids;
  absl::StatusOr<uint64_t> next = RecoverNextId(db);
  if (!next.ok()) return next.status();
  absl::StatusOr<std::optional<std::string>> mark =
      ReadValue(db, keys::kUnsyncedBelow);
  if (!mark.ok()) return mark.status();
  if (*mark) {
    // One that does not decode is read as covering every snapshot so far:
    // refusing a Commit loses nothing, committing lost files would (fsck
    // reports the key).
    std::optional<uint64_t> id = keys::DecodeId(**mark);
    ids.rewrite_mark = !id;
    ids.unsynced_below = id.value_or(*next);
  }
  ids.next_id = std::max(*next, ids.unsynced_below);
  return ids;
}

// An iterator over the keys that start with `prefix`, and no further. The
// bound matters for speed, not only for correctness: a Seek that finds no
// live key in the range would otherwise step over every deletion marker
// after it, and each Remove leaves markers until compaction drops them, so
// containerd's garbage collector removing snapshot after snapshot made each
// children check slower than the last.
class PrefixIterator {
 public:
  PrefixIterator(const rocksdb::DB& db, rocksdb::ReadOptions options,
                 absl::string_view prefix)
      : prefix_(prefix), end_(prefix) {
    // The smallest key above every key with the prefix: drop trailing 0xff
    // bytes and increment the last other one (none left: no bound).
    while (!end_.empty() && static_cast<unsigned char>(end_.back()) == 0xff) end_.pop_back();
    if (!end_.empty()) {
      end_.back() = static_cast<char>(static_cast<unsigned char>(end_.back()) + 1);
      end_slice_ = rocksdb::Slice(end_);
      options.iterate_upper_bound = &end_slice_;
    }
    it_.reset(const_cast<rocksdb::DB&>(db).NewIterator(options));
    it_->Seek(ToSlice(prefix_));
  }

  bool Valid() const { return it_->Valid() && it_->key().starts_with(ToSlice(prefix_)); }
  void Next() { it_->Next(); }
  absl::string_view key() const { return FromSlice(it_->key()); }
  absl::string_view value() const { return FromSlice(it_->value()); }
  rocksdb::Status status() const { return it_->status(); }

 private:
  const std::string prefix_;
  std::string end_;
  rocksdb::Slice end_slice_;  // points into end_; the iterator keeps a pointer to it
  std::unique_ptr<rocksdb::Iterator> it_;
};

// The label index entries (keys.h) of `snapshot`'s labels.
void PutLabelEntries(rocksdb::WriteBatch& batch, const Snapshot& snapshot) {
  for (const auto& [key, value] : snapshot.info.labels) {
    batch.Put(keys::Label(key, value, snapshot.id), ToSlice(snapshot.info.name));
  }
}

void DeleteLabelEntries(rocksdb::WriteBatch& batch, const Snapshot& snapshot) {
  for (const auto& [key, value] : snapshot.info.labels) {
    batch.Delete(keys::Label(key, value, snapshot.id));
  }
}

// Roots written before the label index existed get it in one synced batch,
// with the marker that says it is complete. Records that do not decode are
// left out (fsck reports them).
absl::Status EnsureLabelIndex(rocksdb::DB& db) {
  std::string ready;
  rocksdb::Status s =
      db.Get(rocksdb::ReadOptions(), ToSlice(keys::kLabelIndexReady), &ready);
  if (s.ok()) return absl::OkStatus();
  if (!s.IsNotFound()) return FromRocksDB(s, "read label index marker");
  rocksdb::WriteBatch batch;
  PrefixIterator it(db, rocksdb::ReadOptions(), keys::kSnapshotPrefix);
  for (; it.Valid(); it.Next()) {
    absl::StatusOr<Snapshot> snapshot = DecodeRecord(*keys::SnapshotKeyOf(it.key()), it.value());
    if (snapshot.ok()) PutLabelEntries(batch, *snapshot);
  }
  if (!it.status().ok()) return FromRocksDB(it.status(), "build label index");
  batch.Put(ToSlice(keys::kLabelIndexReady), "1");
  rocksdb::WriteOptions options;
  options.sync = true;
  s = db.Write(options, &batch);
  if (!s.ok()) return FromRocksDB(s, "build label index");
  return absl::OkStatus();
}

// Discards RocksDB's info log instead of writing the LOG file on the root's
// filesystem: once a LOG write fails for lack of space, Debian's RocksDB
// (built with assertions) aborts the daemon on the next log line. Failures
// still reach callers as statuses.
class NoInfoLog : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char*, va_list) override {}
};

// Paths of the databases this process has open for writing, as given to
// Open (the daemon and fsck always pass <root>/metadata).
class PathRegistry {
 public:
  bool contains(const std::string& path) {
    absl::MutexLock lock(&mu_);
    return paths_.contains(path);
  }
  void insert(const std::string& path) {
    absl::MutexLock lock(&mu_);
    paths_.insert(path);
  }
  void erase(const std::string& path) {
    absl::MutexLock lock(&mu_);
    paths_.erase(path);
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_set<std::string> paths_ ABSL_GUARDED_BY(mu_);
};

PathRegistry& OpenForWriting() {
  static PathRegistry* registry = new PathRegistry;
  return *registry;
}

// A shared open-file-description lock on `db_path`/LOCK, which a daemon's
// RocksDB holds exclusively (fcntl write lock): Unavailable while one does.
// OFD locks conflict with that lock also within one process. Returns the
// descriptor holding the lock (-1 when there is no LOCK file yet).
absl::StatusOr<int> TakeSharedLock(const std::string& db_path) {
  const std::string lock_path = db_path + "/LOCK";
  int fd = open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return -1;
    return absl::InternalError(
        absl::StrCat("open ", lock_path, ": ", std::strerror(errno)));
  }
  struct flock lock {};
  lock.l_type = F_RDLCK;
  lock.l_whence = SEEK_SET;
  if (fcntl(fd, F_OFD_SETLK, &lock) != 0) {
    const int error = errno;
    close(fd);
    if (error == EAGAIN || error == EACCES) {
      return absl::UnavailableError(absl::StrCat(
          "metadata database ", db_path, " is in use by another process (",
          lock_path, " is locked)"));
    }
    return absl::InternalError(
        absl::StrCat("lock ", lock_path, ": ", std::strerror(error)));
  }
  return fd;
}

// RocksDB marks most out-of-space errors with kNoSpace, but some paths
// (files written at open) keep only errno's text.
bool IsOutOfSpace(const rocksdb::Status& s) {
  return s.IsNoSpace() ||
         (s.IsIOError() &&
          absl::StrContains(s.ToString(), "No space left on device"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SnapshotStore>> SnapshotStore::Open(
    const std::string& path, StoreOptions store_options) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.info_log = std::make_shared<NoInfoLog>();
  options.keep_log_file_num = 4;
  // No fallocate of table and manifest files: RocksDB reserves 1.1 times
  // the target table size (70 MiB) per new table, which on a nearly full
  // disk takes every free block until the file is closed, so the next file
  // of the same open or flush fails. Our tables are small; the write-ahead
  // log has its own preallocation (preallocated_wal.h).
  options.allow_fallocate = false;
  options.max_log_file_size = 4 << 20;
  // Each write-ahead log gets its space written out ahead of the records
  // (preallocated_wal.h): a record's sync is then one flush, not a journal
  // commit. In 1 MiB chunks: one journal commit per ~3,000 records, and
  // little space taken ahead on a small or nearly full disk.
  std::shared_ptr<rocksdb::FileSystem> file_system =
      NewPreallocatedWalFileSystem(rocksdb::FileSystem::Default(), 1 << 20);
  if (store_options.wrap_file_system) {
    file_system = store_options.wrap_file_system(std::move(file_system));
  }
  std::unique_ptr<rocksdb::Env> env =
      rocksdb::NewCompositeEnv(std::move(file_system));
  options.env = env.get();
  // Write and sync latency and stall time, for metrics (SnapshotStore::Stats).
  options.statistics = rocksdb::CreateDBStatistics();
  // Small memtables and cache: metadata records are a few hundred bytes.
  // Memtables are the heap's high-water mark: with 100,000 snapshots, 2 MiB
  // memtables keep resident memory 3 MiB below 4 MiB ones (39-40 MiB, the
  // reference's 40 MiB). A creation is about 600 bytes of batch, so one
  // fills in about a second of nonstop unpacking, far slower than a flush.
  options.write_buffer_size = 2 << 20;
  options.max_write_buffer_number = 2;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(4 << 20);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  if (store_options.read_only) {
    // RocksDB's read-only open takes no lock and writes nothing, so it works
    // on a read-only or full filesystem; a daemon is kept out (and detected)
    // by a shared lock on the LOCK file it locks exclusively.
    // A descriptor of LOCK closed by this process drops this process's
    // RocksDB lock on it: never open it while this process holds it.
    if (OpenForWriting().contains(path)) {
      return absl::UnavailableError(absl::StrCat("metadata database ", path,
                                                 " is in use by this process"));
    }
    absl::StatusOr<int> lock_fd = TakeSharedLock(path);
    if (!lock_fd.ok()) return lock_fd.status();
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::OpenForReadOnly(options, path, &raw);
    if (!s.ok()) {
      close(*lock_fd);
      return FromRocksDB(
          s, absl::StrCat("open metadata database ", path, " to read"));
    }
    std::unique_ptr<rocksdb::DB> db(raw);
    absl::StatusOr<IdsAtOpen> ids = ReadIdsAtOpen(*db);
    if (!ids.ok()) {
      close(*lock_fd);
      return ids.status();
    }
    std::unique_ptr<SnapshotStore> store(
        new SnapshotStore(std::move(env), std::move(db), ids->next_id,
                          std::make_unique<SpaceReserve>("")));
    store->unsynced_below_ = ids->unsynced_below;
    store->read_only_lock_fd_ = *lock_fd;
    store->read_only_ = true;
    store->statistics_ = options.statistics;
    return store;
  }
  auto reserve =
      std::make_unique<SpaceReserve>(store_options.space_reserve_path);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  // RocksDB writes new files at open: on a full disk the reserve's blocks
  // let it, so the daemon starts and can take the Removes that free space.
  if (IsOutOfSpace(s) && reserve->Release())
    s = rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) {
    // Held by another process ("Resource temporarily unavailable"), or by
    // this one; any other failure to make or lock LOCK (a read-only or full
    // filesystem) is told as it is.
    const std::string text = s.ToString();
    if (s.IsIOError() &&
        (absl::StrContains(text, "lock hold by current process") ||
         (absl::StrContains(text, "/LOCK") &&
          absl::StrContains(text, "Resource temporarily unavailable")))) {
      return absl::UnavailableError(absl::StrCat(
          "metadata database ", path, " is in use by another process: ", text));
    }
    return FromRocksDB(s, absl::StrCat("open metadata database ", path));
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  if (absl::Status built = EnsureLabelIndex(*db); !built.ok()) return built;
  absl::StatusOr<IdsAtOpen> ids = ReadIdsAtOpen(*db);
  if (!ids.ok()) return ids.status();
  std::unique_ptr<SnapshotStore> store(new SnapshotStore(
      std::move(env), std::move(db), ids->next_id, std::move(reserve)));
  store->unsynced_below_ = ids->unsynced_below;
  store->statistics_ = options.statistics;
  store->on_sync_failure_ = std::move(store_options.on_sync_failure);
  store->path_ = path;
  OpenForWriting().insert(path);
  {
    absl::MutexLock lock(&store->write_mu_);
    store->written_unsynced_below_ =
        ids->rewrite_mark ? 0 : ids->unsynced_below;
    // Too little space to make it is not an error: writes then wait for it.
    store->ShortOfSpaceLocked();
  }
  return store;
}

SnapshotStore::SnapshotStore(std::unique_ptr<rocksdb::Env> env,
                             std::unique_ptr<rocksdb::DB> db, uint64_t next_id,
                             std::unique_ptr<SpaceReserve> reserve)
    : env_(std::move(env)),
      db_(std::move(db)),
      next_id_(next_id),
      reserve_(std::move(reserve)) {}

SnapshotStore::~SnapshotStore() {
  // A raised mark whose write failed and that no write has carried since
  // gets a last try, or a restart would forget it.
  if (db_ && !read_only_) {
    bool pending;
    {
      absl::MutexLock lock(&write_mu_);
      pending = unsynced_below_.load() > written_unsynced_below_;
    }
    if (pending) RaiseUnsyncedBelow(0).IgnoreError();
  }
  if (db_) {
    db_->Close().PermitUncheckedError();
  }
  if (read_only_lock_fd_ >= 0) close(read_only_lock_fd_);
  if (!path_.empty()) OpenForWriting().erase(path_);
}

uint64_t SnapshotStore::ReserveId() { return next_id_.fetch_add(1); }

uint64_t SnapshotStore::CarryPendingMarkLocked(rocksdb::WriteBatch& batch) {
  const uint64_t mark = unsynced_below_.load();
  if (mark <= written_unsynced_below_) return 0;
  batch.Put(ToSlice(keys::kUnsyncedBelow), keys::EncodeId(mark));
  return mark;
}

absl::Status SnapshotStore::RaiseUnsyncedBelow(uint64_t id) {
  uint64_t sequence;
  {
    absl::MutexLock lock(&write_mu_);
    // In memory first, so Commits see it at once; under the writer lock, so
    // every write from here on carries it until one lands (WriteLocked).
    if (id > unsynced_below_.load()) unsynced_below_.store(id);
    if (written_unsynced_below_ < unsynced_below_.load()) {
      rocksdb::WriteBatch batch;  // WriteLocked adds the mark
      // Written like a removal when short of space: the disk that failed a
      // sync may well be the full one.
      absl::StatusOr<uint64_t> written =
          WriteLocked(batch, "record a failed filesystem sync", /*key=*/"",
                      /*frees_space=*/true);
      if (!written.ok()) return written.status();
      sequence = *written;
    } else {
      // Already in the log, maybe not yet synced.
      sequence = db_->GetLatestSequenceNumber();
    }
  }
  return SyncUpTo(sequence);
}

absl::StatusOr<Snapshot> SnapshotStore::Get(absl::string_view key) const {
  return Read(key);
}

absl::StatusOr<Snapshot> SnapshotStore::Read(absl::string_view key) const {
  return Read(key, rocksdb::ReadOptions());
}

absl::StatusOr<Snapshot> SnapshotStore::Read(absl::string_view key,
                                             const rocksdb::ReadOptions& options) const {
  std::string value;
  rocksdb::Status s = db_->Get(options, ToSlice(keys::Snapshot(key)), &value);
  if (s.IsNotFound()) return SnapshotNotFound(key);
  if (!s.ok())
    return FromRocksDB(s, absl::StrCat("read snapshot ", QuoteKey(key)));
  return DecodeRecord(key, value);
}

absl::StatusOr<std::optional<uint64_t>> SnapshotStore::CheckCreate(
    absl::string_view key, absl::string_view parent) const {
  absl::StatusOr<std::optional<Snapshot>> p = ReadCreateParent(key, parent);
  if (!p.ok()) return p.status();
  if (!p->has_value()) return std::optional<uint64_t>();
  return std::optional<uint64_t>((*p)->id);
}

absl::StatusOr<std::optional<Snapshot>> SnapshotStore::ReadCreateParent(
    absl::string_view key, absl::string_view parent) const {
  if (key.empty()) return InvalidRequest("snapshot key must not be empty");
  // containerd's order: the parent, then the key.
  std::optional<Snapshot> parent_record;
  if (!parent.empty()) {
    absl::StatusOr<Snapshot> p = Read(parent);
    if (absl::IsNotFound(p.status())) return ParentNotFound(key, parent);
    if (!p.ok()) return p.status();
    if (p->info.kind != Kind::kCommitted) return ParentNotCommitted(key, parent);
    parent_record = *std::move(p);
  }
  absl::StatusOr<Snapshot> existing = Read(key);
  if (existing.ok()) return SnapshotExists(key);
  if (!absl::IsNotFound(existing.status())) return existing.status();
  return parent_record;
}

absl::StatusOr<Snapshot> SnapshotStore::Create(Kind kind, absl::string_view key,
                                               absl::string_view parent,
                                               const Labels& labels,
                                               uint64_t id) {
  if (kind != Kind::kActive && kind != Kind::kView) {
    return InvalidRequest("only active and view snapshots can be created");
  }
  absl::StatusOr<Labels> stored_labels = StoredLabels(labels);
  if (!stored_labels.ok()) return stored_labels.status();

  Snapshot snapshot;
  uint64_t sequence;
  {
    absl::MutexLock lock(&write_mu_);
    absl::StatusOr<std::optional<Snapshot>> p = ReadCreateParent(key, parent);
    if (!p.ok()) return p.status();

    snapshot.id = id;
    snapshot.info.name = std::string(key);
    snapshot.info.parent = std::string(parent);
    snapshot.info.kind = kind;
    snapshot.info.labels = *std::move(stored_labels);
    snapshot.info.created = snapshot.info.updated = absl::Now();
    if (absl::Status s = ValidateInfoSize(snapshot.info); !s.ok()) return s;

    rocksdb::WriteBatch batch;
    if (const std::optional<Snapshot>& parent_record = *p) {
      snapshot.ancestor_ids.reserve(parent_record->ancestor_ids.size() + 1);
      snapshot.ancestor_ids.push_back(parent_record->id);
      snapshot.ancestor_ids.insert(snapshot.ancestor_ids.end(),
                                   parent_record->ancestor_ids.begin(),
                                   parent_record->ancestor_ids.end());
      batch.Put(keys::Child(parent_record->id, id), rocksdb::Slice());
    }
    batch.Put(keys::Snapshot(key), EncodeRecord(snapshot));
    batch.Put(keys::Id(id), ToSlice(key));
    PutLabelEntries(batch, snapshot);
    // Ids are never reused, even after the highest one is removed.
    uint64_t next = std::max(next_id_.load(), id + 1);
    batch.Put(ToSlice(keys::kNextId), keys::EncodeId(next));
    absl::StatusOr<uint64_t> written = WriteLocked(batch, "create", key);
    if (!written.ok()) return written.status();
    sequence = *written;
  }
  if (absl::Status s = SyncUpTo(sequence); !s.ok()) return s;
  return snapshot;
}

absl::StatusOr<Snapshot> SnapshotStore::Commit(
    absl::string_view key, absl::string_view name, const Labels& labels,
    const Usage& usage, std::optional<uint64_t> measured_id) {
  Snapshot committed;
  uint64_t sequence;
  {
    absl::MutexLock lock(&write_mu_);
    // containerd's order: its overlay Commit looks the key up first, then
    // storage.CommitActive checks the name, the key again and the kind.
    absl::StatusOr<Snapshot> active = Read(key);
    if (!active.ok()) return active.status();
    if (name.empty())
      return InvalidRequest("committed snapshot name must not be empty");
    absl::StatusOr<Labels> stored_labels = StoredLabels(labels);
    if (!stored_labels.ok()) return stored_labels.status();
    absl::StatusOr<Snapshot> taken = Read(name);
    if (taken.ok()) return SnapshotExists(name);
    if (!absl::IsNotFound(taken.status())) return taken.status();
    if (active->info.kind != Kind::kActive) {
      return WrongKind(key, "commit", "snapshot is not active");
    }
    if (measured_id && active->id != *measured_id) {
      return absl::AbortedError(absl::StrCat(
          "commit of snapshot ", QuoteKey(key),
          ": it was removed and prepared again while it was measured"));
    }

    rocksdb::WriteBatch batch;
    DeleteLabelEntries(batch, *active);
    committed = *std::move(active);
    committed.info.name = std::string(name);
    committed.info.kind = Kind::kCommitted;
    committed.info.labels = *std::move(stored_labels);
    committed.info.created = committed.info.updated = absl::Now();
    committed.usage = usage;
    if (absl::Status s = ValidateInfoSize(committed.info); !s.ok()) return s;

    batch.Delete(keys::Snapshot(key));
    batch.Put(keys::Snapshot(name), EncodeRecord(committed));
    batch.Put(keys::Id(committed.id), ToSlice(name));
    PutLabelEntries(batch, committed);
    absl::StatusOr<uint64_t> written = WriteLocked(batch, "commit", key);
    if (!written.ok()) return written.status();
    sequence = *written;
  }
  if (absl::Status s = SyncUpTo(sequence); !s.ok()) return s;
  return committed;
}

absl::StatusOr<Snapshot> SnapshotStore::Remove(absl::string_view key) {
  absl::StatusOr<Snapshot> snapshot;
  uint64_t sequence;
  {
    absl::MutexLock lock(&write_mu_);
    snapshot = Read(key);
    if (!snapshot.ok()) return snapshot.status();
    absl::StatusOr<bool> has_children = HasChildren(snapshot->id);
    if (!has_children.ok()) return has_children.status();
    if (*has_children) return metadata::HasChildren(key);

    rocksdb::WriteBatch batch;
    batch.Delete(keys::Snapshot(key));
    batch.Delete(keys::Id(snapshot->id));
    DeleteLabelEntries(batch, *snapshot);
    if (std::optional<uint64_t> parent_id = snapshot->parent_id()) {
      batch.Delete(keys::Child(*parent_id, snapshot->id));
    }
    absl::StatusOr<uint64_t> written =
        WriteLocked(batch, "remove", key, /*frees_space=*/true);
    if (!written.ok()) return written.status();
    sequence = *written;
  }
  if (absl::Status s = SyncUpTo(sequence); !s.ok()) return s;
  return snapshot;
}

absl::StatusOr<Snapshot> SnapshotStore::Update(
    absl::string_view key, const Labels& labels,
    const std::vector<std::string>& paths) {
  absl::StatusOr<Snapshot> snapshot;
  uint64_t sequence;
  {
    absl::MutexLock lock(&write_mu_);
    snapshot = Read(key);
    if (!snapshot.ok()) return snapshot.status();
    absl::StatusOr<Labels> updated =
        ApplyLabelUpdate(snapshot->info.labels, labels, paths, key);
    if (!updated.ok()) return updated.status();
    rocksdb::WriteBatch batch;
    // A Put after a Delete of the same entry wins, so unchanged labels stay.
    DeleteLabelEntries(batch, *snapshot);
    snapshot->info.labels = *std::move(updated);
    snapshot->info.updated = absl::Now();
    if (absl::Status s = ValidateInfoSize(snapshot->info); !s.ok()) return s;
    PutLabelEntries(batch, *snapshot);
    batch.Put(keys::Snapshot(key), EncodeRecord(*snapshot));
    absl::StatusOr<uint64_t> written = WriteLocked(batch, "update", key);
    if (!written.ok()) return written.status();
    sequence = *written;
  }
  if (absl::Status s = SyncUpTo(sequence); !s.ok()) return s;
  return snapshot;
}

bool SnapshotStore::HoldsSpaceReserve() const { return reserve_->held(); }

bool SnapshotStore::ShortOfSpaceLocked() {
  if (reserve_->path().empty()) return false;
  absl::StatusOr<bool> made = reserve_->Ensure();
  if (made.ok()) return !*made;
  // Not a full disk: go without a reserve rather than refuse writes.
  space_reserve_error_ = made.status();
  reserve_->Disable();
  return false;
}

absl::Status SnapshotStore::SpaceReserveError() {
  absl::MutexLock lock(&write_mu_);
  return space_reserve_error_;
}

rocksdb::Status SnapshotStore::ResumeLocked(bool wait) {
  // A wait that ran out means RocksDB found no space: later removals fail
  // at once for a minute instead of each holding the writer lock 10 s.
  const absl::Time now = absl::Now();
  if (now - last_resume_timeout_ < absl::Minutes(1)) wait = false;
  const absl::Time deadline = now + absl::Seconds(10);
  rocksdb::Status r = db_->Resume();
  while (wait && r.IsBusy() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
    r = db_->Resume();
  }
  if (wait && r.IsBusy()) last_resume_timeout_ = absl::Now();
  if (r.ok()) needs_resume_ = false;
  return r;
}

absl::StatusOr<uint64_t> SnapshotStore::WriteLocked(rocksdb::WriteBatch& batch,
                                                    absl::string_view what,
                                                    absl::string_view key,
                                                    bool frees_space) {
  if (sync_failed_.load()) {
    absl::MutexLock lock(&sync_mu_);
    return sync_failure_;
  }
  // Short of space: the reserve's blocks are kept for removals until there
  // is room for the reserve again (which any write, removals too, remakes).
  if (!reserve_->held() && ShortOfSpaceLocked() && !frees_space) {
    return absl::ResourceExhaustedError(
        absl::StrCat(WriteSubject(what, key),
                     ": No space left on device for the metadata (less than ",
                     2 * reserve_->bytes() >> 20,
                     " MiB free next to it); only removals "
                     "are taken until space is freed"));
  }
  if (needs_resume_.load()) {
    // A failed log write (disk full) stops RocksDB's writes until resumed;
    // resume once space may be back, so the daemon recovers without a
    // restart. Busy: RocksDB is recovering by itself (it polls for free
    // space); the write below then answers the stored error until it has.
    // A removal waits for it: it is what frees space.
    rocksdb::Status r = ResumeLocked(/*wait=*/frees_space);
    if (!r.ok() && !r.IsBusy()) {
      return FromRocksDB(r, absl::StrCat(WriteSubject(what, key),
                                         ": resume after a failed write"));
    }
  }
  const uint64_t carried = CarryPendingMarkLocked(batch);
  rocksdb::Status s = db_->Write(UnsyncedWrite(), &batch);
  if (IsOutOfSpace(s) && reserve_->Release()) {
    // Out of space: the reserve's blocks go back to the filesystem for the
    // metadata; a removal is written with them at once.
    needs_resume_ = true;
    if (frees_space && ResumeLocked(/*wait=*/true).ok()) {
      s = db_->Write(UnsyncedWrite(), &batch);
    }
  }
  if (!s.ok()) {
    if (s.IsIOError()) needs_resume_ = true;
    return FromRocksDB(s, WriteSubject(what, key));
  }
  // A failed sync of this write stops every later one (SyncUpTo), so any
  // change acknowledged from now on has the mark durable before it.
  written_unsynced_below_ = std::max(written_unsynced_below_, carried);
  // Every write takes write_mu_, so the latest sequence is ours.
  return db_->GetLatestSequenceNumber();
}

absl::Status SnapshotStore::SyncUpTo(uint64_t sequence) {
  if (read_only_) return absl::OkStatus();  // nothing it wrote to sync
  absl::MutexLock lock(&sync_mu_);
  while (synced_sequence_ < sequence) {
    if (!sync_failure_.ok()) return sync_failure_;
    if (sync_running_) {
      // Another caller's sync may cover us; wait for it to finish.
      auto done = [this] { return !sync_running_; };
      sync_mu_.Await(absl::Condition(&done));
      continue;
    }
    sync_running_ = true;
    // Everything written so far; later writers wait for the next round.
    const uint64_t target = db_->GetLatestSequenceNumber();
    sync_mu_.Unlock();
    const absl::Time sync_start = absl::Now();
    rocksdb::Status s = db_->SyncWAL();
    statistics_->reportTimeToHistogram(
        rocksdb::WAL_FILE_SYNC_MICROS,
        static_cast<uint64_t>(absl::ToInt64Microseconds(absl::Now() - sync_start)));
    sync_mu_.Lock();
    sync_running_ = false;
    if (!s.ok()) {
      // The writes it covers are visible but maybe not on disk, and neither
      // RocksDB nor we can tell: only a reopen from the disk is sound.
      sync_failure_ = absl::UnavailableError(absl::StrCat(
          "the metadata write-ahead log could not be synced (", s.ToString(),
          "); changes are refused until the daemon restarts and recovers "
          "what is on disk"));
      sync_failed_ = true;
      absl::Status failure = sync_failure_;
      if (on_sync_failure_) {
        sync_mu_.Unlock();
        on_sync_failure_(failure);
        sync_mu_.Lock();
      }
      return failure;
    }
    synced_sequence_ = std::max(synced_sequence_, target);
  }
  return absl::OkStatus();
}

absl::Status SnapshotStore::Walk(
    const Filter& filter,
    const std::function<absl::Status(const Snapshot&)>& fn) const {
  // One point in time for the whole walk; released after the iterator.
  rocksdb::ManagedSnapshot db_snapshot(db_.get());
  rocksdb::ReadOptions options;
  options.snapshot = db_snapshot.snapshot();
  if (std::optional<std::vector<Filter::LabelLookup>> lookups =
          filter.LabelLookups()) {
    return WalkLabelIndex(options, *lookups, filter, fn);
  }
  PrefixIterator it(*db_, options, keys::kSnapshotPrefix);
  for (; it.Valid(); it.Next()) {
    std::optional<absl::string_view> key = keys::SnapshotKeyOf(it.key());
    if (!key) break;
    absl::StatusOr<Snapshot> snapshot = DecodeRecord(*key, it.value());
    if (!snapshot.ok()) return snapshot.status();
    if (!filter.Matches(snapshot->info)) continue;
    if (absl::Status s = fn(*snapshot); !s.ok()) return s;
  }
  if (!it.status().ok()) return FromRocksDB(it.status(), "walk snapshots");
  return absl::OkStatus();
}

absl::Status SnapshotStore::WalkLabelIndex(
    const rocksdb::ReadOptions& options,
    const std::vector<Filter::LabelLookup>& lookups, const Filter& filter,
    const std::function<absl::Status(const Snapshot&)>& fn) const {
  // id -> the key the index names for it.
  absl::flat_hash_map<uint64_t, std::string> found;
  for (const Filter::LabelLookup& lookup : lookups) {
    const std::string prefix = lookup.value
                                   ? keys::LabelValuePrefix(lookup.key, *lookup.value)
                                   : keys::LabelKeyPrefix(lookup.key);
    PrefixIterator it(*db_, options, prefix);
    for (; it.Valid(); it.Next()) {
      if (auto entry = keys::LabelEntryOf(it.key())) {
        found.try_emplace(entry->id, it.value());
      }
    }
    if (!it.status().ok()) return FromRocksDB(it.status(), "walk label index");
  }
  // The record under `key` if it is snapshot `id`'s; nullopt otherwise.
  auto read_if_id = [&](const std::string& key,
                        uint64_t id) -> absl::StatusOr<std::optional<Snapshot>> {
    absl::StatusOr<Snapshot> snapshot = Read(key, options);
    if (absl::IsNotFound(snapshot.status())) return std::optional<Snapshot>();
    if (!snapshot.ok()) return snapshot.status();
    if (snapshot->id != id) return std::optional<Snapshot>();
    return std::optional<Snapshot>(*std::move(snapshot));
  };
  // The record of `id`, read under the key the index names; should that
  // record not be `id`'s (a drifted entry: fsck reports it), the id index
  // says where it is. nullopt when the snapshot is gone.
  auto read = [&](uint64_t id, const std::string& named) -> absl::StatusOr<std::optional<Snapshot>> {
    absl::StatusOr<std::optional<Snapshot>> snapshot = read_if_id(named, id);
    if (!snapshot.ok() || snapshot->has_value()) return snapshot;
    std::string key;
    rocksdb::Status s = db_->Get(options, keys::Id(id), &key);
    if (s.IsNotFound() || (s.ok() && key == named)) return std::optional<Snapshot>();
    if (!s.ok()) return FromRocksDB(s, "walk label index");
    return read_if_id(key, id);
  };
  // In key order: Walk answers in key order, like the full scan, and
  // lookups in order revisit the same parts of the memtable.
  std::vector<std::pair<std::string, uint64_t>> named;
  named.reserve(found.size());
  for (auto& [id, key] : found) named.emplace_back(std::move(key), id);
  std::sort(named.begin(), named.end());
  std::vector<Snapshot> matches;
  matches.reserve(named.size());
  for (const auto& [key, id] : named) {
    absl::StatusOr<std::optional<Snapshot>> snapshot = read(id, key);
    if (!snapshot.ok()) return snapshot.status();
    if (!snapshot->has_value() || !filter.Matches((*snapshot)->info)) continue;
    matches.push_back(**std::move(snapshot));
  }
  // Only a drifted entry can be out of order here.
  std::sort(matches.begin(), matches.end(), [](const Snapshot& a, const Snapshot& b) {
    return a.info.name < b.info.name;
  });
  for (const Snapshot& snapshot : matches) {
    if (absl::Status status = fn(snapshot); !status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::flat_hash_set<uint64_t>> SnapshotStore::ScanDurableIds(
    absl::string_view prefix, const IdOfEntry& id_of) {
  rocksdb::ManagedSnapshot db_snapshot(db_.get());
  if (absl::Status s = SyncUpTo(db_snapshot.snapshot()->GetSequenceNumber());
      !s.ok()) {
    return s;
  }
  rocksdb::ReadOptions options;
  options.snapshot = db_snapshot.snapshot();
  absl::flat_hash_set<uint64_t> ids;
  PrefixIterator it(*db_, options, prefix);
  for (; it.Valid(); it.Next()) {
    absl::StatusOr<std::optional<uint64_t>> id = id_of(it.key(), it.value());
    if (!id.ok()) return id.status();
    if (!*id) break;
    ids.insert(**id);
  }
  if (!it.status().ok()) {
    return FromRocksDB(it.status(), absl::StrCat("scan ", prefix));
  }
  return ids;
}

absl::StatusOr<absl::flat_hash_set<uint64_t>> SnapshotStore::DurableIds() {
  return ScanDurableIds(
      keys::kIdPrefix,
      [](absl::string_view key,
         absl::string_view) -> absl::StatusOr<std::optional<uint64_t>> {
        return keys::IdOf(key);
      });
}

absl::StatusOr<absl::flat_hash_set<uint64_t>>
SnapshotStore::DurableRecordIds() {
  return ScanDurableIds(
      keys::kSnapshotPrefix,
      [](absl::string_view key,
         absl::string_view value) -> absl::StatusOr<std::optional<uint64_t>> {
        std::optional<absl::string_view> name = keys::SnapshotKeyOf(key);
        if (!name) return std::nullopt;
        absl::StatusOr<Snapshot> snapshot = DecodeRecord(*name, value);
        if (!snapshot.ok()) return snapshot.status();
        return snapshot->id;
      });
}

absl::StatusOr<bool> SnapshotStore::HasChildren(uint64_t id) const {
  PrefixIterator it(*db_, rocksdb::ReadOptions(), keys::ChildrenOf(id));
  if (!it.status().ok()) return FromRocksDB(it.status(), "scan children");
  return it.Valid();
}

absl::StatusOr<StoreStats> SnapshotStore::Stats() const {
  absl::StatusOr<Filter> all = Filter::Parse({});
  if (!all.ok()) return all.status();
  StoreStats stats;
  absl::Status status = Walk(*all, [&stats](const Snapshot& snapshot) {
    switch (snapshot.info.kind) {
      case Kind::kActive:
        ++stats.active;
        break;
      case Kind::kView:
        ++stats.views;
        break;
      case Kind::kCommitted:
        ++stats.committed;
        stats.committed_usage.size += snapshot.usage.size;
        stats.committed_usage.inodes += snapshot.usage.inodes;
        break;
      default:
        break;
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;

  const std::shared_ptr<rocksdb::Statistics>& statistics = statistics_;
  if (statistics != nullptr) {
    auto timer = [&statistics](uint32_t histogram) {
      rocksdb::HistogramData data;
      statistics->histogramData(histogram, &data);
      StoreStats::Timer t;
      t.count = data.count;
      t.sum_micros = static_cast<double>(data.sum);
      t.p50_micros = data.median;
      t.p95_micros = data.percentile95;
      t.p99_micros = data.percentile99;
      return t;
    };
    stats.write = timer(rocksdb::DB_WRITE);
    stats.wal_sync = timer(rocksdb::WAL_FILE_SYNC_MICROS);
    stats.stall_micros = statistics->getTickerCount(rocksdb::STALL_MICROS);
  }
  uint64_t sst_bytes = 0;
  if (db_->GetIntProperty(rocksdb::DB::Properties::kTotalSstFilesSize, &sst_bytes)) {
    stats.sst_bytes = sst_bytes;
  }
  stats.space_reserve_held = reserve_->held();
  return stats;
}

absl::StatusOr<StoreDump> SnapshotStore::Dump() const {
  StoreDump dump;
  rocksdb::ManagedSnapshot db_snapshot(db_.get());
  rocksdb::ReadOptions options;
  options.snapshot = db_snapshot.snapshot();
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      absl::string_view db_key = FromSlice(it->key());
      absl::string_view value = FromSlice(it->value());
      if (std::optional<absl::string_view> key = keys::SnapshotKeyOf(db_key)) {
        dump.records.push_back({std::string(*key), DecodeRecord(*key, value)});
      } else if (std::optional<uint64_t> id = keys::IdOf(db_key)) {
        dump.ids.emplace_back(*id, std::string(value));
      } else if (std::optional<uint64_t> parent = keys::ParentIdOf(db_key)) {
        dump.children.emplace_back(*parent, *keys::ChildIdOf(db_key));
      } else if (db_key == keys::kNextId && keys::DecodeId(value)) {
        dump.next_id = *keys::DecodeId(value);
      } else if (std::optional<keys::LabelEntry> label = keys::LabelEntryOf(db_key)) {
        dump.labels.push_back({std::string(label->key), std::string(label->value),
                               label->id, std::string(value)});
      } else if (db_key == keys::kLabelIndexReady) {
        // The marker of a complete label index; Open writes it.
      } else if (db_key == keys::kUnsyncedBelow && keys::DecodeId(value)) {
        dump.unsynced_below = *keys::DecodeId(value);
      } else {
        dump.unknown_keys.emplace_back(db_key);
      }
    }
    if (!it->status().ok()) return FromRocksDB(it->status(), "dump metadata");
  }
  return dump;
}

absl::Status SnapshotStore::ApplyRepair(const StoreRepair& repair) {
  rocksdb::WriteBatch batch;
  for (const auto& [id, key] : repair.put_ids) batch.Put(keys::Id(id), ToSlice(key));
  for (uint64_t id : repair.delete_ids) batch.Delete(keys::Id(id));
  for (const auto& [parent, child] : repair.put_children) {
    batch.Put(keys::Child(parent, child), rocksdb::Slice());
  }
  for (const auto& [parent, child] : repair.delete_children) {
    batch.Delete(keys::Child(parent, child));
  }
  for (const Snapshot& snapshot : repair.put_records) {
    batch.Put(keys::Snapshot(snapshot.info.name), EncodeRecord(snapshot));
  }
  if (repair.next_id) {
    batch.Put(ToSlice(keys::kNextId), keys::EncodeId(*repair.next_id));
  }
  for (const LabelIndexEntry& e : repair.put_labels) {
    batch.Put(keys::Label(e.key, e.value, e.id), ToSlice(e.snapshot));
  }
  for (const LabelIndexEntry& e : repair.delete_labels) {
    batch.Delete(keys::Label(e.key, e.value, e.id));
  }
  absl::MutexLock lock(&write_mu_);
  const uint64_t carried = CarryPendingMarkLocked(batch);
  rocksdb::WriteOptions options;
  options.sync = true;
  rocksdb::Status s = db_->Write(options, &batch);
  if (!s.ok()) return FromRocksDB(s, "repair metadata");
  written_unsynced_below_ = std::max(written_unsynced_below_, carried);
  if (repair.next_id && *repair.next_id > next_id_.load()) next_id_ = *repair.next_id;
  return absl::OkStatus();
}

}  // namespace cpp_overlay::metadata
