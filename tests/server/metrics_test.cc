// Prometheus metrics: the counters and histograms move with RPCs, the
// snapshotter's numbers follow its state, and a real scrape over HTTP passes
// `promtool check metrics` (Debian's prometheus package).
#include "server/metrics.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "gmock/gmock.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/metrics_http_server.h"
#include "server/server.h"
#include "snapshotter/overlay_snapshotter.h"
#include "tests/testing/snapshots_client.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::server {
namespace {

namespace v1 = ::containerd::services::snapshots::v1;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kService[] = "containerd.services.snapshots.v1.Snapshots";

// Every sample of a scrape: "name{labels}" -> value.
std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    out[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return out;
}

std::string Handled(const std::string& method, const std::string& code) {
  return "grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\"" +
         std::string(kService) + "\",grpc_method=\"" + method +
         "\",grpc_code=\"" + code + "\"}";
}

std::string HistogramCount(const std::string& method) {
  return "grpc_server_handling_seconds_count{grpc_type=\"unary\",grpc_service="
         "\"" +
         std::string(kService) + "\",grpc_method=\"" + method + "\"}";
}

// GET `path` from 127.0.0.1:`port` with HTTP/1.0; the whole response.
std::string HttpGet(uint16_t port, const std::string& path,
                    const std::string& method = "GET") {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "connect failed";
  }
  std::string request =
      method + " " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  (void)!write(fd, request.data(), request.size());
  std::string response;
  char buffer[65536];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) response.append(buffer, n);
  close(fd);
  return response;
}

// "200 OK" from "HTTP/1.1 200 OK\r\n...".
std::string StatusLine(const std::string& response) {
  size_t space = response.find(' ');
  size_t end = response.find("\r\n");
  if (space == std::string::npos || end == std::string::npos || space > end)
    return response;
  return response.substr(space + 1, end - space - 1);
}

std::string Body(const std::string& response) {
  size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

TEST(MetricsTest, ObserveRpcCountsByCodeAndFillsTheHistogram) {
  Metrics metrics;
  metrics.ObserveRpc("Stat", grpc::StatusCode::OK, absl::Microseconds(200));
  metrics.ObserveRpc("Stat", grpc::StatusCode::NOT_FOUND,
                     absl::Milliseconds(3));
  metrics.ObserveRpc("Stat", grpc::StatusCode::NOT_FOUND, absl::Seconds(20));
  metrics.ObserveRpc("NotAMethod", grpc::StatusCode::OK, absl::Seconds(1));
  std::map<std::string, double> s = Samples(metrics.Render());
  EXPECT_EQ(s[Handled("Stat", "OK")], 1);
  EXPECT_EQ(s[Handled("Stat", "NotFound")], 2);
  EXPECT_EQ(s[Handled("Prepare", "OK")], 0);  // every method has a series
  const std::string labels = "grpc_type=\"unary\",grpc_service=\"" +
                             std::string(kService) + "\",grpc_method=\"Stat\"";
  EXPECT_EQ(
      s["grpc_server_handling_seconds_bucket{" + labels + ",le=\"0.0005\"}"],
      1);
  EXPECT_EQ(
      s["grpc_server_handling_seconds_bucket{" + labels + ",le=\"0.005\"}"], 2);
  EXPECT_EQ(s["grpc_server_handling_seconds_bucket{" + labels + ",le=\"10\"}"],
            2);
  EXPECT_EQ(
      s["grpc_server_handling_seconds_bucket{" + labels + ",le=\"+Inf\"}"], 3);
  EXPECT_EQ(s[HistogramCount("Stat")], 3);
  EXPECT_NEAR(s["grpc_server_handling_seconds_sum{" + labels + "}"], 20.0032,
              1e-6);
  EXPECT_EQ(s.count("process_open_fds"), 1u);
  EXPECT_GT(s["process_resident_memory_bytes"], 0);
}

TEST(MetricsTest, FailingStatsSourceLeavesItsFamiliesOutAndIsCounted) {
  Metrics metrics([]() -> absl::StatusOr<snapshotter::SnapshotterStats> {
    return absl::UnavailableError("no");
  });
  std::string text = metrics.Render();
  EXPECT_THAT(text, Not(HasSubstr("cpp_overlay_snapshots")));
  EXPECT_THAT(text, HasSubstr("\ncpp_overlay_stats_errors_total 1\n"));
}

class MetricsScrapeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "the snapshotter chowns and needs root";
    auto snapshotter =
        snapshotter::OverlaySnapshotter::Open({.root = dir_.path() + "/root"});
    ASSERT_OK(snapshotter);
    snapshotter_ = *std::move(snapshotter);
    snapshotter::OverlaySnapshotter* overlay = snapshotter_.get();
    metrics_ =
        std::make_unique<Metrics>([overlay] { return overlay->Stats(); });
    auto http = MetricsHttpServer::Start("127.0.0.1:0",
                                         [this] { return metrics_->Render(); });
    ASSERT_OK(http);
    http_ = *std::move(http);
    socket_ = dir_.path() + "/run/snapshots.sock";
    auto server = Server::Start({.address = socket_,
                                 .snapshotter = overlay,
                                 .metrics = metrics_.get()});
    ASSERT_OK(server);
    server_ = *std::move(server);
    client_ = std::make_unique<cpp_overlay::testing::SnapshotsClient>(
        cpp_overlay::testing::SnapshotsClient::Dial(socket_, kMaxMessageBytes));
  }

  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
    http_.reset();
  }

  std::string Scrape() {
    std::string response = HttpGet(http_->port(), "/metrics");
    EXPECT_EQ(StatusLine(response), "200 OK") << response;
    EXPECT_THAT(response, HasSubstr("text/plain; version=0.0.4"));
    return Body(response);
  }

  // Runs `promtool check metrics` on `text`; its exit status and output.
  std::pair<int, std::string> Promtool(const std::string& text) {
    const std::string in = dir_.path() + "/scrape.txt";
    const std::string out = dir_.path() + "/promtool.txt";
    std::ofstream(in) << text;
    int rc = std::system(
        ("promtool check metrics < " + in + " > " + out + " 2>&1").c_str());
    std::ifstream result(out);
    std::stringstream output;
    output << result.rdbuf();
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, output.str()};
  }

  cpp_overlay::testing::TempDir dir_;
  std::string socket_;
  std::unique_ptr<snapshotter::OverlaySnapshotter> snapshotter_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<MetricsHttpServer> http_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<cpp_overlay::testing::SnapshotsClient> client_;
};

TEST_F(MetricsScrapeTest, ScrapePassesPromtoolAndCountersMoveAfterRpcs) {
  ASSERT_EQ(std::system("command -v promtool > /dev/null"), 0)
      << "promtool is missing: apt-get install prometheus (scripts/setup.sh "
         "does)";
  const std::string before = Scrape();
  auto [rc_before, out_before] = Promtool(before);
  EXPECT_EQ(rc_before, 0) << out_before << "\n" << before;
  std::map<std::string, double> b = Samples(before);
  EXPECT_EQ(b[Handled("Prepare", "OK")], 0);
  EXPECT_EQ(b["cpp_overlay_snapshots{kind=\"committed\"}"], 0);
  EXPECT_EQ(b["cpp_overlay_serving"], 1);

  ASSERT_TRUE(client_->Prepare("a", "").ok());
  ASSERT_TRUE(client_->Commit("layer", "a").ok());
  ASSERT_TRUE(client_->Prepare("b", "layer").ok());
  ASSERT_EQ(client_->Prepare("b", "layer").error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  ASSERT_EQ(client_->Stat("missing").error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(client_->Prepare("gone", "").ok());
  ASSERT_TRUE(client_->Remove("gone").ok());

  const std::string after = Scrape();
  auto [rc_after, out_after] = Promtool(after);
  EXPECT_EQ(rc_after, 0) << out_after << "\n" << after;
  std::map<std::string, double> a = Samples(after);
  EXPECT_EQ(a[Handled("Prepare", "OK")], 3);
  EXPECT_EQ(a[Handled("Prepare", "AlreadyExists")], 1);
  EXPECT_EQ(a[Handled("Commit", "OK")], 1);
  EXPECT_EQ(a[Handled("Stat", "NotFound")], 1);
  EXPECT_EQ(a[Handled("Remove", "OK")], 1);
  EXPECT_EQ(a[HistogramCount("Prepare")], 4);
  EXPECT_EQ(a["cpp_overlay_snapshots{kind=\"committed\"}"], 1);
  EXPECT_EQ(a["cpp_overlay_snapshots{kind=\"active\"}"], 1);
  EXPECT_EQ(a["cpp_overlay_snapshots{kind=\"view\"}"], 0);
  EXPECT_GT(a["cpp_overlay_committed_inodes"], 0);  // the layer's own root
  // Each change is one RocksDB write; each write syncs the WAL.
  EXPECT_GE(a["cpp_overlay_rocksdb_write_seconds_count"], 4);
  EXPECT_GT(a["cpp_overlay_rocksdb_write_seconds_sum"], 0);
  EXPECT_GT(a["cpp_overlay_rocksdb_wal_sync_seconds_count"], 0);
  EXPECT_EQ(a.count("cpp_overlay_rocksdb_stall_seconds_total"), 1u);
  EXPECT_EQ(a.count("cpp_overlay_reclaim_backlog_directories"), 1u);
  EXPECT_EQ(a["cpp_overlay_space_reserve_held"], 1);  // plenty of space here
  EXPECT_EQ(a.count("cpp_overlay_reclaim_backlog_bytes"), 1u);
  EXPECT_GT(a["process_open_fds"], 0);
}

TEST_F(MetricsScrapeTest, OtherPathsAre404AndOtherMethods405) {
  EXPECT_EQ(StatusLine(HttpGet(http_->port(), "/")), "404 Not Found");
  EXPECT_EQ(StatusLine(HttpGet(http_->port(), "/metrics", "POST")),
            "405 Method Not Allowed");
  EXPECT_EQ(StatusLine(HttpGet(http_->port(), "/metrics", "HEAD")), "200 OK");
}

TEST(MetricsHttpServerTest, RefusesAPortInUse) {
  auto first =
      MetricsHttpServer::Start("127.0.0.1:0", [] { return std::string(); });
  ASSERT_OK(first);
  auto second =
      MetricsHttpServer::Start("127.0.0.1:" + std::to_string((*first)->port()),
                               [] { return std::string(); });
  EXPECT_THAT(second,
              cpp_overlay::testing::StatusIs(absl::StatusCode::kUnavailable));
}

// Metrics must not keep the daemon from serving snapshots: a port taken at
// start is tried again until it is free.
TEST(RetryingMetricsHttpServerTest, ListensOnceThePortIsFree) {
  auto holder =
      MetricsHttpServer::Start("127.0.0.1:0", [] { return std::string("held"); });
  ASSERT_OK(holder);
  const uint16_t port = (*holder)->port();
  auto retrying = RetryingMetricsHttpServer::Start(
      "127.0.0.1:" + std::to_string(port), [] { return std::string("ours 1\n"); },
      absl::Milliseconds(50));
  ASSERT_OK(retrying);
  EXPECT_FALSE((*retrying)->listening());
  holder->reset();
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!(*retrying)->listening() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE((*retrying)->listening());
  EXPECT_EQ(Body(HttpGet(port, "/metrics")), "ours 1\n");
}

TEST(RetryingMetricsHttpServerTest, ABadAddressIsNotRetried) {
  EXPECT_THAT(RetryingMetricsHttpServer::Start(
                  "metrics.example:9091", [] { return std::string(); }, absl::Seconds(1)),
              cpp_overlay::testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

// select() cannot watch a descriptor past 1023; the server must not use it.
TEST(MetricsHttpServerTest, ServesWhenTheProcessHasManyDescriptorsOpen) {
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  const rlimit saved = limit;
  limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 4096);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
  ASSERT_GE(limit.rlim_cur, 1200u) << "needs 1,200 descriptors";
  std::vector<int> held;
  while (held.size() < 1100) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    held.push_back(fd);
  }
  auto server = MetricsHttpServer::Start("127.0.0.1:0", [] { return std::string("x 1\n"); });
  ASSERT_OK(server);
  // Its connections get descriptors past 1,100.
  EXPECT_EQ(StatusLine(HttpGet((*server)->port(), "/metrics")), "200 OK");
  server->reset();
  for (int fd : held) close(fd);
  setrlimit(RLIMIT_NOFILE, &saved);
}

}  // namespace
}  // namespace cpp_overlay::server
