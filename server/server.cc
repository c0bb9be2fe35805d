#include "server/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server_builder.h"
#include "server/sd_notify.h"
#include "spdlog/spdlog.h"

namespace cpp_overlay::server {
namespace {

// Whether the socket file at `path` is stale: no server listens on it.
// Only "connection refused" (or the file gone) says so. A full backlog means
// a server is there; a refused permission, or anything else, means we
// cannot tell, and replacing a live server's socket must never happen.
// Non-blocking, so a server that never accepts cannot hang start-up.
absl::StatusOr<bool> SocketIsStale(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  const int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  close(fd);
  if (rc == 0 || err == EAGAIN || err == EINPROGRESS) return false;
  if (err == ECONNREFUSED || err == ENOENT) return true;
  return absl::FailedPreconditionError(absl::StrCat(
      "cannot tell whether a server listens on ", path,
      " (connect: ", std::strerror(err),
      "), so it is not replaced; remove it or choose another address"));
}

absl::Status PrepareSocketPath(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("address ", path, " must be an absolute socket path"));
  }
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "address ", path, " is longer than a unix socket path may be (",
        sizeof(sockaddr_un::sun_path) - 1, " bytes)"));
  }
  if (path.back() == '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "address ", path, " ends in /: give the socket file's path"));
  }
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return absl::PermissionDeniedError(absl::StrCat(
          "create socket directory ", dir.string(), ": ", ec.message()));
    }
    chmod(dir.c_str(), 0711);
  }
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return absl::OkStatus();
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "address ", path, " exists and is not a socket; remove it or choose another"));
  }
  absl::StatusOr<bool> stale = SocketIsStale(path);
  if (!stale.ok()) return stale.status();
  if (!*stale) {
    return absl::AlreadyExistsError(absl::StrCat(
        "another server is listening on ", path, "; stop it or choose another address"));
  }
  // Left behind by a server that was killed.
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::PermissionDeniedError(absl::StrCat(
        "remove stale socket ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const Options& options) {
  if (absl::Status s = PrepareSocketPath(options.address); !s.ok()) return s;

  // The first probe runs before the server is reachable, so nobody sees
  // SERVING from a root that is not writable.
  absl::Status root_status;
  if (!options.probe_dir.empty()) root_status = RootProbe::ProbeOnce(options.probe_dir);

  auto service = std::make_unique<SnapshotsService>(options.snapshotter, options.metrics);
  // gRPC's own grpc.health.v1.Health (Check and Watch). Process-wide; every
  // server of this process has it.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("unix:", options.address),
                           grpc::InsecureServerCredentials());
  builder.RegisterService(service.get());
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  // gRPC's sync server ends a handler thread when more than MAX_POLLERS
  // (default 2) are idle and starts one when a call takes the last poller:
  // with a few concurrent callers (an image unpack, CRI's stats loop) it
  // made and ended a thread every other call, 1,648 threads in one run of
  // the concurrent benchmark. Keeping up to this many idle threads ends
  // that churn (41 threads in the same run) and saves about a tenth of the
  // daemon's CPU per call under concurrency.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
                              kSyncServerIdleThreads);

  // The socket must never be reachable with wider permissions than asked,
  // not even between bind and chmod.
  mode_t old_umask = umask(static_cast<mode_t>(~options.socket_mode) & 0777);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  umask(old_umask);
  if (server == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.address));
  }
  std::unique_ptr<Server> out(
      new Server(options.address, std::move(service), options.metrics));
  out->server_ = std::move(server);
  if (chmod(options.address.c_str(), options.socket_mode) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "chmod ", options.address, ": ", std::strerror(errno)));
  }
  if (options.socket_group.has_value() &&
      chown(options.address.c_str(), static_cast<uid_t>(-1), *options.socket_group) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "chown socket ", options.address, " to group ", *options.socket_group, ": ",
        std::strerror(errno)));
  }
  {
    absl::MutexLock lock(&out->mu_);
    out->root_status_ = root_status;
    if (!root_status.ok()) {
      spdlog::error("health: NOT_SERVING: the root is not writable: {}",
                    root_status.ToString());
    }
    out->UpdateHealthLocked();
  }
  if (!options.probe_dir.empty() && options.probe_interval > absl::ZeroDuration()) {
    Server* raw = out.get();
    out->probe_ = std::make_unique<RootProbe>(
        options.probe_dir, options.probe_interval,
        [raw](const absl::Status& status) { raw->OnProbe(status); });
  }
  return out;
}

Server::Server(std::string address, std::unique_ptr<SnapshotsService> service,
               Metrics* metrics)
    : address_(std::move(address)), service_(std::move(service)), metrics_(metrics) {}

Server::~Server() { Shutdown(absl::ZeroDuration()); }

bool Server::serving() const {
  absl::MutexLock lock(&mu_);
  return serving_;
}

void Server::UpdateHealthLocked() {
  serving_ = !stopping_ && root_status_.ok();
  if (server_ != nullptr && server_->GetHealthCheckService() != nullptr) {
    server_->GetHealthCheckService()->SetServingStatus("", serving_);
    server_->GetHealthCheckService()->SetServingStatus(kSnapshotsServiceName, serving_);
  }
  if (metrics_ != nullptr) {
    metrics_->SetServing(serving_);
    metrics_->SetRootWritable(root_status_.ok());
  }
}

void Server::OnProbe(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (status.ok() == root_status_.ok()) {
    root_status_ = status;
    return;
  }
  root_status_ = status;
  if (!status.ok()) {
    spdlog::error("health: NOT_SERVING: the root is no longer writable: {}",
                  status.ToString());
    NotifyStatus("not serving: the root is not writable");
  } else {
    spdlog::info("health: the root is writable again");
    NotifyStatus(absl::StrCat("serving on ", address_));
  }
  UpdateHealthLocked();
}

void Server::Shutdown(absl::Duration grace) {
  if (server_ == nullptr) return;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    UpdateHealthLocked();
  }
  probe_.reset();
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoNanoseconds(grace));
  server_->Wait();
  server_.reset();
  unlink(address_.c_str());
}

}  // namespace cpp_overlay::server
