// Every RPC through a real gRPC channel on a unix socket, asserting codes.
#include <sys/stat.h>
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
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

class SnapshotsServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "the snapshotter chowns and needs root";
    auto snapshotter = snapshotter::OverlaySnapshotter::Open({.root = dir_.path() + "/root"});
    ASSERT_OK(snapshotter);
    snapshotter_ = *std::move(snapshotter);
    socket_ = dir_.path() + "/run/snapshots.sock";
    auto server = Server::Start({.address = socket_, .snapshotter = snapshotter_.get()});
    ASSERT_OK(server);
    server_ = *std::move(server);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxMessageBytes);
    args.SetMaxSendMessageSize(kMaxMessageBytes);
    stub_ = v1::Snapshots::NewStub(grpc::CreateCustomChannel(
        "unix:" + socket_, grpc::InsecureChannelCredentials(), args));
  }

  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  grpc::Status Prepare(const std::string& key, const std::string& parent,
                       v1::PrepareSnapshotResponse* response = nullptr,
                       std::map<std::string, std::string> labels = {}) {
    grpc::ClientContext context;
    v1::PrepareSnapshotRequest request;
    request.set_snapshotter("cpp-overlay");
    request.set_key(key);
    request.set_parent(parent);
    request.mutable_labels()->insert(labels.begin(), labels.end());
    v1::PrepareSnapshotResponse ignored;
    return stub_->Prepare(&context, request, response ? response : &ignored);
  }

  grpc::Status View(const std::string& key, const std::string& parent,
                    v1::ViewSnapshotResponse* response = nullptr) {
    grpc::ClientContext context;
    v1::ViewSnapshotRequest request;
    request.set_key(key);
    request.set_parent(parent);
    v1::ViewSnapshotResponse ignored;
    return stub_->View(&context, request, response ? response : &ignored);
  }

  grpc::Status Commit(const std::string& name, const std::string& key,
                      std::map<std::string, std::string> labels = {}) {
    grpc::ClientContext context;
    v1::CommitSnapshotRequest request;
    request.set_name(name);
    request.set_key(key);
    request.mutable_labels()->insert(labels.begin(), labels.end());
    google::protobuf::Empty response;
    return stub_->Commit(&context, request, &response);
  }

  grpc::Status Remove(const std::string& key) {
    grpc::ClientContext context;
    v1::RemoveSnapshotRequest request;
    request.set_key(key);
    google::protobuf::Empty response;
    return stub_->Remove(&context, request, &response);
  }

  grpc::Status Stat(const std::string& key, v1::Info* info = nullptr) {
    grpc::ClientContext context;
    v1::StatSnapshotRequest request;
    request.set_key(key);
    v1::StatSnapshotResponse response;
    grpc::Status status = stub_->Stat(&context, request, &response);
    if (info) *info = response.info();
    return status;
  }

  grpc::Status Mounts(const std::string& key, v1::MountsResponse* response) {
    grpc::ClientContext context;
    v1::MountsRequest request;
    request.set_key(key);
    return stub_->Mounts(&context, request, response);
  }

  grpc::Status List(const std::vector<std::string>& filters,
                    std::vector<std::string>* names, int* batches = nullptr) {
    grpc::ClientContext context;
    v1::ListSnapshotsRequest request;
    for (const auto& f : filters) request.add_filters(f);
    auto reader = stub_->List(&context, request);
    v1::ListSnapshotsResponse response;
    int count = 0;
    while (reader->Read(&response)) {
      ++count;
      for (const auto& info : response.info()) names->push_back(info.name());
    }
    if (batches) *batches = count;
    return reader->Finish();
  }

  void Layer(const std::string& name, const std::string& parent) {
    ASSERT_TRUE(Prepare(name + "-a", parent).ok());
    ASSERT_TRUE(Commit(name, name + "-a").ok());
  }

  testing::TempDir dir_;
  std::string socket_;
  std::unique_ptr<snapshotter::OverlaySnapshotter> snapshotter_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<v1::Snapshots::Stub> stub_;
};

TEST_F(SnapshotsServiceTest, SocketIsMode0660) {
  struct stat st;
  ASSERT_EQ(stat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST_F(SnapshotsServiceTest, PrepareReturnsBindThenOverlayMounts) {
  v1::PrepareSnapshotResponse response;
  ASSERT_TRUE(Prepare("base-a", "", &response).ok());
  ASSERT_THAT(response.mounts(), SizeIs(1));
  EXPECT_EQ(response.mounts(0).type(), "bind");
  EXPECT_THAT(response.mounts(0).options(), ElementsAre("rw", "rbind"));
  EXPECT_EQ(response.mounts(0).target(), "");
  ASSERT_TRUE(Commit("base", "base-a").ok());
  ASSERT_TRUE(Prepare("child", "base", &response).ok());
  ASSERT_THAT(response.mounts(), SizeIs(1));
  EXPECT_EQ(response.mounts(0).type(), "overlay");
  EXPECT_EQ(response.mounts(0).source(), "overlay");
  v1::MountsResponse mounts;
  ASSERT_TRUE(Mounts("child", &mounts).ok());
  EXPECT_EQ(mounts.mounts(0).SerializeAsString(), response.mounts(0).SerializeAsString());
}

TEST_F(SnapshotsServiceTest, ErrorsMapToContainerdsCodes) {
  Layer("base", "");
  ASSERT_TRUE(Prepare("active", "").ok());
  ASSERT_TRUE(View("view", "base").ok());
  EXPECT_EQ(Prepare("x", "missing").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Prepare("active", "").error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Prepare("y", "active").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Prepare("", "").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Commit("base", "active").error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Commit("n", "view").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Commit("n", "missing").error_code(), grpc::StatusCode::NOT_FOUND);
  v1::MountsResponse mounts;
  EXPECT_EQ(Mounts("base", &mounts).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Mounts("missing", &mounts).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Remove("base").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Remove("missing").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Stat("missing").error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::Status s = Stat("missing");
  EXPECT_THAT(s.error_message(), HasSubstr("not found"));
  EXPECT_EQ(Prepare("big", "", nullptr, {{"k", std::string(5000, 'v')}}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(SnapshotsServiceTest, StatReturnsInfoWithTimesAndLabels) {
  Layer("base", "");
  ASSERT_TRUE(Prepare("k", "base", nullptr, {{"containerd.io/snapshot/x", "1"}}).ok());
  v1::Info info;
  ASSERT_TRUE(Stat("k", &info).ok());
  EXPECT_EQ(info.name(), "k");
  EXPECT_EQ(info.parent(), "base");
  EXPECT_EQ(info.kind(), v1::ACTIVE);
  EXPECT_GT(info.created_at().seconds(), 1700000000);
  EXPECT_EQ(info.labels().at("containerd.io/snapshot/x"), "1");
  ASSERT_TRUE(Stat("base", &info).ok());
  EXPECT_EQ(info.kind(), v1::COMMITTED);
}

TEST_F(SnapshotsServiceTest, UpdateHonoursFieldMask) {
  ASSERT_TRUE(Prepare("k", "", nullptr, {{"a", "1"}, {"b", "2"}}).ok());
  grpc::ClientContext context;
  v1::UpdateSnapshotRequest request;
  request.mutable_info()->set_name("k");
  (*request.mutable_info()->mutable_labels())["a"] = "9";
  request.mutable_update_mask()->add_paths("labels.a");
  request.mutable_update_mask()->add_paths("labels.b");
  v1::UpdateSnapshotResponse response;
  ASSERT_TRUE(stub_->Update(&context, request, &response).ok());
  EXPECT_EQ(response.info().labels().size(), 1u);
  EXPECT_EQ(response.info().labels().at("a"), "9");
  EXPECT_EQ(response.info().kind(), v1::ACTIVE);

  grpc::ClientContext context2;
  request.mutable_update_mask()->add_paths("parent");
  EXPECT_EQ(stub_->Update(&context2, request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(SnapshotsServiceTest, ListStreamsInBatchesAndFilters) {
  const int kCount = SnapshotsService::kListBatchSize * 2 + 50;
  for (int i = 0; i < kCount; ++i) ASSERT_TRUE(Prepare("k" + std::to_string(i), "").ok());
  ASSERT_TRUE(View("v", "").ok());
  std::vector<std::string> names;
  int batches = 0;
  ASSERT_TRUE(List({}, &names, &batches).ok());
  EXPECT_EQ(names.size(), static_cast<size_t>(kCount + 1));
  EXPECT_EQ(batches, 3);
  names.clear();
  ASSERT_TRUE(List({"kind==view", "name==k7"}, &names).ok());
  EXPECT_THAT(names, ElementsAre("k7", "v"));
  names.clear();
  EXPECT_EQ(List({"name~=\"[\""}, &names).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(SnapshotsServiceTest, UsageRemoveAndCleanup) {
  ASSERT_TRUE(Prepare("k", "").ok());
  grpc::ClientContext context;
  v1::UsageRequest request;
  request.set_key("k");
  v1::UsageResponse usage;
  ASSERT_TRUE(stub_->Usage(&context, request, &usage).ok());
  EXPECT_EQ(usage.inodes(), 1);
  EXPECT_GT(usage.size(), 0);
  ASSERT_TRUE(Remove("k").ok());
  EXPECT_EQ(Stat("k").error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext cleanup_context;
  google::protobuf::Empty empty;
  EXPECT_TRUE(stub_->Cleanup(&cleanup_context, v1::CleanupRequest(), &empty).ok());
}

TEST_F(SnapshotsServiceTest, CommitWithRebaseParentIsUnimplemented) {
  Layer("base", "");
  ASSERT_TRUE(Prepare("k", "").ok());
  grpc::ClientContext context;
  v1::CommitSnapshotRequest request;
  request.set_name("n");
  request.set_key("k");
  request.set_parent("base");
  google::protobuf::Empty response;
  EXPECT_EQ(stub_->Commit(&context, request, &response).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(SnapshotsServiceTest, SecondServerOnLiveSocketIsRefused) {
  EXPECT_THAT(Server::Start({.address = socket_, .snapshotter = snapshotter_.get()}),
              testing::StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST(ServerStartTest, StaleSocketIsReplaced) {
  testing::TempDir dir;
  auto snapshotter = snapshotter::OverlaySnapshotter::Open({.root = dir.path() + "/root"});
  ASSERT_OK(snapshotter);
  const std::string socket = dir.path() + "/s.sock";
  {
    auto first = Server::Start({.address = socket, .snapshotter = snapshotter->get()});
    ASSERT_OK(first);
    // Leave the socket file behind as a killed server would.
    ASSERT_EQ(link(socket.c_str(), (socket + ".keep").c_str()), 0);
    (*first)->Shutdown(absl::ZeroDuration());
    ASSERT_EQ(rename((socket + ".keep").c_str(), socket.c_str()), 0);
  }
  auto second = Server::Start({.address = socket, .snapshotter = snapshotter->get()});
  EXPECT_OK(second);
}

}  // namespace
}  // namespace cpp_overlay::server
