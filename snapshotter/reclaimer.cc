#include "snapshotter/reclaimer.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "snapshotter/fs.h"
#include "spdlog/spdlog.h"

namespace cpp_overlay::snapshotter {
namespace {

// NAME_MAX is 255; the suffix takes at most 41 bytes.
constexpr size_t kMaxNameHint = 200;

// linux/ioprio.h is not in every libc's headers; these values are ABI.
constexpr int kIoprioWhoProcess = 1;
constexpr int kIoprioClassIdle = 3;
constexpr int kIoprioClassShift = 13;

// Deletion competes with containers for the disk; give it only idle time.
void LowerThisThreadsPriority() {
  const pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
  syscall(SYS_ioprio_set, kIoprioWhoProcess, tid,
          kIoprioClassIdle << kIoprioClassShift);
  setpriority(PRIO_PROCESS, tid, 19);
}

ReclaimerOptions PacedAt(uint64_t entries_per_second) {
  ReclaimerOptions options;
  options.entries_per_second = entries_per_second;
  return options;
}

}  // namespace

Reclaimer::Reclaimer(std::string trash_dir, uint64_t entries_per_second)
    : Reclaimer(std::move(trash_dir), PacedAt(entries_per_second)) {}

Reclaimer::Reclaimer(std::string trash_dir, ReclaimerOptions options)
    : trash_dir_(std::move(trash_dir)), options_(options) {
  absl::StatusOr<std::vector<std::string>> entries = fs::ListDir(trash_dir_);
  {
    absl::MutexLock lock(&mu_);
    backlog_ = entries.ok() ? static_cast<int64_t>(entries->size()) : 0;
    wake_ = backlog_ > 0;
  }
  thread_ = std::thread([this] { Run(); });
}

Reclaimer::~Reclaimer() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

absl::Status Reclaimer::Discard(const std::string& path, absl::string_view name) {
  uint64_t sequence;
  {
    absl::MutexLock lock(&mu_);
    sequence = ++sequence_;
  }
  // Unique even when the same name is discarded twice in one run or across
  // restarts. The name is only a hint for whoever looks: cut, so that a
  // stray entry's long name still fits NAME_MAX with the suffix.
  std::string target =
      absl::StrCat(trash_dir_, "/", name.substr(0, kMaxNameHint), "-",
                   absl::ToUnixNanos(absl::Now()), "-", sequence);
  if (absl::Status s = fs::Rename(path, target); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  last_discard_ = std::chrono::steady_clock::now();
  ++backlog_;
  ++discarded_;
  wake_ = true;
  return absl::OkStatus();
}

void Reclaimer::Wake() {
  absl::MutexLock lock(&mu_);
  wake_ = true;
}

bool Reclaimer::WaitUntilEmpty(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto empty = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return backlog_ == 0; };
  return mu_.AwaitWithTimeout(absl::Condition(&empty), timeout);
}

int64_t Reclaimer::Backlog() const {
  absl::MutexLock lock(&mu_);
  return backlog_;
}

void Reclaimer::Run() {
  LowerThisThreadsPriority();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || wake_; };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      wake_ = false;
    }
    if (!YieldToRemovals()) return;
    DrainOnce();
  }
}

void Reclaimer::DrainOnce() {
  uint64_t discards_before;
  {
    absl::MutexLock lock(&mu_);
    discards_before = discarded_;
  }
  absl::StatusOr<std::vector<std::string>> entries = fs::ListDir(trash_dir_);
  if (!entries.ok()) {
    spdlog::error("reclaimer: {}", entries.status().ToString());
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    // A Discard during the listing may or may not be in it: count it on
    // top, so the backlog never reads empty too early (WaitUntilEmpty). Its
    // wake-up makes the next round count exactly.
    backlog_ =
        static_cast<int64_t>(entries->size() + (discarded_ - discards_before));
  }
  // Pacing: at most entries_per_second_ unlinks per second. The wait for
  // the next second ends early when the daemon stops, so a paced reclaimer
  // never holds up shutdown.
  absl::Time window_start = absl::Now();
  uint64_t in_window = 0;
  auto before_each = [&]() -> absl::Status {
    if (!YieldToRemovals()) return absl::CancelledError("reclaimer stopping");
    if (options_.entries_per_second == 0) return absl::OkStatus();
    if (++in_window <= options_.entries_per_second) return absl::OkStatus();
    absl::Duration elapsed = absl::Now() - window_start;
    if (elapsed < absl::Seconds(1)) {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::Seconds(1) - elapsed)) {
        return absl::CancelledError("reclaimer stopping");
      }
    }
    window_start = absl::Now();
    in_window = 1;
    return absl::OkStatus();
  };
  for (const std::string& entry : *entries) {
    absl::Status s = fs::RemoveAll(absl::StrCat(trash_dir_, "/", entry), before_each);
    if (absl::IsCancelled(s)) return;
    if (!s.ok()) {
      // Left in place; the next wake-up or start retries it.
      spdlog::error("reclaimer: {}", s.ToString());
      continue;
    }
    absl::MutexLock lock(&mu_);
    if (backlog_ > 0) --backlog_;
  }
}

bool Reclaimer::YieldToRemovals() {
  // A monotonic clock: a wall clock stepped back (NTP at boot) must not
  // make the last removal look recent. Cleanup's Wake does not end the
  // wait: a Remove right after it (the next GC pass, or the next call
  // containerd let through) would meet the deletion.
  using Clock = std::chrono::steady_clock;
  const Clock::duration quiet =
      absl::ToChronoNanoseconds(options_.quiet_after_discard);
  const Clock::duration max_yield =
      absl::ToChronoNanoseconds(options_.max_yield);
  absl::MutexLock lock(&mu_);
  Clock::time_point now = Clock::now();
  if (now < no_yield_until_) return !stopping_;
  const Clock::time_point give_up = now + max_yield;
  auto stopping = [this]()
                      ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
  while (!stopping_) {
    if (!last_discard_.has_value() || now >= *last_discard_ + quiet) {
      return true;
    }
    if (now >= give_up) {
      no_yield_until_ = now + max_yield;
      return true;
    }
    const Clock::time_point until = std::min(*last_discard_ + quiet, give_up);
    mu_.AwaitWithTimeout(absl::Condition(&stopping),
                         absl::FromChrono(until - now));
    now = Clock::now();
  }
  return false;
}

}  // namespace cpp_overlay::snapshotter
