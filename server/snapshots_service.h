// containerd.services.snapshots.v1.Snapshots over a Snapshotter: each method
// converts the request, calls the snapshotter, converts the reply and maps
// the status. Failed calls are logged here, once; every call is counted in
// Metrics when there is one.
#ifndef CPP_OVERLAY_SERVER_SNAPSHOTS_SERVICE_H_
#define CPP_OVERLAY_SERVER_SNAPSHOTS_SERVICE_H_

#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "server/metrics.h"
#include "snapshotter/snapshotter.h"

namespace cpp_overlay::server {

// Stat and Mounts are callback methods: they only read metadata, so they run
// right on gRPC's event threads, a thread hand-off cheaper than the sync
// methods. Everything that may block on the disk stays synchronous.
using SnapshotsServiceBase = ::containerd::services::snapshots::v1::Snapshots::
    WithCallbackMethod_Stat<::containerd::services::snapshots::v1::Snapshots::
                                WithCallbackMethod_Mounts<
                                    ::containerd::services::snapshots::v1::
                                        Snapshots::Service>>;

class SnapshotsService final : public SnapshotsServiceBase {
 public:
  // List streams Info in batches of at most this many, as containerd's own
  // service does. Measured: 100 per message lists 10,000 snapshots faster
  // than 1,000 per message or one message (smaller writes overlap with the
  // client's reading instead of waiting for HTTP/2 flow-control windows).
  static constexpr int kListBatchSize = 100;

  // `snapshotter` and `metrics` (may be null) must outlive the service.
  explicit SnapshotsService(snapshotter::Snapshotter* snapshotter,
                            Metrics* metrics = nullptr);

  grpc::Status Prepare(grpc::ServerContext* context,
                       const ::containerd::services::snapshots::v1::PrepareSnapshotRequest* request,
                       ::containerd::services::snapshots::v1::PrepareSnapshotResponse* response) override;
  grpc::Status View(grpc::ServerContext* context,
                    const ::containerd::services::snapshots::v1::ViewSnapshotRequest* request,
                    ::containerd::services::snapshots::v1::ViewSnapshotResponse* response) override;
  grpc::ServerUnaryReactor* Mounts(
      grpc::CallbackServerContext* context,
      const ::containerd::services::snapshots::v1::MountsRequest* request,
      ::containerd::services::snapshots::v1::MountsResponse* response) override;
  grpc::Status Commit(grpc::ServerContext* context,
                      const ::containerd::services::snapshots::v1::CommitSnapshotRequest* request,
                      google::protobuf::Empty* response) override;
  grpc::Status Remove(grpc::ServerContext* context,
                      const ::containerd::services::snapshots::v1::RemoveSnapshotRequest* request,
                      google::protobuf::Empty* response) override;
  grpc::ServerUnaryReactor* Stat(
      grpc::CallbackServerContext* context,
      const ::containerd::services::snapshots::v1::StatSnapshotRequest* request,
      ::containerd::services::snapshots::v1::StatSnapshotResponse* response) override;
  grpc::Status Update(grpc::ServerContext* context,
                      const ::containerd::services::snapshots::v1::UpdateSnapshotRequest* request,
                      ::containerd::services::snapshots::v1::UpdateSnapshotResponse* response) override;
  grpc::Status List(grpc::ServerContext* context,
                    const ::containerd::services::snapshots::v1::ListSnapshotsRequest* request,
                    grpc::ServerWriter<::containerd::services::snapshots::v1::ListSnapshotsResponse>* writer) override;
  grpc::Status Usage(grpc::ServerContext* context,
                     const ::containerd::services::snapshots::v1::UsageRequest* request,
                     ::containerd::services::snapshots::v1::UsageResponse* response) override;
  grpc::Status Cleanup(grpc::ServerContext* context,
                       const ::containerd::services::snapshots::v1::CleanupRequest* request,
                       google::protobuf::Empty* response) override;

 private:
  // Maps `status` to gRPC, logs a failure and counts the call that began
  // at `start`.
  grpc::Status Finish(const char* method, absl::string_view key,
                      const absl::Status& status, absl::Time start) const;

  snapshotter::Snapshotter* const snapshotter_;
  Metrics* const metrics_;
};

}  // namespace cpp_overlay::server

#endif  // CPP_OVERLAY_SERVER_SNAPSHOTS_SERVICE_H_
