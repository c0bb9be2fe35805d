// The upperdir_label option through the wire, as containerd's overlayfs
// `upperdir_label`: Stat, Update and List carry
// containerd.io/snapshot/overlay.upperdir = <root>/snapshots/<id>/fs, which
// is computed and never stored.
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "snapshotter/overlay_snapshotter.h"
#include "tests/testing/snapshots_client.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::server {
namespace {

namespace v1 = ::containerd::services::snapshots::v1;
using ::testing::Contains;
using ::testing::Key;
using ::testing::Not;
using ::testing::Pair;

constexpr char kLabel[] = "containerd.io/snapshot/overlay.upperdir";

class UpperdirLabelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "the snapshotter needs root";
  }

  void Start(bool upperdir_label) {
    if (server_) server_->Shutdown(absl::Seconds(1));
    server_.reset();
    snapshotter_.reset();
    auto snapshotter = snapshotter::OverlaySnapshotter::Open(
        {.root = dir_.path() + "/root", .upperdir_label = upperdir_label});
    ASSERT_OK(snapshotter);
    snapshotter_ = *std::move(snapshotter);
    const std::string socket = dir_.path() + "/run/snapshots.sock";
    auto server =
        Server::Start({.address = socket, .snapshotter = snapshotter_.get()});
    ASSERT_OK(server);
    server_ = *std::move(server);
    client_ = std::make_unique<cpp_overlay::testing::SnapshotsClient>(
        cpp_overlay::testing::SnapshotsClient::Dial(socket, kMaxMessageBytes));
  }

  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  // The upperdir Prepare returned for `key`: a parentless active snapshot
  // is a bind mount of its fs directory.
  std::string Prepare(const std::string& key) {
    std::string fs;
    EXPECT_TRUE(client_->Prepare(key, "", {}, &fs).ok());
    return fs;
  }

  v1::Info Stat(const std::string& key) {
    v1::Info info;
    EXPECT_TRUE(client_->Stat(key, &info).ok());
    return info;
  }

  cpp_overlay::testing::TempDir dir_;
  std::unique_ptr<snapshotter::OverlaySnapshotter> snapshotter_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<cpp_overlay::testing::SnapshotsClient> client_;
};

TEST_F(UpperdirLabelTest, StatUpdateAndListCarryTheComputedLabel) {
  Start(/*upperdir_label=*/true);
  const std::string fs = Prepare("active");
  ASSERT_FALSE(fs.empty());
  EXPECT_THAT(Stat("active").labels(), Contains(Pair(kLabel, fs)));

  v1::Info wanted;
  wanted.set_name("active");
  (*wanted.mutable_labels())["containerd.io/snapshot/x"] = "y";
  v1::Info updated;
  ASSERT_TRUE(client_->Update(wanted, {"labels.containerd.io/snapshot/x"}, &updated).ok());
  EXPECT_THAT(updated.labels(), Contains(Pair(kLabel, fs)));
  EXPECT_THAT(updated.labels(), Contains(Pair("containerd.io/snapshot/x", "y")));

  std::vector<v1::Info> listed;
  ASSERT_TRUE(client_->List(&listed).ok());
  int seen = 0;
  for (const v1::Info& info : listed) {
    EXPECT_THAT(info.labels(), Contains(Pair(kLabel, fs)));
    ++seen;
  }
  EXPECT_EQ(seen, 1);
}

TEST_F(UpperdirLabelTest, LabelIsNotStoredAndIsAbsentWhenOff) {
  Start(/*upperdir_label=*/true);
  ASSERT_FALSE(Prepare("active").empty());
  Start(/*upperdir_label=*/false);
  EXPECT_THAT(Stat("active").labels(), Not(Contains(Key(kLabel))));
}

}  // namespace
}  // namespace cpp_overlay::server
