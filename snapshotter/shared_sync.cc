#include "snapshotter/shared_sync.h"

#include <utility>

namespace cpp_overlay::snapshotter {

SharedSync::SharedSync(std::function<absl::Status()> sync)
    : sync_(std::move(sync)) {}

absl::Status SharedSync::Sync() {
  absl::MutexLock lock(&mu_);
  // Any round numbered from here on starts after this call.
  const uint64_t needed = started_ + 1;
  while (finished_ < needed) {
    if (running_) {
      ++waiting_;
      mu_.Await(absl::Condition(
          +[](bool* running) { return !*running; }, &running_));
      --waiting_;
      continue;
    }
    running_ = true;
    const uint64_t round = ++started_;
    mu_.Unlock();
    absl::Status result = sync_();
    mu_.Lock();
    running_ = false;
    finished_ = round;
    last_result_ = std::move(result);
  }
  // Rounds finish in order, so the last one started after this call too: a
  // success there covers this caller even if the round it waited on failed.
  return last_result_;
}

int SharedSync::Waiting() {
  absl::MutexLock lock(&mu_);
  return waiting_;
}

}  // namespace cpp_overlay::snapshotter
