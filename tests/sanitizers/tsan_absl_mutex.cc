// ThreadSanitizer support for Debian's uninstrumented Abseil: preloaded into
// TSan runs (LD_PRELOAD, see scripts/test-sanitizers.sh), it interposes
// absl::Mutex and absl::CondVar and tells TSan about the happens-before
// edges they create (release before unlocking or waiting, acquire after
// locking or waking). Without it TSan cannot see absl::Mutex at all and
// reports every guarded member as a race. The mangled names are those of
// Debian 12's Abseil (inline namespace debian3); a missing one aborts.
// Build: g++ -shared -fPIC -fsanitize=thread (scripts/test-sanitizers.sh).
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);

namespace {

void* Real(const char* mangled) {
  void* f = dlsym(RTLD_NEXT, mangled);
  if (f == nullptr) {
    std::fprintf(stderr, "tsan_absl_mutex: %s not found\n", mangled);
    std::abort();
  }
  return f;
}

}  // namespace

#define CPP_OVERLAY_REAL(type, mangled) \
  static const auto real = reinterpret_cast<type>(Real(mangled))

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  CPP_OVERLAY_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex4LockEv");
  real(this);
  __tsan_acquire(this);
}

void Mutex::Unlock() {
  CPP_OVERLAY_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex6UnlockEv");
  __tsan_release(this);
  real(this);
  // Unlock evaluates waiters' Await conditions before it returns; publish
  // those reads too (tsan.supp covers the window before this line).
  __tsan_release(this);
}

void Mutex::ReaderLock() {
  CPP_OVERLAY_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex10ReaderLockEv");
  real(this);
  __tsan_acquire(this);
}

void Mutex::ReaderUnlock() {
  CPP_OVERLAY_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  __tsan_release(this);
  real(this);
}

bool Mutex::TryLock() {
  CPP_OVERLAY_REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex7TryLockEv");
  bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::LockWhen(const Condition& cond) {
  CPP_OVERLAY_REAL(void (*)(Mutex*, const Condition&),
                   "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  real(this, cond);
  __tsan_acquire(this);
}

void Mutex::Await(const Condition& cond) {
  CPP_OVERLAY_REAL(void (*)(Mutex*, const Condition&),
                   "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  __tsan_release(this);
  real(this, cond);
  __tsan_acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  CPP_OVERLAY_REAL(bool (*)(Mutex*, const Condition&, absl::Duration),
                   "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  __tsan_release(this);
  bool met = real(this, cond, timeout);
  __tsan_acquire(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  CPP_OVERLAY_REAL(void (*)(CondVar*, Mutex*), "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  __tsan_release(mu);
  real(this, mu);
  __tsan_acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  CPP_OVERLAY_REAL(bool (*)(CondVar*, Mutex*, absl::Duration),
                   "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  __tsan_release(mu);
  bool timed_out = real(this, mu, timeout);
  __tsan_acquire(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  CPP_OVERLAY_REAL(bool (*)(CondVar*, Mutex*, absl::Time),
                   "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  __tsan_release(mu);
  bool timed_out = real(this, mu, deadline);
  __tsan_acquire(mu);
  return timed_out;
}

ABSL_NAMESPACE_END
}  // namespace absl
