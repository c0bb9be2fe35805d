#include "server/snapshots_service.h"

#include "metadata/errors.h"
#include "server/convert.h"
#include "server/status.h"
#include "spdlog/spdlog.h"

namespace cpp_overlay::server {
namespace {

namespace v1 = ::containerd::services::snapshots::v1;

// Maps `status` to gRPC and logs a failure: one line per failed call.
// Caller mistakes (missing key, bad argument...) log at info level, our own
// failures at error level.
grpc::Status Finish(const char* method, absl::string_view key,
                    const absl::Status& status) {
  if (!status.ok()) {
    const bool caller_error =
        absl::IsNotFound(status) || absl::IsAlreadyExists(status) ||
        absl::IsInvalidArgument(status) || absl::IsFailedPrecondition(status);
    spdlog::log(caller_error ? spdlog::level::info : spdlog::level::err,
                "{} key={} code={} error={}", method, metadata::QuoteKey(key),
                absl::StatusCodeToString(status.code()),
                std::string(status.message()));
  }
  return ToGrpcStatus(status);
}

}  // namespace

SnapshotsService::SnapshotsService(snapshotter::Snapshotter* snapshotter)
    : snapshotter_(snapshotter) {}

grpc::Status SnapshotsService::Prepare(grpc::ServerContext*,
                                       const v1::PrepareSnapshotRequest* request,
                                       v1::PrepareSnapshotResponse* response) {
  absl::StatusOr<std::vector<snapshotter::Mount>> mounts = snapshotter_->Prepare(
      request->key(), request->parent(), LabelsFromProto(request->labels()));
  if (mounts.ok()) MountsToProto(*mounts, response->mutable_mounts());
  return Finish("Prepare", request->key(), mounts.status());
}

grpc::Status SnapshotsService::View(grpc::ServerContext*,
                                    const v1::ViewSnapshotRequest* request,
                                    v1::ViewSnapshotResponse* response) {
  absl::StatusOr<std::vector<snapshotter::Mount>> mounts = snapshotter_->View(
      request->key(), request->parent(), LabelsFromProto(request->labels()));
  if (mounts.ok()) MountsToProto(*mounts, response->mutable_mounts());
  return Finish("View", request->key(), mounts.status());
}

grpc::Status SnapshotsService::Mounts(grpc::ServerContext*,
                                      const v1::MountsRequest* request,
                                      v1::MountsResponse* response) {
  absl::StatusOr<std::vector<snapshotter::Mount>> mounts =
      snapshotter_->Mounts(request->key());
  if (mounts.ok()) MountsToProto(*mounts, response->mutable_mounts());
  return Finish("Mounts", request->key(), mounts.status());
}

grpc::Status SnapshotsService::Commit(grpc::ServerContext*,
                                      const v1::CommitSnapshotRequest* request,
                                      google::protobuf::Empty*) {
  if (!request->parent().empty()) {
    // containerd 2.2+ sends a parent only to rebase (parallel unpack), which
    // needs the "rebase" capability we do not advertise. The parent the
    // snapshot already has is fine.
    absl::StatusOr<metadata::Info> info = snapshotter_->Stat(request->key());
    if (info.ok() && info->parent != request->parent()) {
      return Finish("Commit", request->key(),
                    absl::UnimplementedError(
                        "commit onto a different parent (rebase) is not supported"));
    }
  }
  return Finish("Commit", request->key(),
                snapshotter_->Commit(request->name(), request->key(),
                                     LabelsFromProto(request->labels())));
}

grpc::Status SnapshotsService::Remove(grpc::ServerContext*,
                                      const v1::RemoveSnapshotRequest* request,
                                      google::protobuf::Empty*) {
  return Finish("Remove", request->key(), snapshotter_->Remove(request->key()));
}

grpc::Status SnapshotsService::Stat(grpc::ServerContext*,
                                    const v1::StatSnapshotRequest* request,
                                    v1::StatSnapshotResponse* response) {
  absl::StatusOr<metadata::Info> info = snapshotter_->Stat(request->key());
  if (info.ok()) InfoToProto(*info, response->mutable_info());
  return Finish("Stat", request->key(), info.status());
}

grpc::Status SnapshotsService::Update(grpc::ServerContext*,
                                      const v1::UpdateSnapshotRequest* request,
                                      v1::UpdateSnapshotResponse* response) {
  absl::StatusOr<metadata::Info> info = snapshotter_->Update(
      InfoFromProto(request->info()), PathsFromProto(request->update_mask()));
  if (info.ok()) InfoToProto(*info, response->mutable_info());
  return Finish("Update", request->info().name(), info.status());
}

grpc::Status SnapshotsService::List(
    grpc::ServerContext* context, const v1::ListSnapshotsRequest* request,
    grpc::ServerWriter<v1::ListSnapshotsResponse>* writer) {
  std::vector<std::string> filters(request->filters().begin(),
                                   request->filters().end());
  v1::ListSnapshotsResponse batch;
  auto flush = [&]() -> absl::Status {
    if (batch.info_size() == 0) return absl::OkStatus();
    if (!writer->Write(batch)) {
      return absl::CancelledError("list: client went away");
    }
    batch.Clear();
    return absl::OkStatus();
  };
  absl::Status status =
      snapshotter_->Walk(filters, [&](const metadata::Info& info) {
        if (context->IsCancelled()) return absl::CancelledError("list: cancelled");
        InfoToProto(info, batch.add_info());
        if (batch.info_size() >= kListBatchSize) return flush();
        return absl::OkStatus();
      });
  if (status.ok()) status = flush();
  return Finish("List", "", status);
}

grpc::Status SnapshotsService::Usage(grpc::ServerContext*,
                                     const v1::UsageRequest* request,
                                     v1::UsageResponse* response) {
  absl::StatusOr<metadata::Usage> usage = snapshotter_->Usage(request->key());
  if (usage.ok()) {
    response->set_size(usage->size);
    response->set_inodes(usage->inodes);
  }
  return Finish("Usage", request->key(), usage.status());
}

grpc::Status SnapshotsService::Cleanup(grpc::ServerContext*,
                                       const v1::CleanupRequest*,
                                       google::protobuf::Empty*) {
  return Finish("Cleanup", "", snapshotter_->Cleanup());
}

}  // namespace cpp_overlay::server
