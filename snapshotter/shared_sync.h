// One filesystem sync shared by concurrent callers (group commit).
//
// A syncfs makes durable everything written on the filesystem before it
// started, whoever wrote it. So a caller does not need a sync of its own,
// only one that starts after its call: callers that arrive while one runs
// wait for the next, and all of them share that one. A lone caller syncs
// at once. (The store's SyncUpTo does the same for its log, by sequence
// number; files carry none, so here rounds are counted.)
//
// A failed sync fails every later call too: the pages it could not write
// are marked clean, and the kernel reports that only once, so a later sync
// would succeed over data that is not on disk, and nobody can tell whose.
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
  // without the lock, one call at a time. `on_failure` is called once, with
  // the error every call gets from then on.
  SharedSync(std::function<absl::Status()> sync,
             std::function<void(const absl::Status&)> on_failure = nullptr);

  SharedSync(const SharedSync&) = delete;
  SharedSync& operator=(const SharedSync&) = delete;

  // Returns once a sync that started after this call has succeeded, or with
  // the first failure (its own round's or an earlier one's). Thread-safe.
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
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_SHARED_SYNC_H_
