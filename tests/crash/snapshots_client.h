// A blocking client of the daemon's Snapshots service for crash tests: one
// call per RPC, each with a deadline, returning the gRPC status.
#ifndef CPP_OVERLAY_TESTS_CRASH_SNAPSHOTS_CLIENT_H_
#define CPP_OVERLAY_TESTS_CRASH_SNAPSHOTS_CLIENT_H_

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"

namespace cpp_overlay::testing {

using Labels = std::map<std::string, std::string>;

class SnapshotsClient {
 public:
  using Stub = ::containerd::services::snapshots::v1::Snapshots::Stub;
  using Info = ::containerd::services::snapshots::v1::Info;

  explicit SnapshotsClient(std::unique_ptr<Stub> stub)
      : stub_(std::move(stub)) {}

  // `fs` (optional) receives the snapshot's own fs directory (bind source
  // or overlay upperdir), or for a view of layers its nearest layer's.
  grpc::Status Prepare(const std::string& key, const std::string& parent,
                       const Labels& labels = {}, std::string* fs = nullptr) {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::PrepareSnapshotRequest request;
    request.set_snapshotter("cpp-overlay");
    request.set_key(key);
    request.set_parent(parent);
    request.mutable_labels()->insert(labels.begin(), labels.end());
    ::containerd::services::snapshots::v1::PrepareSnapshotResponse response;
    grpc::Status s = stub_->Prepare(&context, request, &response);
    if (s.ok() && fs) *fs = FsOf(response.mounts());
    return s;
  }

  grpc::Status View(const std::string& key, const std::string& parent,
                    const Labels& labels = {}, std::string* fs = nullptr) {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::ViewSnapshotRequest request;
    request.set_key(key);
    request.set_parent(parent);
    request.mutable_labels()->insert(labels.begin(), labels.end());
    ::containerd::services::snapshots::v1::ViewSnapshotResponse response;
    grpc::Status s = stub_->View(&context, request, &response);
    if (s.ok() && fs) *fs = FsOf(response.mounts());
    return s;
  }

  grpc::Status Mounts(const std::string& key, std::string* fs = nullptr) {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::MountsRequest request;
    request.set_key(key);
    ::containerd::services::snapshots::v1::MountsResponse response;
    grpc::Status s = stub_->Mounts(&context, request, &response);
    if (s.ok() && fs) *fs = FsOf(response.mounts());
    return s;
  }

  grpc::Status Commit(const std::string& name, const std::string& key,
                      const Labels& labels = {}) {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::CommitSnapshotRequest request;
    request.set_name(name);
    request.set_key(key);
    request.mutable_labels()->insert(labels.begin(), labels.end());
    google::protobuf::Empty response;
    return stub_->Commit(&context, request, &response);
  }

  grpc::Status Remove(const std::string& key) {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::RemoveSnapshotRequest request;
    request.set_key(key);
    google::protobuf::Empty response;
    return stub_->Remove(&context, request, &response);
  }

  grpc::Status Stat(const std::string& key, Info* info = nullptr) {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::StatSnapshotRequest request;
    request.set_key(key);
    ::containerd::services::snapshots::v1::StatSnapshotResponse response;
    grpc::Status s = stub_->Stat(&context, request, &response);
    if (s.ok() && info) *info = response.info();
    return s;
  }

  // Update of `key`'s labels with field paths `paths` (none: all).
  grpc::Status Update(const std::string& key, const Labels& labels,
                      const std::vector<std::string>& paths = {},
                      Info* info = nullptr) {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::UpdateSnapshotRequest request;
    request.mutable_info()->set_name(key);
    request.mutable_info()->mutable_labels()->insert(labels.begin(),
                                                     labels.end());
    for (const std::string& p : paths)
      request.mutable_update_mask()->add_paths(p);
    ::containerd::services::snapshots::v1::UpdateSnapshotResponse response;
    grpc::Status s = stub_->Update(&context, request, &response);
    if (s.ok() && info) *info = response.info();
    return s;
  }

  grpc::Status List(std::vector<Info>* infos,
                    const std::vector<std::string>& filters = {}) {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::ListSnapshotsRequest request;
    for (const std::string& f : filters) request.add_filters(f);
    auto reader = stub_->List(&context, request);
    ::containerd::services::snapshots::v1::ListSnapshotsResponse response;
    while (reader->Read(&response)) {
      for (const Info& info : response.info()) infos->push_back(info);
    }
    return reader->Finish();
  }

  grpc::Status Usage(const std::string& key, int64_t* size = nullptr) {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::UsageRequest request;
    request.set_key(key);
    ::containerd::services::snapshots::v1::UsageResponse response;
    grpc::Status s = stub_->Usage(&context, request, &response);
    if (s.ok() && size) *size = response.size();
    return s;
  }

  grpc::Status Cleanup() {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::CleanupRequest request;
    google::protobuf::Empty response;
    return stub_->Cleanup(&context, request, &response);
  }

  Stub* stub() { return stub_.get(); }

 private:
  static void SetDeadline(grpc::ClientContext& context) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
  }

  template <typename Mounts>
  static std::string FsOf(const Mounts& mounts) {
    if (mounts.size() != 1) return "";
    const auto& m = mounts[0];
    if (m.type() == "bind") return m.source();
    std::string lower;
    for (const std::string& o : m.options()) {
      if (absl::StartsWith(o, "upperdir=")) return o.substr(9);
      if (absl::StartsWith(o, "lowerdir="))
        lower = o.substr(9, o.find(':') - 9);
    }
    return lower;  // a view: its nearest layer
  }

  std::unique_ptr<Stub> stub_;
};

}  // namespace cpp_overlay::testing

#endif  // CPP_OVERLAY_TESTS_CRASH_SNAPSHOTS_CLIENT_H_
