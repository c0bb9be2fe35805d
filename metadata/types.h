// Plain value types shared by every layer: what a snapshot is, as containerd
// sees it.
#ifndef CPP_OVERLAY_METADATA_TYPES_H_
#define CPP_OVERLAY_METADATA_TYPES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace cpp_overlay::metadata {

// Values equal containerd's snapshots.Kind and the persisted record's field.
enum class Kind : int32_t {
  kUnknown = 0,
  kView = 1,
  kActive = 2,
  kCommitted = 3,
};

// "view", "active", "committed" (containerd's String() forms, used by
// filters); "unknown" otherwise.
absl::string_view KindName(Kind kind);

using Labels = std::map<std::string, std::string>;

// What containerd's Stat returns.
struct Info {
  std::string name;    // key of an active/view snapshot, name of a committed one
  std::string parent;  // empty when the snapshot has no parent
  Kind kind = Kind::kUnknown;
  absl::Time created = absl::UnixEpoch();
  absl::Time updated = absl::UnixEpoch();
  Labels labels;
};

// Disk usage of a snapshot's own layer.
struct Usage {
  int64_t size = 0;    // bytes: sum of st_blocks * 512 over unique inodes
  int64_t inodes = 0;  // unique inodes
};

// Everything the metadata store knows about one snapshot.
struct Snapshot {
  uint64_t id = 0;  // directory name under <root>/snapshots
  Info info;
  Usage usage;  // stored for committed snapshots only
  std::vector<uint64_t> ancestor_ids;  // nearest parent first

  // The parent's id; nullopt without a parent.
  std::optional<uint64_t> parent_id() const {
    if (ancestor_ids.empty()) return std::nullopt;
    return ancestor_ids.front();
  }
};

// containerd's limit: a label's key and value together (labels/validate.go).
inline constexpr size_t kMaxLabelSize = 4096;
// Bytes an Info may take, name, parent and labels with their framing:
// containerd's clients read messages of up to 16 MiB, so a larger one could
// be stored but never read back by Stat or List (containerd's GC lists).
inline constexpr size_t kMaxInfoSize = (size_t{16} << 20) - (size_t{64} << 10);

}  // namespace cpp_overlay::metadata

#endif  // CPP_OVERLAY_METADATA_TYPES_H_
