#include "snapshotter/snapshot_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "snapshotter/fs.h"
#include "snapshotter/layout.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::snapshotter {
namespace {

using metadata::Kind;

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

class SnapshotDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "fs/ takes its parent's owner: run as root";
    ASSERT_OK(fs::MakeDirs(layout_.SnapshotsDir(), 0700));
  }

  testing::TempDir dir_;
  Layout layout_{dir_.path() + "/root"};
};

TEST_F(SnapshotDirTest, ActiveGetsFsAndWorkWithTheirModesInPlace) {
  ASSERT_OK(MakeSnapshotDir(layout_, 7, Kind::kActive, std::nullopt));
  // containerd's overlayfs snapshotter's modes, written out: a changed constant
  // must fail here.
  EXPECT_EQ(ModeOf(layout_.SnapshotDir(7)), 0700u);
  EXPECT_EQ(ModeOf(layout_.FsDir(7)), 0755u);
  EXPECT_EQ(ModeOf(layout_.WorkDir(7)), 0711u);
  // Nothing else is left beside it (no temporary name).
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(layout_.SnapshotsDir())) {
    EXPECT_EQ(e.path().filename(), "7");
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(SnapshotDirTest, ViewGetsNoWorkDir) {
  ASSERT_OK(MakeSnapshotDir(layout_, 8, Kind::kView, std::nullopt));
  EXPECT_TRUE(fs::Exists(layout_.FsDir(8)));
  EXPECT_FALSE(fs::Exists(layout_.WorkDir(8)));
}

TEST_F(SnapshotDirTest, FsTakesTheParentLayersOwner) {
  ASSERT_OK(MakeSnapshotDir(layout_, 1, Kind::kActive, std::nullopt));
  ASSERT_OK(fs::Lchown(layout_.FsDir(1), 1234, 5678));
  ASSERT_OK(MakeSnapshotDir(layout_, 2, Kind::kActive, 1));
  absl::StatusOr<fs::Owner> owner = fs::OwnerOf(layout_.FsDir(2));
  ASSERT_OK(owner);
  EXPECT_EQ(owner->uid, 1234u);
  EXPECT_EQ(owner->gid, 5678u);
}

// An id reserved by a process that crashed before writing its metadata is
// handed out again; whatever that process made under it goes.
TEST_F(SnapshotDirTest, ReplacesWhatACrashLeftUnderTheId) {
  ASSERT_OK(fs::MakeDir(layout_.SnapshotDir(9), 0755));
  ASSERT_OK(fs::MakeDir(layout_.FsDir(9), 0755));
  std::ofstream(layout_.FsDir(9) + "/stale") << "old";
  ASSERT_OK(MakeSnapshotDir(layout_, 9, Kind::kActive, std::nullopt));
  EXPECT_FALSE(fs::Exists(layout_.FsDir(9) + "/stale"));
  EXPECT_EQ(ModeOf(layout_.SnapshotDir(9)), 0700u);
  EXPECT_TRUE(fs::Exists(layout_.WorkDir(9)));
}

TEST_F(SnapshotDirTest, FailureLeavesNoHalfMadeTree) {
  // The parent layer's fs/ is missing, so its owner cannot be read.
  EXPECT_FALSE(MakeSnapshotDir(layout_, 10, Kind::kActive, 404).ok());
  EXPECT_FALSE(fs::Exists(layout_.SnapshotDir(10)));
}

}  // namespace
}  // namespace cpp_overlay::snapshotter
