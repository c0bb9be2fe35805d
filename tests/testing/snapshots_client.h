// A blocking client of the Snapshots service for tests that talk to a server
// over its socket: one call per RPC, each with a deadline, returning the gRPC
// status. Out-parameters are optional: the snapshot's fs directory where a
// test checks the disk, or the whole response where it checks the reply.
#ifndef CPP_OVERLAY_TESTS_TESTING_SNAPSHOTS_CLIENT_H_
#define CPP_OVERLAY_TESTS_TESTING_SNAPSHOTS_CLIENT_H_

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "grpcpp/create_channel.h"

namespace cpp_overlay::testing {

using Labels = std::map<std::string, std::string>;

class SnapshotsClient {
 public:
  using Stub = ::containerd::services::snapshots::v1::Snapshots::Stub;
  using Info = ::containerd::services::snapshots::v1::Info;

  explicit SnapshotsClient(std::unique_ptr<Stub> stub)
      : stub_(std::move(stub)) {}

  // A stub on unix socket `socket`, sending and receiving messages of up to
  // `max_message_bytes`.
  static std::unique_ptr<Stub> Dial(const std::string& socket,
                                    int max_message_bytes) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(max_message_bytes);
    args.SetMaxSendMessageSize(max_message_bytes);
    return ::containerd::services::snapshots::v1::Snapshots::NewStub(
        grpc::CreateCustomChannel("unix:" + socket,
                                  grpc::InsecureChannelCredentials(), args));
  }

  // `fs` (optional) receives the snapshot's own fs directory (bind source
  // or overlay upperdir), or for a view of layers its nearest layer's.
  grpc::Status Prepare(const std::string& key, const std::string& parent,
                       const Labels& labels = {}, std::string* fs = nullptr) {
    ::containerd::services::snapshots::v1::PrepareSnapshotResponse response;
    grpc::Status s = Prepare(key, parent, labels, &response);
    if (s.ok() && fs) *fs = FsOf(response.mounts());
    return s;
  }
  grpc::Status Prepare(
      const std::string& key, const std::string& parent, const Labels& labels,
      ::containerd::services::snapshots::v1::PrepareSnapshotResponse* response) {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::PrepareSnapshotRequest request;
    request.set_snapshotter("cpp-overlay");
    request.set_key(key);
    request.set_parent(parent);
    request.mutable_labels()->insert(labels.begin(), labels.end());
    return stub_->Prepare(&context, request, response);
  }

  grpc::Status View(const std::string& key, const std::string& parent,
                    const Labels& labels = {}, std::string* fs = nullptr) {
    ::containerd::services::snapshots::v1::ViewSnapshotResponse response;
    grpc::Status s = View(key, parent, labels, &response);
    if (s.ok() && fs) *fs = FsOf(response.mounts());
    return s;
  }
  grpc::Status View(
      const std::string& key, const std::string& parent, const Labels& labels,
      ::containerd::services::snapshots::v1::ViewSnapshotResponse* response) {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::ViewSnapshotRequest request;
    request.set_key(key);
    request.set_parent(parent);
    request.mutable_labels()->insert(labels.begin(), labels.end());
    return stub_->View(&context, request, response);
  }

  grpc::Status Mounts(const std::string& key, std::string* fs = nullptr) {
    ::containerd::services::snapshots::v1::MountsResponse response;
    grpc::Status s = Mounts(key, &response);
    if (s.ok() && fs) *fs = FsOf(response.mounts());
    return s;
  }
  grpc::Status Mounts(const std::string& key,
                      ::containerd::services::snapshots::v1::MountsResponse* response) {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::MountsRequest request;
    request.set_key(key);
    return stub_->Mounts(&context, request, response);
  }

  // `parent` is empty as containerd 1.6 sends it; 2.2+ sends one to rebase.
  grpc::Status Commit(const std::string& name, const std::string& key,
                      const Labels& labels = {}, const std::string& parent = "") {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::CommitSnapshotRequest request;
    request.set_name(name);
    request.set_key(key);
    request.set_parent(parent);
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
    Info wanted;
    wanted.set_name(key);
    wanted.mutable_labels()->insert(labels.begin(), labels.end());
    return Update(wanted, paths, info);
  }
  // Update with a whole Info as sent (any field, for the checks of paths).
  grpc::Status Update(const Info& wanted, const std::vector<std::string>& paths,
                      Info* info = nullptr) {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::UpdateSnapshotRequest request;
    *request.mutable_info() = wanted;
    for (const std::string& p : paths)
      request.mutable_update_mask()->add_paths(p);
    ::containerd::services::snapshots::v1::UpdateSnapshotResponse response;
    grpc::Status s = stub_->Update(&context, request, &response);
    if (s.ok() && info) *info = response.info();
    return s;
  }

  // Appends the listed snapshots to `infos`; `batches` (optional) gets the
  // number of stream messages they came in.
  grpc::Status List(std::vector<Info>* infos,
                    const std::vector<std::string>& filters = {},
                    int* batches = nullptr) {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::ListSnapshotsRequest request;
    for (const std::string& f : filters) request.add_filters(f);
    auto reader = stub_->List(&context, request);
    ::containerd::services::snapshots::v1::ListSnapshotsResponse response;
    int count = 0;
    while (reader->Read(&response)) {
      ++count;
      for (const Info& info : response.info()) infos->push_back(info);
    }
    if (batches) *batches = count;
    return reader->Finish();
  }

  grpc::Status Usage(const std::string& key,
                     ::containerd::services::snapshots::v1::UsageResponse* usage = nullptr) {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::UsageRequest request;
    request.set_key(key);
    ::containerd::services::snapshots::v1::UsageResponse ignored;
    return stub_->Usage(&context, request, usage ? usage : &ignored);
  }

  grpc::Status Cleanup() {
    grpc::ClientContext context;
    SetDeadline(context);
    ::containerd::services::snapshots::v1::CleanupRequest request;
    google::protobuf::Empty response;
    return stub_->Cleanup(&context, request, &response);
  }

  Stub* stub() { return stub_.get(); }

  // The snapshot's own fs directory in `mounts` (bind source or overlay
  // upperdir), or for a view of layers its nearest layer's.
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

 private:
  static void SetDeadline(grpc::ClientContext& context) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
  }

  std::unique_ptr<Stub> stub_;
};

}  // namespace cpp_overlay::testing

#endif  // CPP_OVERLAY_TESTS_TESTING_SNAPSHOTS_CLIENT_H_
