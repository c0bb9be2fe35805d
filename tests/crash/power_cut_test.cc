// Power cut: the daemon's root on a loop-mounted ext4 or xfs that is shut
// down without flushing its journal (LoopFilesystem::CutPower), right after
// the calls of an image unpack and a container's Prepare were acknowledged;
// then the daemon is killed, the filesystem mounted again and the daemon
// started. Every acknowledged layer must keep its directories, files and
// contents (Commit syncs the filesystem), actives and views get empty
// directories back, and the root is consistent. Needs root (losetup, mount).
//
// ext4 is mounted with commit=300 so that its periodic journal commit (every
// 5 s by default) cannot make the layers durable by chance within the test;
// xfs writes its log every 30 s, far longer than the test takes.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/crash/loop_root_test.h"
#include "tests/crash/root_checks.h"

namespace cpp_overlay::testing {
namespace {

bool IsDir(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The lowerdirs of an overlay mount, nearest first.
std::vector<std::string> LowerDirs(
    const ::containerd::services::snapshots::v1::MountsResponse& response) {
  for (const auto& mount : response.mounts()) {
    for (const std::string& option : mount.options()) {
      if (absl::StartsWith(option, "lowerdir=")) {
        return absl::StrSplit(option.substr(9), ':');
      }
    }
  }
  return {};
}

class PowerCutTest : public LoopRootTest,
                     public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    const bool xfs = GetParam() == "xfs";
    // 300 MiB is the smallest xfs mkfs.xfs makes.
    ASSERT_NO_FATAL_FAILURE(
        SetUpLoopRoot(xfs ? 320 : 128, GetParam(), xfs ? "" : "commit=300"));
  }

  // The power goes; the daemon dies with it and starts on the remounted
  // filesystem.
  void CutPowerAndRestart() {
    ASSERT_TRUE(fs_.CutPower().ok());
    client_.reset();
    daemon_->Kill();
    absl::Status remounted = fs_.Remount();
    ASSERT_TRUE(remounted.ok()) << remounted;
    ASSERT_NO_FATAL_FAILURE(StartDaemon());
  }

  // An unpacked layer: Prepare on `parent`, files written, Commit as `name`.
  void Unpack(const std::string& name, const std::string& parent) {
    std::string fs;
    grpc::Status s = client_->Prepare(name + "-extract", parent, {}, &fs);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(mkdir((fs + "/dir-" + name).c_str(), 0755), 0);
    WriteFile(fs + "/dir-" + name + "/file", name);
    WriteFile(fs + "/top-" + name, name);
    s = client_->Commit(name, name + "-extract");
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
};

TEST_P(PowerCutTest, AcknowledgedLayersKeepTheirDirectories) {
  ASSERT_NO_FATAL_FAILURE(Unpack("layer1", ""));
  ASSERT_NO_FATAL_FAILURE(Unpack("layer2", "layer1"));
  ASSERT_NO_FATAL_FAILURE(Unpack("layer3", "layer2"));
  ASSERT_TRUE(client_->Prepare("container", "layer3").ok());
  ASSERT_TRUE(client_->View("view", "layer3").ok());

  ASSERT_NO_FATAL_FAILURE(CutPowerAndRestart());

  for (const std::string name : {"layer1", "layer2", "layer3"}) {
    SnapshotsClient::Info info;
    grpc::Status s = client_->Stat(name, &info);
    ASSERT_TRUE(s.ok()) << name << ": " << s.error_message();
    EXPECT_EQ(info.kind(), ::containerd::services::snapshots::v1::COMMITTED);
  }
  ::containerd::services::snapshots::v1::MountsResponse mounts;
  grpc::Status s = client_->Mounts("container", &mounts);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const std::vector<std::string> lower = LowerDirs(mounts);
  ASSERT_EQ(lower.size(), 3u);
  const std::vector<std::string> names = {"layer3", "layer2", "layer1"};
  for (size_t i = 0; i < lower.size(); ++i) {
    EXPECT_TRUE(IsDir(lower[i] + "/dir-" + names[i]))
        << names[i] << "'s directory entries were lost: " << lower[i];
    EXPECT_EQ(ReadFile(lower[i] + "/dir-" + names[i] + "/file"), names[i])
        << names[i] << "'s files were lost: " << lower[i];
    EXPECT_EQ(ReadFile(lower[i] + "/top-" + names[i]), names[i])
        << names[i] << "'s files were lost: " << lower[i];
  }
  // The container's and the view's directories are back, if empty.
  std::string upper;
  ASSERT_TRUE(client_->Mounts("container", &upper).ok());
  EXPECT_TRUE(IsDir(upper)) << upper;
  ASSERT_TRUE(client_->Mounts("view").ok());
  // Work goes on on the recovered layers.
  s = client_->Prepare("after", "layer3");
  EXPECT_TRUE(s.ok()) << s.error_message();

  client_.reset();
  ASSERT_EQ(daemon_->Terminate(), 0);
  absl::StatusOr<std::vector<metadata::Finding>> findings = FsckFindings(root_);
  ASSERT_TRUE(findings.ok()) << findings.status();
  std::vector<metadata::Finding> broken;
  for (const metadata::Finding& f : *findings) {
    if (!IsCrashLeftover(f)) broken.push_back(f);
  }
  EXPECT_TRUE(broken.empty()) << FindingsString(broken);
}

// Commits that arrive together share one filesystem sync (SharedSync): each
// must still be covered by a sync that started after its call.
TEST_P(PowerCutTest, LayersCommittedAtOnceAllKeepTheirFiles) {
  constexpr int kCallers = 8;
  constexpr int kLayersEach = 4;
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([this, c] {
      for (int i = 0; i < kLayersEach; ++i) {
        Unpack(absl::StrCat("layer-", c, "-", i), "");
      }
    });
  }
  for (std::thread& t : callers) t.join();
  ASSERT_FALSE(HasFailure());

  ASSERT_NO_FATAL_FAILURE(CutPowerAndRestart());

  for (int c = 0; c < kCallers; ++c) {
    for (int i = 0; i < kLayersEach; ++i) {
      const std::string name = absl::StrCat("layer-", c, "-", i);
      ASSERT_TRUE(client_->View(name + "-view", name).ok()) << name;
      std::string dir;
      grpc::Status s = client_->Mounts(name + "-view", &dir);
      ASSERT_TRUE(s.ok()) << name << ": " << s.error_message();
      EXPECT_EQ(ReadFile(dir + "/dir-" + name + "/file"), name)
          << name << "'s files were lost: " << dir;
      EXPECT_EQ(ReadFile(dir + "/top-" + name), name)
          << name << "'s files were lost: " << dir;
    }
  }
}

// A Commit whose filesystem sync failed answers only once the mark of what
// can no longer be committed is durable: the power goes right after, and
// the layer written before the failure is still refused.
TEST_P(PowerCutTest, AFailedLayerSyncStillForbidsItsCommitAfterAPowerCut) {
  const std::string trigger = dir_.path() + "/fail-next-syncfs";
  daemon_env_ = {{"LD_PRELOAD", CPP_OVERLAY_FAIL_LOG_SYNC_PATH},
                 {"CPP_OVERLAY_FAIL_SYNCFS_TRIGGER", trigger}};
  client_.reset();
  ASSERT_EQ(daemon_->Terminate(), 0);
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  std::string fs;
  ASSERT_TRUE(client_->Prepare("layer-extract", "", {}, &fs).ok());
  WriteFile(fs + "/file", "layer");
  std::ofstream(trigger).put('x');
  EXPECT_EQ(client_->Commit("layer", "layer-extract").error_code(),
            grpc::StatusCode::INTERNAL);

  ASSERT_NO_FATAL_FAILURE(CutPowerAndRestart());

  grpc::Status refused = client_->Commit("layer", "layer-extract");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << refused.error_message();
  EXPECT_TRUE(client_->Remove("layer-extract").ok());
  ASSERT_NO_FATAL_FAILURE(Unpack("layer", ""));
}

INSTANTIATE_TEST_SUITE_P(Filesystems, PowerCutTest,
                         ::testing::Values("ext4", "xfs"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace cpp_overlay::testing
