// Deletes removed snapshot directories in the background, so Remove and
// Cleanup (which containerd calls while its garbage collector holds a lock
// every snapshot operation waits on) only rename a directory into
// <root>/trash and return.
//
// The reclaimer thread runs at idle I/O priority and the lowest CPU
// priority, deletes one trash entry at a time, and resumes whatever is left
// in trash/ after a restart. It yields to removals: while Discards keep
// arriving (a garbage-collection pass) it waits, so deleting competes with
// them neither for CPU nor for the filesystem's journal, and starts once
// they stop.
// An optional rate limit bounds how many filesystem entries it unlinks per
// second.
#ifndef CPP_OVERLAY_SNAPSHOTTER_RECLAIMER_H_
#define CPP_OVERLAY_SNAPSHOTTER_RECLAIMER_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace cpp_overlay::snapshotter {

struct ReclaimerOptions {
  // Unlinks per second; 0 means no limit.
  uint64_t entries_per_second = 0;
  // Deleting waits until no Discard came for this long...
  absl::Duration quiet_after_discard = absl::Milliseconds(100);
  // ...but never longer than this in a row, after which it deletes for as
  // long before yielding again: a steady stream of removals cannot starve it.
  absl::Duration max_yield = absl::Seconds(1);
};

class Reclaimer {
 public:
  // `trash_dir` must exist.
  Reclaimer(std::string trash_dir, ReclaimerOptions options);
  Reclaimer(std::string trash_dir, uint64_t entries_per_second);
  // Stops the thread; what is left stays in trash/ for the next start.
  ~Reclaimer();

  Reclaimer(const Reclaimer&) = delete;
  Reclaimer& operator=(const Reclaimer&) = delete;

  // Moves `path` (a directory on the same filesystem) into the trash under a
  // unique name and wakes the thread. NotFound when `path` is gone.
  absl::Status Discard(const std::string& path, absl::string_view name)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Wakes the thread to look at trash/ again.
  void Wake() ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks until trash/ is empty (or the timeout passes); for tests and
  // benchmarks. Returns whether it is empty.
  bool WaitUntilEmpty(absl::Duration timeout);

  // Entries of trash/ not yet deleted.
  int64_t Backlog() const;

 private:
  void Run();
  // Deletes everything in trash/ once; stops early when stopping.
  void DrainOnce();
  // Waits while Discards arrive (see ReclaimerOptions); false when stopping.
  bool YieldToRemovals() ABSL_LOCKS_EXCLUDED(mu_);

  const std::string trash_dir_;
  const ReclaimerOptions options_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  int64_t backlog_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
  // Entries moved into the trash so far (after their rename).
  uint64_t discarded_ ABSL_GUARDED_BY(mu_) = 0;
  // None before the first Discard.
  std::optional<std::chrono::steady_clock::time_point> last_discard_
      ABSL_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point no_yield_until_ ABSL_GUARDED_BY(mu_);

  std::thread thread_;
};

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_RECLAIMER_H_
