// The gRPC server on a unix socket: owns the service and the listener.
#ifndef CPP_OVERLAY_SERVER_SERVER_H_
#define CPP_OVERLAY_SERVER_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "server/snapshots_service.h"
#include "snapshotter/snapshotter.h"

namespace cpp_overlay::server {

// containerd's proxy client allows 16 MiB messages both ways.
inline constexpr int kMaxMessageBytes = 16 << 20;

class Server {
 public:
  struct Options {
    // Path of the unix socket.
    std::string address;
    mode_t socket_mode = 0660;
    // Must outlive the server.
    snapshotter::Snapshotter* snapshotter = nullptr;
  };

  // Listens on `options.address`: creates its directory if needed, removes a
  // stale socket (one nobody accepts on), and refuses with AlreadyExists
  // when a live server answers there.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const Options& options);
  ~Server();

  // Stops accepting calls, lets running ones finish for `grace`, cancels
  // the rest, and removes the socket. Idempotent; not to be called from two
  // threads at once.
  void Shutdown(absl::Duration grace);

 private:
  Server(std::string address, std::unique_ptr<SnapshotsService> service,
         std::unique_ptr<grpc::Server> server);

  std::string address_;
  std::unique_ptr<SnapshotsService> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace cpp_overlay::server

#endif  // CPP_OVERLAY_SERVER_SERVER_H_
