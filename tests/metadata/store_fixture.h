// A SnapshotStore on a fresh temporary directory, reopened at will, for the
// metadata tests.
#ifndef CPP_OVERLAY_TESTS_METADATA_STORE_FIXTURE_H_
#define CPP_OVERLAY_TESTS_METADATA_STORE_FIXTURE_H_

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "metadata/snapshot_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::metadata {

class StoreFixture : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  // Closes the store and opens the same database again.
  void Reopen() {
    store_.reset();
    auto store = SnapshotStore::Open(path());
    ASSERT_OK(store);
    store_ = *std::move(store);
  }
  std::string path() const { return dir_.path() + "/db"; }

  // Names Walk visits with `filters`, in its order.
  std::vector<std::string> WalkNames(const std::vector<std::string>& filters = {}) {
    std::vector<std::string> names;
    auto filter = Filter::Parse(filters);
    EXPECT_OK(filter);
    EXPECT_OK(store_->Walk(*filter, [&](const Snapshot& s) {
      names.push_back(s.info.name);
      return absl::OkStatus();
    }));
    return names;
  }

  testing::TempDir dir_;
  std::unique_ptr<SnapshotStore> store_;
};

}  // namespace cpp_overlay::metadata

#endif  // CPP_OVERLAY_TESTS_METADATA_STORE_FIXTURE_H_
