// Failure injection: for every crash point (snapshotter/crash_points.h) the
// daemon is killed exactly there, then checked: before restart fsck finds
// nothing but leftovers that reconciliation collects; after restart the
// operation either happened completely or not at all, everything else is
// intact, and once the daemon stops again fsck finds nothing.
#include "snapshotter/crash_points.h"

#include <sys/stat.h>

#include <set>
#include <string>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/crash/daemon_process.h"
#include "tests/crash/root_checks.h"
#include "tests/testing/snapshots_client.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::testing {
namespace {

using ::testing::HasSubstr;

// The operation that is run to reach a crash point.
enum class Op {
  kPrepare,          // Prepare "new" on "base"
  kView,             // View "new" on "base"
  kCommit,           // Commit active "victim" as "victim-c"
  kRemoveCommitted,  // Remove committed leaf "leaf"
  kRemoveActive,     // Remove active "victim"
  kUpdate,           // Update labels of "base"
  kCleanupRpc,       // Cleanup with two orphan directories
  kStartup,          // start-up reconciliation with two orphan directories
};

struct Case {
  const char* spec;  // CPP_OVERLAY_CRASH_AT
  Op op;
};

const Case kCases[] = {
    {"create.after_snapshot_dir", Op::kPrepare},
    {"create.after_dirs", Op::kPrepare},
    {"create.after_metadata", Op::kPrepare},
    {"create.after_snapshot_dir", Op::kView},
    {"create.after_dirs", Op::kView},
    {"create.after_metadata", Op::kView},
    {"commit.after_usage", Op::kCommit},
    {"commit.after_metadata", Op::kCommit},
    {"remove.after_metadata", Op::kRemoveCommitted},
    {"remove.after_delete", Op::kRemoveCommitted},
    {"remove.after_metadata", Op::kRemoveActive},
    {"remove.after_delete", Op::kRemoveActive},
    {"update.after_metadata", Op::kUpdate},
    {"cleanup.after_list", Op::kStartup},
    {"cleanup.after_remove_one", Op::kStartup},
    // The first pass is start-up reconciliation; the second is the RPC.
    {"cleanup.after_list:2", Op::kCleanupRpc},
    {"cleanup.after_remove_one", Op::kCleanupRpc},
};

std::string PointOf(const char* spec) {
  return std::string(std::vector<std::string>(absl::StrSplit(spec, ':'))[0]);
}

std::string OpName(Op op) {
  switch (op) {
    case Op::kPrepare:
      return "Prepare";
    case Op::kView:
      return "View";
    case Op::kCommit:
      return "Commit";
    case Op::kRemoveCommitted:
      return "RemoveCommitted";
    case Op::kRemoveActive:
      return "RemoveActive";
    case Op::kUpdate:
      return "Update";
    case Op::kCleanupRpc:
      return "CleanupRpc";
    case Op::kStartup:
      return "Startup";
  }
  return "";
}

// Names the case in test listings (and so in ctest's test names).
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.spec << " " << OpName(c.op);
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  std::string name = std::string(info.param.spec) + "_" + OpName(info.param.op);
  for (char& c : name) {
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

bool SameLabels(const SnapshotsClient::Info& info, const Labels& want) {
  return Labels(info.labels().begin(), info.labels().end()) == want;
}

class CrashPointTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u)
        << "the daemon chowns snapshot directories: run as root";
    ASSERT_FALSE(DaemonBinary().empty())
        << "set CPP_OVERLAY_DAEMON to the daemon binary";
    root_ = dir_.path() + "/root";
    daemon_ = std::make_unique<DaemonProcess>(DaemonBinary(), root_,
                                              dir_.path() + "/d.sock",
                                              dir_.path() + "/daemon.log");
  }

  void TearDown() override {
    if (daemon_ == nullptr) return;
    daemon_->Kill();
    if (HasFailure()) std::cerr << "daemon log:\n" << daemon_->Log();
  }

  void StartAndConnect(const std::map<std::string, std::string>& env = {}) {
    ASSERT_TRUE(daemon_->Start(env).ok());
    absl::Status ready = daemon_->WaitReady();
    ASSERT_TRUE(ready.ok()) << ready;
    client_ = std::make_unique<SnapshotsClient>(daemon_->NewStub());
  }

  // base (committed, marker) <- victim (active, marker)  and  base <- leaf.
  void MakeBaseState() {
    std::string fs;
    ASSERT_TRUE(client_->Prepare("base-active", "", {}, &fs).ok());
    WriteFile(fs + "/marker", "base");
    base_fs_ = fs;
    ASSERT_TRUE(client_->Commit("base", "base-active", {{"l", "base"}}).ok());
    ASSERT_TRUE(
        client_->Prepare("victim", "base", {{"l", "v"}}, &victim_fs_).ok());
    ASSERT_FALSE(victim_fs_.empty());
    WriteFile(victim_fs_ + "/marker", "victim");
    ASSERT_TRUE(client_->Prepare("leaf-active", "base", {}, &fs).ok());
    ASSERT_TRUE(client_->Commit("leaf", "leaf-active", {}).ok());
  }

  void MakeOrphans() {
    ASSERT_EQ(mkdir((root_ + "/snapshots/999999").c_str(), 0700), 0);
    ASSERT_EQ(mkdir((root_ + "/snapshots/999999/fs").c_str(), 0755), 0);
    ASSERT_EQ(mkdir((root_ + "/snapshots/new-999998").c_str(), 0700), 0);
  }

  bool OrphansGone() {
    struct stat st;
    return lstat((root_ + "/snapshots/999999").c_str(), &st) != 0 &&
           lstat((root_ + "/snapshots/new-999998").c_str(), &st) != 0;
  }

  grpc::Status RunOp(Op op) {
    switch (op) {
      case Op::kPrepare:
        return client_->Prepare("new", "base", {{"l", "new"}});
      case Op::kView:
        return client_->View("new", "base", {{"l", "new"}});
      case Op::kCommit:
        return client_->Commit("victim-c", "victim", {{"l", "c"}});
      case Op::kRemoveCommitted:
        return client_->Remove("leaf");
      case Op::kRemoveActive:
        return client_->Remove("victim");
      case Op::kUpdate:
        return client_->Update("base", {{"u", "1"}}, {"labels.u"});
      case Op::kCleanupRpc:
        return client_->Cleanup();
      case Op::kStartup:
        return grpc::Status::OK;
    }
    return grpc::Status::OK;
  }

  // What must hold after the restart, by operation and crash point.
  void ExpectOutcome(Op op, const std::string& point) {
    SnapshotsClient::Info info;
    // Untouched by every operation but its own.
    if (op != Op::kUpdate) {
      ASSERT_TRUE(client_->Stat("base", &info).ok());
      EXPECT_TRUE(SameLabels(info, {{"l", "base"}}));
    }
    EXPECT_EQ(ReadFile(base_fs_ + "/marker"), "base");
    switch (op) {
      case Op::kPrepare:
      case Op::kView: {
        grpc::Status s = client_->Stat("new", &info);
        if (point == "create.after_metadata") {
          ASSERT_TRUE(s.ok()) << s.error_message();
          EXPECT_EQ(info.parent(), "base");
          EXPECT_TRUE(SameLabels(info, {{"l", "new"}}));
          EXPECT_EQ(info.kind(), op == Op::kPrepare ? snapshots_v1::ACTIVE
                                                    : snapshots_v1::VIEW);
          EXPECT_TRUE(client_->Mounts("new").ok());
          EXPECT_TRUE(client_->Remove("new").ok());
        } else {
          EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
          // The key is free again.
          EXPECT_TRUE(client_->Prepare("new", "base").ok());
        }
        break;
      }
      case Op::kCommit:
        if (point == "commit.after_metadata") {
          ASSERT_TRUE(client_->Stat("victim-c", &info).ok());
          EXPECT_EQ(info.kind(), snapshots_v1::COMMITTED);
          EXPECT_EQ(info.parent(), "base");
          EXPECT_TRUE(SameLabels(info, {{"l", "c"}}));
          EXPECT_EQ(client_->Stat("victim").error_code(),
                    grpc::StatusCode::NOT_FOUND);
        } else {
          ASSERT_TRUE(client_->Stat("victim", &info).ok());
          EXPECT_EQ(info.kind(), snapshots_v1::ACTIVE);
          EXPECT_EQ(client_->Stat("victim-c").error_code(),
                    grpc::StatusCode::NOT_FOUND);
          EXPECT_TRUE(client_->Commit("victim-c", "victim").ok());
        }
        EXPECT_EQ(ReadFile(victim_fs_ + "/marker"), "victim");
        break;
      case Op::kRemoveCommitted:
        EXPECT_EQ(client_->Stat("leaf").error_code(),
                  grpc::StatusCode::NOT_FOUND);
        EXPECT_TRUE(client_->Stat("victim").ok());
        break;
      case Op::kRemoveActive:
        EXPECT_EQ(client_->Stat("victim").error_code(),
                  grpc::StatusCode::NOT_FOUND);
        EXPECT_TRUE(client_->Stat("leaf").ok());
        break;
      case Op::kUpdate:
        ASSERT_TRUE(client_->Stat("base", &info).ok());
        EXPECT_TRUE(SameLabels(info, {{"l", "base"}, {"u", "1"}}));
        break;
      case Op::kCleanupRpc:
      case Op::kStartup:
        EXPECT_TRUE(OrphansGone());
        EXPECT_TRUE(client_->Stat("victim").ok());
        EXPECT_TRUE(client_->Stat("leaf").ok());
        break;
    }
    // The base layer still works as a parent.
    EXPECT_TRUE(client_->Prepare("after-restart", "base").ok());
  }

  TempDir dir_;
  std::string root_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<SnapshotsClient> client_;
  std::string base_fs_;
  std::string victim_fs_;
};

TEST_P(CrashPointTest, CrashLeavesARootThatReconcilesToAllOrNothing) {
  const Case& c = GetParam();
  const std::string point = PointOf(c.spec);

  // 1. Known state, made by a daemon without crash points.
  ASSERT_NO_FATAL_FAILURE(StartAndConnect());
  ASSERT_NO_FATAL_FAILURE(MakeBaseState());
  client_.reset();  // an idle sync channel would delay the stop by its 5 s poll
  ASSERT_EQ(daemon_->Terminate(), 0);

  // 2. Crash exactly at the point.
  if (c.op == Op::kStartup) {
    ASSERT_NO_FATAL_FAILURE(MakeOrphans());
    ASSERT_TRUE(daemon_->Start({{"CPP_OVERLAY_CRASH_AT", c.spec}}).ok());
    daemon_->Wait();
  } else {
    ASSERT_NO_FATAL_FAILURE(
        StartAndConnect({{"CPP_OVERLAY_CRASH_AT", c.spec}}));
    if (c.op == Op::kCleanupRpc) {
      ASSERT_NO_FATAL_FAILURE(MakeOrphans());
    }
    grpc::Status s = RunOp(c.op);
    EXPECT_FALSE(s.ok())
        << "the call returned OK although the daemon should have died";
    daemon_->Wait();
  }
  ASSERT_TRUE(daemon_->KilledBySigkill())
      << "wait status " << daemon_->exit_status();
  ASSERT_THAT(daemon_->Log(), HasSubstr("crash point " + point + " reached"));

  // 3. The crashed root: nothing but what reconciliation collects.
  absl::StatusOr<std::vector<metadata::Finding>> findings = FsckFindings(root_);
  ASSERT_TRUE(findings.ok()) << findings.status();
  for (const metadata::Finding& f : *findings) {
    EXPECT_TRUE(IsCrashLeftover(f))
        << "after the crash: " << f.kind << " " << f.object << ": " << f.detail;
  }

  // 4. Restart: all or nothing, and the rest intact.
  ASSERT_NO_FATAL_FAILURE(StartAndConnect());
  ASSERT_NO_FATAL_FAILURE(ExpectOutcome(c.op, point));

  // 5. After reconciliation and a clean stop, fsck finds nothing.
  client_.reset();  // an idle sync channel would delay the stop by its 5 s poll
  ASSERT_EQ(daemon_->Terminate(), 0);
  findings = FsckFindings(root_);
  ASSERT_TRUE(findings.ok()) << findings.status();
  EXPECT_TRUE(findings->empty()) << "after restart:\n"
                                 << FindingsString(*findings);
}

INSTANTIATE_TEST_SUITE_P(EveryCrashPoint, CrashPointTest,
                         ::testing::ValuesIn(kCases), CaseName);

TEST(CrashPointListTest, EveryCrashPointHasACase) {
  std::set<std::string> covered;
  for (const Case& c : kCases) covered.insert(PointOf(c.spec));
  for (const char* point : snapshotter::kCrashPoints) {
    EXPECT_TRUE(covered.count(point))
        << point << " has no failure-injection case";
  }
}

}  // namespace
}  // namespace cpp_overlay::testing
