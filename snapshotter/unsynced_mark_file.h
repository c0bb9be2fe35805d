// A copy of the store's unsynced mark (metadata::SnapshotStore's
// UnsyncedBelow) in a small file of its own, <root>/unsynced-below.
//
// A failed layer sync is reported once: a restarted daemon's new syncfs
// descriptor does not see it again, so the mark is all that keeps a layer
// whose pages were lost from being committed. The store writes it through
// RocksDB, which refuses every write once a log sync has failed, and which
// takes the writer lock first (a removal on a full disk may hold it for
// seconds). This file is written before the store is asked, through plain
// write, fsync and rename, so the mark outlives a failed store and a kill in
// that wait; Open folds it into the store and removes it.
#ifndef CPP_OVERLAY_SNAPSHOTTER_UNSYNCED_MARK_FILE_H_
#define CPP_OVERLAY_SNAPSHOTTER_UNSYNCED_MARK_FILE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cpp_overlay::snapshotter {

// Writes `below` to `path` durably (a temporary file, fsync, rename, fsync
// of the directory). Keeps a larger value already there; one that does not
// decode is replaced (ids count up, so `below` covers what it covered).
absl::Status WriteUnsyncedMarkFile(const std::string& path, uint64_t below);

// The value in `path`; nullopt when there is no such file. DataLoss when it
// holds anything but a decimal id (Open then takes it to cover every
// snapshot made so far, as the store does with a mark it cannot decode).
absl::StatusOr<std::optional<uint64_t>> ReadUnsyncedMarkFile(
    const std::string& path);

}  // namespace cpp_overlay::snapshotter

#endif  // CPP_OVERLAY_SNAPSHOTTER_UNSYNCED_MARK_FILE_H_
