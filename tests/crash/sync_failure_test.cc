// A disk that fails a metadata log sync, or the filesystem sync before a
// Commit (EIO, through the preloaded fail_log_sync.cc): the call gets an
// error, the daemon stops with exit status 1 instead of serving on from
// memory the disk may not have, and a restart recovers a consistent root.
// Needs root (the daemon chowns).
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

// The kernel reports a writeback error once: after a failed syncfs no later
// one can be trusted to mean the layer's files are on disk.
TEST_F(SyncFailureTest, AFailedLayerSyncRefusesTheCommitAndStopsTheDaemon) {
  const std::string trigger = dir_.path() + "/fail-next-syncfs";
  ASSERT_NO_FATAL_FAILURE(
      StartFailingDisk("CPP_OVERLAY_FAIL_SYNCFS_TRIGGER", trigger));
  {
    SnapshotsClient client(daemon_.NewStub());
    ASSERT_TRUE(client.Prepare("base-active", "", {}).ok());
    ASSERT_TRUE(client.Commit("base", "base-active", {}).ok());
    ASSERT_TRUE(client.Prepare("layer-active", "base", {}).ok());

    std::ofstream(trigger).put('x');
    grpc::Status failed = client.Commit("layer", "layer-active", {});
    EXPECT_EQ(failed.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_THAT(failed.error_message(),
                HasSubstr("commit snapshot \"layer-active\": sync the "
                          "filesystem of"));
    EXPECT_THAT(failed.error_message(), HasSubstr("Input/output error"));
  }
  int status = daemon_.Wait(absl::Seconds(30));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1)
      << "wait status " << status << "\n"
      << daemon_.Log();
  EXPECT_THAT(daemon_.Log(), HasSubstr("Commits are refused until the daemon "
                                       "restarts"));

  // The refused Commit wrote no record: the layer is still active, and is
  // committed once the disk syncs again.
  ASSERT_TRUE(daemon_.Start().ok());
  ASSERT_TRUE(daemon_.WaitReady().ok()) << daemon_.Log();
  SnapshotsClient client(daemon_.NewStub());
  EXPECT_TRUE(client.Stat("base").ok());
  EXPECT_EQ(client.Stat("layer").error_code(), grpc::StatusCode::NOT_FOUND);
  ::containerd::services::snapshots::v1::Info info;
  ASSERT_TRUE(client.Stat("layer-active", &info).ok());
  EXPECT_EQ(info.kind(), ::containerd::services::snapshots::v1::ACTIVE);
  EXPECT_TRUE(client.Commit("layer", "layer-active", {}).ok());
  EXPECT_EQ(daemon_.Terminate(), 0) << daemon_.Log();
  absl::StatusOr<std::vector<metadata::Finding>> findings = FsckFindings(root_);
  ASSERT_TRUE(findings.ok()) << findings.status();
  EXPECT_TRUE(findings->empty()) << FindingsString(*findings);
}

}  // namespace
}  // namespace cpp_overlay::testing
