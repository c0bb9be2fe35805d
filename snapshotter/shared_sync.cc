#include "snapshotter/shared_sync.h"

#include <utility>

namespace cpp_overlay::snapshotter {

SharedSync::SharedSync(std::function<absl::Status()> sync,
                       std::function<void(const absl::Status&)> on_failure)
    : sync_(std::move(sync)), on_failure_(std::move(on_failure)) {}

absl::Status SharedSync::Sync() {
  absl::MutexLock lock(&mu_);
  // Any round numbered from here on starts after this call.
  const uint64_t needed = started_ + 1;
  while (finished_ < needed) {
    if (running_) {
      ++waiting_;
      auto idle = [this] { return !running_; };
      mu_.Await(absl::Condition(&idle));
      --waiting_;
      continue;
    }
    running_ = true;
    const uint64_t round = ++started_;
    mu_.Unlock();
    absl::Status result = sync_();
    // Still "running": no round starts before the owner knows.
    if (!result.ok() && on_failure_) on_failure_(result);
    mu_.Lock();
    running_ = false;
    finished_ = round;
    if (!result.ok()) {
      last_failed_round_ = round;
      last_failure_ = std::move(result);
    }
  }
  if (last_failed_round_ >= needed) return last_failure_;
  return absl::OkStatus();
}

int SharedSync::WaitingForTests() {
  absl::MutexLock lock(&mu_);
  return waiting_;
}

}  // namespace cpp_overlay::snapshotter
