#include "snapshotter/shared_sync.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace cpp_overlay::snapshotter {

SharedSync::SharedSync(std::function<absl::Status()> sync,
                       std::function<void(const absl::Status&)> on_failure)
    : sync_(std::move(sync)), on_failure_(std::move(on_failure)) {}

absl::Status SharedSync::Sync() {
  absl::MutexLock lock(&mu_);
  // Any round numbered from here on starts after this call.
  const uint64_t needed = started_ + 1;
  while (failure_.ok() && finished_ < needed) {
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
    mu_.Lock();
    running_ = false;
    finished_ = round;
    if (!result.ok()) {
      failure_ = absl::UnavailableError(absl::StrCat(
          result.message(),
          "; layers cannot be made durable, so Commits are refused until the "
          "daemon restarts"));
      if (on_failure_) {
        const absl::Status failure = failure_;
        mu_.Unlock();
        on_failure_(failure);
        mu_.Lock();
      }
    }
  }
  return failure_;
}

int SharedSync::WaitingForTests() {
  absl::MutexLock lock(&mu_);
  return waiting_;
}

}  // namespace cpp_overlay::snapshotter
