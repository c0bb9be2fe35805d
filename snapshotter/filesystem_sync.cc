#include "snapshotter/filesystem_sync.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "snapshotter/fs.h"

namespace cpp_overlay::snapshotter {

absl::StatusOr<std::unique_ptr<FilesystemSync>> FilesystemSync::Open(
    std::string dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fs::ErrnoStatus(errno, absl::StrCat("open ", dir));
  return std::unique_ptr<FilesystemSync>(
      new FilesystemSync(std::move(dir), fd));
}

FilesystemSync::~FilesystemSync() { close(fd_); }

absl::Status FilesystemSync::Sync() {
  if (syncfs(fd_) != 0) {
    return fs::ErrnoStatus(errno,
                           absl::StrCat("sync the filesystem of ", dir_));
  }
  return absl::OkStatus();
}

}  // namespace cpp_overlay::snapshotter
