// The snapshotter contract, as containerd's snapshots.Snapshotter defines it.
// Read this first: the server maps each call to one RPC.
//
// Keys and names are opaque byte strings chosen by containerd (already
// namespaced, e.g. "default/5/extract-123 sha256:..."); they never become
// paths. Every method is thread-safe.
#ifndef CPP_OVERLAY_SNAPSHOTTER_SNAPSHOTTER_H_
#define CPP_OVERLAY_SNAPSHOTTER_SNAPSHOTTER_H_

#include <functional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "metadata/types.h"
#include "snapshotter/mounts.h"

namespace cpp_overlay::snapshotter {

class Snapshotter {
 public:
  virtual ~Snapshotter() = default;

  // Creates active snapshot `key` on committed `parent` ("" for none) and
  // returns how to mount it read-write.
  // NotFound: parent missing. AlreadyExists: key taken. InvalidArgument:
  // empty key, parent not committed, a label over 4096 bytes.
  virtual absl::StatusOr<std::vector<Mount>> Prepare(
      absl::string_view key, absl::string_view parent,
      const metadata::Labels& labels) = 0;

  // Like Prepare, but the snapshot is a read-only view and cannot be
  // committed.
  virtual absl::StatusOr<std::vector<Mount>> View(
      absl::string_view key, absl::string_view parent,
      const metadata::Labels& labels) = 0;

  // The mounts of an active or view snapshot. NotFound: missing.
  // FailedPrecondition: committed.
  virtual absl::StatusOr<std::vector<Mount>> Mounts(absl::string_view key) = 0;

  // Turns active `key` into committed `name` with `labels` (not inherited),
  // recording its usage. AlreadyExists: name taken. NotFound: key missing.
  // FailedPrecondition: key is not active.
  virtual absl::Status Commit(absl::string_view name, absl::string_view key,
                              const metadata::Labels& labels) = 0;

  // Deletes `key` and its files. NotFound: missing. FailedPrecondition: it
  // has children. Files are removed after the metadata change; a failure
  // there is logged and left to Cleanup.
  virtual absl::Status Remove(absl::string_view key) = 0;

  // NotFound when missing.
  virtual absl::StatusOr<metadata::Info> Stat(absl::string_view key) = 0;

  // Changes labels of `info.name` per containerd's field paths ("labels",
  // "labels.<k>", none = all mutable fields) and refreshes its updated time.
  // NotFound: missing. InvalidArgument: any other path, or a bad label.
  virtual absl::StatusOr<metadata::Info> Update(
      const metadata::Info& info, const std::vector<std::string>& paths) = 0;

  // Bytes and inodes of the snapshot's own layer: measured now for active
  // snapshots, recorded at commit for committed ones, zero for views.
  // NotFound when missing.
  virtual absl::StatusOr<metadata::Usage> Usage(absl::string_view key) = 0;

  // Calls `fn` for each snapshot matching any of `filters` (containerd's
  // filter syntax; none = all). InvalidArgument: malformed filter. Stops
  // with `fn`'s error.
  virtual absl::Status Walk(
      const std::vector<std::string>& filters,
      const std::function<absl::Status(const metadata::Info&)>& fn) = 0;

  // Removes every directory under snapshots/ that metadata does not know,
  // including leftovers of a crash.
  virtual absl::Status Cleanup() = 0;
};

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_SNAPSHOTTER_H_
