// A small HTTP server for Prometheus scrapes (libmicrohttpd): GET /metrics
// answers with the text exposition format; every other path is 404 and
// every other method 405. Runs one internal polling thread (epoll), at most
// 64 connections and 4 from one address (so one peer holding connections
// open cannot lock out the scraper), each closed after 10 s idle.
#ifndef CPP_OVERLAY_SERVER_METRICS_HTTP_SERVER_H_
#define CPP_OVERLAY_SERVER_METRICS_HTTP_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

struct MHD_Daemon;

namespace cpp_overlay::server {

class MetricsHttpServer {
 public:
  static constexpr unsigned int kConnectionLimit = 64;
  static constexpr unsigned int kPerAddressLimit = 4;

  // Listens on `address` ("host:port"; see ParseHostPort: an IP literal,
  // 127.0.0.1 when the host is empty, any free port for 0) and answers
  // scrapes with `render()`, called on the server's thread.
  // InvalidArgument: a bad address. Unavailable: cannot listen there.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& address, std::function<std::string()> render);
  // Stops listening and waits for the server's thread.
  ~MetricsHttpServer();

  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // The port actually bound, e.g. after asking for port 0.
  uint16_t port() const { return port_; }
  // "http://host:port/metrics".
  const std::string& url() const { return url_; }

 private:
  explicit MetricsHttpServer(std::function<std::string()> render);

  std::function<std::string()> render_;
  MHD_Daemon* daemon_ = nullptr;
  uint16_t port_ = 0;
  std::string url_;
};

// Metrics are optional and snapshots are not: when the address cannot be
// listened on (a port taken, an address not yet up at boot), the daemon
// serves anyway and this keeps trying every `retry` until it listens or is
// destroyed, logging the first failure as an error and success as info.
class RetryingMetricsHttpServer {
 public:
  // Tries once before returning: `listening()` then tells how it went.
  // InvalidArgument (a bad address) is returned, not retried.
  static absl::StatusOr<std::unique_ptr<RetryingMetricsHttpServer>> Start(
      const std::string& address, std::function<std::string()> render,
      absl::Duration retry);
  // Stops retrying and serving.
  ~RetryingMetricsHttpServer();

  bool listening() const;

 private:
  RetryingMetricsHttpServer(std::string address, std::function<std::string()> render,
                            absl::Duration retry);
  // One attempt to listen; on success the server is kept and its URL logged.
  absl::Status TryListen();

  const std::string address_;
  const std::function<std::string()> render_;
  const absl::Duration retry_;
  absl::Notification stop_;
  mutable absl::Mutex mu_;
  std::unique_ptr<MetricsHttpServer> server_ ABSL_GUARDED_BY(mu_);
  std::thread retrier_;
};

}  // namespace cpp_overlay::server

#endif  // CPP_OVERLAY_SERVER_METRICS_HTTP_SERVER_H_
