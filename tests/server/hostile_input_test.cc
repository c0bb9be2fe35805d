// Hostile and malformed requests through a real gRPC channel: every one gets
// a clear error code, the server keeps serving, and nothing else changes
// (same snapshots, same directories). Keys and labels shaped like paths never
// reach outside the root. Also the root and socket permission rules.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "snapshotter/fs.h"
#include "snapshotter/overlay_snapshotter.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::server {
namespace {

namespace v1 = ::containerd::services::snapshots::v1;
using Labels = std::map<std::string, std::string>;
using ::cpp_overlay::testing::StatusIs;

// Every snapshot (name, kind, parent, labels) and every entry under the
// root, recursively: what "nothing else changes" compares.
struct Fingerprint {
  std::vector<std::string> snapshots;
  std::vector<std::string> files;
  bool operator==(const Fingerprint& o) const {
    return snapshots == o.snapshots && files == o.files;
  }
};

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "the snapshotter chowns and needs root";
    root_ = dir_.path() + "/root";
    auto snapshotter = snapshotter::OverlaySnapshotter::Open({.root = root_});
    ASSERT_OK(snapshotter);
    snapshotter_ = *std::move(snapshotter);
    socket_ = dir_.path() + "/run/snapshots.sock";
    Server::Options options;
    options.address = socket_;
    options.snapshotter = snapshotter_.get();
    auto server = Server::Start(options);
    ASSERT_OK(server);
    server_ = *std::move(server);
    stub_ = NewStub(kMaxMessageBytes);
    // base (committed) <- active (active); base <- look (view).
    ASSERT_TRUE(Prepare("base-a", "").ok());
    ASSERT_TRUE(Commit("base", "base-a").ok());
    ASSERT_TRUE(Prepare("active", "base").ok());
    ASSERT_TRUE(View("look", "base").ok());
  }

  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  std::unique_ptr<v1::Snapshots::Stub> NewStub(int max_send) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(max_send);
    return v1::Snapshots::NewStub(grpc::CreateCustomChannel(
        "unix:" + socket_, grpc::InsecureChannelCredentials(), args));
  }

  grpc::Status Prepare(const std::string& key, const std::string& parent,
                       const Labels& labels = {},
                       v1::PrepareSnapshotResponse* response = nullptr) {
    grpc::ClientContext context;
    v1::PrepareSnapshotRequest request;
    request.set_key(key);
    request.set_parent(parent);
    request.mutable_labels()->insert(labels.begin(), labels.end());
    v1::PrepareSnapshotResponse ignored;
    return stub_->Prepare(&context, request, response ? response : &ignored);
  }
  grpc::Status View(const std::string& key, const std::string& parent,
                    const Labels& labels = {}) {
    grpc::ClientContext context;
    v1::ViewSnapshotRequest request;
    request.set_key(key);
    request.set_parent(parent);
    request.mutable_labels()->insert(labels.begin(), labels.end());
    v1::ViewSnapshotResponse response;
    return stub_->View(&context, request, &response);
  }
  grpc::Status Commit(const std::string& name, const std::string& key,
                      const Labels& labels = {},
                      const std::string& parent = "") {
    grpc::ClientContext context;
    v1::CommitSnapshotRequest request;
    request.set_name(name);
    request.set_key(key);
    request.set_parent(parent);
    request.mutable_labels()->insert(labels.begin(), labels.end());
    google::protobuf::Empty response;
    return stub_->Commit(&context, request, &response);
  }
  grpc::Status Remove(const std::string& key) {
    grpc::ClientContext context;
    v1::RemoveSnapshotRequest request;
    request.set_key(key);
    google::protobuf::Empty response;
    return stub_->Remove(&context, request, &response);
  }
  grpc::Status Stat(const std::string& key, v1::Info* info = nullptr) {
    grpc::ClientContext context;
    v1::StatSnapshotRequest request;
    request.set_key(key);
    v1::StatSnapshotResponse response;
    grpc::Status s = stub_->Stat(&context, request, &response);
    if (info) *info = response.info();
    return s;
  }
  grpc::Status Mounts(const std::string& key, v1::MountsResponse* response) {
    grpc::ClientContext context;
    v1::MountsRequest request;
    request.set_key(key);
    return stub_->Mounts(&context, request, response);
  }
  grpc::Status Update(const v1::Info& info,
                      const std::vector<std::string>& paths) {
    grpc::ClientContext context;
    v1::UpdateSnapshotRequest request;
    *request.mutable_info() = info;
    for (const std::string& p : paths)
      request.mutable_update_mask()->add_paths(p);
    v1::UpdateSnapshotResponse response;
    return stub_->Update(&context, request, &response);
  }
  grpc::Status List(const std::vector<std::string>& filters,
                    std::vector<v1::Info>* infos) {
    grpc::ClientContext context;
    v1::ListSnapshotsRequest request;
    for (const std::string& f : filters) request.add_filters(f);
    auto reader = stub_->List(&context, request);
    v1::ListSnapshotsResponse response;
    while (reader->Read(&response)) {
      for (const v1::Info& info : response.info()) infos->push_back(info);
    }
    return reader->Finish();
  }

  Fingerprint Take() {
    Fingerprint f;
    std::vector<v1::Info> infos;
    EXPECT_TRUE(List({}, &infos).ok());
    for (const v1::Info& info : infos) {
      std::string line =
          info.name() + "|" + std::to_string(info.kind()) + "|" + info.parent();
      std::map<std::string, std::string> labels(info.labels().begin(),
                                                info.labels().end());
      for (const auto& [k, v] : labels) line += "|" + k + "=" + v;
      f.snapshots.push_back(line);
    }
    // The whole test directory: nothing may appear beside the root either.
    for (const auto& entry :
         std::filesystem::recursive_directory_iterator(dir_.path())) {
      std::string path = entry.path().string();
      if (path.find("/root/metadata") != std::string::npos)
        continue;  // RocksDB's own files
      if (path.find("/root/trash") != std::string::npos)
        continue;  // background deletes
      f.files.push_back(path);
    }
    std::sort(f.files.begin(), f.files.end());
    return f;
  }

  // Runs `call`, expects `code`, then that the server still answers and that
  // nothing changed.
  // `with_message`: false only where gRPC itself answers (before our code).
  template <typename Call>
  void ExpectRejected(grpc::StatusCode code, const std::string& what, Call call,
                      bool with_message = true) {
    Fingerprint before = Take();
    grpc::Status s = call();
    EXPECT_EQ(s.error_code(), code) << what << ": " << s.error_message();
    if (with_message) {
      EXPECT_FALSE(s.error_message().empty())
          << what << ": the error needs a message";
    }
    EXPECT_TRUE(Stat("base").ok()) << what << ": the server stopped answering";
    Fingerprint after = Take();
    EXPECT_TRUE(before == after) << what << ": the request changed something";
  }

  testing::TempDir dir_;
  std::string root_;
  std::string socket_;
  std::unique_ptr<snapshotter::OverlaySnapshotter> snapshotter_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<v1::Snapshots::Stub> stub_;
};

TEST_F(HostileInputTest, EmptyKeysAndNamesAreInvalidArgument) {
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT, "Prepare \"\"",
                 [&] { return Prepare("", ""); });
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT, "View \"\"",
                 [&] { return View("", "base"); });
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT, "Commit to \"\"",
                 [&] { return Commit("", "active"); });
  ExpectRejected(grpc::StatusCode::NOT_FOUND, "Remove \"\"",
                 [&] { return Remove(""); });
  ExpectRejected(grpc::StatusCode::NOT_FOUND, "Stat \"\"",
                 [&] { return Stat(""); });
}

TEST_F(HostileInputTest, KeysAreOpaqueBytesNeverPaths) {
  const std::vector<std::string> keys = {"/etc/passwd",
                                         "../../../../../tmp/escape",
                                         "..",
                                         ".",
                                         "a/b/../../c",
                                         std::string("nul\0byte", 8),
                                         "new\nline",
                                         "1",
                                         "new-1",
                                         "snapshots/1",
                                         "metadata",
                                         std::string(4096, '/'),
                                         "\x7f\x01\x1b[31m"};
  for (const std::string& key : keys) {
    v1::PrepareSnapshotResponse response;
    ASSERT_TRUE(Prepare(key, "base",
                        {{"containerd.io/snapshot/overlay.upperdir", "/etc"}},
                        &response)
                    .ok())
        << "key of " << key.size() << " bytes";
    for (const auto& mount : response.mounts()) {
      for (const std::string& option : mount.options()) {
        const size_t eq = option.find('=');
        if (eq == std::string::npos) continue;
        const std::string name = option.substr(0, eq);
        if (name != "lowerdir" && name != "upperdir" && name != "workdir")
          continue;
        std::string value = option.substr(eq + 1);
        for (size_t start = 0; start <= value.size();) {
          size_t end = value.find(':', start);
          std::string path = value.substr(start, end - start);
          EXPECT_EQ(path.rfind(root_ + "/snapshots/", 0), 0u) << option;
          EXPECT_EQ(path.find(".."), std::string::npos) << option;
          if (end == std::string::npos) break;
          start = end + 1;
        }
      }
    }
    v1::Info info;
    ASSERT_TRUE(Stat(key, &info).ok());
    EXPECT_EQ(info.name(), key);
  }
  // "nul" is not "nul\0byte"; "1" is a key, not snapshot id 1.
  EXPECT_EQ(Stat("nul").error_code(), grpc::StatusCode::NOT_FOUND);
  for (const std::string& key : keys) ASSERT_TRUE(Remove(key).ok());
  EXPECT_TRUE(Stat("base").ok());
  EXPECT_TRUE(Prepare("after", "base").ok());
  EXPECT_FALSE(std::filesystem::exists("/tmp/escape"));
  // Nothing beside the root, nothing but our layout inside it.
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    std::string name = entry.path().filename();
    EXPECT_TRUE(name == "root" || name == "run") << name;
  }
  for (const auto& entry : std::filesystem::directory_iterator(root_)) {
    std::string name = entry.path().filename();
    EXPECT_TRUE(name == "metadata" || name == "snapshots" || name == "trash")
        << name;
  }
}

TEST_F(HostileInputTest, KeysAndLabelsThatAreNotUtf8AreOpaqueBytes) {
  // containerd's Go client (gogo protobuf) sends any bytes in keys and
  // labels, and containerd's own snapshotter keeps them as they are.
  const std::string key = "bad\xff\xfe key";
  const std::string name = "layer \xc3";
  const Labels labels = {{"containerd.io/snapshot/\xfe", "value \xff"}};
  ASSERT_TRUE(Prepare(key, "base", labels).ok());
  v1::Info info;
  ASSERT_TRUE(Stat(key, &info).ok());
  EXPECT_EQ(info.name(), key);
  EXPECT_EQ(Labels(info.labels().begin(), info.labels().end()), labels);
  ASSERT_TRUE(Commit(name, key, labels).ok());
  std::vector<v1::Info> infos;
  // A filter, though, is parsed as containerd parses it: UTF-8 only.
  EXPECT_EQ(List({"name==\"layer \xc3\""}, &infos).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  infos.clear();
  ASSERT_TRUE(List({}, &infos).ok());
  bool listed = false;
  for (const v1::Info& i : infos) listed |= i.name() == name;
  EXPECT_TRUE(listed);
  ASSERT_TRUE(Prepare("child", name).ok());
  ASSERT_TRUE(Remove("child").ok());
  ASSERT_TRUE(Remove(name).ok());
  EXPECT_EQ(Stat(name).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(HostileInputTest, LongKeysAndMessagesNearTheLimitWork) {
  const std::string key(8 << 20, 'k');  // half the message limit
  ASSERT_TRUE(Prepare(key, "base").ok());
  v1::Info info;
  ASSERT_TRUE(Stat(key, &info).ok());
  EXPECT_EQ(info.name().size(), key.size());
  std::vector<v1::Info> infos;
  EXPECT_TRUE(List({}, &infos).ok());
  ASSERT_TRUE(Remove(key).ok());
}

TEST_F(HostileInputTest, ListStreamsKeysWhoseSumExceedsOneMessage) {
  // Two keys of 9 MiB each do not fit one 16 MiB List batch.
  const std::string a(9 << 20, 'a');
  const std::string b(9 << 20, 'b');
  ASSERT_TRUE(Prepare(a, "base").ok());
  ASSERT_TRUE(Prepare(b, "base").ok());
  std::vector<v1::Info> infos;
  grpc::Status s = List({}, &infos);
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(infos.size(), 5u);
  EXPECT_TRUE(Remove(a).ok());
  EXPECT_TRUE(Remove(b).ok());
}

TEST_F(HostileInputTest, MessagesOverTheLimitAreRefusedByTheServer) {
  stub_ = NewStub(64 << 20);
  ExpectRejected(grpc::StatusCode::RESOURCE_EXHAUSTED,
                 "Prepare of a 17 MiB key",
                 [&] { return Prepare(std::string(17 << 20, 'k'), "base"); });
}

TEST_F(HostileInputTest, LabelsOverContainerdsLimitAreInvalidArgument) {
  const std::string big(4097, 'v');
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT,
                 "Prepare with a 4097-byte label", [&] {
                   return Prepare("x", "base", {{"k", big}});
                 });
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT,
                 "View with a 4097-byte label key", [&] {
                   return View("x", "base", {{big, "v"}});
                 });
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT,
                 "Commit with a 4097-byte label", [&] {
                   return Commit("x", "active", {{"k", big}});
                 });
  v1::Info info;
  info.set_name("base");
  (*info.mutable_labels())["k"] = big;
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT,
                 "Update with a 4097-byte label",
                 [&] { return Update(info, {"labels.k"}); });
  // Key and value of exactly 4096 bytes together are fine.
  EXPECT_TRUE(Prepare("x", "base", {{"k", std::string(4095, 'v')}}).ok());
}

TEST_F(HostileInputTest, NamesAndParentsFollowContainerdsRules) {
  ExpectRejected(grpc::StatusCode::ALREADY_EXISTS,
                 "Prepare of an existing name",
                 [&] { return Prepare("base", ""); });
  ExpectRejected(grpc::StatusCode::ALREADY_EXISTS, "View of an existing key",
                 [&] { return View("active", "base"); });
  ExpectRejected(grpc::StatusCode::NOT_FOUND, "Prepare on itself as parent",
                 [&] { return Prepare("self", "self"); });
  ExpectRejected(grpc::StatusCode::NOT_FOUND, "Prepare on a missing parent",
                 [&] { return Prepare("x", "missing"); });
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT,
                 "Prepare on an active parent",
                 [&] { return Prepare("x", "active"); });
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT, "Prepare on a view parent",
                 [&] { return Prepare("x", "look"); });
  ExpectRejected(grpc::StatusCode::ALREADY_EXISTS,
                 "Commit onto an existing name",
                 [&] { return Commit("base", "active"); });
  ExpectRejected(grpc::StatusCode::ALREADY_EXISTS, "Commit onto its own key",
                 [&] { return Commit("active", "active"); });
  ExpectRejected(grpc::StatusCode::FAILED_PRECONDITION, "Commit of a view",
                 [&] { return Commit("x", "look"); });
  ExpectRejected(grpc::StatusCode::FAILED_PRECONDITION,
                 "Commit of a committed snapshot",
                 [&] { return Commit("x", "base"); });
  ExpectRejected(grpc::StatusCode::UNIMPLEMENTED,
                 "Commit onto another parent (rebase)",
                 [&] { return Commit("x", "active", {}, "look"); });
  ExpectRejected(grpc::StatusCode::FAILED_PRECONDITION, "Remove of a parent",
                 [&] { return Remove("base"); });
  v1::MountsResponse mounts;
  ExpectRejected(grpc::StatusCode::FAILED_PRECONDITION,
                 "Mounts of a committed snapshot",
                 [&] { return Mounts("base", &mounts); });
}

TEST_F(HostileInputTest, UpdateTouchesOnlyLabels) {
  v1::Info info;
  info.set_name("active");
  info.set_parent("look");
  info.set_kind(v1::COMMITTED);
  for (const char* path :
       {"name", "parent", "kind", "created_at", "updated_at", "labels_x",
        "unknown.field", ""}) {
    ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT,
                   "Update of \"" + std::string(path) + "\"",
                   [&] { return Update(info, {path}); });
  }
  info.set_name("missing");
  ExpectRejected(grpc::StatusCode::NOT_FOUND, "Update of a missing snapshot",
                 [&] { return Update(info, {"labels.a"}); });
  // No paths: labels only; the other fields are ignored.
  info.set_name("active");
  (*info.mutable_labels())["a"] = "b";
  ASSERT_TRUE(Update(info, {}).ok());
  v1::Info after;
  ASSERT_TRUE(Stat("active", &after).ok());
  EXPECT_EQ(after.parent(), "base");
  EXPECT_EQ(after.kind(), v1::ACTIVE);
  EXPECT_EQ(after.labels().at("a"), "b");
}

TEST_F(HostileInputTest, MalformedFiltersAreInvalidArgument) {
  const std::vector<std::string> filters = {"labels.\"unterminated",
                                            "name~=(",
                                            "name~=\"[z-a]\"",
                                            "name==",
                                            "==base",
                                            "name==a,,",
                                            "labels.a==\"\\q\"",
                                            "name!~=*",
                                            std::string("name==\0", 7),
                                            "("};
  for (const std::string& filter : filters) {
    std::vector<v1::Info> infos;
    ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT, "filter " + filter,
                   [&] { return List({filter}, &infos); });
  }
  // Path-shaped values are just strings to compare.
  std::vector<v1::Info> infos;
  ASSERT_TRUE(List({"name==\"../../etc/passwd\""}, &infos).ok());
  EXPECT_TRUE(infos.empty());
}

TEST_F(HostileInputTest, ConcurrentIdenticalPreparesHaveExactlyOneWinner) {
  constexpr int kClients = 32;
  const Fingerprint before = Take();
  std::atomic<int> ok{0}, exists{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&] {
      grpc::Status s = Prepare("same", "base");
      if (s.ok()) {
        ++ok;
      } else if (s.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
        ++exists;
      } else {
        ++other;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(exists.load(), kClients - 1);
  EXPECT_EQ(other.load(), 0);
  // Exactly one more snapshot and one more directory; the losers left none.
  const Fingerprint after = Take();
  EXPECT_EQ(after.snapshots.size(), before.snapshots.size() + 1);
  auto dirs = snapshotter::fs::ListDir(root_ + "/snapshots");
  ASSERT_OK(dirs);
  EXPECT_EQ(dirs->size(), 4u);  // base (base-a's id), active, look, same
}

// --- root and socket permissions ---------------------------------------------

class RootPermissionsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(geteuid(), 0u) << "needs root to chown"; }
  testing::TempDir dir_;
};

TEST_F(RootPermissionsTest, SymlinkRootIsRefused) {
  const std::string real = dir_.path() + "/real";
  ASSERT_EQ(mkdir(real.c_str(), 0700), 0);
  const std::string link = dir_.path() + "/link";
  ASSERT_EQ(symlink(real.c_str(), link.c_str()), 0);
  EXPECT_THAT(snapshotter::OverlaySnapshotter::Open({.root = link}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_FALSE(std::filesystem::exists(real + "/metadata"));
}

TEST_F(RootPermissionsTest, RootOwnedByAnotherUserIsRefused) {
  const std::string root = dir_.path() + "/theirs";
  ASSERT_EQ(mkdir(root.c_str(), 0700), 0);
  ASSERT_EQ(chown(root.c_str(), 65534, 65534), 0);
  EXPECT_THAT(snapshotter::OverlaySnapshotter::Open({.root = root}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(RootPermissionsTest, WorldWritableRootOfOursIsTightenedTo0700) {
  const std::string root = dir_.path() + "/loose";
  ASSERT_EQ(mkdir(root.c_str(), 0777), 0);
  ASSERT_EQ(chmod(root.c_str(), 0777), 0);
  auto opened = snapshotter::OverlaySnapshotter::Open({.root = root});
  ASSERT_OK(opened);
  struct stat st;
  ASSERT_EQ(stat(root.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(RootPermissionsTest, NewRootIsMade0700AndSocketIs0660) {
  const std::string root = dir_.path() + "/new/root";
  auto opened = snapshotter::OverlaySnapshotter::Open({.root = root});
  ASSERT_OK(opened);
  struct stat st;
  ASSERT_EQ(stat(root.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  Server::Options options;
  options.address = dir_.path() + "/run/s.sock";
  options.snapshotter = opened->get();
  auto server = Server::Start(options);
  ASSERT_OK(server);
  ASSERT_EQ(stat(options.address.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_uid, 0u);
  (*server)->Shutdown(absl::ZeroDuration());
}

}  // namespace
}  // namespace cpp_overlay::server
