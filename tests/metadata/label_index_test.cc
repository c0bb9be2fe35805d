// The label index behind filtered Walks: whatever the sequence of writes,
// a Walk through the index answers exactly what a full scan answers.
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "metadata/keys.h"
#include "metadata/snapshot_store.h"
#include "metadata/store_check.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "tests/testing/status_matchers.h"
#include "tests/metadata/store_fixture.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::metadata {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class LabelIndexTest : public StoreFixture {
 protected:
  // What a full scan finds: every snapshot, matched one by one.
  std::vector<std::string> Scan(const std::vector<std::string>& filters) {
    std::vector<std::string> names;
    auto all = Filter::Parse({});
    auto filter = Filter::Parse(filters);
    EXPECT_OK(all);
    EXPECT_OK(filter);
    EXPECT_OK(store_->Walk(*all, [&](const Snapshot& s) {
      if (filter->Matches(s.info)) names.push_back(s.info.name);
      return absl::OkStatus();
    }));
    return names;
  }
};

TEST(LabelLookupsTest, EveryAlternativeNeedsALabelTest) {
  auto lookups = [](const std::vector<std::string>& filters) {
    auto filter = Filter::Parse(filters);
    EXPECT_OK(filter);
    return filter->LabelLookups();
  };
  EXPECT_EQ(lookups({}), std::nullopt);
  EXPECT_EQ(lookups({""}), std::nullopt);
  EXPECT_EQ(lookups({"kind==active"}), std::nullopt);
  EXPECT_EQ(lookups({"labels.a==1", "name==x"}), std::nullopt);
  // != and ~= also match snapshots without the label.
  EXPECT_EQ(lookups({"labels.a!=1"}), std::nullopt);
  EXPECT_EQ(lookups({"labels.a~=1"}), std::nullopt);

  auto both = lookups({"kind==active,labels.a", "labels.\"b.c\"==2,labels.d"});
  ASSERT_TRUE(both.has_value());
  ASSERT_EQ(both->size(), 2u);
  EXPECT_EQ((*both)[0].key, "a");
  EXPECT_EQ((*both)[0].value, std::nullopt);
  EXPECT_EQ((*both)[1].key, "b.c");  // the equality, not the presence test
  EXPECT_EQ((*both)[1].value, "2");
}

TEST_F(LabelIndexTest, FindsLabelsThroughCreateCommitUpdateAndRemove) {
  ASSERT_OK(store_->Create(Kind::kActive, "a-active", "", {{"x", "1"}},
                           store_->ReserveId()));
  ASSERT_OK(store_->Create(Kind::kActive, "b", "", {{"x", "2"}}, store_->ReserveId()));
  EXPECT_THAT(WalkNames({"labels.x==1"}), ElementsAre("a-active"));
  EXPECT_THAT(WalkNames({"labels.x"}), ElementsAre("a-active", "b"));

  // Commit replaces the labels.
  ASSERT_OK(store_->Commit("a-active", "a", {{"y", "1"}}, Usage{}));
  EXPECT_THAT(WalkNames({"labels.x==1"}), IsEmpty());
  EXPECT_THAT(WalkNames({"labels.y==1"}), ElementsAre("a"));

  // Update: a changed value moves, a removed label goes, the rest stays.
  ASSERT_OK(store_->Update("b", {{"x", "3"}, {"z", "1"}}, {}));
  EXPECT_THAT(WalkNames({"labels.x==2"}), IsEmpty());
  EXPECT_THAT(WalkNames({"labels.x==3"}), ElementsAre("b"));
  ASSERT_OK(store_->Update("b", {}, {"labels.x"}));
  EXPECT_THAT(WalkNames({"labels.x"}), IsEmpty());
  EXPECT_THAT(WalkNames({"labels.z==1"}), ElementsAre("b"));

  ASSERT_OK(store_->Remove("b"));
  EXPECT_THAT(WalkNames({"labels.z"}), IsEmpty());
  Reopen();
  EXPECT_THAT(WalkNames({"labels.y", "labels.z"}), ElementsAre("a"));
}

TEST_F(LabelIndexTest, AgreesWithAFullScanAfterRandomWrites) {
  std::mt19937 rng(20261126);
  auto pick = [&rng](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const std::vector<std::string> label_keys = {"a", "b", "c.d", std::string("n\0ul", 4)};
  auto random_labels = [&] {
    Labels labels;
    for (const std::string& key : label_keys) {
      if (pick(2) == 0) labels[key] = absl::StrCat("v", pick(3));
    }
    return labels;
  };
  std::vector<std::string> filters_to_check[] = {
      {"labels.a==v0"},
      {"labels.a"},
      {"labels.\"c.d\"==v1"},
      {"labels.a==v1,labels.b==v2"},
      {"labels.a==v2,kind==committed"},
      {"labels.b==v0", "labels.a"},
      {"labels.c.d==v2,labels.a!=v0"},
  };
  std::vector<std::string> live;  // active and committed keys
  int next = 0;
  for (int step = 0; step < 300; ++step) {
    const int op = live.empty() ? 0 : pick(4);
    if (op == 0) {
      const std::string key = absl::StrCat("k", next++);
      ASSERT_OK(store_->Create(Kind::kActive, key, "", random_labels(),
                               store_->ReserveId()));
      live.push_back(key);
    } else if (op == 1) {
      const int i = pick(static_cast<int>(live.size()));
      auto got = store_->Get(live[i]);
      ASSERT_OK(got);
      if (got->info.kind != Kind::kActive) continue;
      const std::string name = absl::StrCat("c", next++);
      ASSERT_OK(store_->Commit(live[i], name, random_labels(), Usage{}));
      live[i] = name;
    } else if (op == 2) {
      const int i = pick(static_cast<int>(live.size()));
      std::vector<std::string> paths;
      if (pick(2) == 0) paths.push_back(absl::StrCat("labels.", label_keys[pick(3)]));
      ASSERT_OK(store_->Update(live[i], random_labels(), paths));
    } else {
      const int i = pick(static_cast<int>(live.size()));
      ASSERT_OK(store_->Remove(live[i]));
      live.erase(live.begin() + i);
    }
    if (step % 30 == 29) Reopen();
    for (const auto& filters : filters_to_check) {
      ASSERT_EQ(WalkNames(filters), Scan(filters))
          << "step " << step << ", filter " << filters.front();
    }
  }
}

TEST_F(LabelIndexTest, AnEntryNamingTheWrongSnapshotIsFollowedByIdAndRepaired) {
  auto created =
      store_->Create(Kind::kActive, "k", "", {{"x", "1"}}, store_->ReserveId());
  ASSERT_OK(created);
  StoreRepair drift;
  drift.put_labels.push_back({"x", "1", created->id, "not-k"});
  ASSERT_OK(store_->ApplyRepair(drift));
  EXPECT_THAT(WalkNames({"labels.x==1"}), ElementsAre("k"));

  auto dump = store_->Dump();
  ASSERT_OK(dump);
  StoreCheck check = CheckStore(*dump);
  ASSERT_EQ(check.findings.size(), 1u);
  EXPECT_EQ(check.findings[0].kind, "stale-label-index");
  ASSERT_OK(store_->ApplyRepair(check.repair));
  dump = store_->Dump();
  ASSERT_OK(dump);
  EXPECT_THAT(CheckStore(*dump).findings, IsEmpty());
  EXPECT_THAT(WalkNames({"labels.x==1"}), ElementsAre("k"));
}

TEST_F(LabelIndexTest, ARootWithoutTheIndexGetsItWhenOpened) {
  ASSERT_OK(store_->Create(Kind::kActive, "k", "", {{"x", "1"}}, store_->ReserveId()));
  store_.reset();
  {
    // As a root written before the label index existed: no entries, no
    // marker.
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::WriteBatch batch;
    ASSERT_TRUE(batch.DeleteRange(std::string(keys::kLabelPrefix), "l0").ok());
    ASSERT_TRUE(batch.Delete(rocksdb::Slice(keys::kLabelIndexReady.data(),
                                            keys::kLabelIndexReady.size())).ok());
    ASSERT_TRUE(db->Write(rocksdb::WriteOptions(), &batch).ok());
    ASSERT_TRUE(db->Close().ok());
  }
  Reopen();
  EXPECT_THAT(WalkNames({"labels.x==1"}), ElementsAre("k"));
}

}  // namespace
}  // namespace cpp_overlay::metadata
