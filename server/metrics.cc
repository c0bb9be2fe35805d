#include "server/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/version.h"
#include "spdlog/spdlog.h"

namespace cpp_overlay::server {
namespace {

constexpr char kSnapshotsService[] =
    "containerd.services.snapshots.v1.Snapshots";

// gRPC code names as Go spells them, which go-grpc-prometheus uses.
constexpr const char* kCodeNames[] = {"OK",
                                      "Canceled",
                                      "Unknown",
                                      "InvalidArgument",
                                      "DeadlineExceeded",
                                      "NotFound",
                                      "AlreadyExists",
                                      "PermissionDenied",
                                      "ResourceExhausted",
                                      "FailedPrecondition",
                                      "Aborted",
                                      "OutOfRange",
                                      "Unimplemented",
                                      "Internal",
                                      "Unavailable",
                                      "DataLoss",
                                      "Unauthenticated"};

// Whole numbers exactly (byte counts exceed 10 digits), others to 10 digits.
std::string Number(double value) {
  char text[64];
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    std::snprintf(text, sizeof(text), "%.0f", value);
  } else {
    std::snprintf(text, sizeof(text), "%.10g", value);
  }
  return text;
}

// go-grpc-prometheus's labels of a Snapshots method.
std::string MethodLabels(absl::string_view method) {
  return absl::StrCat("grpc_type=\"",
                      method == "List" ? "server_stream" : "unary",
                      "\",grpc_service=\"", kSnapshotsService,
                      "\",grpc_method=\"", method, "\"");
}

void Family(std::string& out, absl::string_view name, absl::string_view type,
            absl::string_view help) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ",
                  type, "\n");
}

void Sample(std::string& out, absl::string_view name, absl::string_view labels,
            absl::string_view value) {
  if (labels.empty()) {
    absl::StrAppend(&out, name, " ", value, "\n");
  } else {
    absl::StrAppend(&out, name, "{", labels, "} ", value, "\n");
  }
}

void Gauge(std::string& out, absl::string_view name, absl::string_view help,
           double value) {
  Family(out, name, "gauge", help);
  Sample(out, name, "", Number(value));
}

void Counter(std::string& out, absl::string_view name, absl::string_view help,
             double value) {
  Family(out, name, "counter", help);
  Sample(out, name, "", Number(value));
}

void Summary(std::string& out, absl::string_view name, absl::string_view help,
             const metadata::StoreStats::Timer& timer) {
  Family(out, name, "summary", help);
  constexpr double kMicros = 1e-6;
  Sample(out, name, "quantile=\"0.5\"", Number(timer.p50_micros * kMicros));
  Sample(out, name, "quantile=\"0.95\"", Number(timer.p95_micros * kMicros));
  Sample(out, name, "quantile=\"0.99\"", Number(timer.p99_micros * kMicros));
  Sample(out, absl::StrCat(name, "_sum"), "",
         Number(timer.sum_micros * kMicros));
  Sample(out, absl::StrCat(name, "_count"), "",
         Number(static_cast<double>(timer.count)));
}

// The whole text of a small /proc file; "" when unreadable.
std::string ReadProcFile(const char* path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

Metrics::Metrics(StatsSource stats_source)
    : stats_source_(std::move(stats_source)) {}

void Metrics::ObserveRpc(absl::string_view method, grpc::StatusCode code,
                         absl::Duration latency) {
  size_t index = 0;
  while (index < kMethods.size() && method != kMethods[index]) ++index;
  if (index == kMethods.size()) return;
  MethodMetrics& m = methods_[index];
  const int code_index = static_cast<int>(code);
  if (code_index >= 0 && code_index < kCodes) {
    m.handled[code_index].fetch_add(1, std::memory_order_relaxed);
  }
  const double seconds = absl::ToDoubleSeconds(latency);
  size_t bucket = 0;
  while (bucket < kLatencyBuckets.size() && seconds > kLatencyBuckets[bucket])
    ++bucket;
  m.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  m.latency_nanos.fetch_add(
      static_cast<uint64_t>(absl::ToInt64Nanoseconds(latency)),
      std::memory_order_relaxed);
  m.count.fetch_add(1, std::memory_order_relaxed);
}

void Metrics::SetServing(bool serving) { serving_.store(serving ? 1 : 0); }

void Metrics::SetRootWritable(bool writable) {
  root_writable_.store(writable ? 1 : 0);
}

void Metrics::RenderRpc(std::string& out) const {
  Family(out, "grpc_server_handled_total", "counter",
         "Snapshots RPCs completed on the server, by method and gRPC code.");
  for (size_t i = 0; i < kMethods.size(); ++i) {
    const std::string labels = MethodLabels(kMethods[i]);
    for (int code = 0; code < kCodes; ++code) {
      const uint64_t n =
          methods_[i].handled[code].load(std::memory_order_relaxed);
      // OK is always there, so every method has a series from the start.
      if (n == 0 && code != 0) continue;
      Sample(out, "grpc_server_handled_total",
             absl::StrCat(labels, ",grpc_code=\"", kCodeNames[code], "\""),
             absl::StrCat(n));
    }
  }
  Family(out, "grpc_server_handling_seconds", "histogram",
         "Time from a Snapshots RPC's start to its status, by method.");
  for (size_t i = 0; i < kMethods.size(); ++i) {
    const std::string labels = MethodLabels(kMethods[i]);
    // Read the total first: concurrent observations can only make the
    // buckets read later larger, never the +Inf bucket smaller than _count.
    const uint64_t count = methods_[i].count.load(std::memory_order_relaxed);
    const uint64_t nanos =
        methods_[i].latency_nanos.load(std::memory_order_relaxed);
    uint64_t cumulative = 0;
    for (size_t b = 0; b < kLatencyBuckets.size(); ++b) {
      cumulative += methods_[i].buckets[b].load(std::memory_order_relaxed);
      Sample(out, "grpc_server_handling_seconds_bucket",
             absl::StrCat(labels, ",le=\"", Number(kLatencyBuckets[b]), "\""),
             absl::StrCat(std::min(cumulative, count)));
    }
    Sample(out, "grpc_server_handling_seconds_bucket",
           absl::StrCat(labels, ",le=\"+Inf\""), absl::StrCat(count));
    Sample(out, "grpc_server_handling_seconds_sum", labels,
           Number(nanos * 1e-9));
    Sample(out, "grpc_server_handling_seconds_count", labels,
           absl::StrCat(count));
  }
}

void Metrics::RenderSnapshotter(std::string& out) {
  if (!stats_source_) return;
  absl::StatusOr<snapshotter::SnapshotterStats> stats = stats_source_();
  if (!stats.ok()) {
    stats_errors_.fetch_add(1);
    spdlog::warn("metrics: cannot read snapshotter statistics: {}",
                 stats.status().ToString());
    return;
  }
  const metadata::StoreStats& store = stats->store;
  Family(out, "cpp_overlay_snapshots", "gauge",
         "Snapshots in the metadata, by kind.");
  Sample(out, "cpp_overlay_snapshots", "kind=\"active\"",
         absl::StrCat(store.active));
  Sample(out, "cpp_overlay_snapshots", "kind=\"view\"",
         absl::StrCat(store.views));
  Sample(out, "cpp_overlay_snapshots", "kind=\"committed\"",
         absl::StrCat(store.committed));
  Gauge(out, "cpp_overlay_committed_bytes",
        "Bytes in committed layers, as recorded at commit.",
        static_cast<double>(store.committed_usage.size));
  Gauge(out, "cpp_overlay_committed_inodes",
        "Inodes in committed layers, as recorded at commit.",
        static_cast<double>(store.committed_usage.inodes));
  Gauge(out, "cpp_overlay_reclaim_backlog_bytes",
        "Bytes in snapshot directories waiting to be deleted (measured at most once a minute).",
        static_cast<double>(stats->reclaim_backlog_bytes));
  Gauge(out, "cpp_overlay_reclaim_backlog_directories",
        "Snapshot directories waiting to be deleted.",
        static_cast<double>(stats->reclaim_backlog_directories));
  Summary(
      out, "cpp_overlay_rocksdb_write_seconds",
      "Latency of metadata database writes (RocksDB rocksdb.db.write.micros).",
      store.write);
  Summary(out, "cpp_overlay_rocksdb_wal_sync_seconds",
          "Latency of metadata write-ahead-log syncs (RocksDB "
          "rocksdb.wal.file.sync.micros).",
          store.wal_sync);
  Counter(out, "cpp_overlay_rocksdb_stall_seconds_total",
          "Time metadata writes spent in RocksDB write stalls.",
          static_cast<double>(store.stall_micros) * 1e-6);
  Gauge(out, "cpp_overlay_rocksdb_sst_bytes",
        "Size of the metadata database's SST files.",
        static_cast<double>(store.sst_bytes));
  Gauge(out, "cpp_overlay_space_reserve_held",
        "1 while the space reserve for metadata writes on a full disk is held; "
        "0 when the disk was too full (then only Remove is taken).",
        store.space_reserve_held ? 1 : 0);
}

std::string Metrics::Render() {
  std::string out;
  Family(out, "cpp_overlay_build_info", "gauge",
         "Always 1; the version is a label.");
  Sample(out, "cpp_overlay_build_info",
         absl::StrCat("version=\"", Version(), "\""), "1");
  Gauge(out, "cpp_overlay_serving",
        "1 when the health service reports SERVING, else 0.", serving_.load());
  Gauge(out, "cpp_overlay_root_writable",
        "1 when the last probe could create a file under the root, else 0.",
        root_writable_.load());
  RenderRpc(out);
  RenderSnapshotter(out);
  Counter(out, "cpp_overlay_stats_errors_total",
          "Scrapes whose snapshotter statistics could not be read.",
          static_cast<double>(stats_errors_.load()));
  out += RenderProcessMetrics();
  return out;
}

std::string RenderProcessMetrics() {
  std::string out;
  // /proc/self/stat: fields after the parenthesised command name.
  const std::string stat = ReadProcFile("/proc/self/stat");
  const size_t close = stat.rfind(')');
  if (close != std::string::npos) {
    std::vector<std::string> f =
        absl::StrSplit(stat.substr(close + 2), ' ', absl::SkipEmpty());
    // f[0] is field 3 (state): utime=14, stime=15, starttime=22, vsize=23,
    // rss=24.
    auto field = [&f](size_t number) -> double {
      if (number < 3 || number - 3 >= f.size()) return 0;
      return std::strtod(f[number - 3].c_str(), nullptr);
    };
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    Counter(out, "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            (field(14) + field(15)) / ticks);
    Gauge(out, "process_resident_memory_bytes",
          "Resident memory size in bytes.", field(24) * page);
    Gauge(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
          field(23));
    double boot_time = 0;
    for (absl::string_view line :
         absl::StrSplit(ReadProcFile("/proc/stat"), '\n')) {
      if (absl::ConsumePrefix(&line, "btime ")) {
        boot_time = std::strtod(std::string(line).c_str(), nullptr);
      }
    }
    Gauge(out, "process_start_time_seconds",
          "Start time of the process since unix epoch in seconds.",
          boot_time + field(22) / ticks);
  }
  int fds = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') ++fds;
    }
    closedir(dir);
    --fds;  // the directory stream's own descriptor
  }
  Gauge(out, "process_open_fds", "Number of open file descriptors.", fds);
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    Gauge(out, "process_max_fds", "Maximum number of open file descriptors.",
          static_cast<double>(limit.rlim_cur));
  }
  return out;
}

}  // namespace cpp_overlay::server
