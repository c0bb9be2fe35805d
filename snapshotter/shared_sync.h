// One filesystem sync shared by concurrent callers (group commit).
//
// A syncfs makes durable everything written on the filesystem before it
// started, whoever wrote it. So a caller does not need a sync of its own,
// only one that starts after its call: callers that arrive while one runs
// wait for the next, and all of them share that one. With 8 Commits at once
// that is about 2 syncs instead of 8; a lone caller syncs at once, as before.
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
  // `sync` makes durable whatever was written before it was called.
  explicit SharedSync(std::function<absl::Status()> sync);

  SharedSync(const SharedSync&) = delete;
  SharedSync& operator=(const SharedSync&) = delete;

  // Returns once a sync that started after this call has finished, with its
  // result. The caller that finds no sync running runs one itself.
  absl::Status Sync() ABSL_LOCKS_EXCLUDED(mu_);

  // Callers waiting for a round to start or finish; for tests.
  int Waiting() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const std::function<absl::Status()> sync_;
  absl::Mutex mu_;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  // Rounds are numbered from 1 in the order they start (and so finish).
  uint64_t started_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t finished_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_result_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_SHARED_SYNC_H_
