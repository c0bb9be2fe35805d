// libFuzzer target: random sequences of Snapshots requests against the real
// service (SnapshotsService over an OverlaySnapshotter on a temporary root),
// through an in-process gRPC channel. Keys, parents, labels, filters and
// update paths come from the input, mixed with a small pool of colliding and
// path-shaped keys so that sequences build real chains.
//
// Besides what the sanitizers catch it aborts when:
//   - a call answers a code containerd's snapshot API never uses for bad
//     input (anything but OK, NotFound, AlreadyExists, InvalidArgument,
//     FailedPrecondition, Unimplemented);
//   - a returned mount names a path outside <root>/snapshots/;
//   - after removing everything, snapshots remain or snapshots/ is not empty.
// Needs root (the snapshotter chowns). Run: snapshots_fuzzer CORPUS_DIR.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "grpcpp/server_builder.h"
#include "server/snapshots_service.h"
#include "snapshotter/fs.h"
#include "snapshotter/overlay_snapshotter.h"
#include "spdlog/spdlog.h"

namespace {

namespace v1 = ::containerd::services::snapshots::v1;

struct Env {
  std::string root;
  std::unique_ptr<cpp_overlay::snapshotter::OverlaySnapshotter> snapshotter;
  std::unique_ptr<cpp_overlay::server::SnapshotsService> service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<v1::Snapshots::Stub> stub;
};

Env* env = nullptr;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "snapshots_fuzzer: %s\n", what.c_str());
  std::abort();
}

void CheckCode(const grpc::Status& s, const char* method) {
  switch (s.error_code()) {
    case grpc::StatusCode::OK:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::UNIMPLEMENTED:
      return;
    default:
      Fail(std::string(method) + " answered code " + std::to_string(s.error_code()) + ": " +
           s.error_message());
  }
}

template <typename Mounts>
void CheckMounts(const Mounts& mounts) {
  const std::string inside = env->root + "/snapshots/";
  for (const auto& m : mounts) {
    if (m.type() == "bind" && m.source().rfind(inside, 0) != 0) Fail("bind of " + m.source());
    for (const std::string& o : m.options()) {
      const size_t eq = o.find('=');
      if (eq == std::string::npos) continue;
      const std::string name = o.substr(0, eq);
      if (name != "lowerdir" && name != "upperdir" && name != "workdir") continue;
      size_t start = eq + 1;
      while (true) {
        size_t end = o.find(':', start);
        std::string path = o.substr(start, end == std::string::npos ? end : end - start);
        if (path.rfind(inside, 0) != 0 || path.find("/..") != std::string::npos) {
          Fail("mount option " + o);
        }
        if (end == std::string::npos) break;
        start = end + 1;
      }
    }
  }
}

// ASCII (NUL and newline included): for filters and field paths, which
// are parsed as text.
std::string AsciiString(FuzzedDataProvider& in, size_t max) {
  std::string s = in.ConsumeRandomLengthString(max);
  for (char& c : s) c = static_cast<char>(static_cast<unsigned char>(c) & 0x7f);
  return s;
}

std::string Key(FuzzedDataProvider& in) {
  static const char* const kPool[] = {"a", "b", "c", "d", "a/b", "..", "../../etc", "/",
                                      "1", "new-1", "", "k\n", "x"};
  if (in.ConsumeIntegralInRange<int>(0, 7) != 0) {
    return kPool[in.ConsumeIntegralInRange<size_t>(0, std::size(kPool) - 1)];
  }
  if (in.ConsumeBool()) return std::string(in.ConsumeIntegralInRange<size_t>(1, 70000), 'L');
  // Keys are opaque bytes, UTF-8 or not, as containerd's Go client sends them.
  return in.ConsumeRandomLengthString(64);
}

std::map<std::string, std::string> SomeLabels(FuzzedDataProvider& in) {
  std::map<std::string, std::string> labels;
  int n = in.ConsumeIntegralInRange<int>(0, 3);
  for (int i = 0; i < n; ++i) {
    std::string k = in.ConsumeBool() ? "containerd.io/snapshot.ref" : in.ConsumeRandomLengthString(16);
    std::string v = in.ConsumeBool() ? std::string(in.ConsumeIntegralInRange<size_t>(0, 4200), 'v')
                                     : in.ConsumeRandomLengthString(32);
    labels[k] = v;
  }
  return labels;
}

void RunOne(FuzzedDataProvider& in) {
  grpc::ClientContext context;
  const int op = in.ConsumeIntegralInRange<int>(0, 9);
  switch (op) {
    case 0:
    case 1: {
      v1::PrepareSnapshotRequest req;
      req.set_key(Key(in));
      req.set_parent(Key(in));
      auto labels = SomeLabels(in);
      req.mutable_labels()->insert(labels.begin(), labels.end());
      v1::PrepareSnapshotResponse resp;
      grpc::Status s = env->stub->Prepare(&context, req, &resp);
      CheckCode(s, "Prepare");
      CheckMounts(resp.mounts());
      break;
    }
    case 2: {
      v1::ViewSnapshotRequest req;
      req.set_key(Key(in));
      req.set_parent(Key(in));
      v1::ViewSnapshotResponse resp;
      grpc::Status s = env->stub->View(&context, req, &resp);
      CheckCode(s, "View");
      CheckMounts(resp.mounts());
      break;
    }
    case 3: {
      v1::CommitSnapshotRequest req;
      req.set_name(Key(in));
      req.set_key(Key(in));
      if (in.ConsumeIntegralInRange<int>(0, 5) == 0) req.set_parent(Key(in));
      auto labels = SomeLabels(in);
      req.mutable_labels()->insert(labels.begin(), labels.end());
      google::protobuf::Empty resp;
      CheckCode(env->stub->Commit(&context, req, &resp), "Commit");
      break;
    }
    case 4: {
      v1::RemoveSnapshotRequest req;
      req.set_key(Key(in));
      google::protobuf::Empty resp;
      CheckCode(env->stub->Remove(&context, req, &resp), "Remove");
      break;
    }
    case 5: {
      v1::MountsRequest req;
      req.set_key(Key(in));
      v1::MountsResponse resp;
      grpc::Status s = env->stub->Mounts(&context, req, &resp);
      CheckCode(s, "Mounts");
      CheckMounts(resp.mounts());
      break;
    }
    case 6: {
      v1::UpdateSnapshotRequest req;
      req.mutable_info()->set_name(Key(in));
      req.mutable_info()->set_parent(Key(in));
      req.mutable_info()->set_kind(static_cast<v1::Kind>(in.ConsumeIntegralInRange<int>(0, 3)));
      auto labels = SomeLabels(in);
      req.mutable_info()->mutable_labels()->insert(labels.begin(), labels.end());
      static const char* const kPaths[] = {"labels", "labels.a", "name", "parent", "kind", ""};
      int n = in.ConsumeIntegralInRange<int>(0, 2);
      for (int i = 0; i < n; ++i) {
        req.mutable_update_mask()->add_paths(
            in.ConsumeBool() ? kPaths[in.ConsumeIntegralInRange<size_t>(0, std::size(kPaths) - 1)]
                             : "labels." + AsciiString(in, 16));
      }
      v1::UpdateSnapshotResponse resp;
      CheckCode(env->stub->Update(&context, req, &resp), "Update");
      break;
    }
    case 7: {
      v1::ListSnapshotsRequest req;
      int n = in.ConsumeIntegralInRange<int>(0, 2);
      for (int i = 0; i < n; ++i) req.add_filters(AsciiString(in, 48));
      auto reader = env->stub->List(&context, req);
      v1::ListSnapshotsResponse resp;
      while (reader->Read(&resp)) {
      }
      CheckCode(reader->Finish(), "List");
      break;
    }
    case 8: {
      v1::StatSnapshotRequest req;
      req.set_key(Key(in));
      v1::StatSnapshotResponse resp;
      CheckCode(env->stub->Stat(&context, req, &resp), "Stat");
      v1::UsageRequest ureq;
      ureq.set_key(req.key());
      v1::UsageResponse uresp;
      grpc::ClientContext context2;
      CheckCode(env->stub->Usage(&context2, ureq, &uresp), "Usage");
      break;
    }
    case 9: {
      v1::CleanupRequest req;
      google::protobuf::Empty resp;
      CheckCode(env->stub->Cleanup(&context, req, &resp), "Cleanup");
      break;
    }
  }
}

// Removes every snapshot, children first; the next input starts empty.
void RemoveEverything() {
  for (int round = 0; round < 64; ++round) {
    std::vector<std::string> keys;
    {
      grpc::ClientContext context;
      auto reader = env->stub->List(&context, v1::ListSnapshotsRequest());
      v1::ListSnapshotsResponse resp;
      while (reader->Read(&resp)) {
        for (const auto& info : resp.info()) keys.push_back(info.name());
      }
      CheckCode(reader->Finish(), "List");
    }
    if (keys.empty()) break;
    for (const std::string& key : keys) {
      grpc::ClientContext context;
      v1::RemoveSnapshotRequest req;
      req.set_key(key);
      google::protobuf::Empty resp;
      CheckCode(env->stub->Remove(&context, req, &resp), "Remove");
    }
  }
  auto entries = cpp_overlay::snapshotter::fs::ListDir(env->root + "/snapshots");
  if (!entries.ok() || !entries->empty()) {
    Fail("snapshots/ not empty after removing every snapshot");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (geteuid() != 0) {
    std::fprintf(stderr, "snapshots_fuzzer: run as root (the snapshotter chowns)\n");
    std::exit(2);
  }
  spdlog::set_level(spdlog::level::off);
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                    "/cpp-overlay-fuzz-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) std::exit(2);
  env = new Env;
  env->root = std::string(dir) + "/root";
  auto snapshotter = cpp_overlay::snapshotter::OverlaySnapshotter::Open({.root = env->root});
  if (!snapshotter.ok()) {
    std::fprintf(stderr, "snapshots_fuzzer: %s\n", snapshotter.status().ToString().c_str());
    std::exit(2);
  }
  env->snapshotter = *std::move(snapshotter);
  env->service = std::make_unique<cpp_overlay::server::SnapshotsService>(env->snapshotter.get());
  grpc::ServerBuilder builder;
  builder.RegisterService(env->service.get());
  builder.SetMaxReceiveMessageSize(16 << 20);
  builder.SetMaxSendMessageSize(16 << 20);
  env->server = builder.BuildAndStart();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  args.SetMaxSendMessageSize(16 << 20);
  env->stub = v1::Snapshots::NewStub(env->server->InProcessChannel(args));
  // The temporary root goes when the fuzzer exits normally (fuzz-smoke.sh
  // also points TMPDIR into a directory it removes).
  std::atexit([] {
    std::error_code ignored;
    std::filesystem::remove_all(std::filesystem::path(env->root).parent_path(), ignored);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  for (int i = 0; i < 32 && in.remaining_bytes() > 0; ++i) RunOne(in);
  RemoveEverything();
  return 0;
}
