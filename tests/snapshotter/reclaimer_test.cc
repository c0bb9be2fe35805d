#include "snapshotter/reclaimer.h"

#include <fstream>
#include <limits>
#include <optional>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "snapshotter/fs.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::snapshotter {
namespace {

using ::cpp_overlay::testing::StatusIs;

void MakeTree(const std::string& dir, int files) {
  ASSERT_OK(fs::MakeDirs(dir + "/sub", 0755));
  for (int i = 0; i < files; ++i) {
    std::ofstream(dir + "/sub/f" + std::to_string(i)) << "data";
  }
}

// A directory that cannot be listed fails the test: a trash/ that is gone
// must not pass for an empty one.
size_t EntriesIn(const std::string& dir) {
  auto entries = fs::ListDir(dir);
  if (!entries.ok()) {
    ADD_FAILURE() << entries.status();
    return std::numeric_limits<size_t>::max();
  }
  return entries->size();
}

// Whether trash/ still holds an entry discarded under `name`.
bool HoldsDiscarded(const std::string& trash, const std::string& name) {
  auto entries = fs::ListDir(trash);
  if (!entries.ok()) {
    ADD_FAILURE() << entries.status();
    return true;
  }
  for (const std::string& entry : *entries) {
    if (entry.rfind(name + "-", 0) == 0) return true;
  }
  return false;
}

TEST(ReclaimerTest, DiscardMovesIntoTrashAndDeletesInTheBackground) {
  testing::TempDir dir;
  const std::string trash = dir.path() + "/trash";
  ASSERT_OK(fs::MakeDir(trash, 0700));
  MakeTree(dir.path() + "/victim", 100);
  Reclaimer reclaimer(trash, 0);
  ASSERT_OK(reclaimer.Discard(dir.path() + "/victim", "7"));
  EXPECT_FALSE(fs::Exists(dir.path() + "/victim"));
  EXPECT_TRUE(reclaimer.WaitUntilEmpty(absl::Seconds(30)));
  EXPECT_EQ(EntriesIn(trash), 0u);
  EXPECT_EQ(reclaimer.Backlog(), 0);
}

// A stray entry may have a name of NAME_MAX bytes; the trash entry's
// suffix must still fit.
TEST(ReclaimerTest, AnEntryWithTheLongestNameIsDiscarded) {
  testing::TempDir dir;
  const std::string trash = dir.path() + "/trash";
  ASSERT_OK(fs::MakeDir(trash, 0700));
  const std::string name(255, 'n');
  MakeTree(dir.path() + "/" + name, 3);
  Reclaimer reclaimer(trash, 0);
  ASSERT_OK(reclaimer.Discard(dir.path() + "/" + name, name));
  EXPECT_FALSE(fs::Exists(dir.path() + "/" + name));
  EXPECT_TRUE(reclaimer.WaitUntilEmpty(absl::Seconds(30)));
}

TEST(ReclaimerTest, DiscardOfMissingDirectoryIsNotFound) {
  testing::TempDir dir;
  ASSERT_OK(fs::MakeDir(dir.path() + "/trash", 0700));
  Reclaimer reclaimer(dir.path() + "/trash", 0);
  EXPECT_THAT(reclaimer.Discard(dir.path() + "/nope", "1"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(ReclaimerTest, SameNameDiscardedTwiceGetsTwoTrashEntries) {
  testing::TempDir dir;
  const std::string trash = dir.path() + "/trash";
  ASSERT_OK(fs::MakeDir(trash, 0700));
  // Paused by a rate of one entry per second, so both stay visible.
  Reclaimer reclaimer(trash, 1);
  MakeTree(dir.path() + "/a", 10);
  MakeTree(dir.path() + "/b", 10);
  ASSERT_OK(reclaimer.Discard(dir.path() + "/a", "5"));
  ASSERT_OK(reclaimer.Discard(dir.path() + "/b", "5"));
  EXPECT_EQ(EntriesIn(trash), 2u);
}

TEST(ReclaimerTest, ResumesWhatAnEarlierRunLeftInTrash) {
  testing::TempDir dir;
  const std::string trash = dir.path() + "/trash";
  ASSERT_OK(fs::MakeDir(trash, 0700));
  MakeTree(trash + "/left-over", 50);
  Reclaimer reclaimer(trash, 0);
  EXPECT_TRUE(reclaimer.WaitUntilEmpty(absl::Seconds(30)));
  EXPECT_EQ(EntriesIn(trash), 0u);
}

TEST(ReclaimerTest, RateLimitPacesDeletion) {
  testing::TempDir dir;
  const std::string trash = dir.path() + "/trash";
  ASSERT_OK(fs::MakeDir(trash, 0700));
  MakeTree(trash + "/x", 48);  // 48 files + sub + x = 50 unlinks
  absl::Time start = absl::Now();
  Reclaimer reclaimer(trash, 20);
  ASSERT_TRUE(reclaimer.WaitUntilEmpty(absl::Seconds(30)));
  EXPECT_GE(absl::Now() - start, absl::Seconds(2));
}

TEST(ReclaimerTest, StoppingLeavesTheRestForTheNextStart) {
  testing::TempDir dir;
  const std::string trash = dir.path() + "/trash";
  ASSERT_OK(fs::MakeDir(trash, 0700));
  MakeTree(trash + "/big", 200);
  std::optional<Reclaimer> reclaimer;
  reclaimer.emplace(trash, 10);
  // Its first 10 unlinks are done; it waits out the rest of the second.
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time stop = absl::Now();
  reclaimer.reset();
  const absl::Duration stop_time = absl::Now() - stop;
  // Stopping does not wait for the paced second to end.
  EXPECT_LT(stop_time, absl::Milliseconds(400));
  EXPECT_EQ(EntriesIn(trash), 1u);
}

// A reclaimer that waits for removals to stop for `quiet`, at most
// `max_yield` in a row.
class YieldingReclaimerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(fs::MakeDir(trash_, 0700)); }

  Reclaimer& Start(absl::Duration quiet, absl::Duration max_yield) {
    ReclaimerOptions options;
    options.quiet_after_discard = quiet;
    options.max_yield = max_yield;
    reclaimer_.emplace(trash_, options);
    return *reclaimer_;
  }

  // Discards a fresh tree of `files` files under `name`.
  void DiscardTree(const std::string& name, int files) {
    MakeTree(dir_.path() + "/" + name, files);
    ASSERT_OK(reclaimer_->Discard(dir_.path() + "/" + name, name));
  }

  testing::TempDir dir_;
  const std::string trash_ = dir_.path() + "/trash";
  std::optional<Reclaimer> reclaimer_;
};

TEST_F(YieldingReclaimerTest, WaitsWhileRemovalsArriveAndDeletesOnceTheyStop) {
  Reclaimer& reclaimer = Start(absl::Seconds(2), absl::Seconds(60));
  ASSERT_NO_FATAL_FAILURE(DiscardTree("first", 10));
  absl::Time last;
  for (int i = 0; i < 10; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    last = absl::Now();
    ASSERT_NO_FATAL_FAILURE(DiscardTree("burst-" + std::to_string(i), 0));
  }
  // Removals kept coming: nothing was deleted yet.
  EXPECT_EQ(EntriesIn(trash_), 11u);
  EXPECT_EQ(reclaimer.Backlog(), 11);
  // Two quiet seconds after the last one it deletes everything.
  EXPECT_TRUE(reclaimer.WaitUntilEmpty(absl::Seconds(30)));
  EXPECT_GE(absl::Now() - last, absl::Seconds(2));
  EXPECT_EQ(EntriesIn(trash_), 0u);
}

// Cleanup wakes the reclaimer after containerd's removals; the quiet period
// still runs its course.
TEST_F(YieldingReclaimerTest, WakeKeepsTheQuietPeriod) {
  Reclaimer& reclaimer = Start(absl::Seconds(2), absl::Seconds(60));
  const absl::Time discarded = absl::Now();
  ASSERT_NO_FATAL_FAILURE(DiscardTree("victim", 10));
  reclaimer.Wake();
  EXPECT_TRUE(reclaimer.WaitUntilEmpty(absl::Seconds(30)));
  EXPECT_GE(absl::Now() - discarded, absl::Seconds(2));
}

TEST_F(YieldingReclaimerTest, ASteadyStreamOfRemovalsDoesNotStarveDeletion) {
  Start(absl::Seconds(600), absl::Milliseconds(300));
  // 202 unlinks: one per yield would take a minute.
  ASSERT_NO_FATAL_FAILURE(DiscardTree("first", 200));
  // Removals never pause for the quiet period, yet deletion goes on after
  // each yield of at most 300 ms.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  int round = 0;
  while (HoldsDiscarded(trash_, "first") && absl::Now() < deadline) {
    ASSERT_NO_FATAL_FAILURE(
        DiscardTree("stream-" + std::to_string(round++), 0));
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_FALSE(HoldsDiscarded(trash_, "first"))
      << "after " << round << " removals";
}

TEST_F(YieldingReclaimerTest, StoppingEndsTheWaitForRemovalsToStop) {
  Start(absl::Seconds(600), absl::Seconds(600));
  ASSERT_NO_FATAL_FAILURE(DiscardTree("victim", 10));
  absl::SleepFor(absl::Milliseconds(100));
  const absl::Time stop = absl::Now();
  reclaimer_.reset();
  EXPECT_LT(absl::Now() - stop, absl::Seconds(5));
  EXPECT_EQ(EntriesIn(trash_), 1u);
}

}  // namespace
}  // namespace cpp_overlay::snapshotter
