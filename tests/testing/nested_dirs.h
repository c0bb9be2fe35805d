// Nests `depth` directories named "d" below `root`. Paths that long cannot
// be named (the kernel refuses over 4,096 bytes), so it goes by descriptors.
#ifndef CPP_OVERLAY_TESTS_TESTING_NESTED_DIRS_H_
#define CPP_OVERLAY_TESTS_TESTING_NESTED_DIRS_H_

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace cpp_overlay::testing {

// With `file`, also an empty file of that name in the deepest directory.
inline void MakeNestedDirs(const std::string& root, int depth,
                           const char* file = nullptr) {
  int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << root;
  for (int i = 0; i < depth; ++i) {
    ASSERT_EQ(mkdirat(fd, "d", 0755), 0) << "level " << i;
    int child = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    close(fd);
    ASSERT_GE(child, 0) << "level " << i;
    fd = child;
  }
  if (file != nullptr) {
    int made = openat(fd, file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    EXPECT_GE(made, 0);
    if (made >= 0) close(made);
  }
  close(fd);
}

}  // namespace cpp_overlay::testing

#endif  // CPP_OVERLAY_TESTS_TESTING_NESTED_DIRS_H_
