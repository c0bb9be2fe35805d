#include "metadata/snapshot_store.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "metadata/errors.h"
#include "metadata/keys.h"
#include "metadata/labels.h"
#include "metadata/record_codec.h"
#include "metadata/rocksdb_status.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

namespace cpp_overlay::metadata {
namespace {

rocksdb::WriteOptions SyncedWrite() {
  rocksdb::WriteOptions options;
  options.sync = true;
  return options;
}

rocksdb::Slice ToSlice(absl::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

absl::string_view FromSlice(const rocksdb::Slice& s) {
  return absl::string_view(s.data(), s.size());
}

// containerd drops labels with empty values when it stores them.
Labels WithoutEmptyValues(const Labels& labels) {
  Labels out;
  for (const auto& [key, value] : labels) {
    if (!value.empty()) out.emplace(key, value);
  }
  return out;
}

// The largest id any record uses, plus one; at least `stored`.
absl::StatusOr<uint64_t> RecoverNextId(rocksdb::DB& db) {
  uint64_t next = 1;
  std::string stored;
  rocksdb::Status s = db.Get(rocksdb::ReadOptions(), ToSlice(keys::kNextId), &stored);
  if (s.ok()) {
    if (auto id = keys::DecodeId(stored)) next = std::max(next, *id);
  } else if (!s.IsNotFound()) {
    return FromRocksDB(s, "read next id");
  }
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions()));
  // Ids are big-endian, so the last "i/" key holds the largest.
  it->SeekForPrev(ToSlice(absl::StrCat(keys::kIdPrefix, std::string(8, '\xff'))));
  if (it->Valid()) {
    if (auto id = keys::IdOf(FromSlice(it->key()))) next = std::max(next, *id + 1);
  }
  if (!it->status().ok()) return FromRocksDB(it->status(), "scan ids");
  return next;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SnapshotStore>> SnapshotStore::Open(
    const std::string& path) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.keep_log_file_num = 4;
  options.max_log_file_size = 4 << 20;
  options.recycle_log_file_num = 0;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) {
    if (s.IsIOError() && absl::StrContains(s.ToString(), "lock")) {
      return absl::UnavailableError(absl::StrCat(
          "metadata database ", path,
          " is in use by another process: ", s.ToString()));
    }
    return FromRocksDB(s, absl::StrCat("open metadata database ", path));
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  absl::StatusOr<uint64_t> next_id = RecoverNextId(*db);
  if (!next_id.ok()) return next_id.status();
  return std::unique_ptr<SnapshotStore>(
      new SnapshotStore(std::move(db), *next_id));
}

SnapshotStore::SnapshotStore(std::unique_ptr<rocksdb::DB> db, uint64_t next_id)
    : db_(std::move(db)), next_id_(next_id) {}

SnapshotStore::~SnapshotStore() {
  if (db_) {
    db_->Close().PermitUncheckedError();
  }
}

uint64_t SnapshotStore::ReserveId() { return next_id_.fetch_add(1); }

absl::StatusOr<Snapshot> SnapshotStore::Get(absl::string_view key) const {
  return GetLocked(key);
}

absl::StatusOr<Snapshot> SnapshotStore::GetLocked(absl::string_view key) const {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), ToSlice(keys::Snapshot(key)), &value);
  if (s.IsNotFound()) return SnapshotNotFound(key);
  if (!s.ok()) return FromRocksDB(s, absl::StrCat("read snapshot ", QuoteKey(key)));
  return DecodeRecord(key, value);
}

absl::Status SnapshotStore::CheckCreate(absl::string_view key,
                                        absl::string_view parent) const {
  if (key.empty()) return InvalidRequest("snapshot key must not be empty");
  absl::StatusOr<Snapshot> existing = GetLocked(key);
  if (existing.ok()) return SnapshotExists(key);
  if (!absl::IsNotFound(existing.status())) return existing.status();
  if (parent.empty()) return absl::OkStatus();
  absl::StatusOr<Snapshot> p = GetLocked(parent);
  if (absl::IsNotFound(p.status())) return ParentNotFound(key, parent);
  if (!p.ok()) return p.status();
  if (p->info.kind != Kind::kCommitted) return ParentNotCommitted(key, parent);
  return absl::OkStatus();
}

absl::StatusOr<Snapshot> SnapshotStore::Create(Kind kind, absl::string_view key,
                                               absl::string_view parent,
                                               const Labels& labels,
                                               uint64_t id) {
  if (kind != Kind::kActive && kind != Kind::kView) {
    return InvalidRequest("only active and view snapshots can be created");
  }
  if (absl::Status s = ValidateLabels(labels); !s.ok()) return s;

  absl::MutexLock lock(&write_mu_);
  if (absl::Status s = CheckCreate(key, parent); !s.ok()) return s;

  Snapshot snapshot;
  snapshot.id = id;
  snapshot.info.name = std::string(key);
  snapshot.info.parent = std::string(parent);
  snapshot.info.kind = kind;
  snapshot.info.labels = WithoutEmptyValues(labels);
  snapshot.info.created = snapshot.info.updated = absl::Now();

  rocksdb::WriteBatch batch;
  if (!parent.empty()) {
    absl::StatusOr<Snapshot> p = GetLocked(parent);
    if (!p.ok()) return p.status();
    snapshot.ancestor_ids.reserve(p->ancestor_ids.size() + 1);
    snapshot.ancestor_ids.push_back(p->id);
    snapshot.ancestor_ids.insert(snapshot.ancestor_ids.end(),
                                 p->ancestor_ids.begin(), p->ancestor_ids.end());
    batch.Put(keys::Child(p->id, id), rocksdb::Slice());
  }
  batch.Put(keys::Snapshot(key), EncodeRecord(snapshot));
  batch.Put(keys::Id(id), ToSlice(key));
  // Ids are never reused, even after the highest one is removed.
  uint64_t next = std::max(next_id_.load(), id + 1);
  batch.Put(ToSlice(keys::kNextId), keys::EncodeId(next));
  rocksdb::Status s = db_->Write(SyncedWrite(), &batch);
  if (!s.ok()) return FromRocksDB(s, absl::StrCat("create snapshot ", QuoteKey(key)));
  return snapshot;
}

absl::StatusOr<Snapshot> SnapshotStore::Commit(absl::string_view key,
                                               absl::string_view name,
                                               const Labels& labels,
                                               const Usage& usage) {
  if (name.empty()) return InvalidRequest("committed snapshot name must not be empty");
  if (absl::Status s = ValidateLabels(labels); !s.ok()) return s;

  absl::MutexLock lock(&write_mu_);
  // Same order of checks as containerd's storage: name, key, kind.
  absl::StatusOr<Snapshot> taken = GetLocked(name);
  if (taken.ok()) return SnapshotExists(name);
  if (!absl::IsNotFound(taken.status())) return taken.status();
  absl::StatusOr<Snapshot> active = GetLocked(key);
  if (!active.ok()) return active.status();
  if (active->info.kind != Kind::kActive) {
    return WrongKind(key, "commit", "snapshot is not active");
  }

  Snapshot committed = *std::move(active);
  committed.info.name = std::string(name);
  committed.info.kind = Kind::kCommitted;
  committed.info.labels = WithoutEmptyValues(labels);
  committed.info.created = committed.info.updated = absl::Now();
  committed.usage = usage;

  rocksdb::WriteBatch batch;
  batch.Delete(keys::Snapshot(key));
  batch.Put(keys::Snapshot(name), EncodeRecord(committed));
  batch.Put(keys::Id(committed.id), ToSlice(name));
  rocksdb::Status s = db_->Write(SyncedWrite(), &batch);
  if (!s.ok()) return FromRocksDB(s, absl::StrCat("commit snapshot ", QuoteKey(key)));
  return committed;
}

absl::StatusOr<Snapshot> SnapshotStore::Remove(absl::string_view key) {
  absl::MutexLock lock(&write_mu_);
  absl::StatusOr<Snapshot> snapshot = GetLocked(key);
  if (!snapshot.ok()) return snapshot.status();
  absl::StatusOr<bool> has_children = HasChildren(snapshot->id);
  if (!has_children.ok()) return has_children.status();
  if (*has_children) return metadata::HasChildren(key);

  rocksdb::WriteBatch batch;
  batch.Delete(keys::Snapshot(key));
  batch.Delete(keys::Id(snapshot->id));
  if (!snapshot->ancestor_ids.empty()) {
    batch.Delete(keys::Child(snapshot->ancestor_ids.front(), snapshot->id));
  }
  rocksdb::Status s = db_->Write(SyncedWrite(), &batch);
  if (!s.ok()) return FromRocksDB(s, absl::StrCat("remove snapshot ", QuoteKey(key)));
  return snapshot;
}

absl::StatusOr<Snapshot> SnapshotStore::Update(
    absl::string_view key, const Labels& labels,
    const std::vector<std::string>& paths) {
  absl::MutexLock lock(&write_mu_);
  absl::StatusOr<Snapshot> snapshot = GetLocked(key);
  if (!snapshot.ok()) return snapshot.status();
  absl::StatusOr<Labels> updated =
      ApplyLabelUpdate(snapshot->info.labels, labels, paths, key);
  if (!updated.ok()) return updated.status();
  snapshot->info.labels = *std::move(updated);
  snapshot->info.updated = absl::Now();
  rocksdb::Status s = db_->Put(SyncedWrite(), keys::Snapshot(key),
                               EncodeRecord(*snapshot));
  if (!s.ok()) return FromRocksDB(s, absl::StrCat("update snapshot ", QuoteKey(key)));
  return snapshot;
}

absl::Status SnapshotStore::Walk(
    const Filter& filter,
    const std::function<absl::Status(const Snapshot&)>& fn) const {
  rocksdb::ReadOptions options;
  const rocksdb::Snapshot* db_snapshot = db_->GetSnapshot();
  options.snapshot = db_snapshot;
  std::string upper = absl::StrCat(keys::kSnapshotPrefix.substr(0, 1),
                                   std::string(1, keys::kSnapshotPrefix[1] + 1));
  rocksdb::Slice upper_slice(upper);
  options.iterate_upper_bound = &upper_slice;
  absl::Status status;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options));
    for (it->Seek(ToSlice(keys::kSnapshotPrefix)); it->Valid(); it->Next()) {
      std::optional<absl::string_view> key = keys::SnapshotKeyOf(FromSlice(it->key()));
      if (!key) break;
      absl::StatusOr<Snapshot> snapshot = DecodeRecord(*key, FromSlice(it->value()));
      if (!snapshot.ok()) {
        status = snapshot.status();
        break;
      }
      if (!filter.Matches(snapshot->info)) continue;
      status = fn(*snapshot);
      if (!status.ok()) break;
    }
    if (status.ok() && !it->status().ok()) {
      status = FromRocksDB(it->status(), "walk snapshots");
    }
  }
  db_->ReleaseSnapshot(db_snapshot);
  return status;
}

absl::StatusOr<absl::flat_hash_set<uint64_t>> SnapshotStore::Ids() const {
  absl::flat_hash_set<uint64_t> ids;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(ToSlice(keys::kIdPrefix)); it->Valid(); it->Next()) {
    std::optional<uint64_t> id = keys::IdOf(FromSlice(it->key()));
    if (!id) break;
    ids.insert(*id);
  }
  if (!it->status().ok()) return FromRocksDB(it->status(), "scan ids");
  return ids;
}

absl::StatusOr<bool> SnapshotStore::HasChildren(uint64_t id) const {
  std::string prefix = keys::ChildrenOf(id);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  it->Seek(prefix);
  if (!it->status().ok()) return FromRocksDB(it->status(), "scan children");
  return it->Valid() && it->key().starts_with(prefix);
}

}  // namespace cpp_overlay::metadata
