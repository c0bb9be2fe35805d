// A disk that fails a metadata log sync (EIO, through the preloaded
// fail_log_sync.cc): the call gets an error, the daemon stops with exit
// status 1 instead of serving on from memory the disk may not have, and a
// restart recovers a consistent root. Needs root (the daemon chowns).
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

TEST(SyncFailureTest, TheDaemonStopsAndARestartRecoversAConsistentRoot) {
  ASSERT_EQ(geteuid(), 0u)
      << "the daemon chowns snapshot directories: run as root";
  TempDir dir;
  const std::string root = dir.path() + "/root";
  const std::string trigger = dir.path() + "/fail-next-sync";
  DaemonProcess daemon(DaemonBinary(), root, dir.path() + "/d.sock",
                       dir.path() + "/daemon.log");
  ASSERT_TRUE(daemon
                  .Start({{"LD_PRELOAD", CPP_OVERLAY_FAIL_LOG_SYNC_PATH},
                          {"CPP_OVERLAY_FAIL_SYNC_TRIGGER", trigger}})
                  .ok());
  ASSERT_TRUE(daemon.WaitReady().ok()) << daemon.Log();
  {
    SnapshotsClient client(daemon.NewStub());
    ASSERT_TRUE(client.Prepare("base-active", "", {}).ok());
    ASSERT_TRUE(client.Commit("base", "base-active", {}).ok());

    std::ofstream(trigger).put('x');
    grpc::Status failed = client.Prepare("doomed", "base", {});
    EXPECT_FALSE(failed.ok());
    EXPECT_THAT(failed.error_message(), HasSubstr("could not be synced"));
  }
  int status = daemon.Wait(absl::Seconds(30));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1)
      << "wait status " << status << "\n"
      << daemon.Log();
  EXPECT_THAT(
      daemon.Log(),
      HasSubstr("stopping: the metadata write-ahead log could not be synced"));

  // Restarted without the failing disk: what was acknowledged is there, the
  // root is consistent whichever way the refused Prepare went, and changes
  // work again.
  ASSERT_TRUE(daemon.Start().ok());
  ASSERT_TRUE(daemon.WaitReady().ok()) << daemon.Log();
  SnapshotsClient client(daemon.NewStub());
  EXPECT_TRUE(client.Stat("base").ok());
  ASSERT_TRUE(client.Stat("doomed").ok())
      << "the refused Prepare's record was in the log, which a restart replays";
  // Its directory was kept, not deleted as after a refused create: start-up
  // found it and had nothing to make again.
  std::string fs;
  ASSERT_TRUE(client.Mounts("doomed", &fs).ok());
  struct stat st;
  EXPECT_EQ(lstat(fs.c_str(), &st), 0) << fs;
  EXPECT_THAT(daemon.Log(),
              Not(HasSubstr("lost directories of active snapshot \"doomed\"")));
  EXPECT_TRUE(client.Prepare("after", "base", {}).ok());
  EXPECT_EQ(daemon.Terminate(), 0) << daemon.Log();
  absl::StatusOr<std::vector<metadata::Finding>> findings = FsckFindings(root);
  ASSERT_TRUE(findings.ok()) << findings.status();
  EXPECT_TRUE(findings->empty()) << FindingsString(*findings);
}

}  // namespace
}  // namespace cpp_overlay::testing
