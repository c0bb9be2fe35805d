#include "server/snapshots_service.h"

#include "metadata/errors.h"
#include "server/convert.h"
#include "server/status.h"
#include "spdlog/spdlog.h"

namespace cpp_overlay::server {
namespace {

namespace v1 = ::containerd::services::snapshots::v1;

}  // namespace

// One log line per failed call: caller mistakes (missing key, bad
// argument...) at info level, our own failures at error level. Successful
// calls log only at debug level.
grpc::Status SnapshotsService::Finish(const char* method, absl::string_view key,
                                      const absl::Status& status,
                                      absl::Time start) const {
  if (status.ok()) {
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("{} key={} ok", method, metadata::QuoteKey(key));
    }
  } else {
    const bool caller_error =
        absl::IsNotFound(status) || absl::IsAlreadyExists(status) ||
        absl::IsInvalidArgument(status) || absl::IsFailedPrecondition(status);
    spdlog::log(caller_error ? spdlog::level::info : spdlog::level::err,
                "{} key={} code={} error={}", method, metadata::QuoteKey(key),
                absl::StatusCodeToString(status.code()),
                std::string(status.message()));
  }
  grpc::Status result = ToGrpcStatus(status);
  if (metrics_ != nullptr) {
    metrics_->ObserveRpc(method, result.error_code(), absl::Now() - start);
  }
  return result;
}

SnapshotsService::SnapshotsService(snapshotter::Snapshotter* snapshotter,
                                   Metrics* metrics)
    : snapshotter_(snapshotter), metrics_(metrics) {}

grpc::Status SnapshotsService::Prepare(grpc::ServerContext*,
                                       const v1::PrepareSnapshotRequest* request,
                                       v1::PrepareSnapshotResponse* response) {
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<snapshotter::Mount>> mounts = snapshotter_->Prepare(
      request->key(), request->parent(), LabelsFromProto(request->labels()));
  if (mounts.ok()) MountsToProto(*mounts, response->mutable_mounts());
  return Finish("Prepare", request->key(), mounts.status(), start);
}

grpc::Status SnapshotsService::View(grpc::ServerContext*,
                                    const v1::ViewSnapshotRequest* request,
                                    v1::ViewSnapshotResponse* response) {
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<snapshotter::Mount>> mounts = snapshotter_->View(
      request->key(), request->parent(), LabelsFromProto(request->labels()));
  if (mounts.ok()) MountsToProto(*mounts, response->mutable_mounts());
  return Finish("View", request->key(), mounts.status(), start);
}

grpc::ServerUnaryReactor* SnapshotsService::Mounts(
    grpc::CallbackServerContext* context, const v1::MountsRequest* request,
    v1::MountsResponse* response) {
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<snapshotter::Mount>> mounts =
      snapshotter_->Mounts(request->key());
  if (mounts.ok()) MountsToProto(*mounts, response->mutable_mounts());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(Finish("Mounts", request->key(), mounts.status(), start));
  return reactor;
}

grpc::Status SnapshotsService::Commit(grpc::ServerContext*,
                                      const v1::CommitSnapshotRequest* request,
                                      google::protobuf::Empty*) {
  const absl::Time start = absl::Now();
  if (!request->parent().empty()) {
    // containerd 2.2+ sends a parent only to rebase (parallel unpack), which
    // needs the "rebase" capability we do not advertise. The parent the
    // snapshot already has is fine.
    absl::StatusOr<metadata::Info> info = snapshotter_->Stat(request->key());
    if (info.ok() && info->parent != request->parent()) {
      return Finish("Commit", request->key(),
                    absl::UnimplementedError(
                        "commit onto a different parent (rebase) is not supported"),
                    start);
    }
  }
  return Finish("Commit", request->key(),
                snapshotter_->Commit(request->name(), request->key(),
                                     LabelsFromProto(request->labels())),
                start);
}

grpc::Status SnapshotsService::Remove(grpc::ServerContext*,
                                      const v1::RemoveSnapshotRequest* request,
                                      google::protobuf::Empty*) {
  const absl::Time start = absl::Now();
  return Finish("Remove", request->key(), snapshotter_->Remove(request->key()), start);
}

grpc::ServerUnaryReactor* SnapshotsService::Stat(
    grpc::CallbackServerContext* context, const v1::StatSnapshotRequest* request,
    v1::StatSnapshotResponse* response) {
  const absl::Time start = absl::Now();
  absl::StatusOr<metadata::Info> info = snapshotter_->Stat(request->key());
  if (info.ok()) InfoToProto(*info, response->mutable_info());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(Finish("Stat", request->key(), info.status(), start));
  return reactor;
}

grpc::Status SnapshotsService::Update(grpc::ServerContext*,
                                      const v1::UpdateSnapshotRequest* request,
                                      v1::UpdateSnapshotResponse* response) {
  const absl::Time start = absl::Now();
  absl::StatusOr<metadata::Info> info = snapshotter_->Update(
      InfoFromProto(request->info()), PathsFromProto(request->update_mask()));
  if (info.ok()) InfoToProto(*info, response->mutable_info());
  return Finish("Update", request->info().name(), info.status(), start);
}

grpc::Status SnapshotsService::List(
    grpc::ServerContext* context, const v1::ListSnapshotsRequest* request,
    grpc::ServerWriter<v1::ListSnapshotsResponse>* writer) {
  const absl::Time start = absl::Now();
  std::vector<std::string> filters(request->filters().begin(),
                                   request->filters().end());
  v1::ListSnapshotsResponse batch;
  // Keys and labels have no size limit of their own, so a batch is also cut
  // by bytes: 100 long infos would not fit one 16 MiB message.
  constexpr size_t kListBatchBytes = 4 << 20;
  size_t batch_bytes = 0;
  auto flush = [&]() -> absl::Status {
    if (batch.info_size() == 0) return absl::OkStatus();
    // Checked per batch, not per snapshot: it takes a lock inside gRPC.
    if (context->IsCancelled()) return absl::CancelledError("list: cancelled");
    if (!writer->Write(batch)) {
      return absl::CancelledError("list: client went away");
    }
    batch.Clear();
    batch_bytes = 0;
    return absl::OkStatus();
  };
  absl::Status status =
      snapshotter_->Walk(filters, [&](const metadata::Info& info) {
        v1::Info proto;
        InfoToProto(info, &proto);
        const size_t bytes = proto.ByteSizeLong();
        if (batch_bytes + bytes > kListBatchBytes) {
          if (absl::Status s = flush(); !s.ok()) return s;
        }
        batch_bytes += bytes;
        *batch.add_info() = std::move(proto);
        if (batch.info_size() >= kListBatchSize) return flush();
        return absl::OkStatus();
      });
  if (status.ok()) status = flush();
  return Finish("List", "", status, start);
}

grpc::Status SnapshotsService::Usage(grpc::ServerContext*,
                                     const v1::UsageRequest* request,
                                     v1::UsageResponse* response) {
  const absl::Time start = absl::Now();
  absl::StatusOr<metadata::Usage> usage = snapshotter_->Usage(request->key());
  if (usage.ok()) {
    response->set_size(usage->size);
    response->set_inodes(usage->inodes);
  }
  return Finish("Usage", request->key(), usage.status(), start);
}

grpc::Status SnapshotsService::Cleanup(grpc::ServerContext*,
                                       const v1::CleanupRequest*,
                                       google::protobuf::Empty*) {
  const absl::Time start = absl::Now();
  return Finish("Cleanup", "", snapshotter_->Cleanup(), start);
}

}  // namespace cpp_overlay::server
