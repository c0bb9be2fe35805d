#include "snapshotter/shared_sync.h"

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cpp_overlay::snapshotter {
namespace {

// A sync whose rounds can be held open, recording what happened in order.
class HeldSync {
 public:
  absl::Status operator()() {
    int round;
    {
      absl::MutexLock lock(&mu_);
      round = ++rounds_;
      events_.push_back("sync " + std::to_string(round) + " starts");
    }
    if (round == 1) release_first_.WaitForNotification();
    absl::MutexLock lock(&mu_);
    events_.push_back("sync " + std::to_string(round) + " ends");
    return round == fail_round_ ? absl::InternalError("disk gone")
                                : absl::OkStatus();
  }
  void Record(std::string event) {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(event));
  }
  int rounds() {
    absl::MutexLock lock(&mu_);
    return rounds_;
  }
  std::vector<std::string> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  void FailRound(int round) {
    absl::MutexLock lock(&mu_);
    fail_round_ = round;
  }
  absl::Notification release_first_;

 private:
  absl::Mutex mu_;
  int rounds_ = 0;
  int fail_round_ = 0;
  std::vector<std::string> events_;
};

void WaitUntil(const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!done()) {
    ASSERT_LT(absl::Now(), deadline) << "timed out";
    absl::SleepFor(absl::Milliseconds(1));
  }
}

TEST(SharedSyncTest, ALoneCallerSyncsEveryTime) {
  int syncs = 0;
  SharedSync sync([&] {
    ++syncs;
    return absl::OkStatus();
  });
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(sync.Sync().ok());
  EXPECT_EQ(syncs, 3);
}

TEST(SharedSyncTest, ACallerNeverReturnsWithASyncThatStartedBeforeIt) {
  HeldSync held;
  SharedSync sync([&] { return held(); });
  std::thread first([&] { ASSERT_TRUE(sync.Sync().ok()); });
  ASSERT_NO_FATAL_FAILURE(WaitUntil([&] { return held.rounds() == 1; }));
  std::thread late([&] {
    ASSERT_TRUE(sync.Sync().ok());
    held.Record("late caller returns");
  });
  ASSERT_NO_FATAL_FAILURE(
      WaitUntil([&] { return sync.WaitingForTests() == 1; }));
  held.release_first_.Notify();
  first.join();
  late.join();
  EXPECT_THAT(
      held.events(),
      testing::ElementsAre("sync 1 starts", "sync 1 ends", "sync 2 starts",
                           "sync 2 ends", "late caller returns"));
}

TEST(SharedSyncTest, CallersArrivingDuringASyncShareTheNextOne) {
  HeldSync held;
  SharedSync sync([&] { return held(); });
  std::thread first([&] { ASSERT_TRUE(sync.Sync().ok()); });
  ASSERT_NO_FATAL_FAILURE(WaitUntil([&] { return held.rounds() == 1; }));
  constexpr int kCallers = 7;
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&] { ASSERT_TRUE(sync.Sync().ok()); });
  }
  ASSERT_NO_FATAL_FAILURE(
      WaitUntil([&] { return sync.WaitingForTests() == kCallers; }));
  held.release_first_.Notify();
  first.join();
  for (std::thread& t : callers) t.join();
  // One round for the first caller, one shared by the seven.
  EXPECT_EQ(held.rounds(), 2);
}

// The owner hears of a failure before any later sync can succeed over the
// pages the failed one could not write.
TEST(SharedSyncTest, AFailedSyncFailsItsCallersAndIsReportedBeforeTheNext) {
  HeldSync held;
  held.FailRound(2);
  SharedSync sync(
      [&] { return held(); },
      [&](const absl::Status& s) {
        held.Record("failure reported: " + std::string(s.message()));
      });
  std::thread first([&] { ASSERT_TRUE(sync.Sync().ok()); });
  ASSERT_NO_FATAL_FAILURE(WaitUntil([&] { return held.rounds() == 1; }));
  std::atomic<int> failed = 0;
  std::vector<std::thread> callers;
  for (int i = 0; i < 3; ++i) {
    callers.emplace_back([&] {
      if (absl::IsInternal(sync.Sync())) ++failed;
    });
  }
  ASSERT_NO_FATAL_FAILURE(
      WaitUntil([&] { return sync.WaitingForTests() == 3; }));
  held.release_first_.Notify();
  first.join();
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(failed, 3);

  EXPECT_TRUE(sync.Sync().ok()) << "a later sync runs again";
  EXPECT_THAT(
      held.events(),
      testing::ElementsAre("sync 1 starts", "sync 1 ends", "sync 2 starts",
                           "sync 2 ends", "failure reported: disk gone",
                           "sync 3 starts", "sync 3 ends"));
}

TEST(SharedSyncTest, NoSyncStartsUntilTheOwnerHasHeardOfAFailure) {
  HeldSync held;
  held.release_first_.Notify();
  held.FailRound(1);
  absl::Notification hook_entered, release_hook;
  SharedSync sync([&] { return held(); },
                  [&](const absl::Status&) {
                    hook_entered.Notify();
                    release_hook.WaitForNotification();
                  });
  std::thread failing([&] { EXPECT_FALSE(sync.Sync().ok()); });
  hook_entered.WaitForNotification();
  std::thread later([&] { EXPECT_TRUE(sync.Sync().ok()); });
  ASSERT_NO_FATAL_FAILURE(
      WaitUntil([&] { return sync.WaitingForTests() == 1; }));
  EXPECT_EQ(held.rounds(), 1) << "a sync started while the hook ran";
  release_hook.Notify();
  failing.join();
  later.join();
  EXPECT_EQ(held.rounds(), 2);
}

}  // namespace
}  // namespace cpp_overlay::snapshotter
