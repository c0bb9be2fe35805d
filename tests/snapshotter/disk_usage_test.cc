#include "snapshotter/disk_usage.h"

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

TEST(DiskUsageTest, MissingDirectoryIsNotFound) {
  EXPECT_THAT(DiskUsage("/nonexistent/cpp-overlay"), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace cpp_overlay::snapshotter
