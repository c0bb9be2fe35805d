#include "metadata/preallocated_wal.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "metadata/snapshot_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::metadata {
namespace {

// Sizes of the database's write-ahead logs (<number>.log).
std::vector<uint64_t> WalSizes(const std::string& db) {
  std::vector<uint64_t> sizes;
  for (const auto& entry : std::filesystem::directory_iterator(db)) {
    if (entry.path().extension() == ".log") sizes.push_back(entry.file_size());
  }
  return sizes;
}

// Blocks the file has on disk, in bytes.
uint64_t AllocatedBytes(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

std::string OnlyWal(const std::string& db) {
  for (const auto& entry : std::filesystem::directory_iterator(db)) {
    if (entry.path().extension() == ".log") return entry.path().string();
  }
  return "";
}

// Creates `count` active snapshots key-0.. with a label of `label_bytes`.
void CreateSnapshots(SnapshotStore& store, int first, int count,
                     size_t label_bytes = 10) {
  for (int i = first; i < first + count; ++i) {
    auto created = store.Create(
        Kind::kActive, absl::StrCat("key-", i), "",
        {{"containerd.io/snapshot/x", std::string(label_bytes, 'v')}},
        store.ReserveId());
    ASSERT_OK(created);
  }
}

TEST(PreallocatedWalTest, OpenLogHasItsSpaceWrittenOutAhead) {
  testing::TempDir dir;
  const std::string db = dir.path() + "/db";
  auto store = SnapshotStore::Open(db);
  ASSERT_OK(store);
  ASSERT_NO_FATAL_FAILURE(CreateSnapshots(**store, 0, 10));
  std::string wal = OnlyWal(db);
  ASSERT_FALSE(wal.empty());
  // Size and blocks are the whole chunk, not just the ten records: a record's
  // sync changes neither.
  EXPECT_GE(std::filesystem::file_size(wal), 1u << 20);
  EXPECT_GE(AllocatedBytes(wal), 1u << 20);
}

TEST(PreallocatedWalTest, CleanCloseCutsTheZeroTail) {
  testing::TempDir dir;
  const std::string db = dir.path() + "/db";
  {
    auto store = SnapshotStore::Open(db);
    ASSERT_OK(store);
    ASSERT_NO_FATAL_FAILURE(CreateSnapshots(**store, 0, 10));
  }
  for (uint64_t size : WalSizes(db)) EXPECT_LT(size, 64u << 10);
  auto store = SnapshotStore::Open(db);
  ASSERT_OK(store);
  for (int i = 0; i < 10; ++i) EXPECT_OK((*store)->Get(absl::StrCat("key-", i)));
}

// A process that dies with the zero tail still in its logs: the next open
// skips the zeros and has every synced record. With `switches_memtable`
// the records outgrow the memtable, so the crash comes after a log switch
// (leaving two logs, or one and the flushed table, depending on timing).
void CrashAfterSyncedCreatesThenReopen(int count, size_t label_bytes,
                                       bool switches_memtable) {
  testing::TempDir dir;
  const std::string db = dir.path() + "/db";
  const Labels labels = {{"containerd.io/snapshot/x", std::string(label_bytes, 'v')}};
  // A process of its own (wal_crash_writer.cc says why); argv is built
  // before fork, so the child only execs.
  std::vector<std::string> args = {WAL_CRASH_WRITER, db, std::to_string(count),
                                   std::to_string(label_bytes)};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::vector<uint64_t> sizes = WalSizes(db);
  ASSERT_FALSE(sizes.empty());
  if (switches_memtable) {
    bool flushed = false;
    for (const auto& entry : std::filesystem::directory_iterator(db)) {
      flushed |= entry.path().extension() == ".sst";
    }
    EXPECT_TRUE(sizes.size() >= 2 || flushed) << "no log switch happened";
  }
  for (uint64_t size : sizes) {
    EXPECT_GE(size, 1u << 20) << "a crashed log should keep its zero tail";
  }

  auto store = SnapshotStore::Open(db);
  ASSERT_OK(store);
  for (int i = 0; i < count; ++i) {
    auto got = (*store)->Get(absl::StrCat("key-", i));
    ASSERT_OK(got) << i;
    EXPECT_EQ(got->info.labels, labels);
  }
  EXPECT_THAT((*store)->Get(absl::StrCat("key-", count)),
              testing::StatusIs(absl::StatusCode::kNotFound));
  // And it keeps working: new writes after the recovered ones.
  ASSERT_NO_FATAL_FAILURE(CreateSnapshots(**store, count, 10));
}

TEST(PreallocatedWalTest, CrashWithZeroTailLosesNoSyncedRecord) {
  CrashAfterSyncedCreatesThenReopen(500, 10, false);
}

TEST(PreallocatedWalTest, CrashAcrossSeveralLogsLosesNoSyncedRecord) {
  // ~7 MiB of records: past the 4 MiB memtable.
  CrashAfterSyncedCreatesThenReopen(1800, 4000, true);
}

// Appends past the written-out space get whole new chunks of zeros first;
// the close leaves exactly the appended bytes.
TEST(PreallocatedWalTest, LogOutgrowingAChunkGrowsByChunks) {
  testing::TempDir dir;
  auto fs = NewPreallocatedWalFileSystem(rocksdb::FileSystem::Default(),
                                         64 << 10);
  const std::string path = dir.path() + "/000007.log";
  std::unique_ptr<rocksdb::FSWritableFile> file;
  ASSERT_TRUE(fs->NewWritableFile(path, rocksdb::FileOptions(), &file, nullptr).ok());
  EXPECT_EQ(std::filesystem::file_size(path), 64u << 10);

  std::string record(50 << 10, 'r');
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(file->Append(record, rocksdb::IOOptions(), nullptr).ok());
    ASSERT_TRUE(file->Sync(rocksdb::IOOptions(), nullptr).ok());
  }
  EXPECT_EQ(file->GetFileSize(rocksdb::IOOptions(), nullptr), 150u << 10);
  EXPECT_EQ(std::filesystem::file_size(path), 192u << 10);  // three chunks
  ASSERT_TRUE(file->Close(rocksdb::IOOptions(), nullptr).ok());
  EXPECT_EQ(std::filesystem::file_size(path), 150u << 10);
}

// Only write-ahead logs are preallocated; other files pass straight through.
TEST(PreallocatedWalTest, OtherFilesAreLeftAlone) {
  testing::TempDir dir;
  auto fs = NewPreallocatedWalFileSystem(rocksdb::FileSystem::Default(),
                                         64 << 10);
  for (const char* name : {"MANIFEST-000001", "LOG", "000008.sst", "x.log"}) {
    const std::string path = dir.path() + "/" + name;
    std::unique_ptr<rocksdb::FSWritableFile> file;
    ASSERT_TRUE(fs->NewWritableFile(path, rocksdb::FileOptions(), &file, nullptr).ok());
    EXPECT_EQ(std::filesystem::file_size(path), 0u) << name;
    ASSERT_TRUE(file->Close(rocksdb::IOOptions(), nullptr).ok());
  }
}

}  // namespace
}  // namespace cpp_overlay::metadata
