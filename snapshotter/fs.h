// Filesystem steps as absl::Status; errno is mapped here and nowhere else.
#ifndef CPP_OVERLAY_SNAPSHOTTER_FS_H_
#define CPP_OVERLAY_SNAPSHOTTER_FS_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cpp_overlay::snapshotter::fs {

// errno -> absl code: ENOENT NotFound, EEXIST/ENOTEMPTY AlreadyExists,
// ENOSPC/EDQUOT ResourceExhausted, EACCES/EPERM PermissionDenied, EINVAL
// InvalidArgument, others Internal. The message is "<what>: <strerror>".
absl::Status ErrnoStatus(int err, absl::string_view what);

// mkdir with exactly `mode` (umask does not apply).
absl::Status MakeDir(const std::string& path, mode_t mode);
// mkdir -p; the last component gets exactly `mode`.
absl::Status MakeDirs(const std::string& path, mode_t mode);
absl::Status Chmod(const std::string& path, mode_t mode);
absl::Status Rename(const std::string& from, const std::string& to);
// fsync of a directory, so renames inside it are durable.
absl::Status SyncDir(const std::string& path);
// Removes `path` and everything below it, never following symlinks.
// OK when it does not exist.
absl::Status RemoveAll(const std::string& path);
// Like RemoveAll, calling `before_each` before every unlink; its error stops
// the removal and is returned (e.g. to pace or cancel a background delete).
absl::Status RemoveAll(const std::string& path,
                       const std::function<absl::Status()>& before_each);
absl::Status Lchown(const std::string& path, uid_t uid, gid_t gid);

struct Owner {
  uid_t uid;
  gid_t gid;
};
absl::StatusOr<Owner> OwnerOf(const std::string& path);
// True when `path` exists (lstat succeeds).
bool Exists(const std::string& path);
// openat(dir_fd, name) of a directory to read, never following a symlink,
// without touching its access time where we may (O_NOATIME; root may, else
// the owner only). Reading a directory otherwise writes its inode whenever
// its atime is not newer than its last change (relatime), a journaled write
// per directory: Usage walks every container's writable layer every 10 s,
// and Commit walks a fresh layer, every directory of which qualifies.
// Returns the descriptor, or -1 with errno set.
int OpenDirToRead(int dir_fd, const char* name);
// The mount an open file is on: its mount id (statx, Linux 5.8) where the
// kernel gives one, else just its device, which cannot tell a bind mount
// of one filesystem from that filesystem.
struct MountOf {
  uint64_t id = 0;  // 0: none given
  dev_t dev = 0;
  bool root = false;  // the file is the root of its mount (a mount point)
  bool SameAs(const MountOf& other) const {
    return id != 0 && other.id != 0 ? id == other.id : dev == other.dev;
  }
};
// `path` names the file in errors only.
absl::StatusOr<MountOf> MountOfFile(int fd, absl::string_view path);
// Names in a directory, without "." and "..".
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path);

}  // namespace cpp_overlay::snapshotter::fs

#endif  // CPP_OVERLAY_SNAPSHOTTER_FS_H_
