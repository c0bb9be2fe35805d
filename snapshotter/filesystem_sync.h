// syncfs of one filesystem through a descriptor held for the daemon's life.
//
// Linux reports a writeback error (a page that could not be written) to
// each open descriptor of the filesystem once, and to a descriptor opened
// later only if nobody has seen the error yet. A descriptor opened per sync
// would miss an error that another process's syncfs, or our previous one,
// already reported; this one sees every error since the daemon started.
#ifndef CPP_OVERLAY_SNAPSHOTTER_FILESYSTEM_SYNC_H_
#define CPP_OVERLAY_SNAPSHOTTER_FILESYSTEM_SYNC_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cpp_overlay::snapshotter {

class FilesystemSync {
 public:
  // Opens directory `dir`; its filesystem is the one synced.
  static absl::StatusOr<std::unique_ptr<FilesystemSync>> Open(std::string dir);
  ~FilesystemSync();

  FilesystemSync(const FilesystemSync&) = delete;
  FilesystemSync& operator=(const FilesystemSync&) = delete;

  // Every file's data and every directory entry written on the filesystem
  // before the call are on disk when it returns OK. Thread-safe.
  absl::Status Sync();

 private:
  FilesystemSync(std::string dir, int fd) : dir_(std::move(dir)), fd_(fd) {}

  const std::string dir_;
  const int fd_;
};

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_FILESYSTEM_SYNC_H_
