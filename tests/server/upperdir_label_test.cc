// The upperdir_label option through the wire, as containerd's overlayfs
// `upperdir_label`: Stat, Update and List carry
// containerd.io/snapshot/overlay.upperdir = <root>/snapshots/<id>/fs, which
// is computed and never stored.
#include <unistd.h>

#include <memory>
#include <string>

#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "snapshotter/overlay_snapshotter.h"
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
    stub_ = v1::Snapshots::NewStub(grpc::CreateChannel(
        "unix:" + socket, grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  // The upperdir Prepare returned for `key`.
  std::string Prepare(const std::string& key) {
    grpc::ClientContext context;
    v1::PrepareSnapshotRequest request;
    request.set_key(key);
    v1::PrepareSnapshotResponse response;
    EXPECT_TRUE(stub_->Prepare(&context, request, &response).ok());
    // A parentless active snapshot is a bind mount of its fs directory.
    return response.mounts_size() == 1 ? response.mounts(0).source() : "";
  }

  v1::Info Stat(const std::string& key) {
    grpc::ClientContext context;
    v1::StatSnapshotRequest request;
    request.set_key(key);
    v1::StatSnapshotResponse response;
    EXPECT_TRUE(stub_->Stat(&context, request, &response).ok());
    return response.info();
  }

  cpp_overlay::testing::TempDir dir_;
  std::unique_ptr<snapshotter::OverlaySnapshotter> snapshotter_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<v1::Snapshots::Stub> stub_;
};

TEST_F(UpperdirLabelTest, StatUpdateAndListCarryTheComputedLabel) {
  Start(/*upperdir_label=*/true);
  const std::string fs = Prepare("active");
  ASSERT_FALSE(fs.empty());
  EXPECT_THAT(Stat("active").labels(), Contains(Pair(kLabel, fs)));

  grpc::ClientContext update_context;
  v1::UpdateSnapshotRequest update;
  update.mutable_info()->set_name("active");
  (*update.mutable_info()->mutable_labels())["containerd.io/snapshot/x"] = "y";
  update.mutable_update_mask()->add_paths("labels.containerd.io/snapshot/x");
  v1::UpdateSnapshotResponse updated;
  ASSERT_TRUE(stub_->Update(&update_context, update, &updated).ok());
  EXPECT_THAT(updated.info().labels(), Contains(Pair(kLabel, fs)));
  EXPECT_THAT(updated.info().labels(),
              Contains(Pair("containerd.io/snapshot/x", "y")));

  grpc::ClientContext list_context;
  auto reader = stub_->List(&list_context, v1::ListSnapshotsRequest());
  v1::ListSnapshotsResponse listed;
  int seen = 0;
  while (reader->Read(&listed)) {
    for (const v1::Info& info : listed.info()) {
      EXPECT_THAT(info.labels(), Contains(Pair(kLabel, fs)));
      ++seen;
    }
  }
  EXPECT_TRUE(reader->Finish().ok());
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
