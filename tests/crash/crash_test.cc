// Random crashes under load: several clients build, view, update and remove
// chains of snapshots against the daemon while it is SIGKILLed at a random
// moment, CPP_OVERLAY_CRASH_CYCLES times (default 30). After every kill:
//   - fsck finds nothing but directories reconciliation collects;
//   - after restart every acknowledged Commit is there with its parent,
//     labels and files, every acknowledged Prepare/View too, nothing
//     acknowledged as removed reappears, and nothing unknown appears;
//     operations cut by the kill happened completely or not at all;
//   - after a clean stop fsck finds nothing: no metadata without its
//     directory, no directory without metadata.
// CPP_OVERLAY_CRASH_SEED fixes the random choices (the seed is printed).
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/crash/daemon_process.h"
#include "tests/crash/root_checks.h"
#include "tests/testing/snapshots_client.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::testing {
namespace {

constexpr int kWorkers = 4;

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// What the daemon acknowledged, and what a kill left undecided.
struct Model {
  enum class Kind { kActive, kView, kCommitted };
  struct Snapshot {
    Kind kind;
    std::string parent;
    Labels labels;
    std::string fs;        // own fs directory (active and committed)
    std::string marker;    // file name under fs written before Commit
    int children = 0;      // snapshots on it, acknowledged or in flight
    bool claimed = false;  // a worker is removing or updating it
  };
  // An operation whose reply the kill cut off.
  struct Doubt {
    enum class Op { kCreate, kCommit, kRemove, kUpdate } op;
    std::string key;   // the key created, committed, removed or updated
    std::string name;  // commit: the new name
    Snapshot
        before;  // create: the snapshot it would be; commit: the active one
    Labels labels_after;  // commit and update: labels if it happened
  };

  absl::Mutex mu;
  std::map<std::string, Snapshot> live ABSL_GUARDED_BY(mu);
  std::set<std::string> removed ABSL_GUARDED_BY(mu);
  std::vector<Doubt> doubts ABSL_GUARDED_BY(mu);
};

struct Counts {
  int cycles = 0;
  int acked_ops = 0;
  int doubts = 0;
  int checked_commits = 0;
  int leftovers_collected = 0;
  int lost = 0;        // acknowledged state missing or wrong after restart
  int reappeared = 0;  // acknowledged removal undone
  int phantoms = 0;    // snapshots nobody created
  int leaked = 0;      // directories without metadata after reconciliation
  int broken = 0;      // other fsck findings
};

class CrashTest : public ::testing::Test {
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
    if (HasFailure()) {
      std::string log = daemon_->Log();
      if (log.size() > 20000) log = log.substr(log.size() - 20000);
      std::cerr << "daemon log (tail):\n" << log;
    }
  }

  void Start() {
    ASSERT_TRUE(daemon_->Start().ok());
    absl::Status ready = daemon_->WaitReady();
    ASSERT_TRUE(ready.ok()) << ready;
    client_ = std::make_unique<SnapshotsClient>(daemon_->NewStub());
  }

  // One worker's load until `stop`; a failure while the daemon was not
  // killed fails the test.
  void Work(int worker, int cycle, uint64_t seed) {
    std::mt19937_64 rng(seed);
    auto chance = [&rng](int percent) {
      return static_cast<int>(rng() % 100) < percent;
    };
    int n = 0;
    while (!stop_.load()) {
      ++n;
      const std::string tag = absl::StrCat("w", worker, "-c", cycle, "-", n);
      int dice = static_cast<int>(rng() % 100);
      {
        // Keep the history bounded on long runs: remove more once it is big.
        absl::MutexLock lock(&model_.mu);
        if (model_.live.size() > 400 && dice < 45 && chance(50)) dice = 60;
      }
      if (dice < 45) {
        Layer(tag, chance(80), chance(25), rng);
      } else if (dice < 55) {
        Create(tag, /*view=*/true, rng);
      } else if (dice < 75) {
        RemoveSome(rng, /*committed=*/true);
      } else if (dice < 85) {
        UpdateSome(rng, n);
      } else if (dice < 97) {
        RemoveSome(rng, /*committed=*/false);
      } else {
        Check(client_->Cleanup(), "Cleanup");
      }
    }
  }

  // Picks an unclaimed committed snapshot (or "" when `allow_none` and the
  // dice say so) and takes a child reference on it.
  std::string PickParent(std::mt19937_64& rng, bool allow_none) {
    absl::MutexLock lock(&model_.mu);
    std::vector<std::string> candidates;
    for (const auto& [name, s] : model_.live) {
      if (s.kind == Model::Kind::kCommitted && !s.claimed)
        candidates.push_back(name);
    }
    if (candidates.empty() || (allow_none && rng() % 5 == 0)) return "";
    const std::string& parent = candidates[rng() % candidates.size()];
    model_.live[parent].children++;
    return parent;
  }

  // Returns false when the daemon is gone (the call is in doubt).
  bool Check(const grpc::Status& s, const std::string& what) {
    if (s.ok()) {
      acked_.fetch_add(1);
      return true;
    }
    if (!killed_.load()) {
      ADD_FAILURE() << what
                    << " failed while the daemon was up: " << s.error_code()
                    << " " << s.error_message();
      stop_ = true;
    }
    return false;
  }

  // Prepare (or View) `tag` on a random parent; leaves it in place,
  // claimed when `claim` (the caller goes on with it).
  void Create(const std::string& tag, bool view, std::mt19937_64& rng,
              bool claim = false) {
    std::string parent = PickParent(rng, true);
    Model::Snapshot s{
        view ? Model::Kind::kView : Model::Kind::kActive, parent, {{"k", tag}}};
    s.claimed = claim;
    std::string fs;
    grpc::Status status = view ? client_->View(tag, parent, s.labels, &fs)
                               : client_->Prepare(tag, parent, s.labels, &fs);
    if (!view) s.fs = fs;
    absl::MutexLock lock(&model_.mu);
    if (status.ok()) {
      model_.live[tag] = s;
      acked_.fetch_add(1);
    } else if (killed_.load()) {
      model_.doubts.push_back({Model::Doubt::Op::kCreate, tag, "", s, {}});
    } else {
      ADD_FAILURE() << "Create " << tag << ": " << status.error_code() << " "
                    << status.error_message();
      stop_ = true;
    }
  }

  // Prepare, write a marker file into its fs, Commit; sometimes leave it
  // active instead.
  void Layer(const std::string& tag, bool commit, bool with_labels,
             std::mt19937_64& rng) {
    Create(tag, false, rng, /*claim=*/commit);
    if (!commit) return;
    std::string fs;
    {
      absl::MutexLock lock(&model_.mu);
      auto it = model_.live.find(tag);
      if (it == model_.live.end()) return;  // the Prepare was cut off
      fs = it->second.fs;
    }
    if (fs.empty()) {
      ADD_FAILURE() << "Prepare " << tag << " returned no fs directory";
      stop_ = true;
      return;
    }
    const std::string marker = "marker-" + tag;
    WriteFile(fs + "/" + marker, tag);
    const std::string name = "L-" + tag;
    Labels labels;
    if (with_labels)
      labels = {{"containerd.io/snapshot.ref", name}, {"n", tag}};
    grpc::Status status = client_->Commit(name, tag, labels);
    absl::MutexLock lock(&model_.mu);
    Model::Snapshot active = model_.live[tag];
    active.claimed = false;
    if (status.ok()) {
      acked_.fetch_add(1);
      model_.live.erase(tag);
      Model::Snapshot c = active;
      c.kind = Model::Kind::kCommitted;
      c.labels = labels;
      c.marker = marker;
      model_.live[name] = c;
    } else if (killed_.load()) {
      // Stays claimed until Verify settles it.
      active.marker = marker;
      model_.doubts.push_back(
          {Model::Doubt::Op::kCommit, tag, name, active, labels});
    } else {
      ADD_FAILURE() << "Commit " << name << ": " << status.error_code() << " "
                    << status.error_message();
      stop_ = true;
    }
  }

  // Removes a random childless snapshot: committed, or active/view.
  void RemoveSome(std::mt19937_64& rng, bool committed) {
    std::string key;
    Model::Snapshot s;
    {
      absl::MutexLock lock(&model_.mu);
      std::vector<std::string> candidates;
      for (const auto& [k, v] : model_.live) {
        if (v.claimed || v.children > 0) continue;
        if ((v.kind == Model::Kind::kCommitted) == committed)
          candidates.push_back(k);
      }
      // Keep some history around to build on.
      if (candidates.empty() || (committed && candidates.size() < 8)) return;
      key = candidates[rng() % candidates.size()];
      model_.live[key].claimed = true;
      s = model_.live[key];
    }
    grpc::Status status = client_->Remove(key);
    absl::MutexLock lock(&model_.mu);
    if (status.ok()) {
      acked_.fetch_add(1);
      model_.live.erase(key);
      model_.removed.insert(key);
      if (!s.parent.empty()) model_.live[s.parent].children--;
    } else if (killed_.load()) {
      model_.doubts.push_back({Model::Doubt::Op::kRemove, key, "", s, {}});
    } else {
      ADD_FAILURE() << "Remove " << key << ": " << status.error_code() << " "
                    << status.error_message();
      stop_ = true;
    }
  }

  void UpdateSome(std::mt19937_64& rng, int n) {
    std::string key;
    Model::Snapshot s;
    {
      absl::MutexLock lock(&model_.mu);
      std::vector<std::string> candidates;
      for (const auto& [k, v] : model_.live) {
        if (!v.claimed) candidates.push_back(k);
      }
      if (candidates.empty()) return;
      key = candidates[rng() % candidates.size()];
      model_.live[key].claimed = true;
      s = model_.live[key];
    }
    Labels after = s.labels;
    after["u"] = std::to_string(n);
    grpc::Status status =
        client_->Update(key, {{"u", after["u"]}}, {"labels.u"});
    absl::MutexLock lock(&model_.mu);
    if (status.ok()) {
      acked_.fetch_add(1);
      model_.live[key].labels = after;
      model_.live[key].claimed = false;
    } else if (killed_.load()) {
      model_.doubts.push_back({Model::Doubt::Op::kUpdate, key, "", s, after});
    } else {
      ADD_FAILURE() << "Update " << key << ": " << status.error_code() << " "
                    << status.error_message();
      stop_ = true;
    }
  }

  // After a restart: settles every doubt from what the daemon has, then
  // checks the model against it.
  void Verify(Counts& counts, std::mt19937_64& rng) {
    std::vector<SnapshotsClient::Info> infos;
    grpc::Status listed = client_->List(&infos);
    ASSERT_TRUE(listed.ok()) << listed.error_message();
    std::map<std::string, SnapshotsClient::Info> have;
    for (const auto& info : infos) have[info.name()] = info;

    absl::MutexLock lock(&model_.mu);
    for (Model::Doubt& d : model_.doubts) {
      ++counts.doubts;
      switch (d.op) {
        case Model::Doubt::Op::kCreate:
          if (have.count(d.key)) {
            if (d.before.kind == Model::Kind::kActive) {
              ASSERT_TRUE(client_->Mounts(d.key, &d.before.fs).ok());
            }
            model_.live[d.key] = d.before;
          } else if (!d.before.parent.empty()) {
            model_.live[d.before.parent].children--;
          }
          break;
        case Model::Doubt::Op::kCommit: {
          const bool committed = have.count(d.name) > 0;
          const bool active = have.count(d.key) > 0;
          if (committed == active) {
            ADD_FAILURE() << "commit " << d.key << " -> " << d.name
                          << " cut off: committed=" << committed
                          << " active=" << active;
            ++counts.lost;
          }
          if (committed) {
            Model::Snapshot c = d.before;
            c.kind = Model::Kind::kCommitted;
            c.labels = d.labels_after;
            model_.live.erase(d.key);
            model_.live[d.name] = c;
          } else {
            model_.live[d.key].marker.clear();
          }
          break;
        }
        case Model::Doubt::Op::kRemove:
          if (!have.count(d.key)) {
            model_.live.erase(d.key);
            model_.removed.insert(d.key);
            if (!d.before.parent.empty())
              model_.live[d.before.parent].children--;
          }
          break;
        case Model::Doubt::Op::kUpdate: {
          auto it = have.find(d.key);
          if (it == have.end()) {
            ADD_FAILURE() << "update of " << d.key
                          << " cut off and the snapshot is gone";
            ++counts.lost;
            break;
          }
          Labels actual(it->second.labels().begin(), it->second.labels().end());
          if (actual != d.before.labels && actual != d.labels_after) {
            ADD_FAILURE() << "update of " << d.key
                          << " cut off: labels are neither before nor after";
            ++counts.lost;
          }
          model_.live[d.key].labels = actual;
          break;
        }
      }
    }
    model_.doubts.clear();
    for (auto& [key, s] : model_.live) s.claimed = false;

    for (const auto& [key, s] : model_.live) {
      auto it = have.find(key);
      if (it == have.end()) {
        ADD_FAILURE() << "acknowledged snapshot " << key << " is gone";
        ++counts.lost;
        continue;
      }
      const SnapshotsClient::Info& info = it->second;
      const auto want_kind =
          s.kind == Model::Kind::kCommitted ? snapshots_v1::COMMITTED
          : s.kind == Model::Kind::kActive  ? snapshots_v1::ACTIVE
                                            : snapshots_v1::VIEW;
      Labels labels(info.labels().begin(), info.labels().end());
      if (info.kind() != want_kind || info.parent() != s.parent ||
          labels != s.labels) {
        ADD_FAILURE() << "snapshot " << key << " changed: kind " << info.kind()
                      << " parent \"" << info.parent() << "\"";
        ++counts.lost;
      }
      if (s.kind == Model::Kind::kCommitted && !s.marker.empty()) {
        ++counts.checked_commits;
        if (ReadFile(s.fs + "/" + s.marker) != key.substr(2)) {
          ADD_FAILURE() << "files of committed " << key << " are gone (" << s.fs
                        << ")";
          ++counts.lost;
        }
      }
    }
    for (const std::string& key : model_.removed) {
      if (have.count(key)) {
        ADD_FAILURE() << "removed snapshot " << key << " reappeared";
        ++counts.reappeared;
      }
    }
    for (const auto& [key, info] : have) {
      if (!model_.live.count(key)) {
        ADD_FAILURE() << "snapshot " << key << " appeared from nowhere";
        ++counts.phantoms;
      }
    }
    // Metadata still names the same directory: a one-parent view binds
    // its parent's fs.
    std::vector<std::string> committed;
    for (const auto& [key, s] : model_.live) {
      if (s.kind == Model::Kind::kCommitted && !s.fs.empty())
        committed.push_back(key);
    }
    std::shuffle(committed.begin(), committed.end(), rng);
    if (committed.size() > 5) committed.resize(5);
    for (const std::string& key : committed) {
      std::string fs;
      const std::string view = "verify-" + key;
      ASSERT_TRUE(client_->View(view, key, {}, &fs).ok());
      EXPECT_EQ(fs, model_.live[key].fs) << "committed " << key << " moved";
      ASSERT_TRUE(client_->Remove(view).ok());
    }
  }

  TempDir dir_;
  std::string root_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<SnapshotsClient> client_;
  Model model_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> killed_{false};
  std::atomic<int> acked_{0};
};

TEST_F(CrashTest, AcknowledgedStateSurvivesRandomKills) {
  const int cycles = EnvInt("CPP_OVERLAY_CRASH_CYCLES", 30);
  ASSERT_GT(cycles, 0) << "CPP_OVERLAY_CRASH_CYCLES must be a positive number";
  const uint64_t seed =
      std::getenv("CPP_OVERLAY_CRASH_SEED")
          ? std::strtoull(std::getenv("CPP_OVERLAY_CRASH_SEED"), nullptr, 10)
          : static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  std::cout << "crash_test: " << cycles
            << " cycles, CPP_OVERLAY_CRASH_SEED=" << seed << std::endl;
  std::mt19937_64 rng(seed);
  Counts counts;
  const absl::Time started = absl::Now();

  ASSERT_NO_FATAL_FAILURE(Start());
  for (int cycle = 0; cycle < cycles && !HasFailure(); ++cycle) {
    stop_ = false;
    killed_ = false;
    std::vector<std::thread> workers;
    for (int w = 0; w < kWorkers; ++w) {
      workers.emplace_back([this, w, cycle, s = rng()] { Work(w, cycle, s); });
    }
    absl::SleepFor(absl::Milliseconds(50 + rng() % 700));
    killed_ = true;
    daemon_->Kill();
    stop_ = true;
    for (std::thread& t : workers) t.join();
    ++counts.cycles;

    // The crashed root: only what reconciliation collects.
    absl::StatusOr<std::vector<metadata::Finding>> findings =
        FsckFindings(root_);
    ASSERT_TRUE(findings.ok()) << findings.status();
    for (const metadata::Finding& f : *findings) {
      if (IsCrashLeftover(f)) {
        ++counts.leftovers_collected;
      } else {
        ADD_FAILURE() << "cycle " << cycle << " after the kill: " << f.kind
                      << " " << f.object << ": " << f.detail;
        ++counts.broken;
      }
    }

    ASSERT_NO_FATAL_FAILURE(Start());
    ASSERT_NO_FATAL_FAILURE(Verify(counts, rng));

    // After reconciliation and a clean stop: nothing at all.
    client_
        .reset();  // an idle sync channel would delay the stop by its 5 s poll
    ASSERT_EQ(daemon_->Terminate(), 0) << "daemon did not stop cleanly";
    findings = FsckFindings(root_);
    ASSERT_TRUE(findings.ok()) << findings.status();
    for (const metadata::Finding& f : *findings) {
      ADD_FAILURE() << "cycle " << cycle << " after restart: " << f.kind << " "
                    << f.object << ": " << f.detail;
      if (f.kind == "stray-directory" || f.kind == "temporary-leftover" ||
          f.kind == "unknown-entry") {
        ++counts.leaked;
      } else {
        ++counts.broken;
      }
    }
    ASSERT_NO_FATAL_FAILURE(Start());
  }
  client_.reset();
  daemon_->Terminate();

  int live = 0;
  {
    absl::MutexLock lock(&model_.mu);
    live = static_cast<int>(model_.live.size());
  }
  // The summary the CI note quotes.
  std::cout << "crash_test: " << counts.cycles << " kill/restart cycles in "
            << absl::FormatDuration(
                   absl::Trunc(absl::Now() - started, absl::Milliseconds(100)))
            << ", " << acked_.load() << " acknowledged calls, " << counts.doubts
            << " calls cut off by a kill, " << counts.checked_commits
            << " commit checks (files included), " << live
            << " snapshots at the end, " << counts.leftovers_collected
            << " crash leftovers collected; lost " << counts.lost
            << ", reappeared " << counts.reappeared << ", phantoms "
            << counts.phantoms << ", leaked " << counts.leaked
            << ", other fsck findings " << counts.broken << std::endl;
  EXPECT_GE(counts.cycles, cycles);
  // Something was checked: calls were acknowledged, some were cut off by a
  // kill, and committed layers' files were compared.
  EXPECT_GT(acked_.load(), 0);
  EXPECT_GT(counts.doubts, 0);
  EXPECT_GT(counts.checked_commits, 0);
  EXPECT_EQ(counts.lost + counts.reappeared + counts.phantoms + counts.leaked +
                counts.broken,
            0);
}

}  // namespace
}  // namespace cpp_overlay::testing
