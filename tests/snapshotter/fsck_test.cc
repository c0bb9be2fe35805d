#include "snapshotter/fsck.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "metadata/keys.h"
#include "metadata/snapshot_store.h"
#include "rocksdb/db.h"
#include "snapshotter/fs.h"
#include "snapshotter/overlay_snapshotter.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::snapshotter {
namespace {

using ::cpp_overlay::testing::StatusIs;
using ::testing::Contains;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;

std::vector<std::string> Kinds(const FsckReport& report) {
  std::vector<std::string> kinds;
  for (const metadata::Finding& f : report.findings) kinds.push_back(f.kind);
  return kinds;
}

class FsckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "the snapshotter chowns and needs root";
    root_ = dir_.path() + "/root";
    auto opened = OverlaySnapshotter::Open({.root = root_});
    ASSERT_OK(opened);
    auto& s = **opened;
    // base (committed, a file) <- child (committed) <- work (active);
    // base <- look (view).
    ASSERT_OK(s.Prepare("base-a", "", {}));
    Write(s, "base-a", "file", "hello");
    ASSERT_OK(s.Commit("base", "base-a", {}));
    ASSERT_OK(s.Prepare("child-a", "base", {}));
    ASSERT_OK(s.Commit("child", "child-a", {}));
    ASSERT_OK(s.Prepare("work", "child", {}));
    ASSERT_OK(s.View("look", "base", {}));
  }

  void Write(OverlaySnapshotter& s, const std::string& key,
             const std::string& file, const std::string& content) {
    std::ofstream(s.layout().FsDir(Id(s, key)) + "/" + file) << content;
  }
  uint64_t Id(OverlaySnapshotter& s, const std::string& key) {
    // A one-parent view's mounts do not name its own id; the store does.
    return IdOf(key, &s);
  }
  // Id of `key`, through a store opened on the closed root (or the open
  // snapshotter's layout when given).
  uint64_t IdOf(const std::string& key, OverlaySnapshotter* open = nullptr) {
    if (open != nullptr) {
      auto mounts = open->Mounts(key);
      if (mounts.ok() && mounts->front().type == "bind") {
        std::string src = mounts->front().source;
        return std::stoull(src.substr(src.rfind("/snapshots/") + 11));
      }
      for (const auto& o :
           mounts.ok() ? mounts->front().options : std::vector<std::string>{}) {
        if (o.rfind("upperdir=", 0) == 0) {
          std::string up = o.substr(9);
          return std::stoull(up.substr(up.rfind("/snapshots/") + 11));
        }
      }
      ADD_FAILURE() << "no id for " << key << " while open";
      return 0;
    }
    auto store = metadata::SnapshotStore::Open(root_ + "/metadata");
    EXPECT_OK(store);
    auto snapshot = (*store)->Get(key);
    EXPECT_OK(snapshot);
    return snapshot->id;
  }

  // Raw corruption through the fsck repair interface.
  void Corrupt(const metadata::StoreRepair& change) {
    auto store = metadata::SnapshotStore::Open(root_ + "/metadata");
    ASSERT_OK(store);
    ASSERT_OK((*store)->ApplyRepair(change));
  }
  metadata::Snapshot Record(const std::string& key) {
    auto store = metadata::SnapshotStore::Open(root_ + "/metadata");
    EXPECT_OK(store);
    auto snapshot = (*store)->Get(key);
    EXPECT_OK(snapshot);
    return *snapshot;
  }

  // Checks, expects exactly `kinds`, repairs, and returns the repair report;
  // `left` findings must survive the repair.
  FsckReport CheckAndRepair(const std::vector<std::string>& kinds,
                            const std::vector<std::string>& left = {}) {
    auto report = Fsck({.root = root_});
    EXPECT_OK(report);
    EXPECT_THAT(Kinds(*report), UnorderedElementsAreArray(kinds));
    auto repaired = Fsck({.root = root_, .repair = true});
    EXPECT_OK(repaired);
    EXPECT_EQ(repaired->repaired_count(),
              static_cast<int>(kinds.size() - left.size()));
    auto after = Fsck({.root = root_});
    EXPECT_OK(after);
    EXPECT_THAT(Kinds(*after), UnorderedElementsAreArray(left));
    return *repaired;
  }

  testing::TempDir dir_;
  std::string root_;
};

TEST_F(FsckTest, FreshRootIsClean) {
  auto report = Fsck({.root = root_});
  ASSERT_OK(report);
  EXPECT_TRUE(report->clean()) << report->findings.front().kind;
  EXPECT_EQ(report->snapshots, 4);
}

TEST(FsckEmptyRootTest, RootThatNeverHadASnapshotIsClean) {
  testing::TempDir dir;
  ASSERT_OK(OverlaySnapshotter::Open({.root = dir.path() + "/root"}));
  auto report = Fsck({.root = dir.path() + "/root"});
  ASSERT_OK(report);
  EXPECT_THAT(Kinds(*report), IsEmpty());
}

TEST_F(FsckTest, RefusesWhileADaemonHoldsTheRoot) {
  auto open = OverlaySnapshotter::Open({.root = root_});
  ASSERT_OK(open);
  EXPECT_THAT(Fsck({.root = root_}), StatusIs(absl::StatusCode::kUnavailable));
}

// A check opens the metadata to read only, so it works where the operator
// needs it most: on a read-only (or full) filesystem, writing nothing.
TEST_F(FsckTest, ChecksARootOnAReadOnlyMount) {
  const std::string ro = dir_.path() + "/ro";
  ASSERT_EQ(mkdir(ro.c_str(), 0700), 0);
  ASSERT_EQ(mount(root_.c_str(), ro.c_str(), nullptr, MS_BIND, nullptr), 0)
      << strerror(errno);
  absl::Cleanup unmount = [&] { umount2(ro.c_str(), MNT_DETACH); };
  ASSERT_EQ(mount(nullptr, ro.c_str(), nullptr,
                  MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr),
            0)
      << strerror(errno);
  auto files_before = fs::ListDir(root_ + "/metadata");
  ASSERT_OK(files_before);

  auto report = Fsck({.root = ro});
  ASSERT_OK(report);
  EXPECT_THAT(Kinds(*report), IsEmpty());
  auto files_after = fs::ListDir(root_ + "/metadata");
  ASSERT_OK(files_after);
  EXPECT_THAT(*files_after, UnorderedElementsAreArray(*files_before));
  // --repair needs to write, and says why it cannot.
  auto repair = Fsck({.root = ro, .repair = true});
  EXPECT_FALSE(repair.ok());
  EXPECT_THAT(std::string(repair.status().message()),
              HasSubstr("Read-only file system"));
  EXPECT_FALSE(absl::IsUnavailable(repair.status())) << "not a running daemon";
}

// While a check reads the metadata, a daemon cannot open the root.
TEST_F(FsckTest, ADaemonCannotOpenTheRootWhileACheckReadsIt) {
  metadata::StoreOptions read_only;
  read_only.read_only = true;
  auto reading = metadata::SnapshotStore::Open(root_ + "/metadata", read_only);
  ASSERT_OK(reading);
  EXPECT_THAT(OverlaySnapshotter::Open({.root = root_}),
              StatusIs(absl::StatusCode::kUnavailable));
  reading->reset();
  EXPECT_OK(OverlaySnapshotter::Open({.root = root_}));
}

TEST_F(FsckTest, RefusesADirectoryThatIsNotARoot) {
  EXPECT_THAT(Fsck({.root = dir_.path()}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Fsck({.root = dir_.path() + "/missing"}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(fs::Exists(dir_.path() + "/metadata"))
      << "fsck must not create a database";
}

TEST_F(FsckTest, StrayTemporaryAndUnknownEntriesAreRemoved) {
  ASSERT_OK(fs::MakeDir(root_ + "/snapshots/4242", 0700));
  ASSERT_OK(fs::MakeDir(root_ + "/snapshots/4242/fs", 0755));
  ASSERT_OK(fs::MakeDir(root_ + "/snapshots/new-4243", 0700));
  std::ofstream(root_ + "/snapshots/junk") << "x";
  CheckAndRepair({"stray-directory", "temporary-leftover", "unknown-entry"});
  EXPECT_FALSE(fs::Exists(root_ + "/snapshots/4242"));
  EXPECT_FALSE(fs::Exists(root_ + "/snapshots/new-4243"));
  EXPECT_FALSE(fs::Exists(root_ + "/snapshots/junk"));
}

TEST_F(FsckTest, MissingFilesOfACommittedLayerAreReportedNotInvented) {
  ASSERT_OK(fs::RemoveAll(root_ + "/snapshots/" +
                          std::to_string(IdOf("child")) + "/fs"));
  CheckAndRepair({"missing-fs"}, {"missing-fs"});
}

// As start-up does: a lost active directory comes back empty.
TEST_F(FsckTest, MissingDirectoryOfAnActiveSnapshotIsMadeAgain) {
  const std::string dir = root_ + "/snapshots/" + std::to_string(IdOf("work"));
  ASSERT_OK(fs::RemoveAll(dir));
  // As at start-up, the new fs/ takes the owner of the parent layer's.
  const std::string parent_fs =
      root_ + "/snapshots/" + std::to_string(IdOf("child")) + "/fs";
  ASSERT_EQ(lchown(parent_fs.c_str(), 4321, 8765), 0);
  CheckAndRepair({"missing-directory"});
  EXPECT_TRUE(fs::Exists(dir + "/fs"));
  EXPECT_TRUE(fs::Exists(dir + "/work"));
  struct stat st {};
  ASSERT_EQ(lstat((dir + "/fs").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 4321u);
  EXPECT_EQ(st.st_gid, 8765u);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

// A power cut can also lose a fresh fs/ alone (its mkdir is a step of its
// own): as start-up does, it comes back empty.
TEST_F(FsckTest, MissingFsOfAnActiveSnapshotIsMadeAgain) {
  const std::string dir = root_ + "/snapshots/" + std::to_string(IdOf("work"));
  ASSERT_OK(fs::RemoveAll(dir + "/fs"));
  CheckAndRepair({"missing-fs"});
  EXPECT_TRUE(fs::Exists(dir + "/fs"));
  EXPECT_TRUE(fs::Exists(dir + "/work"));
}

// The parent layer lost with its child: the child still comes back (owned
// by the daemon, the parent's owner being unknown), the parent is reported.
TEST_F(FsckTest, ActiveSnapshotIsMadeAgainWhenItsParentIsLostToo) {
  const std::string dir = root_ + "/snapshots/" + std::to_string(IdOf("work"));
  ASSERT_OK(fs::RemoveAll(dir));
  ASSERT_OK(fs::RemoveAll(root_ + "/snapshots/" + std::to_string(IdOf("child"))));
  CheckAndRepair({"missing-directory", "missing-directory"}, {"missing-directory"});
  EXPECT_TRUE(fs::Exists(dir + "/fs"));
  EXPECT_TRUE(fs::Exists(dir + "/work"));
}

TEST_F(FsckTest, MissingWorkAndViewDirectoriesAreMadeAgain) {
  ASSERT_OK(fs::RemoveAll(root_ + "/snapshots/" + std::to_string(IdOf("work")) +
                          "/work"));
  ASSERT_OK(
      fs::RemoveAll(root_ + "/snapshots/" + std::to_string(IdOf("look"))));
  CheckAndRepair({"missing-work", "missing-directory"});
  EXPECT_TRUE(
      fs::Exists(root_ + "/snapshots/" + std::to_string(IdOf("look")) + "/fs"));
}

TEST_F(FsckTest, AFileInPlaceOfADirectoryIsReported) {
  const std::string fs_dir =
      root_ + "/snapshots/" + std::to_string(IdOf("look")) + "/fs";
  ASSERT_OK(fs::RemoveAll(fs_dir));
  std::ofstream(fs_dir) << "not a directory";
  CheckAndRepair({"not-a-directory"}, {"not-a-directory"});
}

TEST_F(FsckTest, IdIndexDriftIsRebuiltFromTheRecords) {
  metadata::StoreRepair change;
  change.delete_ids.push_back(IdOf("child"));  // missing-id-index
  change.put_ids.emplace_back(777,
                              "nobody");  // stale-id-index (and next id behind)
  Corrupt(change);
  CheckAndRepair({"missing-id-index", "stale-id-index", "next-id-behind"});
  // The snapshot can be removed again, which reads the id index.
  auto open = OverlaySnapshotter::Open({.root = root_});
  ASSERT_OK(open);
  ASSERT_OK((*open)->Remove("work"));
  ASSERT_OK((*open)->Remove("child"));
}

// Start-up (and every Cleanup) collects directories no snapshot owns; an
// id index that lost an entry must not make a snapshot's directory look
// unowned: its files stay until fsck rebuilds the entry.
TEST_F(FsckTest, ADirectoryMissingFromTheIdIndexIsNotCollected) {
  const uint64_t base = IdOf("base");
  const uint64_t work = IdOf("work");
  metadata::StoreRepair change;
  change.delete_ids = {base, work};
  Corrupt(change);
  {
    auto open = OverlaySnapshotter::Open({.root = root_});
    ASSERT_OK(open);
    ASSERT_OK((*open)->Cleanup());
    EXPECT_TRUE((*open)->WaitForReclaim(absl::Seconds(30)));
  }
  const std::string base_file =
      root_ + "/snapshots/" + std::to_string(base) + "/fs/file";
  std::ifstream in(base_file);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "hello") << base_file;
  CheckAndRepair({"missing-id-index", "missing-id-index"});
}

// A record that no longer decodes still owns its directory: neither its
// id index entry nor its files may go (fsck cannot rebuild the record, and
// the files are what is left of the snapshot).
TEST_F(FsckTest, ACorruptRecordKeepsItsIdIndexEntryAndItsDirectory) {
  const uint64_t base = IdOf("base");
  {
    rocksdb::DB* raw = nullptr;
    rocksdb::Options options;
    ASSERT_TRUE(rocksdb::DB::Open(options, root_ + "/metadata", &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(),
                        metadata::keys::Snapshot("base"), "\x01\x02\x03")
                    .ok());
  }
  auto repaired = Fsck({.root = root_, .repair = true});
  ASSERT_OK(repaired);
  EXPECT_THAT(Kinds(*repaired), Contains("corrupt-record"));
  EXPECT_THAT(Kinds(*repaired), ::testing::Not(Contains("stale-id-index")));
  EXPECT_THAT(Kinds(*repaired), ::testing::Not(Contains("stray-directory")));
  std::ifstream in(root_ + "/snapshots/" + std::to_string(base) + "/fs/file");
  std::string content;
  in >> content;
  EXPECT_EQ(content, "hello");
  auto again = Fsck({.root = root_});
  ASSERT_OK(again);
  EXPECT_THAT(Kinds(*again), Contains("corrupt-record"));
}

TEST_F(FsckTest, ChildrenIndexDriftIsRebuiltFromTheRecords) {
  metadata::StoreRepair change;
  // child's entry under base is lost: base could be removed under it.
  change.delete_children.emplace_back(IdOf("base"), IdOf("child"));
  // A child that does not exist keeps work's parent from ever going.
  change.put_children.emplace_back(IdOf("child"), 31337);
  Corrupt(change);
  CheckAndRepair({"missing-child-index", "stale-child-index"});
  auto open = OverlaySnapshotter::Open({.root = root_});
  ASSERT_OK(open);
  EXPECT_THAT((*open)->Remove("base"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK((*open)->Remove("work"));
  ASSERT_OK((*open)->Remove("child"));
}

TEST_F(FsckTest, LabelIndexDriftIsRebuiltFromTheRecords) {
  // work gains a label behind the index's back, and the index names a
  // label nobody has.
  metadata::Snapshot work = Record("work");
  work.info.labels["containerd.io/snapshot/x"] = "1";
  metadata::StoreRepair change;
  change.put_records.push_back(work);  // missing-label-index
  change.put_labels.push_back({"containerd.io/snapshot/x", "1", IdOf("base")});  // stale
  Corrupt(change);
  CheckAndRepair({"missing-label-index", "stale-label-index"});
  auto store = metadata::SnapshotStore::Open(root_ + "/metadata");
  ASSERT_OK(store);
  auto filter = metadata::Filter::Parse({"labels.\"containerd.io/snapshot/x\"==1"});
  ASSERT_OK(filter);
  std::vector<std::string> found;
  ASSERT_OK((*store)->Walk(*filter, [&](const metadata::Snapshot& s) {
    found.push_back(s.info.name);
    return absl::OkStatus();
  }));
  EXPECT_EQ(found, std::vector<std::string>{"work"});
}

TEST_F(FsckTest, DanglingParentIsReported) {
  metadata::Snapshot orphan = Record("work");
  orphan.info.parent = "gone";
  metadata::StoreRepair change;
  change.put_records.push_back(orphan);
  Corrupt(change);
  // Its children-index entry under child now matches no record either.
  CheckAndRepair({"dangling-parent", "stale-child-index"}, {"dangling-parent"});
}

TEST_F(FsckTest, ParentThatIsNotCommittedAndWrongAncestorsAreReported) {
  metadata::Snapshot look = Record("look");
  look.info.parent = "work";  // an active snapshot
  metadata::StoreRepair change;
  change.put_records.push_back(look);
  Corrupt(change);
  auto report = Fsck({.root = root_});
  ASSERT_OK(report);
  EXPECT_THAT(Kinds(*report), Contains("parent-not-committed"));
  EXPECT_THAT(Kinds(*report), Contains("ancestor-mismatch"));
}

TEST_F(FsckTest, UsageRecordsAreMeasuredAgain) {
  metadata::Snapshot base = Record("base");
  base.usage.size = -1;
  metadata::Snapshot work = Record("work");
  work.usage.inodes = 5;  // usage on an active snapshot
  metadata::StoreRepair change;
  change.put_records = {base, work};
  Corrupt(change);
  CheckAndRepair({"bad-usage", "bad-usage", "usage-drift"});
  EXPECT_GT(Record("base").usage.inodes, 1);
  EXPECT_EQ(Record("work").usage.inodes, 0);
}

TEST_F(FsckTest, FilesWrittenIntoACommittedLayerShowAsUsageDrift) {
  std::ofstream(root_ + "/snapshots/" + std::to_string(IdOf("child")) +
                "/fs/late")
      << std::string(100000, 'x');
  CheckAndRepair({"usage-drift"});
}

// st_blocks of files committed before writeback still changes by a few
// blocks (ext4 with 1 KiB blocks adds extent blocks at allocation): a
// recorded size that far off is no drift; one a file's worth off is.
TEST_F(FsckTest, BlocksAddedAtWritebackAreNoUsageDrift) {
  metadata::Snapshot base = Record("base");
  base.usage.size += 4096;
  metadata::StoreRepair change;
  change.put_records = {base};
  Corrupt(change);
  auto report = Fsck({.root = root_});
  ASSERT_OK(report);
  EXPECT_THAT(Kinds(*report), IsEmpty());

  base.usage.size += 1 << 20;
  change.put_records = {base};
  Corrupt(change);
  CheckAndRepair({"usage-drift"});
}

TEST_F(FsckTest, LooseRootModeIsTightened) {
  ASSERT_OK(fs::Chmod(root_, 0755));
  CheckAndRepair({"root-permissions"});
  struct stat st;
  ASSERT_EQ(stat(root_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(FsckTest, SymlinkRootIsRefused) {
  const std::string link = dir_.path() + "/link";
  ASSERT_EQ(symlink(root_.c_str(), link.c_str()), 0);
  EXPECT_THAT(Fsck({.root = link}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace cpp_overlay::snapshotter
