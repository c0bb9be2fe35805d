// grpc.health.v1.Health on the daemon's socket: SERVING once started,
// NOT_SERVING while stopping and while the root is not writable; and the
// `health` and `info` subcommands against a real server.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/health_command.h"
#include "server/info_command.h"
#include "server/metrics.h"
#include "server/root_probe.h"
#include "server/server.h"
#include "snapshotter/overlay_snapshotter.h"
#include "tests/testing/mount_helper.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::server {
namespace {

namespace v1 = ::containerd::services::snapshots::v1;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Makes `dir` read-only by bind-mounting it on itself, until destroyed.
class ReadOnlyBind {
 public:
  explicit ReadOnlyBind(std::string dir) : dir_(std::move(dir)) {
    if (mount(dir_.c_str(), dir_.c_str(), nullptr, MS_BIND, nullptr) != 0)
      return;
    mounted_ = true;
    ok_ = mount(nullptr, dir_.c_str(), nullptr,
                MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) == 0;
  }
  ~ReadOnlyBind() { Undo(); }
  void Undo() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
    mounted_ = false;
  }
  bool ok() const { return ok_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  bool ok_ = false;
};

class HealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u)
        << "the snapshotter chowns and the probe test mounts: needs root";
    // The read-only binds vanish with the process, even when ctest kills
    // it. First: a namespace is per thread, and the probe's thread must
    // share the test's.
    ASSERT_NO_FATAL_FAILURE(cpp_overlay::testing::EnterPrivateMountNamespace());
    root_ = dir_.path() + "/root";
    auto snapshotter = snapshotter::OverlaySnapshotter::Open({.root = root_});
    ASSERT_OK(snapshotter);
    snapshotter_ = *std::move(snapshotter);
    socket_ = dir_.path() + "/run/snapshots.sock";
    probe_dir_ = dir_.path() + "/probe";
    ASSERT_EQ(mkdir(probe_dir_.c_str(), 0700), 0);
  }

  void StartServer(absl::Duration probe_interval = absl::ZeroDuration()) {
    Server::Options options;
    options.address = socket_;
    options.snapshotter = snapshotter_.get();
    options.metrics = &metrics_;
    options.probe_dir = probe_dir_;
    options.probe_interval = probe_interval;
    auto server = Server::Start(options);
    ASSERT_OK(server);
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel("unix:" + socket_,
                                   grpc::InsecureChannelCredentials());
    health_ = grpc::health::v1::Health::NewStub(channel_);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  // The status the health service reports for `service`, or the RPC error.
  std::string Check(const std::string& service = "") {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    grpc::Status status = health_->Check(&context, request, &response);
    if (!status.ok()) return "error " + std::to_string(status.error_code());
    return HealthCheckResponse::ServingStatus_Name(response.status());
  }

  // Polls Check until it reports `want` or 5 s pass.
  std::string WaitFor(const std::string& want) {
    std::string got;
    for (int i = 0; i < 100; ++i) {
      got = Check();
      if (got == want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return got;
  }

  grpc::Status Prepare(const std::string& key, const std::string& parent) {
    auto stub = v1::Snapshots::NewStub(channel_);
    grpc::ClientContext context;
    v1::PrepareSnapshotRequest request;
    request.set_key(key);
    request.set_parent(parent);
    v1::PrepareSnapshotResponse response;
    return stub->Prepare(&context, request, &response);
  }

  cpp_overlay::testing::TempDir dir_;
  std::string root_;
  std::string socket_;
  std::string probe_dir_;
  Metrics metrics_;
  std::unique_ptr<snapshotter::OverlaySnapshotter> snapshotter_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

TEST_F(HealthTest, ServesAfterStartForTheDaemonAndTheSnapshotsService) {
  StartServer();
  EXPECT_EQ(Check(""), "SERVING");
  EXPECT_EQ(Check(kSnapshotsServiceName), "SERVING");
  EXPECT_TRUE(server_->serving());
  EXPECT_THAT(metrics_.Render(), HasSubstr("\ncpp_overlay_serving 1\n"));
  // An unknown service name is NOT_FOUND, as gRPC's protocol says.
  EXPECT_EQ(Check("no.such.Service"), "error 5");
}

TEST_F(HealthTest, WatchSeesNotServingWhileStopping) {
  StartServer();
  grpc::ClientContext context;
  HealthCheckRequest request;
  auto watch = health_->Watch(&context, request);
  HealthCheckResponse response;
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  // A long grace: the stopping server keeps the open Watch call running, so
  // the watcher sees the change before the server is gone.
  std::thread stopper([this] { server_->Shutdown(absl::Seconds(10)); });
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(server_->serving());
  EXPECT_THAT(metrics_.Render(), HasSubstr("\ncpp_overlay_serving 0\n"));
  context.TryCancel();
  stopper.join();
  server_.reset();
  EXPECT_THAT(Check(), StartsWith("error"));
}

TEST_F(HealthTest, NotServingWhileTheRootIsNotWritable) {
  StartServer(absl::Milliseconds(100));
  ASSERT_EQ(Check(), "SERVING");
  {
    ReadOnlyBind read_only(probe_dir_);
    ASSERT_TRUE(read_only.ok()) << "cannot make " << probe_dir_ << " read-only";
    EXPECT_EQ(WaitFor("NOT_SERVING"), "NOT_SERVING");
    EXPECT_EQ(Check(kSnapshotsServiceName), "NOT_SERVING");
    EXPECT_THAT(metrics_.Render(),
                HasSubstr("\ncpp_overlay_root_writable 0\n"));
    // Calls are still answered: containerd decides what to do, not us.
    EXPECT_TRUE(Prepare("still-answered", "").ok());
  }
  EXPECT_EQ(WaitFor("SERVING"), "SERVING");
  EXPECT_THAT(metrics_.Render(), HasSubstr("\ncpp_overlay_root_writable 1\n"));
}

TEST_F(HealthTest, StartsNotServingWhenTheRootIsAlreadyReadOnly) {
  ReadOnlyBind read_only(probe_dir_);
  ASSERT_TRUE(read_only.ok());
  StartServer();
  EXPECT_EQ(Check(), "NOT_SERVING");
}

TEST_F(HealthTest, ProbeOnceFailsOnAReadOnlyDirectoryNamingTheFile) {
  EXPECT_OK(RootProbe::ProbeOnce(probe_dir_));
  ReadOnlyBind read_only(probe_dir_);
  ASSERT_TRUE(read_only.ok());
  absl::Status status = RootProbe::ProbeOnce(probe_dir_);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(probe_dir_ + "/.health-probe"));
}

TEST_F(HealthTest, HealthCommandExitsZeroWhenServing) {
  StartServer();
  std::ostringstream out;
  EXPECT_EQ(RunHealth({.address = socket_}, out), 0);
  EXPECT_EQ(out.str(), "SERVING: the daemon at " + socket_ + " is serving\n");
}

TEST_F(HealthTest, HealthCommandExitsOneWhenNotServing) {
  StartServer(absl::Milliseconds(100));
  ReadOnlyBind read_only(probe_dir_);
  ASSERT_TRUE(read_only.ok());
  ASSERT_EQ(WaitFor("NOT_SERVING"), "NOT_SERVING");
  std::ostringstream out;
  EXPECT_EQ(RunHealth({.address = socket_}, out), 1);
  EXPECT_THAT(out.str(), StartsWith("NOT_SERVING: the daemon at " + socket_));
}

TEST_F(HealthTest, HealthCommandExitsOneWhenNothingListens) {
  std::ostringstream out;
  EXPECT_EQ(RunHealth({.address = socket_, .timeout = absl::Seconds(2)}, out),
            1);
  EXPECT_THAT(
      out.str(),
      StartsWith("UNREACHABLE: no answer from the daemon at " + socket_));
  EXPECT_THAT(out.str(), HasSubstr("is the daemon running"));
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
}

TEST_F(HealthTest, InfoCommandCountsSnapshotsByKindAndUsage) {
  StartServer();
  auto stub = v1::Snapshots::NewStub(channel_);
  ASSERT_TRUE(Prepare("layer-active", "").ok());
  {
    grpc::ClientContext context;
    v1::CommitSnapshotRequest request;
    request.set_key("layer-active");
    request.set_name("layer");
    google::protobuf::Empty response;
    ASSERT_TRUE(stub->Commit(&context, request, &response).ok());
  }
  v1::PrepareSnapshotResponse prepared;
  {
    grpc::ClientContext context;
    v1::PrepareSnapshotRequest request;
    request.set_key("container");
    request.set_parent("layer");
    ASSERT_TRUE(stub->Prepare(&context, request, &prepared).ok());
  }
  {
    grpc::ClientContext context;
    v1::ViewSnapshotRequest request;
    request.set_key("view");
    request.set_parent("layer");
    v1::ViewSnapshotResponse response;
    ASSERT_TRUE(stub->View(&context, request, &response).ok());
  }

  absl::StatusOr<SnapshotCounts> counts =
      QuerySnapshots(socket_, absl::Seconds(10));
  ASSERT_OK(counts);
  EXPECT_EQ(counts->committed, 1);
  EXPECT_EQ(counts->active, 1);
  EXPECT_EQ(counts->views, 1);
  EXPECT_GT(counts->active_usage.inodes, 0);  // the active layer's own root

  std::ostringstream out;
  EXPECT_EQ(RunInfo({.address = socket_, .root = root_}, out), 0);
  EXPECT_THAT(out.str(), HasSubstr("root:        " + root_ + "\n"));
  EXPECT_THAT(out.str(), HasSubstr("address:     " + socket_ + " (SERVING)\n"));
  EXPECT_THAT(out.str(),
              HasSubstr("snapshots:   3 (committed 1, active 1, view 1)\n"));
  EXPECT_THAT(out.str(), HasSubstr("\ndisk used:   "));
  EXPECT_THAT(out.str(), HasSubstr("\ndatabase:    " + root_ + "/metadata: "));
  EXPECT_THAT(out.str(), HasSubstr("\nfilesystem:  "));
}

TEST_F(HealthTest, InfoCommandWithoutADaemonPrintsWhatItCanAndExitsOne) {
  std::ostringstream out;
  EXPECT_EQ(
      RunInfo({.address = socket_, .root = root_, .timeout = absl::Seconds(2)},
              out),
      1);
  EXPECT_THAT(out.str(), HasSubstr("(not answering)"));
  EXPECT_THAT(out.str(),
              HasSubstr("snapshots:   unknown: cannot ask the daemon"));
  EXPECT_THAT(out.str(), HasSubstr("\ndatabase:    " + root_ + "/metadata: "));
}

}  // namespace
}  // namespace cpp_overlay::server
