// Write-ahead log syncs that fail or are slow: after a failed one the store
// must refuse every later change, tell its owner once, and a reopen must
// recover a consistent store; DurableIds must wait for syncs in progress.
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "metadata/snapshot_store.h"
#include "rocksdb/file_system.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::metadata {
namespace {

using ::cpp_overlay::testing::StatusIs;

// Runs `before_log_sync` before each Sync/Fsync of a write-ahead log
// (NNNNNN.log); a status it returns that is not OK replaces the sync.
using SyncHook = std::function<rocksdb::IOStatus()>;

class HookedLogSync : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  HookedLogSync(std::unique_ptr<rocksdb::FSWritableFile> file,
                const SyncHook* hook, const SyncHook* append_hook)
      : FSWritableFileOwnerWrapper(std::move(file)),
        hook_(hook),
        append_hook_(append_hook) {}
  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = (*append_hook_)(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = (*append_hook_)(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Append(data, options, info, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                         rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = (*hook_)(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Sync(options, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = (*hook_)(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Fsync(options, dbg);
  }

 private:
  const SyncHook* hook_;
  const SyncHook* append_hook_;
};

class HookedLogSyncFileSystem : public rocksdb::FileSystemWrapper {
 public:
  HookedLogSyncFileSystem(std::shared_ptr<rocksdb::FileSystem> base,
                          const SyncHook* hook, const SyncHook* append_hook)
      : FileSystemWrapper(std::move(base)),
        hook_(hook),
        append_hook_(append_hook) {}
  const char* Name() const override { return "HookedLogSync"; }
  rocksdb::IOStatus NewWritableFile(
      const std::string& path, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewWritableFile(path, options, result, dbg);
    if (s.ok() && absl::EndsWith(path, ".log")) {
      *result = std::make_unique<HookedLogSync>(std::move(*result), hook_,
                                                append_hook_);
    }
    return s;
  }

 private:
  const SyncHook* hook_;
  const SyncHook* append_hook_;
};

class SyncFailureTest : public ::testing::Test {
 protected:
  // A store whose next log sync fails once armed_ is set.
  std::unique_ptr<SnapshotStore> OpenFailing() {
    hook_ = [this] {
      return armed_.exchange(false) ? rocksdb::IOStatus::IOError("injected EIO")
                                    : rocksdb::IOStatus::OK();
    };
    return OpenHooked();
  }
  std::unique_ptr<SnapshotStore> OpenHooked() {
    StoreOptions options;
    options.on_sync_failure = [this](const absl::Status& s) {
      failures_.push_back(s);
    };
    options.wrap_file_system =
        [this](std::shared_ptr<rocksdb::FileSystem> base) {
          return std::make_shared<HookedLogSyncFileSystem>(
              std::move(base), &hook_, &append_hook_);
        };
    auto store = SnapshotStore::Open(path(), options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }
  std::string path() const { return dir_.path() + "/db"; }

  // A store holding one snapshot, whose write of the mark covering it
  // failed (a full disk: the log append fails once); sets `mark` to it.
  std::unique_ptr<SnapshotStore> OpenWithAFailedMarkWrite(uint64_t& mark) {
    append_hook_ = [this] {
      return fail_append_.exchange(false)
                 ? rocksdb::IOStatus::NoSpace("injected ENOSPC")
                 : rocksdb::IOStatus::OK();
    };
    std::unique_ptr<SnapshotStore> store = OpenHooked();
    if (store == nullptr) return nullptr;
    EXPECT_OK(
        store->Create(Kind::kActive, "before", "", {}, store->ReserveId()));
    mark = store->PeekNextId();
    fail_append_ = true;
    EXPECT_FALSE(store->RaiseUnsyncedBelow(mark).ok());
    return store;
  }

  testing::TempDir dir_;
  SyncHook hook_ = [] { return rocksdb::IOStatus::OK(); };
  // Runs before each append to a write-ahead log, likewise.
  SyncHook append_hook_ = [] { return rocksdb::IOStatus::OK(); };
  std::atomic<bool> armed_{false};
  std::atomic<bool> fail_append_{false};
  std::vector<absl::Status> failures_;
};

TEST_F(SyncFailureTest, LaterChangesAreRefusedAndTheOwnerIsToldOnce) {
  std::unique_ptr<SnapshotStore> store = OpenFailing();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Create(Kind::kActive, "before", "", {}, store->ReserveId()));

  armed_ = true;
  EXPECT_THAT(
      store->Create(Kind::kActive, "failed", "", {}, store->ReserveId()),
      StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_EQ(failures_.size(), 1u);
  EXPECT_TRUE(absl::StrContains(failures_[0].message(), "could not be synced"))
      << failures_[0];

  // Every later change is refused with the same status, without a sync
  // (none is armed: a sync would succeed).
  EXPECT_EQ(store->Create(Kind::kActive, "after", "", {}, store->ReserveId())
                .status(),
            failures_[0]);
  EXPECT_EQ(store->Update("before", {{"a", "b"}}, {}).status(), failures_[0]);
  EXPECT_EQ(store->Remove("before").status(), failures_[0]);
  EXPECT_EQ(store->Commit("before", "c", {}, {}).status(), failures_[0]);
  EXPECT_EQ(failures_.size(), 1u);
  // Reads still answer.
  EXPECT_OK(store->Get("before"));

  // A restart recovers what is on disk: the acknowledged change is there,
  // the refused ones are not, and changes work again.
  store.reset();
  auto reopened = SnapshotStore::Open(path());
  ASSERT_OK(reopened);
  EXPECT_OK((*reopened)->Get("before"));
  EXPECT_THAT((*reopened)->Get("after"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_OK((*reopened)->Create(Kind::kActive, "after", "", {},
                                (*reopened)->ReserveId()));
}

// A mark of snapshots that may have lost files whose own write failed (a
// full disk) goes with the next write that lands: no change is
// acknowledged before it is durable, and a reopen has it.
TEST_F(SyncFailureTest, AnUnsyncedMarkWhoseWriteFailedGoesWithTheNextWrite) {
  uint64_t mark = 0;
  std::unique_ptr<SnapshotStore> store = OpenWithAFailedMarkWrite(mark);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->UnsyncedBelow(), mark);  // refused in memory at once

  // RocksDB takes writes again once it has resumed (it may first recover
  // by itself, answering the stored error meanwhile).
  absl::Status created;
  for (int attempt = 0; attempt < 100; ++attempt) {
    created = store->Create(Kind::kActive, "after", "", {}, store->ReserveId())
                  .status();
    if (created.ok()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_OK(created);
  EXPECT_TRUE(failures_.empty());

  store.reset();
  auto reopened = SnapshotStore::Open(path());
  ASSERT_OK(reopened);
  EXPECT_EQ((*reopened)->UnsyncedBelow(), mark);
}

// With no write after it, closing the store (the daemon's clean stop)
// writes it.
TEST_F(SyncFailureTest, AnUnsyncedMarkWhoseWriteFailedIsWrittenOnClose) {
  uint64_t mark = 0;
  std::unique_ptr<SnapshotStore> store = OpenWithAFailedMarkWrite(mark);
  ASSERT_NE(store, nullptr);
  store.reset();
  auto reopened = SnapshotStore::Open(path());
  ASSERT_OK(reopened);
  EXPECT_EQ((*reopened)->UnsyncedBelow(), mark);
}

// Cleanup deletes the directories of ids DurableIds lacks: a Remove that is
// written but whose sync has not finished must be durable before its id is
// reported gone, or a power cut could bring back a record without its data.
TEST_F(SyncFailureTest, DurableIdsWaitsForTheSyncOfARemoveInProgress) {
  absl::Notification sync_entered;
  absl::Notification release_sync;
  std::atomic<bool> hold{false};
  hook_ = [&] {
    if (hold.exchange(false)) {
      sync_entered.Notify();
      release_sync.WaitForNotification();
    }
    return rocksdb::IOStatus::OK();
  };
  std::unique_ptr<SnapshotStore> store = OpenHooked();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<Snapshot> created =
      store->Create(Kind::kActive, "k", "", {}, store->ReserveId());
  ASSERT_OK(created);

  hold = true;
  std::thread remover([&] { EXPECT_OK(store->Remove("k")); });
  sync_entered.WaitForNotification();  // written, its sync held
  std::atomic<bool> listed{false};
  absl::StatusOr<absl::flat_hash_set<uint64_t>> ids;
  std::thread lister([&] {
    ids = store->DurableIds();
    listed = true;
  });
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_FALSE(listed.load())
      << "DurableIds answered before the Remove was synced";
  release_sync.Notify();
  remover.join();
  lister.join();
  ASSERT_OK(ids);
  EXPECT_FALSE(ids->contains(created->id));
}

}  // namespace
}  // namespace cpp_overlay::metadata
