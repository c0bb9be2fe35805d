// The walk keeps few directories open however deep it goes, visits every
// entry once, and stops cleanly when a directory moves under it or the
// visitor fails. (Trees deeper than a stack allows: overlay_snapshotter_test.)
#include "snapshotter/tree_walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "snapshotter/fs.h"
#include "tests/testing/mount_helper.h"
#include "tests/testing/nested_dirs.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::snapshotter {
namespace {

using ::cpp_overlay::testing::StatusIs;

int OpenDescriptors() {
  int count = 0;
  DIR* dir = opendir("/proc/self/fd");
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count;
}

TEST(TreeWalkTest, KeepsFewDirectoriesOpenAndVisitsEachEntryOnce) {
  testing::TempDir dir;
  const std::string root = dir.path() + "/fs";
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  ASSERT_NO_FATAL_FAILURE(testing::MakeNestedDirs(root, 200, "f"));
  // Siblings at the top, to walk into after climbing back from the depth.
  for (const char* name : {"x", "y"}) {
    ASSERT_EQ(mkdir((root + "/" + name).c_str(), 0755), 0);
    std::ofstream(root + "/" + name + "/f") << "z";
  }

  const int before = OpenDescriptors();
  int most_open = 0;
  int entries = 0;
  int left = 0;
  fs::TreeWalkVisitor visitor;
  visitor.entry = [&](int dir_fd, const char* name,
                      unsigned char) -> absl::StatusOr<bool> {
    ++entries;
    most_open = std::max(most_open, OpenDescriptors() - before);
    struct stat st;
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return absl::InternalError("stat failed");
    }
    return S_ISDIR(st.st_mode);
  };
  visitor.leave = [&](int, const char*) {
    ++left;
    return absl::OkStatus();
  };
  int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_OK(fs::WalkTree(fd, root, visitor));
  close(fd);
  EXPECT_EQ(entries, 200 + 1 + 4);  // the chain, its file, x, y, x/f, y/f
  EXPECT_EQ(left, 200 + 2);         // every directory below the root
  // The walk's own directories, and the scan of /proc/self/fd counting.
  EXPECT_LE(most_open, fs::kTreeWalkOpenDirs + 1);
  EXPECT_EQ(OpenDescriptors(), before);
}

TEST(TreeWalkTest, ADirectoryMovedDuringTheWalkStopsIt) {
  testing::TempDir dir;
  const std::string root = dir.path() + "/fs";
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  const int depth = fs::kTreeWalkOpenDirs + 8;
  ASSERT_NO_FATAL_FAILURE(testing::MakeNestedDirs(root, depth, "f"));
  // Once at the bottom, move the directory just below a closed one
  // elsewhere: climbing back through its ".." reaches the wrong place.
  std::string moved_from = root;
  for (int i = 0; i < 3; ++i) moved_from += "/d";
  const std::string moved_to = dir.path() + "/moved";

  fs::TreeWalkVisitor visitor;
  visitor.entry = [&](int, const char* name, unsigned char) -> absl::StatusOr<bool> {
    if (std::string(name) == "f") {
      if (rename(moved_from.c_str(), moved_to.c_str()) != 0) {
        return absl::InternalError("rename failed");
      }
      return false;
    }
    return true;
  };
  int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const int before = OpenDescriptors();
  EXPECT_THAT(fs::WalkTree(fd, root, visitor),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(OpenDescriptors(), before);  // nothing leaked on the error path
  close(fd);
}

TEST(TreeWalkTest, ErrorsOfTheVisitorStopTheWalk) {
  testing::TempDir dir;
  const std::string root = dir.path();
  for (const char* name : {"a", "b", "c"}) std::ofstream(root + "/" + name) << "x";
  int calls = 0;
  fs::TreeWalkVisitor visitor;
  visitor.entry = [&](int, const char*, unsigned char) -> absl::StatusOr<bool> {
    ++calls;
    return absl::CancelledError("stop");
  };
  int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_THAT(fs::WalkTree(fd, root, visitor), StatusIs(absl::StatusCode::kCancelled));
  close(fd);
  EXPECT_EQ(calls, 1);
}

// A directory someone mounted on stays where it is when its rename fails
// (EBUSY), and start-up, fsck or a Prepare may then remove it: what is
// mounted there is never emptied.
TEST(RemoveAllTest, NeverEmptiesAMountPoint) {
  ASSERT_NO_FATAL_FAILURE(testing::EnterPrivateMountNamespace());
  testing::TempDir dir;
  const std::string target = dir.path() + "/mounted";
  ASSERT_EQ(mkdir(target.c_str(), 0755), 0);
  ASSERT_EQ(mount("tmpfs", target.c_str(), "tmpfs", 0, nullptr), 0)
      << std::strerror(errno);
  absl::Cleanup unmount = [&target] { umount2(target.c_str(), MNT_DETACH); };
  std::ofstream(target + "/precious") << "keep";
  EXPECT_THAT(fs::RemoveAll(target),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(fs::Exists(target + "/precious"));
}

}  // namespace
}  // namespace cpp_overlay::snapshotter
