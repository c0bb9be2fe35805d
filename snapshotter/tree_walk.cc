#include "snapshotter/tree_walk.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "snapshotter/fs.h"

namespace cpp_overlay::snapshotter::fs {
namespace {

// One directory on the way down from the root.
struct Frame {
  int fd = -1;  // -1 once closed to bound the open directories
  dev_t dev = 0;  // taken when the descriptor is closed
  ino_t ino = 0;
  bool borrowed = false;             // the caller's root descriptor
  std::string name;                  // in its parent; empty for the root
  std::vector<std::string> pending;  // subdirectories still to walk into
};

class Walk {
 public:
  Walk(const std::string& root_path, const TreeWalkVisitor& visitor)
      : root_path_(root_path), visitor_(visitor) {}

  ~Walk() {
    for (Frame& f : frames_) {
      if (f.fd >= 0 && !f.borrowed) close(f.fd);
    }
  }

  absl::Status Run(int root_fd) {
    absl::StatusOr<MountOf> mount = MountOfFile(root_fd, root_path_);
    if (!mount.ok()) return mount.status();
    root_mount_ = *mount;
    // Never closed, so never reopened: its identity is not needed.
    Frame root;
    root.fd = root_fd;
    root.borrowed = true;
    frames_.push_back(std::move(root));
    if (absl::Status s = ReadEntries(frames_.back()); !s.ok()) return s;
    while (!frames_.empty()) {
      Frame& top = frames_.back();
      if (!top.pending.empty()) {
        std::string name = std::move(top.pending.back());
        top.pending.pop_back();
        absl::Status s = Descend(std::move(name));
        if (!s.ok()) return s;
        continue;
      }
      if (absl::Status s = Ascend(); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  std::string PathOf(size_t depth, absl::string_view name = {}) const {
    std::string path = root_path_;
    for (size_t i = 1; i <= depth && i < frames_.size(); ++i) {
      absl::StrAppend(&path, "/", frames_[i].name);
    }
    if (!name.empty()) absl::StrAppend(&path, "/", name);
    return path;
  }

  // Visits every entry of `frame`, collecting the ones to walk into. Reads
  // the whole directory before going deeper, so only one read buffer is in
  // use however deep the walk goes.
  absl::Status ReadEntries(Frame& frame) {
    const size_t depth = frames_.size() - 1;
    for (;;) {
      ssize_t n = getdents64(frame.fd, buffer_, sizeof(buffer_));
      if (n == 0) return absl::OkStatus();
      if (n < 0) {
        return ErrnoStatus(errno, absl::StrCat("read directory ", PathOf(depth)));
      }
      for (ssize_t off = 0; off < n;) {
        auto* entry = reinterpret_cast<struct dirent64*>(buffer_ + off);
        off += entry->d_reclen;
        const char* name = entry->d_name;
        if (name[0] == '.' &&
            (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) {
          continue;
        }
        absl::StatusOr<bool> descend = visitor_.entry(frame.fd, name, entry->d_type);
        if (!descend.ok()) return descend.status();
        if (*descend) frame.pending.emplace_back(name);
      }
    }
  }

  absl::Status Descend(std::string name) {
    const size_t depth = frames_.size() - 1;
    int fd = OpenDirToRead(frames_.back().fd, name.c_str());
    if (fd < 0) {
      if (errno == ENOENT) return absl::OkStatus();  // removed meanwhile
      return ErrnoStatus(errno, absl::StrCat("open ", PathOf(depth, name)));
    }
    // A mount left below (rename takes a mount point along into the trash)
    // is someone else's: never delete or count what is in it.
    absl::StatusOr<MountOf> mount = MountOfFile(fd, name);
    if (!mount.ok() || !mount->SameAs(root_mount_)) {
      close(fd);
      // Built only here: most directories get no message.
      const std::string path = PathOf(depth, name);
      if (!mount.ok()) {
        return absl::Status(
            mount.status().code(),
            absl::StrCat(mount.status().message(), " (", path, ")"));
      }
      if (visitor_.mount_point) return visitor_.mount_point(path);
      return absl::FailedPreconditionError(absl::StrCat(
          path,
          " is a mount point; a walk never crosses into another mount "
          "(unmount it)"));
    }
    Frame child;
    child.fd = fd;
    child.name = std::move(name);
    frames_.push_back(std::move(child));
    // Keep the open directories bounded: the one kTreeWalkOpenDirs levels
    // up is reopened through ".." when the walk climbs back to it, and
    // checked against the identity taken as it is closed.
    if (frames_.size() > static_cast<size_t>(kTreeWalkOpenDirs)) {
      const size_t far_depth = frames_.size() - 1 - kTreeWalkOpenDirs;
      Frame& far = frames_[far_depth];
      if (far.fd >= 0 && !far.borrowed) {
        struct stat st;
        if (fstat(far.fd, &st) != 0) {
          return ErrnoStatus(errno, absl::StrCat("stat ", PathOf(far_depth)));
        }
        far.dev = st.st_dev;
        far.ino = st.st_ino;
        close(far.fd);
        far.fd = -1;
      }
    }
    return ReadEntries(frames_.back());
  }

  // Leaves the deepest directory, telling the visitor.
  absl::Status Ascend() {
    Frame done = std::move(frames_.back());
    frames_.pop_back();
    absl::Status status;
    if (!frames_.empty()) {
      Frame& parent = frames_.back();
      if (parent.fd < 0) status = Reopen(done.fd, parent);
      if (status.ok() && visitor_.leave) {
        status = visitor_.leave(parent.fd, done.name.c_str());
      }
    }
    if (!done.borrowed) close(done.fd);
    return status;
  }

  // Opens `parent` again as ".." of its child `child_fd`, and checks that
  // it is still the same directory.
  absl::Status Reopen(int child_fd, Frame& parent) {
    int fd = OpenDirToRead(child_fd, "..");
    if (fd < 0) {
      return ErrnoStatus(errno, absl::StrCat("reopen ", PathOf(frames_.size() - 1)));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_dev != parent.dev || st.st_ino != parent.ino) {
      close(fd);
      return absl::FailedPreconditionError(absl::StrCat(
          "directory ", PathOf(frames_.size() - 1), " moved during the walk"));
    }
    parent.fd = fd;
    return absl::OkStatus();
  }

  const std::string& root_path_;
  const TreeWalkVisitor& visitor_;
  MountOf root_mount_;
  std::vector<Frame> frames_;
  alignas(struct dirent64) char buffer_[32 * 1024];
};

}  // namespace

absl::Status WalkTree(int root_fd, const std::string& root_path,
                      const TreeWalkVisitor& visitor) {
  auto walk = std::make_unique<Walk>(root_path, visitor);
  return walk->Run(root_fd);
}

}  // namespace cpp_overlay::snapshotter::fs
