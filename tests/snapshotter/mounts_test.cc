#include "snapshotter/mounts.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cpp_overlay::snapshotter {
namespace {

using metadata::Kind;
using ::testing::ElementsAre;

metadata::Snapshot MakeSnapshot(Kind kind, uint64_t id, std::vector<uint64_t> ancestors) {
  metadata::Snapshot s;
  s.id = id;
  s.info.kind = kind;
  s.ancestor_ids = std::move(ancestors);
  return s;
}

const Layout kLayout("/r");

TEST(MountsForTest, ActiveWithoutParentIsRwBindOfItsFs) {
  EXPECT_THAT(MountsFor(MakeSnapshot(Kind::kActive, 3, {}), kLayout, {}),
              ElementsAre(Mount{"bind", "/r/snapshots/3/fs", {"rw", "rbind"}}));
}

TEST(MountsForTest, ViewWithoutParentIsRoBindOfItsFs) {
  EXPECT_THAT(MountsFor(MakeSnapshot(Kind::kView, 3, {}), kLayout, {}),
              ElementsAre(Mount{"bind", "/r/snapshots/3/fs", {"ro", "rbind"}}));
}

TEST(MountsForTest, ViewOfOneLayerIsRoBindOfTheParentsFs) {
  EXPECT_THAT(MountsFor(MakeSnapshot(Kind::kView, 5, {2}), kLayout, {}),
              ElementsAre(Mount{"bind", "/r/snapshots/2/fs", {"ro", "rbind"}}));
}

TEST(MountsForTest, ViewOfSeveralLayersIsOverlayWithLowerdirOnly) {
  EXPECT_THAT(MountsFor(MakeSnapshot(Kind::kView, 5, {4, 2}), kLayout, {.index_off = true}),
              ElementsAre(Mount{"overlay", "overlay",
                                {"index=off", "lowerdir=/r/snapshots/4/fs:/r/snapshots/2/fs"}}));
}

TEST(MountsForTest, ActiveWithParentsIsOverlayNearestParentFirst) {
  EXPECT_THAT(
      MountsFor(MakeSnapshot(Kind::kActive, 9, {7, 3, 1}), kLayout, {}),
      ElementsAre(Mount{"overlay", "overlay",
                        {"workdir=/r/snapshots/9/work", "upperdir=/r/snapshots/9/fs",
                         "lowerdir=/r/snapshots/7/fs:/r/snapshots/3/fs:/r/snapshots/1/fs"}}));
}

TEST(MountsForTest, IndexOffComesFirstAndExtraOptionsLastOnOverlayOnly) {
  MountOptions options{.index_off = true, .extra_overlay_options = {"volatile"}};
  EXPECT_THAT(MountsFor(MakeSnapshot(Kind::kActive, 2, {1}), kLayout, options),
              ElementsAre(Mount{"overlay", "overlay",
                                {"index=off", "workdir=/r/snapshots/2/work",
                                 "upperdir=/r/snapshots/2/fs", "lowerdir=/r/snapshots/1/fs",
                                 "volatile"}}));
  EXPECT_THAT(MountsFor(MakeSnapshot(Kind::kActive, 2, {}), kLayout, options),
              ElementsAre(Mount{"bind", "/r/snapshots/2/fs", {"rw", "rbind"}}));
}

// containerd 1.6's order: [index=off][userxattr] workdir upperdir lowerdir.
TEST(MountsForTest, UserxattrFollowsIndexOffOnOverlayOnly) {
  MountOptions options{.index_off = true, .userxattr = true};
  EXPECT_THAT(MountsFor(MakeSnapshot(Kind::kActive, 2, {1}), kLayout, options),
              ElementsAre(Mount{"overlay", "overlay",
                                {"index=off", "userxattr", "workdir=/r/snapshots/2/work",
                                 "upperdir=/r/snapshots/2/fs", "lowerdir=/r/snapshots/1/fs"}}));
  EXPECT_THAT(MountsFor(MakeSnapshot(Kind::kView, 3, {2, 1}), kLayout, {.userxattr = true}),
              ElementsAre(Mount{"overlay", "overlay",
                                {"userxattr", "lowerdir=/r/snapshots/2/fs:/r/snapshots/1/fs"}}));
  EXPECT_THAT(MountsFor(MakeSnapshot(Kind::kView, 3, {2}), kLayout, {.userxattr = true}),
              ElementsAre(Mount{"bind", "/r/snapshots/2/fs", {"ro", "rbind"}}));
}

TEST(LayoutTest, EntriesMapToIdsOnlyWhenCanonical) {
  EXPECT_EQ(Layout::IdOfEntry("12"), 12u);
  EXPECT_EQ(Layout::IdOfEntry("new-12"), 12u);
  EXPECT_EQ(Layout::IdOfEntry("012"), std::nullopt);
  EXPECT_EQ(Layout::IdOfEntry("12a"), std::nullopt);
  EXPECT_EQ(Layout::IdOfEntry("new-"), std::nullopt);
  EXPECT_EQ(Layout::IdOfEntry(""), std::nullopt);
  EXPECT_EQ(Layout::IdOfEntry("99999999999999999999999"), std::nullopt);
}

TEST(LayoutTest, TrailingSlashesOfRootAreDropped) {
  EXPECT_EQ(Layout("/var/lib/x//").FsDir(4), "/var/lib/x/snapshots/4/fs");
}

}  // namespace
}  // namespace cpp_overlay::snapshotter
