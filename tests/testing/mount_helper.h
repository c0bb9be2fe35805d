// Mounts what a snapshotter returns, as containerd's mount package would,
// and unmounts when the guard goes away (even when a test failed). Needs
// root.
#ifndef CPP_OVERLAY_TESTS_TESTING_MOUNT_HELPER_H_
#define CPP_OVERLAY_TESTS_TESTING_MOUNT_HELPER_H_

#include <sched.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "snapshotter/mounts.h"

namespace cpp_overlay::testing {

class ScopedMount {
 public:
  ScopedMount() = default;
  ScopedMount(ScopedMount&& other) noexcept : target_(std::move(other.target_)) {
    other.target_.clear();
  }
  ~ScopedMount() {
    if (!target_.empty()) umount2(target_.c_str(), MNT_DETACH);
  }

  // Mounts the single mount in `mounts` on `target`.
  absl::Status Mount(const std::vector<snapshotter::Mount>& mounts,
                     const std::string& target) {
    if (mounts.size() != 1) return absl::InvalidArgumentError("want one mount");
    const snapshotter::Mount& m = mounts.front();
    if (m.type == "bind") {
      bool ro = false;
      for (const std::string& o : m.options) ro |= o == "ro";
      if (mount(m.source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        return absl::InternalError(absl::StrCat("bind mount: ", std::strerror(errno)));
      }
      target_ = target;
      if (ro && mount(nullptr, target.c_str(), nullptr,
                      MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
        return absl::InternalError(absl::StrCat("remount ro: ", std::strerror(errno)));
      }
      return absl::OkStatus();
    }
    std::string data = absl::StrJoin(m.options, ",");
    if (mount(m.source.c_str(), target.c_str(), m.type.c_str(), 0, data.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("mount ", m.type, " -o ", data, ": ",
                                              std::strerror(errno)));
    }
    target_ = target;
    return absl::OkStatus();
  }

 private:
  std::string target_;
};

// Mounts made from here on are this thread's (and the threads it starts
// later) alone and vanish with the process, even when a test fails. Call
// through ASSERT_NO_FATAL_FAILURE, before starting threads that must see
// the mounts.
inline void EnterPrivateMountNamespace() {
  ASSERT_EQ(unshare(CLONE_NEWNS), 0) << std::strerror(errno);
  ASSERT_EQ(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0)
      << std::strerror(errno);
}

}  // namespace cpp_overlay::testing

#endif  // CPP_OVERLAY_TESTS_TESTING_MOUNT_HELPER_H_
