// A fixture for tests that need the daemon's root on a filesystem of their
// own (disk full, power cut): a LoopFilesystem, the daemon started on
// <mount>/root, and a client. Needs root.
#ifndef CPP_OVERLAY_TESTS_CRASH_LOOP_ROOT_TEST_H_
#define CPP_OVERLAY_TESTS_CRASH_LOOP_ROOT_TEST_H_

#include <unistd.h>

#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/crash/daemon_process.h"
#include "tests/crash/loop_filesystem.h"
#include "tests/testing/mount_helper.h"
#include "tests/testing/snapshots_client.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::testing {

class LoopRootTest : public ::testing::Test {
 protected:
  // Call from SetUp (with ASSERT_NO_FATAL_FAILURE).
  void SetUpLoopRoot(int megabytes, const std::string& type = "ext4",
                     const std::string& options = "") {
    ASSERT_EQ(geteuid(), 0u) << "needs root: losetup and mount";
    // The mount vanishes with the process even when ctest kills it, and the
    // loop device then detaches itself (LoopFilesystem).
    ASSERT_NO_FATAL_FAILURE(EnterPrivateMountNamespace());
    ASSERT_FALSE(DaemonBinary().empty())
        << "set CPP_OVERLAY_DAEMON to the daemon binary";
    absl::Status made = fs_.Make(dir_.path(), megabytes, type, options);
    ASSERT_TRUE(made.ok()) << made;
    root_ = fs_.mount_point() + "/root";
    daemon_ = std::make_unique<DaemonProcess>(DaemonBinary(), root_,
                                              dir_.path() + "/d.sock",
                                              dir_.path() + "/daemon.log");
    StartDaemon();
  }

  void TearDown() override {
    client_.reset();
    if (daemon_ == nullptr) return;
    daemon_->Kill();
    if (HasFailure()) std::cerr << "daemon log:\n" << daemon_->Log();
  }

  // Starts the daemon (again) and connects a new client.
  void StartDaemon() {
    ASSERT_TRUE(daemon_->Start(daemon_env_).ok());
    absl::Status ready = daemon_->WaitReady();
    ASSERT_TRUE(ready.ok()) << ready << "\n" << daemon_->Log();
    client_ = std::make_unique<SnapshotsClient>(daemon_->NewStub());
  }

  TempDir dir_;
  LoopFilesystem fs_;
  std::string root_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<SnapshotsClient> client_;
  // The daemon's extra environment from the next StartDaemon on.
  std::map<std::string, std::string> daemon_env_;
};

}  // namespace cpp_overlay::testing

#endif  // CPP_OVERLAY_TESTS_CRASH_LOOP_ROOT_TEST_H_
