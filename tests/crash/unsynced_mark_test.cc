// A failed layer sync met after a failed metadata log sync, in process: the
// store refuses every write by then, so the mark that forbids committing
// what was written before the failed sync must reach the disk another way
// (snapshotter/unsynced_mark_file.h), or a restarted daemon, whose new
// syncfs descriptor no longer sees the error, commits a layer that lost
// pages. Runs with fail_log_sync.cc preloaded (ctest sets LD_PRELOAD); the
// triggers' names are set here.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "snapshotter/overlay_snapshotter.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::snapshotter {
namespace {

using ::cpp_overlay::testing::StatusIs;

TEST(UnsyncedMarkTest, OutlivesAMetadataStoreThatCanNoLongerWrite) {
  testing::TempDir dir;
  const std::string log_trigger = dir.path() + "/fail-next-log-sync";
  const std::string syncfs_trigger = dir.path() + "/fail-next-syncfs";
  ASSERT_EQ(setenv("CPP_OVERLAY_FAIL_SYNC_TRIGGER", log_trigger.c_str(), 1), 0);
  ASSERT_EQ(
      setenv("CPP_OVERLAY_FAIL_SYNCFS_TRIGGER", syncfs_trigger.c_str(), 1), 0);
  OverlaySnapshotter::Options options{.root = dir.path() + "/root"};
  bool store_failed = false;
  // The daemon stops here; the test goes on, as a Commit in flight does.
  options.on_metadata_sync_failure = [&](const absl::Status&) {
    store_failed = true;
  };
  {
    auto snapshotter = OverlaySnapshotter::Open(options);
    ASSERT_OK(snapshotter);
    auto mounts = (*snapshotter)->Prepare("layer-active", "", {});
    ASSERT_OK(mounts);
    std::ofstream(mounts->front().source + "/file")
        << "written before the failure";

    std::ofstream(log_trigger).put('x');
    EXPECT_FALSE((*snapshotter)->Prepare("doomed", "", {}).ok());
    ASSERT_TRUE(store_failed) << "fail_log_sync.cc is not preloaded";

    std::ofstream(syncfs_trigger).put('x');
    EXPECT_THAT((*snapshotter)->Commit("layer", "layer-active", {}),
                StatusIs(absl::StatusCode::kInternal));
    EXPECT_THAT((*snapshotter)->Commit("layer", "layer-active", {}),
                StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  EXPECT_TRUE(std::filesystem::exists(options.root + "/unsynced-below"));

  auto reopened = OverlaySnapshotter::Open(options);
  ASSERT_OK(reopened);
  EXPECT_THAT((*reopened)->Commit("layer", "layer-active", {}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_FALSE(std::filesystem::exists(options.root + "/unsynced-below"))
      << "the store holds the mark now; its file goes";
  // Snapshots prepared from now on commit.
  ASSERT_OK((*reopened)->Prepare("layer-again", "", {}));
  EXPECT_OK((*reopened)->Commit("layer", "layer-again", {}));
}

}  // namespace
}  // namespace cpp_overlay::snapshotter
