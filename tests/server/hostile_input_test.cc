// Hostile and malformed requests through a real gRPC channel: every one gets
// a clear error code, the server keeps serving, and nothing else changes
// (same snapshots, same directories). Keys and labels shaped like paths never
// reach outside the root. Also the root and socket permission rules.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "snapshotter/fs.h"
#include "snapshotter/overlay_snapshotter.h"
#include "tests/testing/snapshots_client.h"
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
    client_ = std::make_unique<testing::SnapshotsClient>(
        testing::SnapshotsClient::Dial(socket_, kMaxMessageBytes));
    // base (committed) <- active (active); base <- look (view).
    ASSERT_TRUE(client_->Prepare("base-a", "").ok());
    ASSERT_TRUE(client_->Commit("base", "base-a").ok());
    ASSERT_TRUE(client_->Prepare("active", "base").ok());
    ASSERT_TRUE(client_->View("look", "base").ok());
  }

  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  Fingerprint Take() {
    Fingerprint f;
    std::vector<v1::Info> infos;
    EXPECT_TRUE(client_->List(&infos, {}).ok());
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
    EXPECT_TRUE(client_->Stat("base").ok()) << what << ": the server stopped answering";
    Fingerprint after = Take();
    EXPECT_TRUE(before == after) << what << ": the request changed something";
  }

  testing::TempDir dir_;
  std::string root_;
  std::string socket_;
  std::unique_ptr<snapshotter::OverlaySnapshotter> snapshotter_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<testing::SnapshotsClient> client_;
};

TEST_F(HostileInputTest, EmptyKeysAndNamesAreInvalidArgument) {
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT, "Prepare \"\"",
                 [&] { return client_->Prepare("", ""); });
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT, "View \"\"",
                 [&] { return client_->View("", "base"); });
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT, "Commit to \"\"",
                 [&] { return client_->Commit("", "active"); });
  ExpectRejected(grpc::StatusCode::NOT_FOUND, "Remove \"\"",
                 [&] { return client_->Remove(""); });
  ExpectRejected(grpc::StatusCode::NOT_FOUND, "Stat \"\"",
                 [&] { return client_->Stat(""); });
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
    ASSERT_TRUE(client_->Prepare(key, "base",
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
    ASSERT_TRUE(client_->Stat(key, &info).ok());
    EXPECT_EQ(info.name(), key);
  }
  // "nul" is not "nul\0byte"; "1" is a key, not snapshot id 1.
  EXPECT_EQ(client_->Stat("nul").error_code(), grpc::StatusCode::NOT_FOUND);
  for (const std::string& key : keys) ASSERT_TRUE(client_->Remove(key).ok());
  EXPECT_TRUE(client_->Stat("base").ok());
  EXPECT_TRUE(client_->Prepare("after", "base").ok());
  EXPECT_FALSE(std::filesystem::exists("/tmp/escape"));
  // Nothing beside the root, nothing but our layout inside it.
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    std::string name = entry.path().filename();
    EXPECT_TRUE(name == "root" || name == "run") << name;
  }
  for (const auto& entry : std::filesystem::directory_iterator(root_)) {
    std::string name = entry.path().filename();
    EXPECT_TRUE(name == "metadata" || name == "snapshots" || name == "trash" ||
                name == "space-reserve")
        << name;
  }
}

TEST_F(HostileInputTest, KeysAndLabelsThatAreNotUtf8AreOpaqueBytes) {
  // containerd's Go client (gogo protobuf) sends any bytes in keys and
  // labels, and containerd's own snapshotter keeps them as they are.
  const std::string key = "bad\xff\xfe key";
  const std::string name = "layer \xc3";
  const Labels labels = {{"containerd.io/snapshot/\xfe", "value \xff"}};
  ASSERT_TRUE(client_->Prepare(key, "base", labels).ok());
  v1::Info info;
  ASSERT_TRUE(client_->Stat(key, &info).ok());
  EXPECT_EQ(info.name(), key);
  EXPECT_EQ(Labels(info.labels().begin(), info.labels().end()), labels);
  ASSERT_TRUE(client_->Commit(name, key, labels).ok());
  std::vector<v1::Info> infos;
  // A filter, though, is parsed as containerd parses it: UTF-8 only.
  EXPECT_EQ(client_->List(&infos, {"name==\"layer \xc3\""}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  infos.clear();
  ASSERT_TRUE(client_->List(&infos, {}).ok());
  bool listed = false;
  for (const v1::Info& i : infos) listed |= i.name() == name;
  EXPECT_TRUE(listed);
  ASSERT_TRUE(client_->Prepare("child", name).ok());
  ASSERT_TRUE(client_->Remove("child").ok());
  ASSERT_TRUE(client_->Remove(name).ok());
  EXPECT_EQ(client_->Stat(name).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(HostileInputTest, LongKeysAndMessagesNearTheLimitWork) {
  const std::string key(8 << 20, 'k');  // half the message limit
  ASSERT_TRUE(client_->Prepare(key, "base").ok());
  v1::Info info;
  ASSERT_TRUE(client_->Stat(key, &info).ok());
  EXPECT_EQ(info.name().size(), key.size());
  std::vector<v1::Info> infos;
  EXPECT_TRUE(client_->List(&infos, {}).ok());
  ASSERT_TRUE(client_->Remove(key).ok());
}

TEST_F(HostileInputTest, ListStreamsKeysWhoseSumExceedsOneMessage) {
  // Two keys of 9 MiB each do not fit one 16 MiB List batch.
  const std::string a(9 << 20, 'a');
  const std::string b(9 << 20, 'b');
  ASSERT_TRUE(client_->Prepare(a, "base").ok());
  ASSERT_TRUE(client_->Prepare(b, "base").ok());
  std::vector<v1::Info> infos;
  grpc::Status s = client_->List(&infos, {});
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(infos.size(), 5u);
  EXPECT_TRUE(client_->Remove(a).ok());
  EXPECT_TRUE(client_->Remove(b).ok());
}

TEST_F(HostileInputTest, MessagesOverTheLimitAreRefusedByTheServer) {
  client_ = std::make_unique<testing::SnapshotsClient>(
      testing::SnapshotsClient::Dial(socket_, 64 << 20));
  ExpectRejected(grpc::StatusCode::RESOURCE_EXHAUSTED,
                 "Prepare of a 17 MiB key",
                 [&] { return client_->Prepare(std::string(17 << 20, 'k'), "base"); });
}

TEST_F(HostileInputTest, LabelsOverContainerdsLimitAreInvalidArgument) {
  const std::string big(4097, 'v');
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT,
                 "Prepare with a 4097-byte label", [&] {
                   return client_->Prepare("x", "base", {{"k", big}});
                 });
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT,
                 "View with a 4097-byte label key", [&] {
                   return client_->View("x", "base", {{big, "v"}});
                 });
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT,
                 "Commit with a 4097-byte label", [&] {
                   return client_->Commit("x", "active", {{"k", big}});
                 });
  v1::Info info;
  info.set_name("base");
  (*info.mutable_labels())["k"] = big;
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT,
                 "Update with a 4097-byte label",
                 [&] { return client_->Update(info, {"labels.k"}); });
  // containerd's metadata checks labels with an empty value too.
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT,
                 "Prepare with a 4097-byte label key and no value", [&] {
                   return client_->Prepare("x", "base", {{big, ""}});
                 });
  // Key and value of exactly 4096 bytes together are fine.
  EXPECT_TRUE(client_->Prepare("x", "base", {{"k", std::string(4095, 'v')}}).ok());
}

// Labels may be added a few at a time; an Info over what a client reads in
// one message (16 MiB) would make its Stat, and every List (containerd's
// GC lists), fail for good.
TEST_F(HostileInputTest, UpdatesCannotGrowAnInfoPastWhatStatCanReturn) {
  Labels labels;
  for (int i = 0; i < 4000; ++i) {
    labels.emplace(absl::StrCat("k", i), std::string(3990, 'v'));
  }
  ASSERT_TRUE(client_->Prepare("big", "base", labels).ok());
  Labels more;
  std::vector<std::string> paths;
  for (int i = 0; i < 200; ++i) {
    more.emplace(absl::StrCat("more", i), std::string(3990, 'v'));
    paths.push_back(absl::StrCat("labels.more", i));
  }
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT,
                 "Update to labels of more than 16 MiB",
                 [&] { return client_->Update("big", more, paths); });
  v1::Info info;
  ASSERT_TRUE(client_->Stat("big", &info).ok());
  EXPECT_EQ(info.labels_size(), 4000);
  std::vector<v1::Info> infos;
  EXPECT_TRUE(client_->List(&infos, {}).ok());
  EXPECT_TRUE(client_->Remove("big").ok());
}

TEST_F(HostileInputTest, NamesAndParentsFollowContainerdsRules) {
  ExpectRejected(grpc::StatusCode::ALREADY_EXISTS,
                 "Prepare of an existing name",
                 [&] { return client_->Prepare("base", ""); });
  ExpectRejected(grpc::StatusCode::ALREADY_EXISTS, "View of an existing key",
                 [&] { return client_->View("active", "base"); });
  ExpectRejected(grpc::StatusCode::NOT_FOUND, "Prepare on itself as parent",
                 [&] { return client_->Prepare("self", "self"); });
  ExpectRejected(grpc::StatusCode::NOT_FOUND, "Prepare on a missing parent",
                 [&] { return client_->Prepare("x", "missing"); });
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT,
                 "Prepare on an active parent",
                 [&] { return client_->Prepare("x", "active"); });
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT, "Prepare on a view parent",
                 [&] { return client_->Prepare("x", "look"); });
  ExpectRejected(grpc::StatusCode::ALREADY_EXISTS,
                 "Commit onto an existing name",
                 [&] { return client_->Commit("base", "active"); });
  ExpectRejected(grpc::StatusCode::ALREADY_EXISTS, "Commit onto its own key",
                 [&] { return client_->Commit("active", "active"); });
  ExpectRejected(grpc::StatusCode::FAILED_PRECONDITION, "Commit of a view",
                 [&] { return client_->Commit("x", "look"); });
  ExpectRejected(grpc::StatusCode::FAILED_PRECONDITION,
                 "Commit of a committed snapshot",
                 [&] { return client_->Commit("x", "base"); });
  ExpectRejected(grpc::StatusCode::UNIMPLEMENTED,
                 "Commit onto another parent (rebase)",
                 [&] { return client_->Commit("x", "active", {}, "look"); });
  ExpectRejected(grpc::StatusCode::FAILED_PRECONDITION, "Remove of a parent",
                 [&] { return client_->Remove("base"); });
  v1::MountsResponse mounts;
  ExpectRejected(grpc::StatusCode::FAILED_PRECONDITION,
                 "Mounts of a committed snapshot",
                 [&] { return client_->Mounts("base", &mounts); });
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
                   [&] { return client_->Update(info, {path}); });
  }
  info.set_name("missing");
  ExpectRejected(grpc::StatusCode::NOT_FOUND, "Update of a missing snapshot",
                 [&] { return client_->Update(info, {"labels.a"}); });
  // No paths: labels only; the other fields are ignored.
  info.set_name("active");
  (*info.mutable_labels())["a"] = "b";
  ASSERT_TRUE(client_->Update(info, {}).ok());
  v1::Info after;
  ASSERT_TRUE(client_->Stat("active", &after).ok());
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
                   [&] { return client_->List(&infos, {filter}); });
  }
  // Each compiled regexp is kept while the List runs: their number and
  // memory are bounded.
  const std::vector<std::string> regexps(65, "name~=^a");
  std::vector<v1::Info> none;
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT, "65 regexps", [&] {
    return client_->List(&none, {absl::StrJoin(regexps, ",")});
  });
  const std::vector<std::string> large(64, "name~=[\\p{L}\\p{N}]{1000}");
  ExpectRejected(grpc::StatusCode::INVALID_ARGUMENT, "64 large regexps", [&] {
    return client_->List(&none, {absl::StrJoin(large, ",")});
  });
  // Path-shaped values are just strings to compare.
  std::vector<v1::Info> infos;
  ASSERT_TRUE(client_->List(&infos, {"name==\"../../etc/passwd\""}).ok());
  EXPECT_TRUE(infos.empty());
}

// Runs call(0..n-1) on n threads at once; expects exactly one OK and
// ALREADY_EXISTS for all the others.
void ExpectExactlyOneWinner(int n,
                            const std::function<grpc::Status(int)>& call) {
  std::atomic<int> ok{0}, exists{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      grpc::Status s = call(i);
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
  EXPECT_EQ(exists.load(), n - 1);
  EXPECT_EQ(other.load(), 0);
}

TEST_F(HostileInputTest, ConcurrentIdenticalPreparesHaveExactlyOneWinner) {
  constexpr int kClients = 32;
  const Fingerprint before = Take();
  ExpectExactlyOneWinner(kClients,
                         [&](int) { return client_->Prepare("same", "base"); });
  // Exactly one more snapshot and one more directory; the losers left none.
  const Fingerprint after = Take();
  EXPECT_EQ(after.snapshots.size(), before.snapshots.size() + 1);
  auto dirs = snapshotter::fs::ListDir(root_ + "/snapshots");
  ASSERT_OK(dirs);
  EXPECT_EQ(dirs->size(), 4u);  // base (base-a's id), active, look, same
}

// Concurrent Commits share filesystem syncs and log syncs; every one must
// still land, with its own record.
TEST_F(HostileInputTest, ConcurrentCommitsOfManyLayersAllLand) {
  constexpr int kClients = 8;
  constexpr int kLayersEach = 8;
  absl::Mutex mu;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      std::string parent = "base";
      for (int i = 0; i < kLayersEach; ++i) {
        const std::string name = absl::StrCat("layer-", c, "-", i);
        grpc::Status s = client_->Prepare(name + "-extract", parent);
        if (s.ok()) s = client_->Commit(name, name + "-extract");
        if (!s.ok()) {
          absl::MutexLock lock(&mu);
          failures.push_back(name + ": " + s.error_message());
          return;
        }
        parent = name;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_THAT(failures, ::testing::IsEmpty());
  for (int c = 0; c < kClients; ++c) {
    for (int i = 0; i < kLayersEach; ++i) {
      const std::string name = absl::StrCat("layer-", c, "-", i);
      v1::Info info;
      ASSERT_TRUE(client_->Stat(name, &info).ok()) << name;
      EXPECT_EQ(info.kind(), v1::COMMITTED) << name;
      EXPECT_EQ(info.parent(),
                i == 0 ? "base" : absl::StrCat("layer-", c, "-", i - 1));
      EXPECT_EQ(client_->Stat(name + "-extract").error_code(),
                grpc::StatusCode::NOT_FOUND);
    }
  }
}

TEST_F(HostileInputTest, ConcurrentCommitsToOneNameHaveExactlyOneWinner) {
  constexpr int kClients = 16;
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(client_->Prepare(absl::StrCat("extract-", i), "base").ok());
  }
  ExpectExactlyOneWinner(kClients, [&](int i) {
    return client_->Commit("layer", absl::StrCat("extract-", i));
  });
  // The winner's key is gone; the losers' snapshots are still active.
  int active = 0;
  for (int i = 0; i < kClients; ++i) {
    v1::Info info;
    if (client_->Stat(absl::StrCat("extract-", i), &info).ok()) {
      EXPECT_EQ(info.kind(), v1::ACTIVE);
      ++active;
    }
  }
  EXPECT_EQ(active, kClients - 1);
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
