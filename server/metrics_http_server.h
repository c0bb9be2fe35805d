// A small HTTP server for Prometheus scrapes (libmicrohttpd): GET /metrics
// answers with the text exposition format; every other path is 404 and
// every other method 405. Runs one internal polling thread, at most 16
// connections, each closed after 10 s idle.
#ifndef CPP_OVERLAY_SERVER_METRICS_HTTP_SERVER_H_
#define CPP_OVERLAY_SERVER_METRICS_HTTP_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct MHD_Daemon;

namespace cpp_overlay::server {

class MetricsHttpServer {
 public:
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

}  // namespace cpp_overlay::server

#endif  // CPP_OVERLAY_SERVER_METRICS_HTTP_SERVER_H_
