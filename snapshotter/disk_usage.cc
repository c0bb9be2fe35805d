#include "snapshotter/disk_usage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "snapshotter/fs.h"

namespace cpp_overlay::snapshotter {
namespace {

class Walker {
 public:
  metadata::Usage usage;

  void Count(const struct stat& st) {
    // Only inodes with several links can be met twice; directories cannot
    // be hard-linked.
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 &&
        !seen_.emplace(st.st_dev, st.st_ino).second) {
      return;
    }
    usage.size += static_cast<int64_t>(st.st_blocks) * 512;
    usage.inodes += 1;
  }

  // Counts every entry below the open directory `fd` (taken over).
  absl::Status WalkDir(int fd, const std::string& path) {
    DIR* dir = fdopendir(fd);
    if (dir == nullptr) {
      int err = errno;
      close(fd);
      return fs::ErrnoStatus(err, absl::StrCat("open directory ", path));
    }
    absl::Status status;
    errno = 0;
    while (struct dirent* entry = readdir(dir)) {
      const char* name = entry->d_name;
      if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) {
        continue;
      }
      struct stat st;
      if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        status = fs::ErrnoStatus(errno, absl::StrCat("stat ", path, "/", name));
        break;
      }
      Count(st);
      if (!S_ISDIR(st.st_mode)) continue;
      int child = openat(dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child < 0) {
        if (errno == ENOENT) continue;
        status = fs::ErrnoStatus(errno, absl::StrCat("open ", path, "/", name));
        break;
      }
      status = WalkDir(child, absl::StrCat(path, "/", name));
      if (!status.ok()) break;
    }
    closedir(dir);
    return status;
  }

 private:
  absl::flat_hash_set<std::pair<dev_t, ino_t>> seen_;
};

}  // namespace

absl::StatusOr<metadata::Usage> DiskUsage(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return fs::ErrnoStatus(errno, absl::StrCat("open ", path));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return fs::ErrnoStatus(err, absl::StrCat("stat ", path));
  }
  Walker walker;
  walker.Count(st);
  if (absl::Status s = walker.WalkDir(fd, path); !s.ok()) return s;
  return walker.usage;
}

}  // namespace cpp_overlay::snapshotter
