// The gRPC server on a unix socket: owns the Snapshots service, gRPC's
// standard health service (grpc.health.v1.Health) and the listener.
//
// Health: the server is created only once the snapshotter is open and
// reconciled, and reports SERVING from then on for the service names "" and
// "containerd.services.snapshots.v1.Snapshots"; NOT_SERVING once Shutdown
// begins, and while the root probe (RootProbe) finds the root not writable.
#ifndef CPP_OVERLAY_SERVER_SERVER_H_
#define CPP_OVERLAY_SERVER_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "server/metrics.h"
#include "server/root_probe.h"
#include "server/snapshots_service.h"
#include "snapshotter/snapshotter.h"

namespace cpp_overlay::server {

// containerd's proxy client allows 16 MiB messages both ways.
inline constexpr int kMaxMessageBytes = 16 << 20;

// Idle handler threads the sync gRPC server keeps instead of ending them
// (see Server::Start).
inline constexpr int kSyncServerIdleThreads = 16;

// The service name clients may ask the health service about besides "".
inline constexpr char kSnapshotsServiceName[] =
    "containerd.services.snapshots.v1.Snapshots";

class Server {
 public:
  struct Options {
    // Path of the unix socket.
    std::string address;
    mode_t socket_mode = 0660;
    // Group the socket is given; none keeps the daemon's own.
    std::optional<gid_t> socket_group;
    // Must outlive the server.
    snapshotter::Snapshotter* snapshotter = nullptr;
    // Counts every Snapshots call and gets the health status; may be null.
    // Must outlive the server.
    Metrics* metrics = nullptr;
    // Directory whose writability decides health (the snapshotter's root),
    // probed every `probe_interval`; empty or a zero interval: no probe.
    std::string probe_dir;
    absl::Duration probe_interval = absl::Seconds(5);
  };

  // Listens on `options.address`: creates its directory if needed, removes a
  // stale socket (one nobody accepts on), and refuses with AlreadyExists
  // when a live server answers there.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const Options& options);
  ~Server();

  // Reports NOT_SERVING (health watchers see it at once), stops accepting
  // calls, lets running ones finish for `grace`, cancels the rest, and
  // removes the socket. Idempotent; not to be called from two threads at
  // once.
  void Shutdown(absl::Duration grace);

  // What the health service reports now.
  bool serving() const;

 private:
  Server(std::string address, std::unique_ptr<SnapshotsService> service,
         Metrics* metrics);

  // Applies stopping_ and root_status_ to the health service and metrics.
  void UpdateHealthLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnProbe(const absl::Status& status);

  std::string address_;
  std::unique_ptr<SnapshotsService> service_;
  Metrics* const metrics_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<RootProbe> probe_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status root_status_ ABSL_GUARDED_BY(mu_);
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace cpp_overlay::server

#endif  // CPP_OVERLAY_SERVER_SERVER_H_
