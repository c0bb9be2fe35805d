#include "metadata/space_reserve.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace cpp_overlay::metadata {
namespace {

constexpr uint64_t kMiB = 1 << 20;

absl::Status ErrnoError(const std::string& what, const std::string& path,
                        int error) {
  return absl::InternalError(
      absl::StrCat(what, " ", path, ": ", std::strerror(error)));
}

// The directory part of `path`, for statvfs and fsync.
std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

uint64_t SpaceReserve::SizeFor(uint64_t filesystem_bytes) {
  return std::clamp<uint64_t>(filesystem_bytes / 100, 4 * kMiB, 64 * kMiB);
}

SpaceReserve::SpaceReserve(std::string path) : path_(std::move(path)) {
  if (path_.empty()) return;
  struct stat st;
  held_ = lstat(path_.c_str(), &st) == 0;
  struct statvfs vfs {};
  if (statvfs(DirOf(path_).c_str(), &vfs) == 0) {
    bytes_ = SizeFor(static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize);
  } else {
    bytes_ = 4 * kMiB;
  }
}

absl::StatusOr<bool> SpaceReserve::Ensure() {
  if (path_.empty()) return false;
  struct stat st;
  if (lstat(path_.c_str(), &st) == 0) {
    held_ = true;
    return true;
  }
  held_ = false;
  const std::string dir = DirOf(path_);
  struct statvfs vfs {};
  if (statvfs(dir.c_str(), &vfs) != 0) return ErrnoError("statvfs", dir, errno);
  // Root may write into the blocks ext4 keeps back for it, so for root they
  // count as free (where they are not, the fallocate below says so).
  const uint64_t free_blocks = geteuid() == 0 ? vfs.f_bfree : vfs.f_bavail;
  if (free_blocks * vfs.f_frsize < 2 * bytes_) return false;

  // Made under a temporary name and renamed: a crash never leaves a short
  // reserve under the real name.
  const std::string temporary = path_ + ".new";
  int fd =
      open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("create", temporary, errno);
  int error = posix_fallocate(fd, 0, static_cast<off_t>(bytes_));
  if (error == 0 && fsync(fd) != 0) error = errno;
  close(fd);
  if (error == 0 && rename(temporary.c_str(), path_.c_str()) != 0)
    error = errno;
  if (error != 0) {
    unlink(temporary.c_str());
    if (error == ENOSPC || error == EDQUOT) return false;
    return ErrnoError("make space reserve", path_, error);
  }
  held_ = true;
  return true;
}

bool SpaceReserve::Release() {
  if (path_.empty()) return false;
  unlink((path_ + ".new").c_str());
  const bool freed = unlink(path_.c_str()) == 0;
  held_ = false;
  if (freed) {
    // ext4 reuses freed blocks only once the journal has committed their
    // release: commit now, so the retry that follows finds them.
    int dir = open(DirOf(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      fsync(dir);
      close(dir);
    }
  }
  return freed;
}

}  // namespace cpp_overlay::metadata
