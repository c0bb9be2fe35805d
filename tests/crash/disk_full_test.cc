// Disk full: the daemon's root on a small loop-mounted ext4 that is filled
// up. Calls that need space fail with UNAVAILABLE and a "No space left"
// message (server/status.cc says why not RESOURCE_EXHAUSTED), the daemon keeps
// serving, metadata stays consistent (fsck finds nothing after a clean stop),
// and everything works again once space is freed. Needs root (losetup, mount).
//
// The metadata writes on the full disk (Updates that grow one snapshot to
// 50 labels of 4 KB; each writes the whole record) must outgrow two of
// RocksDB's 2 MiB memtables before the first refusal, so RocksDB switches to
// a new log file and flushes while the disk is full: the preallocated log
// falls back to plain appends there (metadata/preallocated_wal.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/crash/loop_root_test.h"
#include "tests/crash/root_checks.h"
#include "tests/testing/snapshots_client.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::testing {
namespace {

using ::testing::HasSubstr;

// Writes `path` until the filesystem is full.
void Fill(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  std::string block(1 << 16, 'f');
  while (write(fd, block.data(), block.size()) > 0) {
  }
  // Smaller pieces too, down to the last block.
  while (write(fd, block.data(), 512) > 0) {
  }
  fsync(fd);
  close(fd);
}

class DiskFullTest : public LoopRootTest {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(SetUpLoopRoot(64)); }

  uint64_t FreeBytes() {
    struct statvfs vfs {};
    EXPECT_EQ(statvfs(fs_.mount_point().c_str(), &vfs), 0);
    return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  }

  // Metadata writes until one is refused for lack of space.
  grpc::Status UpdateUntilRefused() {
    grpc::Status s;
    for (int i = 0; i < 5000 && s.ok(); ++i) {
      s = client_->Update(
          "base", {{"pad" + std::to_string(i % 50), std::string(4000, 'p')}});
    }
    return s;
  }

  std::vector<std::string> Names() {
    std::vector<SnapshotsClient::Info> infos;
    EXPECT_TRUE(client_->List(&infos).ok());
    std::vector<std::string> names;
    for (const auto& info : infos)
      names.push_back(info.name() + "/" + std::to_string(info.kind()));
    return names;
  }
};

TEST_F(DiskFullTest, FailsClearlyStaysUpAndRecoversWhenSpaceIsFreed) {
  std::string fs;
  ASSERT_TRUE(client_->Prepare("base-a", "", {}, &fs).ok());
  WriteFile(fs + "/marker", "base");
  ASSERT_TRUE(client_->Commit("base", "base-a").ok());
  ASSERT_TRUE(client_->Prepare("active", "base").ok());
  const std::vector<std::string> before = Names();

  const std::string filler = fs_.mount_point() + "/filler";
  ASSERT_NO_FATAL_FAILURE(Fill(filler));

  // Creating needs directories: refused with UNAVAILABLE, nothing recorded.
  int refused = 0;
  for (int i = 0; i < 20; ++i) {
    grpc::Status s = client_->Prepare("full-" + std::to_string(i), "base");
    if (s.ok()) continue;  // a freed block here or there
    ++refused;
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE)
        << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("No space left on device"));
    EXPECT_EQ(client_->Stat("full-" + std::to_string(i)).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  EXPECT_GT(refused, 0) << "the filesystem never filled up";
  // Metadata-only calls on the full disk: RocksDB's preallocated log takes
  // them, or they fail with UNAVAILABLE.
  grpc::Status metadata_error;
  const int metadata_writes =
      std::getenv("CPP_OVERLAY_DISK_FULL_METADATA_WRITES")
          ? std::atoi(std::getenv("CPP_OVERLAY_DISK_FULL_METADATA_WRITES"))
          : 2000;
  ASSERT_GT(metadata_writes, 0) << "CPP_OVERLAY_DISK_FULL_METADATA_WRITES";
  int metadata_written = 0;
  uint64_t labels_logged = 0;  // label bytes of the records written
  for (int i = 0; i < metadata_writes && metadata_error.ok(); ++i) {
    metadata_error = client_->Update(
        "base", {{"pad" + std::to_string(i % 50), std::string(4000, 'p')}});
    if (!metadata_error.ok()) break;
    ++metadata_written;
    labels_logged += 4000u * std::min(i + 1, 50);
  }
  if (!metadata_error.ok()) {
    EXPECT_EQ(metadata_error.error_code(), grpc::StatusCode::UNAVAILABLE)
        << metadata_error.error_message();
  }
  // 86 writes, about 12 MB, on this machine's ext4.
  EXPECT_GT(labels_logged, 2u * (2u << 20))
      << "only " << metadata_written
      << " metadata writes before the first refusal: RocksDB never had to "
         "switch logs while the disk was full";
  // The disk was full all along: the writes above found no free space but
  // the space reserve's 4 MiB, which a failed metadata write gives back.
  EXPECT_LT(FreeBytes(), 5u << 20) << "the disk is not full";
  // Still serving, and what was there is still there.
  SnapshotsClient::Info info;
  ASSERT_TRUE(client_->Stat("base", &info).ok());
  EXPECT_EQ(ReadFile(fs + "/marker"), "base");

  // Space back: everything works again, without a restart (RocksDB polls
  // for free space before it takes writes again, hence the retries).
  ASSERT_EQ(unlink(filler.c_str()), 0);
  sync();
  const absl::Time freed = absl::Now();
  grpc::Status s;
  do {
    s = client_->Prepare("after", "base", {}, &fs);
    if (!s.ok()) absl::SleepFor(absl::Milliseconds(250));
  } while (!s.ok() && absl::Now() - freed < absl::Seconds(60));
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  std::cout << "disk_full_test: writes work again "
            << absl::FormatDuration(absl::Now() - freed)
            << " after space was freed" << std::endl;
  WriteFile(fs + "/marker", "after");
  s = client_->Commit("after-c", "after");
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  s = client_->Update("base", {{"l", "v"}});
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_TRUE(client_->Remove("after-c").ok());
  std::vector<std::string> after = Names();
  EXPECT_EQ(after, before);

  // Consistent on disk: nothing for fsck after a clean stop.
  client_.reset();
  ASSERT_EQ(daemon_->Terminate(), 0);
  absl::StatusOr<std::vector<metadata::Finding>> findings = FsckFindings(root_);
  ASSERT_TRUE(findings.ok()) << findings.status();
  EXPECT_TRUE(findings->empty()) << FindingsString(*findings);
}

// The space reserve (metadata/space_reserve.h): with the disk full and the
// metadata out of space too, only removals are taken, a Remove succeeds and
// frees the space, and a daemon restarted on a full disk starts and removes.
// (Without the reserve the Remove failed and the restart exited 1, so
// containerd's garbage collector could never free the disk.)
TEST_F(DiskFullTest, RemoveAndRestartWorkOnAFullDisk) {
  ASSERT_TRUE(client_->Prepare("base-a", "").ok());
  ASSERT_TRUE(client_->Commit("base", "base-a").ok());
  std::string big_fs;
  ASSERT_TRUE(client_->Prepare("big", "base", {}, &big_fs).ok());
  WriteFile(big_fs + "/data", std::string(12 << 20, 'b'));
  sync();
  struct stat st;
  ASSERT_EQ(stat((root_ + "/space-reserve").c_str(), &st), 0)
      << "no space reserve";
  EXPECT_EQ(st.st_blocks * 512, 4 << 20);

  const std::string filler = fs_.mount_point() + "/filler";
  ASSERT_NO_FATAL_FAILURE(Fill(filler));
  grpc::Status refused = UpdateUntilRefused();
  ASSERT_FALSE(refused.ok()) << "the metadata never ran out of space";
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE)
      << refused.error_message();
  // The reserve is given back, and kept for removals.
  EXPECT_NE(stat((root_ + "/space-reserve").c_str(), &st), 0);
  grpc::Status update = client_->Update("base", {{"x", "y"}});
  EXPECT_EQ(update.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(update.error_message(), HasSubstr("only removals"));

  grpc::Status removed = client_->Remove("big");
  ASSERT_TRUE(removed.ok())
      << removed.error_code() << " " << removed.error_message();
  // The reclaimer deletes it in the background.
  const absl::Time start = absl::Now();
  while (FreeBytes() < (12u << 20) && absl::Now() - start < absl::Seconds(30)) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_GE(FreeBytes(), 12u << 20)
      << "the removed snapshot's space was not freed";
  // With space back the reserve is made again and every write works.
  grpc::Status s = client_->Update("base", {{"x", "y"}});
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(stat((root_ + "/space-reserve").c_str(), &st), 0)
      << "the reserve was not made again";

  // Stopped, the disk filled to the last block, started again: it serves,
  // and a Remove still goes through.
  ASSERT_TRUE(client_->Prepare("doomed", "base").ok());
  client_.reset();
  ASSERT_EQ(daemon_->Terminate(), 0) << daemon_->Log();
  ASSERT_NO_FATAL_FAILURE(Fill(filler + "2"));
  ASSERT_TRUE(daemon_->Start().ok());
  absl::Status ready = daemon_->WaitReady();
  ASSERT_TRUE(ready.ok()) << ready << "\n" << daemon_->Log();
  client_ = std::make_unique<SnapshotsClient>(daemon_->NewStub());
  EXPECT_TRUE(client_->Stat("base").ok());
  removed = client_->Remove("doomed");
  EXPECT_TRUE(removed.ok())
      << removed.error_code() << " " << removed.error_message();

  // Consistent after all that.
  ASSERT_EQ(unlink(filler.c_str()), 0);
  ASSERT_EQ(unlink((filler + "2").c_str()), 0);
  client_.reset();
  ASSERT_EQ(daemon_->Terminate(), 0);
  absl::StatusOr<std::vector<metadata::Finding>> findings = FsckFindings(root_);
  ASSERT_TRUE(findings.ok()) << findings.status();
  EXPECT_TRUE(findings->empty()) << FindingsString(*findings);
}

}  // namespace
}  // namespace cpp_overlay::testing
