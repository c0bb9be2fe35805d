// Prometheus metrics in the text exposition format (version 0.0.4).
//
// RPC metrics use the names and labels of go-grpc-prometheus, so existing
// gRPC dashboards work:
//   grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}
//   grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method}
//   (histogram)
// The snapshotter's own metrics start with cpp_overlay_ (see Render), and
// process_* are the standard process collector's.
//
// Thread-safe: ObserveRpc is lock-free and called from every handler thread;
// Render may run concurrently with it.
#ifndef CPP_OVERLAY_SERVER_METRICS_H_
#define CPP_OVERLAY_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"
#include "snapshotter/overlay_snapshotter.h"

namespace cpp_overlay::server {

class Metrics {
 public:
  // The snapshotter's numbers, read on each scrape; empty means none.
  using StatsSource =
      std::function<absl::StatusOr<snapshotter::SnapshotterStats>()>;

  // The Snapshots service's methods, in the order the label values appear.
  static constexpr std::array<const char*, 10> kMethods = {
      "Prepare", "View",   "Mounts", "Commit", "Remove",
      "Stat",    "Update", "List",   "Usage",  "Cleanup"};
  // Upper bounds of the latency histogram's buckets, in seconds (+Inf last).
  static constexpr std::array<double, 14> kLatencyBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,    0.25,  0.5,    1,     2.5,  5,     10};

  explicit Metrics(StatsSource stats_source = nullptr);

  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Counts one finished call of `method` (one of kMethods; others are
  // ignored) with its final code and how long it took.
  void ObserveRpc(absl::string_view method, grpc::StatusCode code,
                  absl::Duration latency);

  // What the health service currently reports, and whether the last root
  // probe succeeded.
  void SetServing(bool serving);
  void SetRootWritable(bool writable);

  // Every metric, in the text format, ending with a newline. Reading the
  // snapshotter's stats may fail; those families are then left out and
  // cpp_overlay_stats_errors_total counts the failure.
  std::string Render();

 private:
  static constexpr int kCodes = 17;  // grpc::StatusCode 0..16
  static constexpr size_t kBuckets = kLatencyBuckets.size() + 1;

  struct MethodMetrics {
    std::array<std::atomic<uint64_t>, kCodes> handled{};
    std::array<std::atomic<uint64_t>, kBuckets> buckets{};  // not cumulative
    std::atomic<uint64_t> latency_nanos{0};
    std::atomic<uint64_t> count{0};
  };

  void RenderRpc(std::string& out) const;
  void RenderSnapshotter(std::string& out);

  const StatsSource stats_source_;
  std::array<MethodMetrics, kMethods.size()> methods_;
  std::atomic<int> serving_{0};
  std::atomic<int> root_writable_{1};
  std::atomic<uint64_t> stats_errors_{0};
};

// The process collector's families from /proc/self: process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds.
std::string RenderProcessMetrics();

}  // namespace cpp_overlay::server

#endif  // CPP_OVERLAY_SERVER_METRICS_H_
