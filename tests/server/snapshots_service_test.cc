// Every RPC through a real gRPC channel on a unix socket, asserting codes.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/time/clock.h"
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
    client_ = std::make_unique<testing::SnapshotsClient>(
        testing::SnapshotsClient::Dial(socket_, kMaxMessageBytes));
  }

  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  void Layer(const std::string& name, const std::string& parent) {
    ASSERT_TRUE(client_->Prepare(name + "-a", parent).ok());
    ASSERT_TRUE(client_->Commit(name, name + "-a").ok());
  }

  testing::TempDir dir_;
  std::string socket_;
  std::unique_ptr<snapshotter::OverlaySnapshotter> snapshotter_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<testing::SnapshotsClient> client_;
};

TEST_F(SnapshotsServiceTest, SocketIsMode0660) {
  struct stat st;
  ASSERT_EQ(stat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST_F(SnapshotsServiceTest, PrepareReturnsBindThenOverlayMounts) {
  v1::PrepareSnapshotResponse response;
  ASSERT_TRUE(client_->Prepare("base-a", "", {}, &response).ok());
  ASSERT_THAT(response.mounts(), SizeIs(1));
  EXPECT_EQ(response.mounts(0).type(), "bind");
  EXPECT_THAT(response.mounts(0).options(), ElementsAre("rw", "rbind"));
  EXPECT_EQ(response.mounts(0).target(), "");
  ASSERT_TRUE(client_->Commit("base", "base-a").ok());
  ASSERT_TRUE(client_->Prepare("child", "base", {}, &response).ok());
  ASSERT_THAT(response.mounts(), SizeIs(1));
  EXPECT_EQ(response.mounts(0).type(), "overlay");
  EXPECT_EQ(response.mounts(0).source(), "overlay");
  v1::MountsResponse mounts;
  ASSERT_TRUE(client_->Mounts("child", &mounts).ok());
  EXPECT_EQ(mounts.mounts(0).SerializeAsString(), response.mounts(0).SerializeAsString());
}

TEST_F(SnapshotsServiceTest, ErrorsMapToContainerdsCodes) {
  Layer("base", "");
  ASSERT_TRUE(client_->Prepare("active", "").ok());
  ASSERT_TRUE(client_->View("view", "base").ok());
  EXPECT_EQ(client_->Prepare("x", "missing").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(client_->Prepare("active", "").error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(client_->Prepare("y", "active").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(client_->Prepare("", "").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(client_->Commit("base", "active").error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(client_->Commit("n", "view").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(client_->Commit("n", "missing").error_code(), grpc::StatusCode::NOT_FOUND);
  v1::MountsResponse mounts;
  EXPECT_EQ(client_->Mounts("base", &mounts).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(client_->Mounts("missing", &mounts).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(client_->Remove("base").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(client_->Remove("missing").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(client_->Stat("missing").error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::Status s = client_->Stat("missing");
  EXPECT_THAT(s.error_message(), HasSubstr("not found"));
  EXPECT_EQ(client_->Prepare("big", "", {{"k", std::string(5000, 'v')}}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(SnapshotsServiceTest, StatReturnsInfoWithTimesAndLabels) {
  Layer("base", "");
  ASSERT_TRUE(client_->Prepare("k", "base", {{"containerd.io/snapshot/x", "1"}}).ok());
  v1::Info info;
  ASSERT_TRUE(client_->Stat("k", &info).ok());
  EXPECT_EQ(info.name(), "k");
  EXPECT_EQ(info.parent(), "base");
  EXPECT_EQ(info.kind(), v1::ACTIVE);
  EXPECT_GT(info.created_at().seconds(), 1700000000);
  EXPECT_EQ(info.labels().at("containerd.io/snapshot/x"), "1");
  ASSERT_TRUE(client_->Stat("base", &info).ok());
  EXPECT_EQ(info.kind(), v1::COMMITTED);
}

TEST_F(SnapshotsServiceTest, UpdateHonoursFieldMask) {
  ASSERT_TRUE(client_->Prepare("k", "", {{"a", "1"}, {"b", "2"}}).ok());
  v1::Info wanted;
  wanted.set_name("k");
  (*wanted.mutable_labels())["a"] = "9";
  v1::Info updated;
  ASSERT_TRUE(client_->Update(wanted, {"labels.a", "labels.b"}, &updated).ok());
  EXPECT_EQ(updated.labels().size(), 1u);
  EXPECT_EQ(updated.labels().at("a"), "9");
  EXPECT_EQ(updated.kind(), v1::ACTIVE);

  EXPECT_EQ(client_->Update(wanted, {"labels.a", "labels.b", "parent"}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(SnapshotsServiceTest, ListStreamsInBatchesAndFilters) {
  const int kCount = SnapshotsService::kListBatchSize * 2 + 50;
  for (int i = 0; i < kCount; ++i) ASSERT_TRUE(client_->Prepare("k" + std::to_string(i), "").ok());
  ASSERT_TRUE(client_->View("v", "").ok());
  std::vector<v1::Info> infos;
  int batches = 0;
  ASSERT_TRUE(client_->List(&infos, {}, &batches).ok());
  EXPECT_EQ(infos.size(), static_cast<size_t>(kCount + 1));
  EXPECT_EQ(batches, 3);
  infos.clear();
  ASSERT_TRUE(client_->List(&infos, {"kind==view", "name==k7"}).ok());
  std::vector<std::string> names;
  for (const v1::Info& info : infos) names.push_back(info.name());
  EXPECT_THAT(names, ElementsAre("k7", "v"));
  EXPECT_EQ(client_->List(&infos, {"name~=\"[\""}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(SnapshotsServiceTest, UsageRemoveAndCleanup) {
  ASSERT_TRUE(client_->Prepare("k", "").ok());
  v1::UsageResponse usage;
  ASSERT_TRUE(client_->Usage("k", &usage).ok());
  EXPECT_EQ(usage.inodes(), 1);
  EXPECT_GT(usage.size(), 0);
  ASSERT_TRUE(client_->Remove("k").ok());
  EXPECT_EQ(client_->Stat("k").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(client_->Cleanup().ok());
}

TEST_F(SnapshotsServiceTest, CommitWithRebaseParentIsUnimplemented) {
  Layer("base", "");
  ASSERT_TRUE(client_->Prepare("k", "").ok());
  EXPECT_EQ(client_->Commit("n", "k", {}, "base").error_code(),
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

// A socket bound at `path` (not accepting), closed when destroyed.
class BoundSocket {
 public:
  BoundSocket(const std::string& path, int type) {
    fd_ = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ok_ = fd_ >= 0 &&
          bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
          (type != SOCK_STREAM || listen(fd_, 0) == 0);
  }
  ~BoundSocket() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return ok_; }

 private:
  int fd_ = -1;
  bool ok_ = false;
};

class ServerSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened =
        snapshotter::OverlaySnapshotter::Open({.root = dir_.path() + "/root"});
    ASSERT_OK(opened);
    snapshotter_ = *std::move(opened);
  }
  absl::StatusOr<std::unique_ptr<Server>> Start() {
    return Server::Start(
        {.address = socket_, .snapshotter = snapshotter_.get()});
  }

  testing::TempDir dir_;
  std::unique_ptr<snapshotter::OverlaySnapshotter> snapshotter_;
  const std::string socket_ = dir_.path() + "/s.sock";
};

// A server whose backlog is full (it stopped accepting) is still a server:
// refused quickly, never replaced, and start-up does not wait on it.
TEST_F(ServerSocketTest, AServerThatDoesNotAcceptIsNotReplacedNorWaitedFor) {
  BoundSocket listening(socket_, SOCK_STREAM);
  ASSERT_TRUE(listening.ok()) << std::strerror(errno);
  std::vector<int> queued;
  absl::Cleanup close_queued = [&] {
    for (int fd : queued) close(fd);
  };
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_.c_str(), sizeof(addr.sun_path) - 1);
  for (int i = 0; i < 16; ++i) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    queued.push_back(fd);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ASSERT_EQ(errno, EAGAIN) << std::strerror(errno);
      break;
    }
  }
  const absl::Time start = absl::Now();
  EXPECT_THAT(Start(), testing::StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  struct stat st;
  EXPECT_EQ(lstat(socket_.c_str(), &st), 0);
}

// Connecting fails with something other than "refused" (here a datagram
// socket: EPROTOTYPE; for another user's 0600 socket, EACCES): nobody can
// say the socket is stale, so it stays.
TEST_F(ServerSocketTest, ASocketThatCannotBeProbedIsNotReplaced) {
  BoundSocket datagram(socket_, SOCK_DGRAM);
  ASSERT_TRUE(datagram.ok()) << std::strerror(errno);
  auto started = Start();
  EXPECT_THAT(started,
              testing::StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(started.status().message()),
              HasSubstr("cannot tell"));
  struct stat st;
  EXPECT_EQ(lstat(socket_.c_str(), &st), 0);
}

TEST_F(ServerSocketTest, AnAddressEndingInASlashIsRefusedAndNothingIsMade) {
  const std::string address = dir_.path() + "/run/s.sock/";
  EXPECT_THAT(
      Server::Start({.address = address, .snapshotter = snapshotter_.get()}),
      testing::StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/run"));
}

}  // namespace
}  // namespace cpp_overlay::server
