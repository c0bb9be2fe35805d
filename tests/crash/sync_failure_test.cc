// A disk that fails a sync (EIO, through the preloaded fail_log_sync.cc).
// A metadata log sync: the call gets an error, the daemon stops with exit
// status 1 instead of serving on from memory the disk may not have, and a
// restart recovers a consistent root. The filesystem sync before a Commit:
// that Commit fails, no snapshot written before may be committed, and the
// daemon serves on. Needs root (the daemon chowns).
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/crash/daemon_process.h"
#include "tests/crash/root_checks.h"
#include "tests/testing/snapshots_client.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The daemon on a disk whose next sync of one kind fails once `trigger`
// exists (fail_log_sync.cc reads the trigger's name from `variable`).
class SyncFailureTest : public ::testing::Test {
 protected:
  void StartFailingDisk(const std::string& variable,
                        const std::string& trigger) {
    ASSERT_EQ(geteuid(), 0u)
        << "the daemon chowns snapshot directories: run as root";
    ASSERT_TRUE(daemon_
                    .Start({{"LD_PRELOAD", CPP_OVERLAY_FAIL_LOG_SYNC_PATH},
                            {variable, trigger}})
                    .ok());
    ASSERT_TRUE(daemon_.WaitReady().ok()) << daemon_.Log();
  }

  TempDir dir_;
  const std::string root_ = dir_.path() + "/root";
  DaemonProcess daemon_{DaemonBinary(), root_, dir_.path() + "/d.sock",
                        dir_.path() + "/daemon.log"};
};

TEST_F(SyncFailureTest, TheDaemonStopsAndARestartRecoversAConsistentRoot) {
  const std::string trigger = dir_.path() + "/fail-next-sync";
  ASSERT_NO_FATAL_FAILURE(
      StartFailingDisk("CPP_OVERLAY_FAIL_SYNC_TRIGGER", trigger));
  {
    SnapshotsClient client(daemon_.NewStub());
    ASSERT_TRUE(client.Prepare("base-active", "", {}).ok());
    ASSERT_TRUE(client.Commit("base", "base-active", {}).ok());

    std::ofstream(trigger).put('x');
    grpc::Status failed = client.Prepare("doomed", "base", {});
    EXPECT_FALSE(failed.ok());
    EXPECT_THAT(failed.error_message(), HasSubstr("could not be synced"));
  }
  int status = daemon_.Wait(absl::Seconds(30));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1)
      << "wait status " << status << "\n"
      << daemon_.Log();
  EXPECT_THAT(
      daemon_.Log(),
      HasSubstr("stopping: the metadata write-ahead log could not be synced"));

  // Restarted without the failing disk: what was acknowledged is there, the
  // root is consistent whichever way the refused Prepare went, and changes
  // work again.
  ASSERT_TRUE(daemon_.Start().ok());
  ASSERT_TRUE(daemon_.WaitReady().ok()) << daemon_.Log();
  SnapshotsClient client(daemon_.NewStub());
  EXPECT_TRUE(client.Stat("base").ok());
  ASSERT_TRUE(client.Stat("doomed").ok())
      << "the refused Prepare's record was in the log, which a restart replays";
  // Its directory was kept, not deleted as after a refused create: start-up
  // found it and had nothing to make again.
  std::string fs;
  ASSERT_TRUE(client.Mounts("doomed", &fs).ok());
  struct stat st;
  EXPECT_EQ(lstat(fs.c_str(), &st), 0) << fs;
  EXPECT_THAT(daemon_.Log(),
              Not(HasSubstr("lost directories of active snapshot \"doomed\"")));
  EXPECT_TRUE(client.Prepare("after", "base", {}).ok());
  EXPECT_EQ(daemon_.Terminate(), 0) << daemon_.Log();
  absl::StatusOr<std::vector<metadata::Finding>> findings = FsckFindings(root_);
  ASSERT_TRUE(findings.ok()) << findings.status();
  EXPECT_TRUE(findings->empty()) << FindingsString(*findings);
}

// The kernel reports a page it could not write once and marks it clean, so
// after a failed syncfs the next one succeeds over it: what was written
// before the failure must never be committed, also after a restart. The
// daemon serves on.
TEST_F(SyncFailureTest, AFailedLayerSyncForbidsCommitsOfWhatWasWrittenBefore) {
  const std::string trigger = dir_.path() + "/fail-next-syncfs";
  ASSERT_NO_FATAL_FAILURE(
      StartFailingDisk("CPP_OVERLAY_FAIL_SYNCFS_TRIGGER", trigger));
  SnapshotsClient client(daemon_.NewStub());
  ASSERT_TRUE(client.Prepare("base-active", "", {}).ok());
  ASSERT_TRUE(client.Commit("base", "base-active", {}).ok());
  ASSERT_TRUE(client.Prepare("layer-active", "base", {}).ok());
  ASSERT_TRUE(client.Prepare("other-active", "base", {}).ok());

  std::ofstream(trigger).put('x');
  grpc::Status failed = client.Commit("layer", "layer-active", {});
  EXPECT_EQ(failed.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(failed.error_message(),
              HasSubstr("commit snapshot \"layer-active\": sync the "
                        "filesystem of"));
  EXPECT_THAT(failed.error_message(), HasSubstr("Input/output error"));

  // The disk syncs again, but what was written before cannot be trusted.
  auto expect_refused = [](SnapshotsClient& client, const char* key) {
    grpc::Status refused = client.Commit("layer", key, {});
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << key;
    EXPECT_THAT(refused.error_message(),
                HasSubstr("remove it and unpack the layer again"));
    ::containerd::services::snapshots::v1::Info info;
    ASSERT_TRUE(client.Stat(key, &info).ok());
    EXPECT_EQ(info.kind(), ::containerd::services::snapshots::v1::ACTIVE);
  };
  expect_refused(client, "layer-active");
  expect_refused(client, "other-active");
  EXPECT_TRUE(client.Remove("layer-active").ok());
  // A layer unpacked again commits, and the daemon never stopped.
  ASSERT_TRUE(client.Prepare("layer-again", "base", {}).ok());
  EXPECT_TRUE(client.Commit("layer", "layer-again", {}).ok());
  EXPECT_THAT(daemon_.Log(),
              HasSubstr("may have lost written files and cannot be committed"));

  // Killed, and back on a disk that syncs: a restart brings no lost page
  // back (and a new descriptor would not see the reported error), so the
  // refusal holds; snapshots prepared now commit.
  daemon_.Kill();
  ASSERT_TRUE(daemon_.Start().ok());
  ASSERT_TRUE(daemon_.WaitReady().ok()) << daemon_.Log();
  SnapshotsClient restarted(daemon_.NewStub());
  expect_refused(restarted, "other-active");
  ASSERT_TRUE(restarted.Prepare("after-restart", "layer", {}).ok());
  EXPECT_TRUE(restarted.Commit("top", "after-restart", {}).ok());
  EXPECT_EQ(daemon_.Terminate(), 0) << daemon_.Log();
  absl::StatusOr<std::vector<metadata::Finding>> findings = FsckFindings(root_);
  ASSERT_TRUE(findings.ok()) << findings.status();
  EXPECT_TRUE(findings->empty()) << FindingsString(*findings);
}

// The disk then also fails the metadata sync of the mark: that stops the
// daemon as any failed metadata sync does, and the failed Commit is told.
TEST_F(SyncFailureTest, AMarkWhoseSyncFailsStopsTheDaemon) {
  const std::string syncfs_trigger = dir_.path() + "/fail-next-syncfs";
  const std::string log_sync_trigger = dir_.path() + "/fail-next-log-sync";
  ASSERT_TRUE(daemon_
                  .Start({{"LD_PRELOAD", CPP_OVERLAY_FAIL_LOG_SYNC_PATH},
                          {"CPP_OVERLAY_FAIL_SYNCFS_TRIGGER", syncfs_trigger},
                          {"CPP_OVERLAY_FAIL_SYNC_TRIGGER", log_sync_trigger}})
                  .ok());
  ASSERT_TRUE(daemon_.WaitReady().ok()) << daemon_.Log();
  {
    SnapshotsClient client(daemon_.NewStub());
    ASSERT_TRUE(client.Prepare("layer-active", "", {}).ok());
    std::ofstream(syncfs_trigger).put('x');
    std::ofstream(log_sync_trigger).put('x');
    grpc::Status failed = client.Commit("layer", "layer-active", {});
    EXPECT_EQ(failed.error_code(), grpc::StatusCode::INTERNAL);
  }
  int status = daemon_.Wait(absl::Seconds(30));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1)
      << "wait status " << status << "\n"
      << daemon_.Log();
  EXPECT_THAT(daemon_.Log(), HasSubstr("that mark may not be on disk"));
  EXPECT_THAT(
      daemon_.Log(),
      HasSubstr("stopping: the metadata write-ahead log could not be synced"));

  // The mark went to its own file before the store was asked
  // (unsynced_mark_test.cc has the case where only that file keeps it).
  EXPECT_TRUE(std::filesystem::exists(root_ + "/unsynced-below"));
  // Restarted on a disk that syncs again: the layer written before the
  // failed sync still cannot be committed.
  ASSERT_TRUE(daemon_.Start().ok());
  ASSERT_TRUE(daemon_.WaitReady().ok()) << daemon_.Log();
  SnapshotsClient restarted(daemon_.NewStub());
  grpc::Status refused = restarted.Commit("layer", "layer-active", {});
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << refused.error_message();
  EXPECT_THAT(refused.error_message(),
              HasSubstr("remove it and unpack the layer again"));
  EXPECT_FALSE(std::filesystem::exists(root_ + "/unsynced-below"))
      << "the store holds the mark now; its file goes";
  ASSERT_TRUE(restarted.Prepare("layer-again", "", {}).ok());
  EXPECT_TRUE(restarted.Commit("layer", "layer-again", {}).ok());
  EXPECT_EQ(daemon_.Terminate(), 0) << daemon_.Log();
}

}  // namespace
}  // namespace cpp_overlay::testing
