#include "snapshotter/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "snapshotter/tree_walk.h"

namespace cpp_overlay::snapshotter::fs {
namespace {

// Removes every entry inside the open directory `dir_fd` (borrowed).
absl::Status RemoveContents(int dir_fd, const std::string& path,
                            const std::function<absl::Status()>* before_each) {
  auto unlink_entry = [before_each, &path](int parent_fd, const char* name,
                                           bool is_dir) -> absl::Status {
    if (before_each != nullptr) {
      if (absl::Status s = (*before_each)(); !s.ok()) return s;
    }
    if (unlinkat(parent_fd, name, is_dir ? AT_REMOVEDIR : 0) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, absl::StrCat("remove ", name, " below ", path));
    }
    return absl::OkStatus();
  };
  TreeWalkVisitor visitor;
  // Files go at once; a directory once everything in it has gone.
  visitor.entry = [&unlink_entry](int parent_fd, const char* name,
                                  unsigned char d_type) -> absl::StatusOr<bool> {
    bool is_dir = d_type == DT_DIR;
    if (d_type == DT_UNKNOWN) {
      struct stat st;
      if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        is_dir = S_ISDIR(st.st_mode);
      }
    }
    if (is_dir) return true;
    if (absl::Status s = unlink_entry(parent_fd, name, false); !s.ok()) return s;
    return false;
  };
  visitor.leave = [&unlink_entry](int parent_fd, const char* name) {
    return unlink_entry(parent_fd, name, true);
  };
  return WalkTree(dir_fd, path, visitor);
}

}  // namespace

absl::Status ErrnoStatus(int err, absl::string_view what) {
  std::string message = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EEXIST:
    case ENOTEMPTY:
      return absl::AlreadyExistsError(message);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case EINVAL:
    case ENAMETOOLONG:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status MakeDir(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0) {
    return ErrnoStatus(errno, absl::StrCat("create directory ", path));
  }
  // mkdir applies the umask; the mode is part of the contract.
  return Chmod(path, mode);
}

absl::Status MakeDirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return ErrnoStatus(ec.value(), absl::StrCat("create directory ", path));
  return Chmod(path, mode);
}

absl::Status Chmod(const std::string& path, mode_t mode) {
  if (chmod(path.c_str(), mode) != 0) {
    return ErrnoStatus(errno, absl::StrCat("chmod ", path));
  }
  return absl::OkStatus();
}

absl::Status Rename(const std::string& from, const std::string& to) {
  if (rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("rename ", from, " to ", to));
  }
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", path));
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return ErrnoStatus(err, absl::StrCat("fsync ", path));
  return absl::OkStatus();
}

absl::Status RemoveAll(const std::string& path) {
  return RemoveAll(path, nullptr);
}

absl::Status RemoveAll(const std::string& path,
                       const std::function<absl::Status()>& before_each) {
  const std::function<absl::Status()>* hook = before_each ? &before_each : nullptr;
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, absl::StrCat("stat ", path));
  }
  if (S_ISDIR(st.st_mode)) {
    int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", path));
    // A directory someone mounted on (its rename then failed with EBUSY,
    // so it stayed where it was) is not ours to empty.
    absl::StatusOr<MountOf> mount = MountOfFile(fd, path);
    if (mount.ok() && mount->root) {
      close(fd);
      return absl::FailedPreconditionError(absl::StrCat(
          path, " is a mount point; it is never emptied (unmount it)"));
    }
    absl::Status removed = RemoveContents(fd, path, hook);
    close(fd);
    if (!removed.ok()) return removed;
    if (rmdir(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, absl::StrCat("remove ", path));
    }
    return absl::OkStatus();
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("remove ", path));
  }
  return absl::OkStatus();
}

absl::Status Lchown(const std::string& path, uid_t uid, gid_t gid) {
  if (lchown(path.c_str(), uid, gid) != 0) {
    return ErrnoStatus(errno, absl::StrCat("chown ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<Owner> OwnerOf(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    return ErrnoStatus(errno, absl::StrCat("stat ", path));
  }
  return Owner{st.st_uid, st.st_gid};
}

int OpenDirToRead(int dir_fd, const char* name) {
  constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  int fd = openat(dir_fd, name, kFlags | O_NOATIME);
  // EPERM: neither root nor the owner; read it as anyone would.
  if (fd < 0 && errno == EPERM) fd = openat(dir_fd, name, kFlags);
  return fd;
}

absl::StatusOr<MountOf> MountOfFile(int fd, absl::string_view path) {
  MountOf mount;
  struct statx stx;
  if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) != 0) {
    // A seccomp filter may refuse statx: the device is all there is.
    if (errno != EPERM && errno != ENOSYS) {
      return ErrnoStatus(errno, absl::StrCat("statx ", path));
    }
    struct stat st;
    if (fstat(fd, &st) != 0)
      return ErrnoStatus(errno, absl::StrCat("stat ", path));
    mount.dev = st.st_dev;
    return mount;
  }
  mount.dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
  if ((stx.stx_mask & STATX_MNT_ID) != 0) mount.id = stx.stx_mnt_id;
  mount.root = (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  return mount;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return ErrnoStatus(errno, absl::StrCat("open directory ", path));
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* entry = readdir(dir)) {
    absl::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  int err = errno;
  closedir(dir);
  if (err != 0) return ErrnoStatus(err, absl::StrCat("read directory ", path));
  return names;
}

}  // namespace cpp_overlay::snapshotter::fs
