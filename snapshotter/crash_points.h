// Crash points: named steps inside a mutating operation where a test can make
// the daemon die exactly as SIGKILL would, so every crash window is tested
// deterministically (tests/crash/crash_points_test.cc) and not only by chance
// (tests/crash/crash_test.cc).
//
//   CPP_OVERLAY_CRASH_AT=<point>[:<n>]
//
// kills the process the n-th time (default: the first) it passes <point>,
// after writing "crash point <point> reached" to stderr. The variable is read
// once per process; unset, a crash point costs one load and one branch.
// Header-only so that placing a point never changes what a target links.
#ifndef CPP_OVERLAY_SNAPSHOTTER_CRASH_POINTS_H_
#define CPP_OVERLAY_SNAPSHOTTER_CRASH_POINTS_H_

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"

namespace cpp_overlay::snapshotter {

// Every crash point, in the order an operation passes them. The names are the
// test contract: tests iterate over this list and fail when one is not hit.
//   create.* : Prepare and View.  remove.*, commit.*, update.*, cleanup.*:
//   the operations of the same name.
inline constexpr const char* kCrashPoints[] = {
    "create.after_snapshot_dir", // <id> made, fs/ and work/ not yet
    "create.after_dirs",         // <id>/{fs,work} made, metadata not written
    "create.after_metadata",     // metadata written, reply not sent
    "commit.after_usage",        // usage measured, metadata not written
    "commit.after_metadata",     // committed, reply not sent
    "remove.after_metadata",     // record gone, directory still there
    "remove.after_delete",       // directory deleted, reply not sent
    "update.after_metadata",     // labels written, reply not sent
    "cleanup.after_list",        // orphans found, none removed
    "cleanup.after_remove_one",  // first orphan removed, the rest not
};

namespace crash_points_internal {

struct Plan {
  bool armed = false;
  std::string point;
  uint64_t nth = 1;
  std::atomic<uint64_t> hits{0};
};

inline Plan& GetPlan() {
  static Plan* const plan = [] {
    auto* p = new Plan;
    const char* env = std::getenv("CPP_OVERLAY_CRASH_AT");
    if (env == nullptr || *env == '\0') return p;
    absl::string_view spec(env);
    size_t colon = spec.rfind(':');
    uint64_t nth = 1;
    if (colon != absl::string_view::npos &&
        absl::SimpleAtoi(spec.substr(colon + 1), &nth) && nth > 0) {
      spec = spec.substr(0, colon);
    } else {
      nth = 1;
    }
    p->armed = true;
    p->point = std::string(spec);
    p->nth = nth;
    return p;
  }();
  return *plan;
}

}  // namespace crash_points_internal

// Dies here (SIGKILL to itself) when CPP_OVERLAY_CRASH_AT names `name` and
// this is its n-th pass; otherwise does nothing.
inline void CrashPoint(absl::string_view name) {
  crash_points_internal::Plan& plan = crash_points_internal::GetPlan();
  if (!plan.armed || name != plan.point) return;
  if (plan.hits.fetch_add(1) + 1 != plan.nth) return;
  std::string line = "crash point " + std::string(name) + " reached\n";
  // Best effort: the line only helps a test tell an injected crash apart.
  ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
  kill(getpid(), SIGKILL);
  _exit(137);  // not reached
}

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_CRASH_POINTS_H_
