// In a user namespace (a daemon run by rootless or nested container
// tooling), overlay mounts carry "userxattr" as containerd 1.6's do, and the
// kernel mounts them there; in the initial namespace they do not.
#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "snapshotter/fs.h"
#include "snapshotter/kernel_features.h"
#include "snapshotter/overlay_snapshotter.h"
#include "tests/testing/mount_helper.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::snapshotter {
namespace {

bool HasUserxattr(const std::vector<Mount>& mounts) {
  return mounts.size() == 1 &&
         std::count(mounts[0].options.begin(), mounts[0].options.end(), "userxattr") == 1;
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

// In a child in new user and mount namespaces (root mapped to root):
// prepares a layer and a snapshot on it, and mounts the overlay. Exit
// status 0 on success, else the step that failed (its message on stderr).
int ChildInUserNamespace(const std::string& dir) {
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return 10;
  if (!WriteFile("/proc/self/setgroups", "deny") ||
      !WriteFile("/proc/self/uid_map", "0 0 1") ||
      !WriteFile("/proc/self/gid_map", "0 0 1")) {
    return 11;
  }
  auto snapshotter = OverlaySnapshotter::Open({.root = dir + "/root"});
  if (!snapshotter.ok()) {
    std::fprintf(stderr, "open: %s\n", snapshotter.status().ToString().c_str());
    return 12;
  }
  auto base = (*snapshotter)->Prepare("base-active", "", {});
  if (!base.ok() || !WriteFile(base->front().source + "/a", "x")) return 13;
  if (!(*snapshotter)->Commit("base", "base-active", {}).ok()) return 14;
  auto active = (*snapshotter)->Prepare("active", "base", {});
  if (!active.ok()) return 15;
  if (!HasUserxattr(*active)) return 16;
  const std::string target = dir + "/target";
  if (!fs::MakeDir(target, 0755).ok()) return 17;
  testing::ScopedMount mounted;
  if (absl::Status s = mounted.Mount(*active, target); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 18;
  }
  std::ifstream in(target + "/a");
  std::string content;
  in >> content;
  return content == "x" ? 0 : 19;
}

TEST(UserNamespaceTest, OverlayMountsCarryUserxattrAndMount) {
  ASSERT_EQ(geteuid(), 0u) << "maps root into a user namespace: run as root";
  std::string release;
  std::ifstream("/proc/sys/kernel/osrelease") >> release;
  ASSERT_TRUE(KernelAtLeast(release, 5, 11))
      << "overlay in a user namespace needs kernel 5.11 (" << release << ")";
  testing::TempDir dir;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(ChildInUserNamespace(dir.path()));
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "child died: " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "step that failed (see the test's source)";
}

TEST(UserNamespaceTest, InitialNamespaceMountsHaveNoUserxattr) {
  std::ifstream uid_map("/proc/self/uid_map");
  std::string line;
  ASSERT_TRUE(std::getline(uid_map, line));
  ASSERT_TRUE(IsInitialUidMap(line)) << "the tests run in the initial user namespace";
  testing::TempDir dir;
  auto snapshotter = OverlaySnapshotter::Open({.root = dir.path() + "/root"});
  ASSERT_TRUE(snapshotter.ok()) << snapshotter.status();
  ASSERT_TRUE((*snapshotter)->Prepare("base-active", "", {}).ok());
  ASSERT_TRUE((*snapshotter)->Commit("base", "base-active", {}).ok());
  auto active = (*snapshotter)->Prepare("active", "base", {});
  ASSERT_TRUE(active.ok()) << active.status();
  EXPECT_FALSE(HasUserxattr(*active));
}

}  // namespace
}  // namespace cpp_overlay::snapshotter
