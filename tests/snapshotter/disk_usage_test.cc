#include "snapshotter/disk_usage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::snapshotter {
namespace {

using ::cpp_overlay::testing::StatusIs;

int64_t BlocksOf(const std::string& path) {
  struct stat st;
  lstat(path.c_str(), &st);
  return static_cast<int64_t>(st.st_blocks) * 512;
}

void WriteFile(const std::string& path, size_t bytes) {
  std::ofstream out(path, std::ios::binary);
  out << std::string(bytes, 'x');
}

TEST(DiskUsageTest, CountsRootDirectoriesFilesAndSymlinksOnce) {
  testing::TempDir dir;
  const std::string root = dir.path();
  mkdir((root + "/d").c_str(), 0755);
  WriteFile(root + "/d/f", 10000);
  WriteFile(root + "/g", 1);
  symlink("d/f", (root + "/link").c_str());
  link((root + "/g").c_str(), (root + "/d/hard").c_str());

  auto usage = DiskUsage(root);
  ASSERT_OK(usage);
  // root, d, f, g (twice linked), link
  EXPECT_EQ(usage->inodes, 5);
  EXPECT_EQ(usage->size, BlocksOf(root) + BlocksOf(root + "/d") + BlocksOf(root + "/d/f") +
                             BlocksOf(root + "/g") + BlocksOf(root + "/link"));
}

TEST(DiskUsageTest, EmptyDirectoryCountsItself) {
  testing::TempDir dir;
  auto usage = DiskUsage(dir.path());
  ASSERT_OK(usage);
  EXPECT_EQ(usage->inodes, 1);
}

// Access time of `path` in seconds, and setting it (the mtime stays).
time_t AtimeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_atim.tv_sec;
}

void SetOldAtime(const std::string& path) {
  const struct timespec times[2] = {{1, 0}, {0, UTIME_OMIT}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0)
      << path;
}

TEST(DiskUsageTest, LeavesAccessTimesAlone) {
  testing::TempDir dir;
  const std::string root = dir.path();
  const std::string sub = root + "/d";
  const std::string subsub = sub + "/e";
  ASSERT_EQ(mkdir(sub.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(subsub.c_str(), 0755), 0);
  WriteFile(subsub + "/f", 1);
  // An atime older than the mtime is what relatime updates on a read, as
  // it does after every change to the directory; an ordinary read shows
  // that this filesystem records it.
  SetOldAtime(sub);
  DIR* read = opendir(sub.c_str());
  ASSERT_NE(read, nullptr);
  while (readdir(read) != nullptr) {
  }
  closedir(read);
  ASSERT_NE(AtimeOf(sub), 1)
      << "the filesystem of " << root << " records no access times";

  for (const std::string& d : {root, sub, subsub}) SetOldAtime(d);
  ASSERT_OK(DiskUsage(root));
  EXPECT_EQ(AtimeOf(root), 1);
  EXPECT_EQ(AtimeOf(sub), 1);
  EXPECT_EQ(AtimeOf(subsub), 1);
}

TEST(DiskUsageTest, MissingDirectoryIsNotFound) {
  EXPECT_THAT(DiskUsage("/nonexistent/cpp-overlay"), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace cpp_overlay::snapshotter
