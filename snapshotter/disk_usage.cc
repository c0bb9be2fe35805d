#include "snapshotter/disk_usage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "snapshotter/fs.h"
#include "snapshotter/tree_walk.h"

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

  // Counts the entry `name` of the open directory `dir_fd`; true when it
  // is a directory to walk into.
  absl::StatusOr<bool> Entry(int dir_fd, const char* name, const std::string& root) {
    struct stat st;
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return false;  // removed meanwhile
      return fs::ErrnoStatus(errno, absl::StrCat("stat ", name, " below ", root));
    }
    Count(st);
    return S_ISDIR(st.st_mode);
  }

 private:
  absl::flat_hash_set<std::pair<dev_t, ino_t>> seen_;
};

}  // namespace

absl::StatusOr<metadata::Usage> DiskUsage(const std::string& path) {
  int fd = fs::OpenDirToRead(AT_FDCWD, path.c_str());
  if (fd < 0) return fs::ErrnoStatus(errno, absl::StrCat("open ", path));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return fs::ErrnoStatus(err, absl::StrCat("stat ", path));
  }
  Walker walker;
  walker.Count(st);
  fs::TreeWalkVisitor visitor;
  visitor.entry = [&walker, &path](int dir_fd, const char* name, unsigned char) {
    return walker.Entry(dir_fd, name, path);
  };
  // As `du -x`: a mount someone left below is not the layer's.
  visitor.mount_point = [](const std::string&) { return absl::OkStatus(); };
  absl::Status walked = fs::WalkTree(fd, path, visitor);
  close(fd);
  if (!walked.ok()) return walked;
  return walker.usage;
}

}  // namespace cpp_overlay::snapshotter
