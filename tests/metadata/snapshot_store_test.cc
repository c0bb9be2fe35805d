#include "metadata/snapshot_store.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "metadata/keys.h"
#include "rocksdb/db.h"
#include "rocksdb/perf_context.h"
#include "rocksdb/perf_level.h"
#include "tests/metadata/store_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::metadata {
namespace {

using ::cpp_overlay::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

class SnapshotStoreTest : public StoreFixture {
 protected:
  absl::StatusOr<Snapshot> Create(Kind kind, const std::string& key,
                                  const std::string& parent = "",
                                  const Labels& labels = {}) {
    return store_->Create(kind, key, parent, labels, store_->ReserveId());
  }

  // Prepares `key` on `parent` and commits it as `name`.
  Snapshot Layer(const std::string& name, const std::string& parent = "") {
    auto active = Create(Kind::kActive, name + "-active", parent);
    EXPECT_OK(active);
    auto committed = store_->Commit(name + "-active", name, {}, Usage{4096, 1});
    EXPECT_OK(committed);
    return committed.ok() ? *committed : Snapshot{};
  }

  // After a reopen the unsynced mark is `mark`, stored as a well-formed
  // record that fsck knows.
  void ExpectMarkAfterReopen(uint64_t mark) {
    Reopen();
    EXPECT_EQ(store_->UnsyncedBelow(), mark);
    auto dump = store_->Dump();
    ASSERT_OK(dump);
    EXPECT_EQ(dump->unsynced_below, mark);
    EXPECT_THAT(dump->unknown_keys, IsEmpty());
  }
};

TEST_F(SnapshotStoreTest, CreateThenGetReturnsTheSnapshot) {
  auto created = Create(Kind::kActive, "ns/1/key with space", "", {{"a", "b"}});
  ASSERT_OK(created);
  auto got = store_->Get("ns/1/key with space");
  ASSERT_OK(got);
  EXPECT_EQ(got->id, created->id);
  EXPECT_EQ(got->info.kind, Kind::kActive);
  EXPECT_EQ(got->info.labels, (Labels{{"a", "b"}}));
  EXPECT_EQ(got->info.created, got->info.updated);
  EXPECT_THAT(got->ancestor_ids, IsEmpty());
}

TEST_F(SnapshotStoreTest, GetOfMissingKeyIsNotFound) {
  EXPECT_THAT(store_->Get("nope"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(SnapshotStoreTest, CreateOfTakenKeyIsAlreadyExists) {
  ASSERT_OK(Create(Kind::kActive, "k"));
  EXPECT_THAT(Create(Kind::kView, "k"), StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(SnapshotStoreTest, CreateChecksTheParentBeforeTheKeyAsContainerdDoes) {
  ASSERT_OK(Create(Kind::kActive, "k"));
  EXPECT_THAT(Create(Kind::kActive, "k", "missing"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Create(Kind::kActive, "k", "k"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SnapshotStoreTest, CreateWithEmptyKeyIsInvalidArgument) {
  EXPECT_THAT(Create(Kind::kActive, ""), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SnapshotStoreTest, CreateOnMissingParentIsNotFound) {
  EXPECT_THAT(Create(Kind::kActive, "k", "missing"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(SnapshotStoreTest, CreateOnActiveOrViewParentIsInvalidArgument) {
  ASSERT_OK(Create(Kind::kActive, "active"));
  ASSERT_OK(Create(Kind::kView, "view"));
  EXPECT_THAT(Create(Kind::kActive, "k1", "active"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Create(Kind::kView, "k2", "view"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SnapshotStoreTest, CreateOfCommittedKindIsInvalidArgument) {
  EXPECT_THAT(Create(Kind::kCommitted, "k"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SnapshotStoreTest, CreateRejectsOversizedLabel) {
  Labels labels{{"k", std::string(kMaxLabelSize, 'v')}};
  EXPECT_THAT(Create(Kind::kActive, "k", "", labels),
              StatusIs(absl::StatusCode::kInvalidArgument));
  Labels fits{{"k", std::string(kMaxLabelSize - 1, 'v')}};
  EXPECT_OK(Create(Kind::kActive, "k", "", fits));
}

// A label with an empty value is dropped before it is checked, as containerd
// stores labels and as Update does: an empty key with a value is refused.
TEST_F(SnapshotStoreTest, LabelsWithEmptyValuesAreDroppedBeforeTheChecks) {
  auto created = Create(Kind::kActive, "k", "", {{"", ""}, {"a", "1"}});
  ASSERT_OK(created);
  EXPECT_EQ(created->info.labels, (Labels{{"a", "1"}}));
  EXPECT_THAT(Create(Kind::kActive, "k2", "", {{"", "v"}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto committed = store_->Commit("k", "name", {{"", ""}, {"b", "2"}}, {});
  ASSERT_OK(committed);
  EXPECT_EQ(committed->info.labels, (Labels{{"b", "2"}}));
  ASSERT_OK(Create(Kind::kActive, "k3"));
  EXPECT_THAT(store_->Commit("k3", "name3", {{"", "v"}}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto updated = store_->Update("name", {{"", ""}}, {});
  ASSERT_OK(updated);
  EXPECT_TRUE(updated->info.labels.empty());
}

TEST_F(SnapshotStoreTest, AncestorIdsListNearestParentFirst) {
  Snapshot a = Layer("a");
  Snapshot b = Layer("b", "a");
  Snapshot c = Layer("c", "b");
  auto child = Create(Kind::kActive, "child", "c");
  ASSERT_OK(child);
  EXPECT_THAT(child->ancestor_ids, ElementsAre(c.id, b.id, a.id));
  EXPECT_EQ(child->info.parent, "c");
}

TEST_F(SnapshotStoreTest, CommitKeepsIdAndReplacesLabels) {
  auto active = Create(Kind::kActive, "k", "", {{"old", "1"}});
  ASSERT_OK(active);
  auto committed = store_->Commit("k", "name", {{"new", "2"}}, Usage{8192, 3});
  ASSERT_OK(committed);
  EXPECT_EQ(committed->id, active->id);
  EXPECT_EQ(committed->info.kind, Kind::kCommitted);
  EXPECT_EQ(committed->info.labels, (Labels{{"new", "2"}}));
  EXPECT_THAT(store_->Get("k"), StatusIs(absl::StatusCode::kNotFound));
  auto got = store_->Get("name");
  ASSERT_OK(got);
  EXPECT_EQ(got->usage.size, 8192);
  EXPECT_EQ(got->usage.inodes, 3);
}

TEST_F(SnapshotStoreTest, CommitOntoTakenNameIsAlreadyExists) {
  Layer("name");
  ASSERT_OK(Create(Kind::kActive, "k"));
  EXPECT_THAT(store_->Commit("k", "name", {}, {}),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(SnapshotStoreTest, CommitOfMissingKeyIsNotFound) {
  EXPECT_THAT(store_->Commit("k", "name", {}, {}),
              StatusIs(absl::StatusCode::kNotFound));
}

// containerd's overlay Commit looks the key up before CommitActive checks
// the name: a missing key is NotFound even when the name is taken or empty.
TEST_F(SnapshotStoreTest, CommitChecksTheKeyBeforeTheName) {
  Layer("name");
  EXPECT_THAT(store_->Commit("missing", "name", {}, {}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Commit("missing", "", {}, {}),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(Create(Kind::kActive, "k"));
  EXPECT_THAT(store_->Commit("k", "", {}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// A usage measured on a snapshot that was then removed and prepared again
// under the same key must not be stored with the new one.
TEST_F(SnapshotStoreTest, CommitRefusesAUsageMeasuredOnAnEarlierSnapshot) {
  absl::StatusOr<Snapshot> first = Create(Kind::kActive, "k");
  ASSERT_OK(first);
  ASSERT_OK(store_->Remove("k"));
  absl::StatusOr<Snapshot> second = Create(Kind::kActive, "k");
  ASSERT_OK(second);
  ASSERT_NE(first->id, second->id);
  EXPECT_THAT(store_->Commit("k", "c", {}, Usage{1 << 20, 500}, first->id),
              StatusIs(absl::StatusCode::kAborted));
  absl::StatusOr<Snapshot> still = store_->Get("k");
  ASSERT_OK(still);
  EXPECT_EQ(still->info.kind, Kind::kActive);
  EXPECT_THAT(store_->Get("c"), StatusIs(absl::StatusCode::kNotFound));
  absl::StatusOr<Snapshot> committed =
      store_->Commit("k", "c", {}, Usage{4096, 1}, second->id);
  ASSERT_OK(committed);
  EXPECT_EQ(committed->usage.size, 4096);
}

TEST_F(SnapshotStoreTest, CommitOfViewOrCommittedIsFailedPrecondition) {
  ASSERT_OK(Create(Kind::kView, "view"));
  Layer("layer");
  EXPECT_THAT(store_->Commit("view", "n1", {}, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(store_->Commit("layer", "n2", {}, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(SnapshotStoreTest, RemoveWithChildrenIsFailedPrecondition) {
  Layer("base");
  ASSERT_OK(Create(Kind::kActive, "child", "base"));
  EXPECT_THAT(store_->Remove("base"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(store_->Remove("child"));
  EXPECT_OK(store_->Remove("base"));
  EXPECT_THAT(store_->Remove("base"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(SnapshotStoreTest, ChildStaysIndexedAcrossItsCommit) {
  Layer("base");
  ASSERT_OK(Create(Kind::kActive, "child", "base"));
  ASSERT_OK(store_->Commit("child", "child-committed", {}, {}));
  EXPECT_THAT(store_->Remove("base"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(SnapshotStoreTest, RemoveReturnsTheRemovedId) {
  auto created = Create(Kind::kActive, "k");
  ASSERT_OK(created);
  auto removed = store_->Remove("k");
  ASSERT_OK(removed);
  EXPECT_EQ(removed->id, created->id);
  auto ids = store_->DurableIds();
  ASSERT_OK(ids);
  EXPECT_THAT(*ids, IsEmpty());
}

TEST_F(SnapshotStoreTest, UpdateAppliesFieldPathsAndRefreshesUpdatedTime) {
  auto created = Create(Kind::kActive, "k", "", {{"a", "1"}, {"b", "2"}});
  ASSERT_OK(created);
  auto updated = store_->Update("k", {{"b", "3"}, {"c", "4"}}, {"labels.b"});
  ASSERT_OK(updated);
  EXPECT_EQ(updated->info.labels, (Labels{{"a", "1"}, {"b", "3"}}));
  EXPECT_GT(updated->info.updated, created->info.updated);
  EXPECT_EQ(updated->info.created, created->info.created);
  auto got = store_->Get("k");
  ASSERT_OK(got);
  EXPECT_EQ(got->info.labels, updated->info.labels);
}

TEST_F(SnapshotStoreTest, UpdateOfImmutableFieldIsInvalidArgument) {
  ASSERT_OK(Create(Kind::kActive, "k"));
  for (const char* path : {"name", "parent", "kind", "created_at"}) {
    EXPECT_THAT(store_->Update("k", {}, {path}),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << path;
  }
}

TEST_F(SnapshotStoreTest, UpdateOfMissingKeyIsNotFound) {
  EXPECT_THAT(store_->Update("k", {}, {}), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(SnapshotStoreTest, WalkVisitsEverySnapshotInKeyOrderAndFilters) {
  Layer("base");
  ASSERT_OK(Create(Kind::kActive, "b-active", "base", {{"x", "1"}}));
  ASSERT_OK(Create(Kind::kView, "a-view", "base"));
  EXPECT_THAT(WalkNames(), ElementsAre("a-view", "b-active", "base"));
  EXPECT_THAT(WalkNames({"kind==view"}), ElementsAre("a-view"));
  EXPECT_THAT(WalkNames({"labels.x==1", "name==base"}), ElementsAre("b-active", "base"));
  EXPECT_THAT(WalkNames({"parent==base,kind==active"}), ElementsAre("b-active"));
}

TEST_F(SnapshotStoreTest, WalkStopsWithTheCallbacksError) {
  Layer("a");
  Layer("b");
  auto filter = Filter::Parse({});
  ASSERT_OK(filter);
  int calls = 0;
  EXPECT_THAT(store_->Walk(*filter, [&](const Snapshot&) {
    ++calls;
    return absl::CancelledError("stop");
  }), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(calls, 1);
}

TEST_F(SnapshotStoreTest, EverythingSurvivesReopen) {
  Snapshot base = Layer("base");
  ASSERT_OK(Create(Kind::kActive, "child", "base", {{"l", "v"}}));
  Reopen();
  auto child = store_->Get("child");
  ASSERT_OK(child);
  EXPECT_THAT(child->ancestor_ids, ElementsAre(base.id));
  EXPECT_EQ(child->info.labels, (Labels{{"l", "v"}}));
  EXPECT_THAT(store_->Remove("base"), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(SnapshotStoreTest, IdsAreNeverReusedAfterReopen) {
  auto first = Create(Kind::kActive, "a");
  ASSERT_OK(first);
  auto second = Create(Kind::kActive, "b");
  ASSERT_OK(second);
  ASSERT_OK(store_->Remove("b"));
  Reopen();
  EXPECT_GT(store_->ReserveId(), second->id);
}

TEST_F(SnapshotStoreTest, UnsyncedMarkOnlyRisesAndSurvivesReopen) {
  EXPECT_EQ(store_->UnsyncedBelow(), 0u);
  ASSERT_OK(Create(Kind::kActive, "a"));
  const uint64_t mark = store_->PeekNextId();
  ASSERT_OK(store_->RaiseUnsyncedBelow(mark));
  EXPECT_EQ(store_->UnsyncedBelow(), mark);
  ASSERT_OK(store_->RaiseUnsyncedBelow(mark - 1));
  EXPECT_EQ(store_->UnsyncedBelow(), mark);

  ExpectMarkAfterReopen(mark);
}

TEST_F(SnapshotStoreTest, NoIdAfterReopenFallsBelowTheUnsyncedMark) {
  // Ids handed out but never used by a Create are not stored: the mark may
  // be above every stored id.
  for (int i = 0; i < 5; ++i) store_->ReserveId();
  const uint64_t mark = store_->PeekNextId();
  ASSERT_OK(store_->RaiseUnsyncedBelow(mark));
  Reopen();
  EXPECT_GE(store_->ReserveId(), mark);
}

TEST_F(SnapshotStoreTest,
       AMalformedUnsyncedMarkCoversWhatExistedAndIsRewritten) {
  ASSERT_OK(Create(Kind::kActive, "a"));
  const uint64_t next = store_->PeekNextId();
  store_.reset();
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(),
                        rocksdb::Slice(keys::kUnsyncedBelow.data(),
                                       keys::kUnsyncedBelow.size()),
                        "bad")
                    .ok());
    ASSERT_TRUE(db->Close().ok());
  }
  // Refusing a Commit loses nothing; committing lost files would.
  Reopen();
  EXPECT_EQ(store_->UnsyncedBelow(), next);
  // Fixed for good: snapshots prepared now stay above it after reopens.
  ASSERT_OK(Create(Kind::kActive, "b"));
  ExpectMarkAfterReopen(next);
}

TEST_F(SnapshotStoreTest, SecondOpenOfSameDatabaseIsUnavailable) {
  EXPECT_THAT(SnapshotStore::Open(dir_.path() + "/db"),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(SnapshotStoreTest, ConcurrentIdenticalCreatesHaveExactlyOneWinner) {
  constexpr int kThreads = 8;
  std::vector<absl::Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { results[i] = Create(Kind::kActive, "same").status(); });
  }
  for (auto& t : threads) t.join();
  int ok = 0;
  for (const absl::Status& s : results) {
    if (s.ok()) {
      ++ok;
    } else {
      EXPECT_THAT(s, StatusIs(absl::StatusCode::kAlreadyExists));
    }
  }
  EXPECT_EQ(ok, 1);
}

TEST_F(SnapshotStoreTest, ConcurrentWritersAllLandAndSurviveReopen) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::vector<std::thread> threads;
  std::vector<absl::Status> failures(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string parent;
      for (int i = 0; i < kPerThread; ++i) {
        std::string name = absl::StrCat("t", t, "-", i);
        absl::Status s =
            Create(Kind::kActive, name + "-active", parent, {{"i", name}}).status();
        if (s.ok()) s = store_->Commit(name + "-active", name, {}, {}).status();
        if (s.ok() && i % 2 == 0) s = store_->Update(name, {{"u", "1"}}, {}).status();
        if (!s.ok()) {
          failures[t] = s;
          return;
        }
        parent = name;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const absl::Status& s : failures) ASSERT_OK(s);
  Reopen();
  EXPECT_EQ(WalkNames().size(), static_cast<size_t>(kThreads * kPerThread));
  auto last = store_->Get(absl::StrCat("t3-", kPerThread - 1));
  ASSERT_OK(last);
  EXPECT_EQ(last->ancestor_ids.size(), static_cast<size_t>(kPerThread - 1));
  auto updated = store_->Get("t5-4");
  ASSERT_OK(updated);
  EXPECT_EQ(updated->info.labels, (Labels{{"u", "1"}}));
}

// containerd's garbage collector removes snapshot after snapshot; each
// Remove's children check must not step over the deletion markers the
// earlier ones left (that made every Remove slower than the last).
TEST_F(SnapshotStoreTest, RemoveAfterManyRemovesSkipsNoDeletionMarkers) {
  constexpr int kCount = 300;
  for (int i = 0; i < kCount; ++i) {
    ASSERT_OK(Create(Kind::kActive, absl::StrCat("leaf-", i), "", {{"l", "v"}}));
  }
  for (int i = 0; i < kCount - 1; ++i) ASSERT_OK(store_->Remove(absl::StrCat("leaf-", i)));

  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
  rocksdb::get_perf_context()->Reset();
  ASSERT_OK(store_->Remove(absl::StrCat("leaf-", kCount - 1)));
  EXPECT_OK(store_->HasChildren(12345).status());
  const uint64_t skipped = rocksdb::get_perf_context()->internal_delete_skipped_count;
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  EXPECT_LT(skipped, 10u);
  EXPECT_THAT(WalkNames({"labels.l==v"}), IsEmpty());
}

TEST_F(SnapshotStoreTest, KeysHoldingNulAndSlashesAreOpaque) {
  const std::string key("a/../b\0c\n", 9);
  ASSERT_OK(Create(Kind::kActive, key));
  auto got = store_->Get(key);
  ASSERT_OK(got);
  EXPECT_EQ(got->info.name, key);
  EXPECT_THAT(store_->Get("a/../b"), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace cpp_overlay::metadata
