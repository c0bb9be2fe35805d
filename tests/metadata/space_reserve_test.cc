// The space reserve kept next to the metadata (metadata/space_reserve.h).
// The full-disk behaviour itself is in tests/crash/disk_full_test.cc, on a
// small loop-mounted filesystem.
#include "metadata/space_reserve.h"

#include <sys/stat.h>

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "metadata/snapshot_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::metadata {
namespace {

constexpr uint64_t kMiB = 1 << 20;

TEST(SpaceReserveTest, SizeIsOnePercentBetween4And64MiB) {
  EXPECT_EQ(SpaceReserve::SizeFor(64 * kMiB), 4 * kMiB);
  EXPECT_EQ(SpaceReserve::SizeFor(1000 * kMiB), 10 * kMiB);
  EXPECT_EQ(SpaceReserve::SizeFor(uint64_t{500} << 30), 64 * kMiB);
}

TEST(SpaceReserveTest, EnsureMakesAFileOfAllocatedBlocksAndReleaseDeletesIt) {
  testing::TempDir dir;
  SpaceReserve reserve(dir.path() + "/space-reserve");
  ASSERT_FALSE(reserve.held());
  absl::StatusOr<bool> made = reserve.Ensure();
  ASSERT_OK(made);
  ASSERT_TRUE(*made);
  struct stat st;
  ASSERT_EQ(stat(reserve.path().c_str(), &st), 0);
  EXPECT_GE(static_cast<uint64_t>(st.st_blocks) * 512, reserve.bytes());
  EXPECT_TRUE(SpaceReserve(reserve.path()).held());  // found again at start
  EXPECT_TRUE(reserve.Release());
  EXPECT_FALSE(reserve.held());
  EXPECT_NE(stat(reserve.path().c_str(), &st), 0);
  EXPECT_FALSE(reserve.Release());  // nothing left to free
}

// A store in `dir`/db asked to keep its reserve at `dir`/`reserve`.
absl::StatusOr<std::unique_ptr<SnapshotStore>> OpenWithReserve(
    const testing::TempDir& dir, const std::string& reserve) {
  StoreOptions options;
  options.space_reserve_path = dir.path() + "/" + reserve;
  return SnapshotStore::Open(dir.path() + "/db", options);
}

TEST(SpaceReserveTest, TheStoreHoldsOneWhenAskedTo) {
  testing::TempDir dir;
  auto store = OpenWithReserve(dir, "space-reserve");
  ASSERT_OK(store);
  EXPECT_TRUE((*store)->HoldsSpaceReserve());
  EXPECT_OK((*store)->SpaceReserveError());
  struct stat st;
  EXPECT_EQ(stat((dir.path() + "/space-reserve").c_str(), &st), 0);
}

// A reserve that cannot be made for another reason than space is not a
// full disk: the store says why and takes writes without one.
TEST(SpaceReserveTest, AReserveThatCannotBeMadeDoesNotRefuseWrites) {
  testing::TempDir dir;
  auto store = OpenWithReserve(dir, "no-such-dir/space-reserve");
  ASSERT_OK(store);
  EXPECT_FALSE((*store)->HoldsSpaceReserve());
  EXPECT_FALSE((*store)->SpaceReserveError().ok());
  EXPECT_OK(
      (*store)->Create(Kind::kActive, "k", "", {}, (*store)->ReserveId()));
  EXPECT_OK((*store)->Update("k", {{"a", "b"}}, {}));
}

}  // namespace
}  // namespace cpp_overlay::metadata
