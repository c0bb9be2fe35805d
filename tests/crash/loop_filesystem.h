// A small filesystem image on a loop device, mounted, for tests that need
// one of their own (disk full, power cut). Needs root (losetup, mount) and
// mkfs.ext4 / mkfs.xfs (e2fsprogs, xfsprogs from scripts/setup.sh).
#ifndef CPP_OVERLAY_TESTS_CRASH_LOOP_FILESYSTEM_H_
#define CPP_OVERLAY_TESTS_CRASH_LOOP_FILESYSTEM_H_

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace cpp_overlay::testing {

// Runs `command` with sh; returns its stdout, or nullopt when it failed.
inline std::optional<std::string> Run(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return std::nullopt;
  std::string out;
  char buf[256];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  if (pclose(p) != 0) return std::nullopt;
  return std::string(absl::StripTrailingAsciiWhitespace(out));
}

// Unmounted and detached even when the test fails.
class LoopFilesystem {
 public:
  LoopFilesystem() = default;
  LoopFilesystem(const LoopFilesystem&) = delete;
  LoopFilesystem& operator=(const LoopFilesystem&) = delete;

  // `type` is "ext4" or "xfs"; `options` are its mount options.
  absl::Status Make(const std::string& dir, int megabytes,
                    const std::string& type = "ext4",
                    const std::string& options = "") {
    image_ = dir + "/disk.img";
    mount_point_ = dir + "/mnt";
    type_ = type;
    options_ = options;
    if (!Run(absl::StrCat("truncate -s ", megabytes, "M ", image_))) {
      return absl::InternalError("truncate");
    }
    // ext4: no blocks reserved for root, as the daemon runs as root.
    const std::string mkfs =
        type == "xfs" ? "mkfs.xfs -q -K " : "mkfs.ext4 -q -m 0 -E nodiscard ";
    if (!Run(mkfs + image_ + " 2>&1")) {
      return absl::InternalError("mkfs." + type);
    }
    std::optional<std::string> device = Run("losetup -f --show " + image_);
    if (!device) return absl::InternalError("losetup");
    device_ = *device;
    if (absl::Status s = DetachWhenUnused(); !s.ok()) return s;
    mkdir(mount_point_.c_str(), 0755);
    return Mount();
  }

  // Stops the filesystem as a power cut would: what its journal has not
  // committed never reaches the disk (the shutdown ioctl of ext4 and xfs
  // without a log flush, as xfstests' godown).
  absl::Status CutPower() {
    constexpr unsigned long kShutdown = _IOR('X', 125, uint32_t);
    constexpr uint32_t kNoLogFlush = 2;
    int fd = open(mount_point_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return absl::InternalError(strerror(errno));
    uint32_t flags = kNoLogFlush;
    int rc = ioctl(fd, kShutdown, &flags);
    int err = errno;
    close(fd);
    if (rc != 0)
      return absl::InternalError(absl::StrCat("shutdown: ", strerror(err)));
    return absl::OkStatus();
  }

  // Unmounts (no process may hold files on it) and mounts again, which
  // replays the journal as after a reboot.
  absl::Status Remount() {
    for (int i = 0; umount2(mount_point_.c_str(), 0) != 0; ++i) {
      if (errno != EBUSY || i == 50) {
        return absl::InternalError(absl::StrCat("umount: ", strerror(errno)));
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    mounted_ = false;
    return Mount();
  }

  ~LoopFilesystem() {
    if (mounted_) umount2(mount_point_.c_str(), MNT_DETACH);
    // With autoclear set, the device is gone once unused, and its number
    // may already be another test's: detach by name only without it.
    if (device_fd_ >= 0) {
      close(device_fd_);
    } else if (!device_.empty()) {
      Run("losetup -d " + device_);
    }
  }

  const std::string& mount_point() const { return mount_point_; }

 private:
  absl::Status Mount() {
    if (mount(device_.c_str(), mount_point_.c_str(), type_.c_str(), 0,
              options_.empty() ? nullptr : options_.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("mount: ", strerror(errno)));
    }
    mounted_ = true;
    return absl::OkStatus();
  }

  // The device detaches itself once nothing uses it (as `mount -o loop`
  // sets up), so a test killed by ctest's timeout leaves no device behind
  // once its mount namespace (LoopRootTest) is gone. The descriptor held
  // here keeps it attached between Remount's unmount and mount.
  absl::Status DetachWhenUnused() {
    int fd = open(device_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return absl::InternalError(
          absl::StrCat("open ", device_, ": ", strerror(errno)));
    }
    loop_info64 info{};
    const char* failed = nullptr;
    if (ioctl(fd, LOOP_GET_STATUS64, &info) != 0) {
      failed = "LOOP_GET_STATUS64";
    } else {
      info.lo_flags |= LO_FLAGS_AUTOCLEAR;
      if (ioctl(fd, LOOP_SET_STATUS64, &info) != 0)
        failed = "LOOP_SET_STATUS64";
    }
    if (failed != nullptr) {
      const int err = errno;
      close(fd);  // without autoclear, the destructor detaches by name
      return absl::InternalError(absl::StrCat(failed, ": ", strerror(err)));
    }
    device_fd_ = fd;
    return absl::OkStatus();
  }

  std::string image_, mount_point_, device_, type_, options_;
  int device_fd_ = -1;
  bool mounted_ = false;
};

}  // namespace cpp_overlay::testing

#endif  // CPP_OVERLAY_TESTS_CRASH_LOOP_FILESYSTEM_H_
