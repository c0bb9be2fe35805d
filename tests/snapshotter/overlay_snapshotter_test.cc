#include "snapshotter/overlay_snapshotter.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "snapshotter/fs.h"
#include "tests/testing/mount_helper.h"
#include "tests/testing/nested_dirs.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::snapshotter {
namespace {

using ::cpp_overlay::testing::ScopedMount;
using ::cpp_overlay::testing::StatusIs;
using metadata::Kind;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Sets or clears the immutable attribute (chattr +i) of directory `path`.
absl::Status SetImmutable(const std::string& path, bool immutable) {
  const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, "open " + path);
  absl::Cleanup closer = [fd] { close(fd); };
  int flags = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0) {
    return absl::ErrnoToStatus(errno, "get flags of " + path);
  }
  flags = immutable ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
  if (ioctl(fd, FS_IOC_SETFLAGS, &flags) != 0) {
    return absl::ErrnoToStatus(errno, "set flags of " + path);
  }
  return absl::OkStatus();
}

class OverlaySnapshotterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "these tests mount overlays and need root";
    // Mounts made here vanish with the process, even when ctest kills it.
    // Before Open: a namespace is per thread, and the reclaimer's thread
    // must share the test's.
    ASSERT_NO_FATAL_FAILURE(testing::EnterPrivateMountNamespace());
    root_ = dir_.path() + "/root";
    Open();
  }

  void Open() {
    snapshotter_.reset();
    auto opened = OverlaySnapshotter::Open({.root = root_});
    ASSERT_OK(opened);
    snapshotter_ = *std::move(opened);
  }

  std::string NewTarget(const std::string& name) {
    std::string path = dir_.path() + "/" + name;
    mkdir(path.c_str(), 0755);
    return path;
  }

  std::vector<std::string> SnapshotDirs() {
    auto entries = fs::ListDir(root_ + "/snapshots");
    EXPECT_OK(entries);
    return entries.ok() ? *entries : std::vector<std::string>{};
  }

  // Prepares `name`-active on `parent`, writes `file`, commits as `name`.
  void Layer(const std::string& name, const std::string& parent,
             const std::string& file, const std::string& content) {
    auto mounts = snapshotter_->Prepare(name + "-active", parent, {});
    ASSERT_OK(mounts);
    std::string target = NewTarget("m-" + name);
    {
      ScopedMount m;
      ASSERT_OK(m.Mount(*mounts, target));
      WriteFile(target + "/" + file, content);
    }
    ASSERT_OK(snapshotter_->Commit(name, name + "-active", {}));
  }

  testing::TempDir dir_;
  std::string root_;
  std::unique_ptr<OverlaySnapshotter> snapshotter_;
};

TEST_F(OverlaySnapshotterTest, OpenMakesRootWithMode0700) {
  struct stat st;
  ASSERT_EQ(stat(root_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(OverlaySnapshotterTest, LayersStackThroughRealOverlayMounts) {
  Layer("base", "", "a", "from base");
  Layer("top", "base", "b", "from top");
  auto mounts = snapshotter_->Prepare("rootfs", "top", {});
  ASSERT_OK(mounts);
  ASSERT_EQ(mounts->size(), 1u);
  EXPECT_EQ(mounts->front().type, "overlay");
  std::string target = NewTarget("rootfs");
  ScopedMount m;
  ASSERT_OK(m.Mount(*mounts, target));
  EXPECT_EQ(ReadFile(target + "/a"), "from base");
  EXPECT_EQ(ReadFile(target + "/b"), "from top");
  WriteFile(target + "/a", "changed");
  EXPECT_EQ(ReadFile(target + "/a"), "changed");
  auto usage = snapshotter_->Usage("rootfs");
  ASSERT_OK(usage);
  EXPECT_GE(usage->inodes, 2);  // fs root and the copied-up file
}

TEST_F(OverlaySnapshotterTest, ViewIsReadOnly) {
  Layer("base", "", "a", "x");
  auto mounts = snapshotter_->View("view", "base", {});
  ASSERT_OK(mounts);
  std::string target = NewTarget("view");
  ScopedMount m;
  ASSERT_OK(m.Mount(*mounts, target));
  EXPECT_EQ(ReadFile(target + "/a"), "x");
  std::ofstream out(target + "/new");
  EXPECT_FALSE(out.is_open());
}

TEST_F(OverlaySnapshotterTest, NewSnapshotRootIs0755AndOwnedLikeItsParent) {
  auto mounts = snapshotter_->Prepare("base-active", "", {});
  ASSERT_OK(mounts);
  std::string base_fs = mounts->front().source;
  struct stat st;
  ASSERT_EQ(stat(base_fs.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(lchown(base_fs.c_str(), 1234, 5678), 0);
  ASSERT_OK(snapshotter_->Commit("base", "base-active", {}));
  ASSERT_OK(snapshotter_->Prepare("child", "base", {}));
  auto child = snapshotter_->Mounts("child");
  ASSERT_OK(child);
  std::string upper;
  for (const std::string& o : child->front().options) {
    if (o.rfind("upperdir=", 0) == 0) upper = o.substr(9);
  }
  ASSERT_EQ(stat(upper.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
}

TEST_F(OverlaySnapshotterTest, CommittedUsageIsRecordedAtCommit) {
  Layer("base", "", "big", std::string(100000, 'z'));
  auto usage = snapshotter_->Usage("base");
  ASSERT_OK(usage);
  EXPECT_EQ(usage->inodes, 2);
  EXPECT_GE(usage->size, 100000);
}

TEST_F(OverlaySnapshotterTest, MountsOfCommittedIsFailedPrecondition) {
  Layer("base", "", "a", "x");
  EXPECT_THAT(snapshotter_->Mounts("base"), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(OverlaySnapshotterTest, FailedPrepareLeavesNoDirectory) {
  ASSERT_OK(snapshotter_->Prepare("k", "", {}));
  EXPECT_THAT(snapshotter_->Prepare("k", "", {}), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(snapshotter_->Prepare("k2", "missing", {}), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(SnapshotDirs().size(), 1u);
}

TEST_F(OverlaySnapshotterTest, RemoveDeletesTheDirectory) {
  Layer("base", "", "a", "x");
  ASSERT_OK(snapshotter_->Prepare("child", "base", {}));
  EXPECT_THAT(snapshotter_->Remove("base"), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(snapshotter_->Remove("child"));
  ASSERT_OK(snapshotter_->Remove("base"));
  EXPECT_TRUE(SnapshotDirs().empty());
  EXPECT_THAT(snapshotter_->Stat("base"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(snapshotter_->WaitForReclaim(absl::Seconds(30)));
  auto trash = fs::ListDir(root_ + "/trash");
  ASSERT_OK(trash);
  EXPECT_TRUE(trash->empty());
}

TEST_F(OverlaySnapshotterTest, CleanupRemovesUnknownDirectoriesOnly) {
  Layer("base", "", "a", "x");
  ASSERT_EQ(SnapshotDirs().size(), 1u);
  const std::string kept = SnapshotDirs().front();
  for (const char* stray : {"999", "new-5", "junk", "007"}) {
    ASSERT_OK(fs::MakeDir(root_ + "/snapshots/" + stray, 0700));
  }
  WriteFile(root_ + "/snapshots/new-5/file", "half made");
  ASSERT_OK(snapshotter_->Cleanup());
  EXPECT_THAT(SnapshotDirs(), ElementsAre(kept));
  EXPECT_TRUE(snapshotter_->WaitForReclaim(absl::Seconds(30)));
}

// A mount left below a removed snapshot (a debugging bind mount, a leaked
// propagation) moves into the trash with it: the deleter must delete
// around it, never what is in it, whether it is another filesystem or a
// bind mount of the same one.
TEST_F(OverlaySnapshotterTest, RemovalNeverDeletesThroughAMountLeftBelow) {
  const std::string outside = NewTarget("outside");
  WriteFile(outside + "/precious", "keep");
  auto mounts = snapshotter_->Prepare("active", "", {});
  ASSERT_OK(mounts);
  const std::string fs_dir = mounts->front().source;
  WriteFile(fs_dir + "/own", "ours");
  ASSERT_OK(fs::MakeDir(fs_dir + "/bind", 0755));
  ASSERT_OK(fs::MakeDir(fs_dir + "/tmpfs", 0755));
  ASSERT_EQ(mount(outside.c_str(), (fs_dir + "/bind").c_str(), nullptr, MS_BIND,
                  nullptr),
            0)
      << std::strerror(errno);
  // Wherever the mounts went, they go before the temporary directory does.
  absl::Cleanup unmount = [this] {
    std::ifstream mountinfo("/proc/self/mountinfo");
    std::vector<std::string> targets;
    for (std::string line; std::getline(mountinfo, line);) {
      std::istringstream fields(line);
      std::string id, parent, devno, root, target;
      fields >> id >> parent >> devno >> root >> target;
      if (target.rfind(root_, 0) == 0) targets.push_back(target);
    }
    for (auto it = targets.rbegin(); it != targets.rend(); ++it) {
      umount2(it->c_str(), MNT_DETACH);
    }
  };
  ASSERT_EQ(mount("tmpfs", (fs_dir + "/tmpfs").c_str(), "tmpfs", 0, nullptr), 0)
      << std::strerror(errno);
  WriteFile(fs_dir + "/tmpfs/also-precious", "keep");

  // Usage counts only the layer's own files, as `du -x` does.
  WriteFile(outside + "/big", std::string(1 << 20, 'x'));
  absl::StatusOr<metadata::Usage> usage = snapshotter_->Usage("active");
  ASSERT_OK(usage);
  EXPECT_LT(usage->size, 1 << 20);

  ASSERT_OK(snapshotter_->Remove("active"));
  absl::StatusOr<std::vector<std::string>> trash =
      fs::ListDir(root_ + "/trash");
  ASSERT_OK(trash);
  ASSERT_EQ(trash->size(), 1u);
  const std::string moved = root_ + "/trash/" + trash->front() + "/fs";
  // The reclaimer deletes the layer's own files, then stops at a mount.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (fs::Exists(moved + "/own") && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_FALSE(fs::Exists(moved + "/own")) << "the layer's own files go";
  EXPECT_FALSE(snapshotter_->WaitForReclaim(absl::Seconds(1)));
  EXPECT_EQ(ReadFile(outside + "/precious"), "keep");
  EXPECT_EQ(ReadFile(moved + "/tmpfs/also-precious"), "keep");

  // Once unmounted, the rest goes at the next wake.
  ASSERT_EQ(umount2((moved + "/bind").c_str(), MNT_DETACH), 0);
  ASSERT_EQ(umount2((moved + "/tmpfs").c_str(), MNT_DETACH), 0);
  ASSERT_OK(snapshotter_->Cleanup());
  EXPECT_TRUE(snapshotter_->WaitForReclaim(absl::Seconds(30)));
  EXPECT_EQ(ReadFile(outside + "/precious"), "keep");
}

// One stray directory that cannot be moved to the trash must not keep the
// daemon from starting (under systemd's Restart=, a restart loop); an
// explicit Cleanup still reports it.
TEST_F(OverlaySnapshotterTest, StartUpServesWhenAStrayDirectoryCannotBeMoved) {
  Layer("base", "", "a", "x");
  const std::string stray = root_ + "/snapshots/999";
  ASSERT_OK(fs::MakeDir(stray, 0700));
  snapshotter_.reset();
  ASSERT_OK(SetImmutable(stray, true));
  absl::Cleanup mutable_again = [&] { EXPECT_OK(SetImmutable(stray, false)); };
  Open();
  ASSERT_NE(snapshotter_, nullptr);
  EXPECT_OK(snapshotter_->Stat("base"));
  EXPECT_OK(snapshotter_->Prepare("after", "base", {}));
  EXPECT_TRUE(fs::Exists(stray));
  absl::Status cleanup = snapshotter_->Cleanup();
  EXPECT_FALSE(cleanup.ok());
  EXPECT_THAT(std::string(cleanup.message()), HasSubstr("999"));
}

// Pointed by mistake at another snapshotter's root (here shaped like
// containerd's overlayfs root), or at one whose metadata/ was deleted: its
// snapshot directories would all look like crash leftovers.
TEST_F(OverlaySnapshotterTest,
       ARootWithFilesButNoMetadataIsRefusedAndLeftAlone) {
  const std::string other = dir_.path() + "/other";
  ASSERT_OK(fs::MakeDirs(other + "/snapshots/1/fs", 0755));
  WriteFile(other + "/snapshots/1/fs/data", "precious");
  ASSERT_EQ(chmod(other.c_str(), 0755), 0);
  auto opened = OverlaySnapshotter::Open({.root = other});
  EXPECT_THAT(opened.status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(opened.status().message()),
              HasSubstr("no metadata/"));
  EXPECT_EQ(ReadFile(other + "/snapshots/1/fs/data"), "precious");
  struct stat st;
  ASSERT_EQ(stat(other.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_FALSE(fs::Exists(other + "/metadata"));
  EXPECT_FALSE(fs::Exists(other + "/trash"));

  // A file of its own at the top is refused the same way.
  const std::string another = dir_.path() + "/another";
  ASSERT_OK(fs::MakeDirs(another, 0755));
  WriteFile(another + "/metadata.db", "bolt");
  absl::Status refused = OverlaySnapshotter::Open({.root = another}).status();
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(refused.message()), HasSubstr("metadata.db"));
}

// A root inside a container's own overlay filesystem: Prepare would work
// and every mount of what it returns fail.
TEST_F(OverlaySnapshotterTest, ARootOnAnOverlayIsRefused) {
  Layer("base", "", "a", "x");
  auto mounts = snapshotter_->Prepare("pod", "base", {});
  ASSERT_OK(mounts);
  ASSERT_EQ(mounts->front().type, "overlay");
  const std::string target = NewTarget("pod-rootfs");
  ScopedMount m;
  ASSERT_OK(m.Mount(*mounts, target));
  auto opened =
      OverlaySnapshotter::Open({.root = target + "/var/lib/snapshotter"});
  EXPECT_THAT(opened.status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(opened.status().message()),
              HasSubstr("is on an overlayfs"));
  EXPECT_FALSE(fs::Exists(target + "/var"))
      << "refused before anything is made";
}

// <root>/unsynced-below (a failed layer sync's mark) that does not decode
// is read as the store reads such a mark: covering every snapshot so far.
TEST_F(OverlaySnapshotterTest,
       AnUndecodableUnsyncedMarkFileCoversEverySnapshotSoFar) {
  ASSERT_OK(snapshotter_->Prepare("before", "", {}));
  snapshotter_.reset();
  WriteFile(root_ + "/unsynced-below", "not an id");
  Open();
  EXPECT_THAT(snapshotter_->Commit("layer", "before", {}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_FALSE(fs::Exists(root_ + "/unsynced-below"));
  ASSERT_OK(snapshotter_->Prepare("after", "", {}));
  EXPECT_OK(snapshotter_->Commit("layer", "after", {}));
}

// What a first start leaves when it stops before its metadata exists, and a
// fresh filesystem's lost+found, are no reason to refuse.
TEST_F(OverlaySnapshotterTest, ARootLeftByAnInterruptedFirstStartOpens) {
  snapshotter_.reset();
  const std::string fresh = dir_.path() + "/fresh";
  for (const char* dir : {"/snapshots", "/trash", "/lost+found"}) {
    ASSERT_OK(fs::MakeDirs(fresh + dir, 0700));
  }
  auto opened = OverlaySnapshotter::Open({.root = fresh});
  ASSERT_OK(opened);
  EXPECT_OK((*opened)->Prepare("a", "", {}));
}

TEST_F(OverlaySnapshotterTest, ReopenReconcilesCrashLeftoversAndKeepsSnapshots) {
  Layer("base", "", "a", "x");
  ASSERT_OK(snapshotter_->Prepare("active", "base", {{"l", "v"}}));
  const std::vector<std::string> before = SnapshotDirs();
  ASSERT_OK(fs::MakeDir(root_ + "/snapshots/new-77", 0700));
  ASSERT_OK(fs::MakeDir(root_ + "/snapshots/78", 0700));
  Open();
  EXPECT_THAT(SnapshotDirs(), UnorderedElementsAre(before[0], before[1]));
  auto info = snapshotter_->Stat("active");
  ASSERT_OK(info);
  EXPECT_EQ(info->parent, "base");
  EXPECT_EQ(info->labels, (metadata::Labels{{"l", "v"}}));
}

TEST_F(OverlaySnapshotterTest, LostDirectoryOfActiveSnapshotIsRecreatedOnOpen) {
  Layer("base", "", "a", "x");
  auto mounts = snapshotter_->Prepare("active", "base", {});
  ASSERT_OK(mounts);
  std::string upper;
  for (const std::string& o : mounts->front().options) {
    if (o.rfind("upperdir=", 0) == 0) upper = o.substr(9);
  }
  ASSERT_FALSE(upper.empty());
  // As if the rename into place never reached the disk.
  ASSERT_OK(fs::RemoveAll(upper.substr(0, upper.size() - 3)));
  Open();
  EXPECT_TRUE(fs::Exists(upper));
  auto again = snapshotter_->Mounts("active");
  ASSERT_OK(again);
  std::string target = NewTarget("recreated");
  ScopedMount m;
  ASSERT_OK(m.Mount(*again, target));
  EXPECT_EQ(ReadFile(target + "/a"), "x");
}

// A directory deleted behind the daemon's back is damage, not a missing
// key: Usage and Commit say so with Internal, while Stat still finds it.
TEST_F(OverlaySnapshotterTest,
       UsageAndCommitOfASnapshotWhoseDirectoryIsGoneAreInternal) {
  auto mounts = snapshotter_->Prepare("active", "", {});
  ASSERT_OK(mounts);
  ASSERT_OK(fs::RemoveAll(mounts->front().source));
  absl::StatusOr<metadata::Usage> usage = snapshotter_->Usage("active");
  EXPECT_THAT(usage, StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(std::string(usage.status().message()), HasSubstr("is missing"));
  absl::Status committed = snapshotter_->Commit("layer", "active", {});
  EXPECT_THAT(committed, StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(std::string(committed.message()), HasSubstr("is missing"));
  EXPECT_OK(snapshotter_->Stat("active"));
  EXPECT_THAT(snapshotter_->Usage("missing"),
              StatusIs(absl::StatusCode::kNotFound));
}

// A power cut during an unpack can lose the fresh directories of a layer
// and of the snapshot prepared on it together: start-up still serves, and
// makes the active one again (the committed one is fsck's to report).
TEST_F(OverlaySnapshotterTest, StartUpSurvivesTheLossOfAParentAndItsChild) {
  Layer("base", "", "a", "x");
  ASSERT_OK(snapshotter_->Prepare("active", "base", {}));
  snapshotter_.reset();
  for (const std::string& entry : SnapshotDirs()) {
    ASSERT_OK(fs::RemoveAll(root_ + "/snapshots/" + entry));
  }
  Open();
  ASSERT_NE(snapshotter_, nullptr);
  auto mounts = snapshotter_->Mounts("active");
  ASSERT_OK(mounts);
  std::string upper;
  for (const std::string& o : mounts->front().options) {
    if (o.rfind("upperdir=", 0) == 0) upper = o.substr(9);
  }
  EXPECT_TRUE(fs::Exists(upper));
  EXPECT_TRUE(fs::Exists(upper.substr(0, upper.size() - 3) + "/work"));
  EXPECT_OK(snapshotter_->Stat("base"));
}

// Each mkdir of a new tree is a step of its own, so a power cut can keep
// the directory and lose fs/ or work/: start-up completes the tree.
TEST_F(OverlaySnapshotterTest, StartUpCompletesHalfMadeDirectories) {
  auto active = snapshotter_->Prepare("active", "", {});
  ASSERT_OK(active);
  auto other = snapshotter_->Prepare("other", "", {});
  ASSERT_OK(other);
  auto view = snapshotter_->View("view", "", {});
  ASSERT_OK(view);
  const std::string active_fs = active->front().source;
  const std::string other_work =
      other->front().source.substr(0, other->front().source.size() - 3) + "/work";
  const std::string view_fs = view->front().source;
  snapshotter_.reset();
  ASSERT_OK(fs::RemoveAll(active_fs));
  ASSERT_OK(fs::RemoveAll(other_work));
  ASSERT_OK(fs::RemoveAll(view_fs));
  Open();
  EXPECT_TRUE(fs::Exists(active_fs));
  EXPECT_TRUE(fs::Exists(other_work));
  EXPECT_TRUE(fs::Exists(view_fs));
  struct stat st {};
  ASSERT_EQ(lstat(active_fs.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(lstat(other_work.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0711u);
}

// A container can nest directories far deeper than a thread's stack holds
// a recursive walk (which crashed the daemon on the stats loop's Usage, and
// again at every start as the reclaimer resumed): Usage and Commit measure
// such a tree and Remove's background delete takes it away.
TEST_F(OverlaySnapshotterTest, UsageCommitAndRemoveOfATreeDeeperThanAStackAllows) {
  constexpr int kDeep = 30000;  // a recursive walk died at about 20,000
  auto mounts = snapshotter_->Prepare("deep-active", "", {});
  ASSERT_OK(mounts);
  const std::string fs_dir = mounts->front().source;
  // The temporary directory's own cleanup cannot name paths this long.
  absl::Cleanup remove = [&fs_dir] { fs::RemoveAll(fs_dir).IgnoreError(); };
  ASSERT_NO_FATAL_FAILURE(testing::MakeNestedDirs(fs_dir, kDeep));
  auto usage = snapshotter_->Usage("deep-active");
  ASSERT_OK(usage);
  EXPECT_EQ(usage->inodes, kDeep + 1);  // fs/ and every level
  ASSERT_OK(snapshotter_->Commit("deep", "deep-active", {}));
  auto committed = snapshotter_->Usage("deep");
  ASSERT_OK(committed);
  EXPECT_EQ(committed->inodes, kDeep + 1);
  ASSERT_OK(snapshotter_->Remove("deep"));
  EXPECT_TRUE(snapshotter_->WaitForReclaim(absl::Seconds(120)));
  auto trash = fs::ListDir(root_ + "/trash");
  ASSERT_OK(trash);
  EXPECT_TRUE(trash->empty());
}

TEST_F(OverlaySnapshotterTest, RemoveReturnsBeforeABigDirectoryIsDeleted) {
  auto mounts = snapshotter_->Prepare("big", "", {});
  ASSERT_OK(mounts);
  const std::string fs_dir = mounts->front().source;
  for (int d = 0; d < 20; ++d) {
    std::string sub = fs_dir + "/d" + std::to_string(d);
    ASSERT_OK(fs::MakeDir(sub, 0755));
    for (int f = 0; f < 500; ++f) WriteFile(sub + "/f" + std::to_string(f), "x");
  }
  absl::Time start = absl::Now();
  ASSERT_OK(snapshotter_->Remove("big"));
  absl::Duration took = absl::Now() - start;
  EXPECT_LT(took, absl::Milliseconds(500)) << took;
  EXPECT_FALSE(fs::Exists(fs_dir));
  EXPECT_TRUE(snapshotter_->WaitForReclaim(absl::Seconds(60)));
}

TEST_F(OverlaySnapshotterTest, KeysShapedLikePathsStayInsideTheRoot) {
  for (const std::string key : {"../../escape", "/etc/passwd", "a/../../b", "..", "."}) {
    auto mounts = snapshotter_->Prepare(key, "", {});
    ASSERT_OK(mounts) << key;
    EXPECT_EQ(mounts->front().source.rfind(root_ + "/snapshots/", 0), 0u) << key;
  }
  EXPECT_FALSE(fs::Exists(dir_.path() + "/escape"));
}

TEST_F(OverlaySnapshotterTest, WalkRejectsMalformedFilter) {
  EXPECT_THAT(snapshotter_->Walk({"name==\"unterminated"},
                                 [](const metadata::Info&) { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(OverlaySnapshotterTest, SecondOpenOfSameRootIsUnavailable) {
  EXPECT_THAT(OverlaySnapshotter::Open({.root = root_}),
              StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace cpp_overlay::snapshotter
