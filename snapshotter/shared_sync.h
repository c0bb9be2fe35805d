// One filesystem sync shared by concurrent callers (group commit).
//
// A syncfs makes durable everything written on the filesystem before it
// started, whoever wrote it. So a caller does not need a sync of its own,
// only one that starts after its call: callers that arrive while one runs
// wait for the next, and all of them share that one. A lone caller syncs
// at once. (The store's SyncUpTo does the same for its log, by sequence
// number; files carry none, so here rounds are counted.)
//
// A failed sync is reported to `on_failure` before any later sync starts:
// the kernel reports a page it could not write once and marks it clean, so
// a later sync succeeds over it, and the owner must remember what was
// written before the failure (OverlaySnapshotter refuses to commit it).
#ifndef CPP_OVERLAY_SNAPSHOTTER_SHARED_SYNC_H_
#define CPP_OVERLAY_SNAPSHOTTER_SHARED_SYNC_H_

#include <cstdint>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace cpp_overlay::snapshotter {

class SharedSync {
 public:
  // `sync` makes durable whatever was written before it was called; it runs
  // without the lock, one call at a time. `on_failure` gets each failed
  // sync's error before the next sync starts (it must not call Sync, and
  // every Commit waits while it runs).
  SharedSync(std::function<absl::Status()> sync,
             std::function<void(const absl::Status&)> on_failure = nullptr);

  SharedSync(const SharedSync&) = delete;
  SharedSync& operator=(const SharedSync&) = delete;

  // Returns once a sync that started after this call has finished: OK if
  // every sync since then succeeded, else the latest failure (the caller
  // may share it with others). Thread-safe.
  absl::Status Sync() ABSL_LOCKS_EXCLUDED(mu_);

  // Callers waiting for a round to start or finish; for tests.
  int WaitingForTests() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const std::function<absl::Status()> sync_;
  const std::function<void(const absl::Status&)> on_failure_;
  absl::Mutex mu_;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  // Rounds are numbered from 1 in the order they start (and so finish).
  uint64_t started_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t finished_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_failed_round_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_SHARED_SYNC_H_
