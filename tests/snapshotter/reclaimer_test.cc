#include "snapshotter/reclaimer.h"

#include <fstream>
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

size_t EntriesIn(const std::string& dir) {
  auto entries = fs::ListDir(dir);
  return entries.ok() ? entries->size() : 0;
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

}  // namespace
}  // namespace cpp_overlay::snapshotter
