// fsck: checks a root's metadata against its directories while no daemon
// holds the root, and with `repair` fixes what is safe to fix.
//
// On top of metadata::CheckStore (indexes, parents, id counter, usage
// records) it checks, per snapshot and under <root>/snapshots/:
//   missing-directory   <id> missing: for a view (which holds no data) and
//                       an active snapshot (as start-up does; its files, if
//                       any, are lost) it is made again empty; for a
//                       committed layer reported only
//   missing-fs          <id>/fs missing: made again for a view, otherwise
//                       reported only
//   missing-work        <id>/work of an active snapshot missing (made again)
//   not-a-directory     <id>, <id>/fs or <id>/work is a file or symlink
//   (report) temporary-leftover  new-<id> of a create a crash interrupted
//   (removed) stray-directory     <id> that metadata does not know (removed)
//   unknown-entry       any other name under snapshots/ (removed)
//   usage-drift         recorded usage of a committed snapshot differs from
//                       its files: other inode count, or size off by more
//                       than 64 KiB and 0.1% (recorded again)
//   root-permissions    root not a directory of ours with mode 0700
//                       (chmod 0700 when it is ours; reported otherwise)
// Removals are what start-up reconciliation (Cleanup) would do; nothing a
// snapshot record points at is ever deleted.
#ifndef CPP_OVERLAY_SNAPSHOTTER_FSCK_H_
#define CPP_OVERLAY_SNAPSHOTTER_FSCK_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "metadata/store_check.h"

namespace cpp_overlay::snapshotter {

struct FsckOptions {
  std::string root;
  bool repair = false;
};

struct FsckReport {
  int snapshots = 0;
  std::vector<metadata::Finding> findings;
  // With repair: the findings that were repaired (parallel to `findings`).
  std::vector<bool> repaired;

  int repaired_count() const;
  bool clean() const { return findings.empty(); }
};

// NotFound: root or its metadata is missing (not a cpp-overlay root).
// Unavailable: a daemon holds the root. FailedPrecondition: root is a symlink.
// Any other error of reading the metadata or of a repair step.
absl::StatusOr<FsckReport> Fsck(const FsckOptions& options);

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_FSCK_H_
