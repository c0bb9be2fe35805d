#include "server/metrics_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "microhttpd.h"
#include "server/config.h"
#include "spdlog/spdlog.h"

namespace cpp_overlay::server {
namespace {

constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

MHD_Result Respond(MHD_Connection* connection, unsigned int code,
                   const std::string& body, const char* content_type) {
  MHD_Response* response = MHD_create_response_from_buffer(
      body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  MHD_Result result = MHD_queue_response(connection, code, response);
  MHD_destroy_response(response);
  return result;
}

MHD_Result Handle(void* cls, MHD_Connection* connection, const char* url,
                  const char* method, const char* /*version*/,
                  const char* /*upload_data*/, size_t* upload_data_size,
                  void** /*request_state*/) {
  auto* render = static_cast<std::function<std::string()>*>(cls);
  const bool get = std::strcmp(method, MHD_HTTP_METHOD_GET) == 0;
  const bool head = std::strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
  // A request with a body: ignore the body, answer once it is read.
  if (*upload_data_size != 0) {
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (!get && !head) {
    return Respond(connection, MHD_HTTP_METHOD_NOT_ALLOWED,
                   "only GET and HEAD are allowed\n",
                   "text/plain; charset=utf-8");
  }
  if (std::strcmp(url, "/metrics") != 0) {
    return Respond(connection, MHD_HTTP_NOT_FOUND,
                   "not found; metrics are at /metrics\n",
                   "text/plain; charset=utf-8");
  }
  return Respond(connection, MHD_HTTP_OK, (*render)(), kContentType);
}

void LogMhdError(void* /*cls*/, const char* format, va_list args) {
  char text[512];
  std::vsnprintf(text, sizeof(text), format, args);
  size_t n = std::strlen(text);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
    text[--n] = '\0';
  // Mostly what clients did (closed early, sent junk): not worth a warning
  // each, which anyone reaching the port could turn into a flood.
  spdlog::debug("metrics http: {}", text);
}

}  // namespace

MetricsHttpServer::MetricsHttpServer(std::function<std::string()> render)
    : render_(std::move(render)) {}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& address, std::function<std::string()> render) {
  absl::StatusOr<HostPort> host_port = ParseHostPort(address);
  if (!host_port.ok()) return host_port.status();

  sockaddr_storage storage{};
  // epoll, not select(): select() cannot watch descriptors past 1024,
  // which a daemon with many gRPC connections can have.
  unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
  bool ipv6 = false;
  auto* in4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET, host_port->host.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(host_port->port);
  } else if (inet_pton(AF_INET6, host_port->host.c_str(), &in6->sin6_addr) ==
             1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(host_port->port);
    flags |= MHD_USE_IPv6;
    ipv6 = true;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics address ", address, ": host is not an IP address"));
  }

  std::unique_ptr<MetricsHttpServer> server(
      new MetricsHttpServer(std::move(render)));
  server->daemon_ = MHD_start_daemon(
      flags, host_port->port, nullptr, nullptr, &Handle, &server->render_,
      // The logger first, so every message of the daemon goes through it.
      MHD_OPTION_EXTERNAL_LOGGER, &LogMhdError, nullptr, MHD_OPTION_SOCK_ADDR,
      reinterpret_cast<sockaddr*>(&storage), MHD_OPTION_CONNECTION_LIMIT,
      kConnectionLimit, MHD_OPTION_PER_IP_CONNECTION_LIMIT, kPerAddressLimit,
      MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
  if (server->daemon_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for metrics on ", address,
                     " (port in use or address not on this host); choose "
                     "another metrics_address"));
  }
  const MHD_DaemonInfo* info =
      MHD_get_daemon_info(server->daemon_, MHD_DAEMON_INFO_BIND_PORT);
  server->port_ = info != nullptr ? info->port : host_port->port;
  server->url_ = ipv6 ? absl::StrCat("http://[", host_port->host,
                                     "]:", server->port_, "/metrics")
                      : absl::StrCat("http://", host_port->host, ":",
                                     server->port_, "/metrics");
  return server;
}

MetricsHttpServer::~MetricsHttpServer() {
  if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
}

RetryingMetricsHttpServer::RetryingMetricsHttpServer(
    std::string address, std::function<std::string()> render, absl::Duration retry)
    : address_(std::move(address)), render_(std::move(render)), retry_(retry) {}

absl::StatusOr<std::unique_ptr<RetryingMetricsHttpServer>>
RetryingMetricsHttpServer::Start(const std::string& address,
                                 std::function<std::string()> render,
                                 absl::Duration retry) {
  std::unique_ptr<RetryingMetricsHttpServer> out(
      new RetryingMetricsHttpServer(address, std::move(render), retry));
  absl::Status listened = out->TryListen();
  if (listened.ok()) return out;
  if (absl::IsInvalidArgument(listened)) return listened;
  spdlog::error("cannot serve metrics yet, serving snapshots without them and trying "
                "again every {}: {}",
                absl::FormatDuration(retry), std::string(listened.message()));
  RetryingMetricsHttpServer* raw = out.get();
  out->retrier_ = std::thread([raw] {
    while (!raw->stop_.WaitForNotificationWithTimeout(raw->retry_)) {
      absl::Status s = raw->TryListen();
      if (s.ok()) return;
      spdlog::debug("metrics: {}", std::string(s.message()));
    }
  });
  return out;
}

absl::Status RetryingMetricsHttpServer::TryListen() {
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> started =
      MetricsHttpServer::Start(address_, render_);
  if (!started.ok()) return started.status();
  spdlog::info("metrics at {}", (*started)->url());
  absl::MutexLock lock(&mu_);
  server_ = *std::move(started);
  return absl::OkStatus();
}

RetryingMetricsHttpServer::~RetryingMetricsHttpServer() {
  stop_.Notify();
  if (retrier_.joinable()) retrier_.join();
  absl::MutexLock lock(&mu_);
  server_.reset();
}

bool RetryingMetricsHttpServer::listening() const {
  absl::MutexLock lock(&mu_);
  return server_ != nullptr;
}

}  // namespace cpp_overlay::server
